"""Search end to end in real Chromium: the real ``@sentry/browser`` SDK and, separately, replayd's
snippet record a person on a page with a dead button (Pay later), a rage-clicked button (Buy now) and
a working checkout link, and a decoy session on another page. Each search finds exactly the
replay it should (never the decoy), the list page opens a hit at its click with the click marked on
the timeline, and the top-selectors page lists the dead and rage selectors.

One ``replayd serve`` per recorder (module fixture, parametrised), so each search's answer is that
recorder's replays only.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ADMIN_PASSWORD, REPO, RunningServer, launch_server
from tests.sites import StaticSite, sentry_files, wait_for_js
from tests.waiting import wait_until

PAGES = REPO / "tests" / "pages" / "search"
JANE = "jane@example.com"
BOB = "bob@example.com"
DEAD_WAIT_MS = 8000  # past the 7 s a dead click is given


@dataclass
class Flow:
    kind: str
    server: RunningServer
    main: str  # the replay with the dead, rage and checkout clicks
    decoy: str

    def search(self, query: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.server.api("/api/0/projects/1/replays/?"
                                                     + urllib.parse.urlencode({"query": query}))["data"]
        return data


def _site(kind: str, server: RunningServer, sentry_bundle: Path) -> StaticSite:
    if kind == "sentry":
        head = "".join(f'<script src="/{name}"></script>' for name in ("dsn.js", "sentry.js", "sentry-init.js"))
        extra = {**sentry_files(sentry_bundle, server.dsn),
                 "/sentry-init.js": ((PAGES / "sentry-init.js").read_bytes(), "text/javascript")}
    else:
        head = (f'<script src="{server.url}/static/replayd.js" data-dsn="{server.dsn}" '
                'data-flush-interval-ms="1000" async></script>')
        extra = {}
    files = {f"/{name}": ((PAGES / name).read_text().replace("__HEAD__", head).encode(), "text/html; charset=utf-8")
             for name in ("pay.html", "decoy.html")}
    files["/page.js"] = ((PAGES / "page.js").read_bytes(), "text/javascript")
    return StaticSite({**files, **extra})


# What each recorder is asked: its replay id, set the user, send everything recorded.
API = {
    "sentry": {
        "id": "() => window.Sentry && Sentry.getReplay() && Sentry.getReplay().getReplayId()",
        "user": "(u) => Sentry.setUser(u)",
        "send": "async () => { await Sentry.getReplay().flush(); await Sentry.getReplay().stop(); "
                "await Sentry.flush(10000); }",
    },
    "snippet": {
        "id": "() => window.replayd && replayd.getReplayId && replayd.getReplayId()",
        "user": "(u) => replayd.setUser(u)",
        "send": "async () => { await replayd.flush(10000); }",
    },
}


def _record(browser: Any, site: StaticSite, kind: str, page_name: str, user: dict[str, str],
            act: Any) -> str:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{site.url}/{page_name}")
        replay_id = wait_for_js(page, API[kind]["id"], f"the {kind} recorder to start a replay")
        page.evaluate(API[kind]["user"], user)
        page.wait_for_timeout(300)
        act(page)
        page.wait_for_timeout(500)
        page.evaluate(API[kind]["send"])
    finally:
        context.close()
    return str(replay_id).replace("-", "")


def _frustrated(page: Any) -> None:
    page.click("#later")  # nothing happens
    page.wait_for_timeout(DEAD_WAIT_MS)
    page.click("#checkout")  # works
    page.wait_for_selector("#done:has-text('Order placed')")
    for _ in range(5):  # nothing happens, again and again: a rage click (5 clicks, the first dead)
        page.click("#buy")
    page.wait_for_timeout(DEAD_WAIT_MS)  # the DOM must not change within 7 s of the burst's first click
    page.mouse.move(30, 30)  # an event after those 7 s decides it (a DOM change would undo it)
    page.mouse.move(60, 60)


def _reading(page: Any) -> None:
    page.click("#note")
    page.mouse.move(40, 40)


@pytest.fixture(scope="module", params=["sentry", "snippet"])
def flow(request: pytest.FixtureRequest, browser: Any, tmp_path_factory: pytest.TempPathFactory,
         sentry_bundle: Path) -> Iterator[Flow]:
    kind = request.param
    server = launch_server(tmp_path_factory.mktemp(f"search-{kind}"))
    site = _site(kind, server, sentry_bundle)
    try:
        main = _record(browser, site, kind, "pay.html", {"id": "jane-1", "email": JANE}, _frustrated)
        decoy = _record(browser, site, kind, "decoy.html", {"id": "bob-2", "email": BOB}, _reading)
        # every segment stored: the main replay's checkout click and its dead click are indexed
        wait_until(lambda: len(server.api("/api/0/projects/1/replays/")["data"]) == 2, timeout=20,
                   what="both replays listed")
        yield Flow(kind, server, main, decoy)
    finally:
        site.close()
        server.kill()


def test_each_search_finds_exactly_the_replay_it_should(flow: Flow) -> None:
    ids = lambda query: sorted(r["replay_id"] for r in flow.search(query))  # noqa: E731
    everything = flow.server.api("/api/0/projects/1/replays/")["data"]
    assert sorted(r["replay_id"] for r in everything) == sorted([flow.main, flow.decoy]), everything
    assert ids("click.textContent:*checkout*") == [flow.main]
    assert ids("count_rage_clicks:>0 url:*pay*") == [flow.main]
    assert ids(f"user.email:{JANE}") == [flow.main]
    assert ids(f"user.email:{BOB}") == [flow.decoy]
    assert ids("dead.selector:button#later") == [flow.main], flow.server.api("/api/0/projects/1/selectors/")
    assert ids("rage.selector:button#buy") == [flow.main]
    assert ids("click.testid:buy-now") == [flow.main]
    assert ids("!click.tag:button") == [flow.decoy]
    if flow.kind == "sentry":  # a paragraph is no clickable element: the SDK's ui.click breadcrumb describes it
        assert ids("click.tag:p click.textContent:*prune*") == [flow.decoy]
    # the address is stored hashed, never as given
    assert JANE not in json.dumps(everything)
    log = flow.server.log()
    assert "Traceback" not in log, log


def test_a_hit_opens_at_its_click_marked_on_the_timeline(flow: Flow, browser: Any) -> None:
    (hit,) = flow.search("click.textContent:*checkout*")
    assert hit["click_offset"] is not None and 0 < hit["click_offset"] <= hit["duration"] + 1
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(flow.server.url + "/projects/1/replays?" + urllib.parse.urlencode(
            {"query": "click.textContent:*checkout*"}))
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("form.login-form button[type=submit]")
        page.wait_for_selector("table.replays")
        links = page.locator("table.replays tbody a").all()
        assert len(links) == 1
        href = links[0].get_attribute("href") or ""
        assert f"/replays/{flow.main}?t=" in href and "click=" in href
        links[0].click()
        page.wait_for_selector("[data-player][data-first-frame]", state="attached", timeout=20_000)
        marker = page.wait_for_selector(".marker.searched", state="attached")
        assert abs(float(marker.get_attribute("data-t") or 0) - hit["click_offset"] * 1000) < 2
        current = int(page.get_attribute("[data-player]", "data-current") or -1)
        assert abs(current - hit["click_offset"] * 1000) < 1500, (current, hit["click_offset"])

        page.goto(flow.server.url + "/projects/1/selectors")
        dead = page.locator("section.dead code").all_inner_texts()
        rage = page.locator("section.rage code").all_inner_texts()
        assert any(s.startswith("button#later") for s in dead), dead
        assert any(s.startswith("button#buy") for s in rage), rage
        page.locator("section.dead a").first.click()
        page.wait_for_selector("table.replays")
        assert page.locator("table.replays tbody tr").count() >= 1
        assert "dead.selector" in (page.input_value("input[name=query]"))

        bad = page.goto(flow.server.url + "/projects/1/replays?query=" + urllib.parse.quote("(count_errors:>1"))
        assert bad is not None and bad.status == 400
        assert "missing closing parenthesis" in page.inner_text("#search-error")
    finally:
        context.close()


def test_screenshots_of_the_search_and_the_top_selectors(flow: Flow, browser: Any, tmp_path: Path) -> None:
    """With UPDATE_SCREENSHOTS=1 into docs/screenshots (the snippet's run):
    `UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/test_search_browser.py -k screenshots`."""
    update = os.environ.get("UPDATE_SCREENSHOTS") == "1" and flow.kind == "snippet"
    shots = REPO / "docs" / "screenshots" if update else tmp_path
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.goto(flow.server.url + "/projects/1/replays?" + urllib.parse.urlencode(
            {"query": "click.textContent:*checkout* OR dead.selector:button#later", "sort": "-count_dead_clicks"}))
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("form.login-form button[type=submit]")
        page.wait_for_selector("table.replays")
        page.screenshot(path=str(shots / "search.png"))
        page.goto(flow.server.url + "/projects/1/selectors")
        page.wait_for_selector("section.rage")
        page.screenshot(path=str(shots / "selectors.png"))
    finally:
        context.close()
    for name in ("search", "selectors"):
        assert (shots / f"{name}.png").stat().st_size > 5_000
