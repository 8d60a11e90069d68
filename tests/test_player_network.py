"""The player's network and console panels on a recording of the real ``@sentry/browser`` SDK.

A page (tests/pages/network/) records with ``replayIntegration({networkDetailAllowUrls: [origin +
'/api/'], networkRequestHeaders, networkResponseHeaders})``, nothing masked on the client, and makes
four kinds of request: a POST whose headers and JSON body hold planted personal data (answered with
planted data in its response headers and body), a large JSON catalogue (a planted address deep
inside it), a request outside the allowed URLs, and a fetch and an XHR that get no answer; and
writes console output at every level.

Then: (1) no planted value is stored anywhere (blobs decoded, index rows, state, spool, log, raw
files: tests/test_privacy_e2e.py's scan); (2) in the player, the network panel's detail pane shows
each request's method, URL, status, timing, sizes, headers and bodies — scrubbed, JSON
pretty-printed, the large body cut with its size — and the console panel filters by level and text;
both follow the playhead and seek on click. Also takes docs/screenshots/network.png and console.png.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import ADMIN_PASSWORD, REPO, RunningServer, launch_server
from tests.sites import StaticSite, page_files, sentry_files, wait_for_js
from tests.test_privacy_e2e import _texts_in_data_dir, variants

PAGES = REPO / "tests" / "pages" / "network"
SCREENSHOTS = REPO / "docs" / "screenshots"
CATALOG_ITEMS = 600

PLANTED: list[tuple[str, str]] = [
    ("request Authorization header", "netAuthTok9Q8W7E6R5T4Y3U"),
    ("request X-Customer-Email header", "header.person@example.com"),
    ("request body email", "body.person@example.com"),
    ("request body phone", "+1 415 555 0199"),
    ("request body card", "4242 4242 4242 4242"),
    ("response X-Session-Token header", "resTok3nAbCdEf123456"),
    ("response X-Customer-Phone header", "+44 20 7946 0123"),
    ("response body email", "resp.owner@example.com"),
    ("response body iban", "GB29 NWBK 6016 1331 9268 19"),
    ("catalogue item contact", "deep.catalog@example.com"),
    ("console.info", "console.person@example.com"),
    ("skipped request's header", "ping.person@example.com"),
]

PROFILE_ANSWER = {"status": "saved", "owner": "resp.owner@example.com", "payout": "GB29 NWBK 6016 1331 9268 19",
                  "items": [1, 2, 3]}
CATALOG = [{"sku": f"SKU-{i:04d}", "name": f"Garden item number {i}", "price_cents": 150 + i * 25,
            **({"contact": "deep.catalog@example.com"} if i == 400 else {})} for i in range(CATALOG_ITEMS)]


@dataclass
class Recorded:
    server: RunningServer
    replay_id: str


@pytest.fixture(scope="module")
def replayd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = launch_server(tmp_path_factory.mktemp("replayd-network"))
    yield server
    server.kill()


@pytest.fixture(scope="module")
def recorded(browser, replayd: RunningServer, sentry_bundle: Path) -> Iterator[Recorded]:
    site = StaticSite({
        **page_files(PAGES, "orders.html", "orders.js", "init.js"),
        **sentry_files(sentry_bundle, replayd.dsn),
        "/api/profile": (json.dumps(PROFILE_ANSWER).encode(), "application/json",
                         {"X-Session-Token": "resTok3nAbCdEf123456", "X-Customer-Phone": "+44 20 7946 0123"}),
        "/api/catalog": (json.dumps(CATALOG).encode(), "application/json"),
        "/other/ping": (b'{"pong": true}', "application/json"),
    })
    context = browser.new_context()
    page = context.new_page()
    posted: list[Any] = []
    page.on("request", lambda r: posted.append(r) if r.method == "POST" and "/envelope/" in r.url else None)
    try:
        page.goto(site.url + "/orders.html")
        replay_id = wait_for_js(page, "() => window.Sentry && Sentry.getReplay() && Sentry.getReplay().getReplayId()",
                                "the SDK to start a replay")
        for button in ("save", "catalog", "ping", "offline"):
            page.wait_for_timeout(400)  # apart on the timeline
            page.click(f"#{button}")
            wait_for_js(page, f"() => window.done.{button}", f"the page's {button} request")
        page.wait_for_timeout(500)  # the SDK adds a request's span once its body is read
        page.evaluate("async () => { await Sentry.getReplay().stop(); await Sentry.flush(10000); }")
        sent = 0
        for request in posted:
            request.response()
            sent += (request.post_data_buffer or b"").count(b'"type":"replay_recording"')
    finally:
        context.close()
    deadline = time.monotonic() + 20
    while True:
        try:
            replay = replayd.api(f"/api/0/projects/1/replays/{replay_id}/")["data"]
            if replay["segment_count"] >= sent > 0:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, f"replayd did not show the {sent} segments the SDK sent"
        time.sleep(0.2)
    yield Recorded(replayd, replay_id)
    site.close()


def planted_in(text: str) -> list[str]:
    return [f"{label}: {v!r}" for label, value in PLANTED for v in variants(value) if v in text]


@pytest.fixture(scope="module")
def player_page(browser, recorded: Recorded) -> Iterator[Any]:
    """The replay page, signed in through the form, loaded and paused at the start, breadcrumbs in."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = open_replay(context, recorded.server, recorded.replay_id)
    yield page
    context.close()
    assert page.errors == []


def open_replay(context: Any, server: RunningServer, replay_id: str) -> Any:
    """A page of ``context`` signed in through the form on replay ``replay_id``, loaded and paused at the
    start, breadcrumbs in; ``page.errors`` collects its uncaught errors."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + "/login")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(server.url + "/")
    page.goto(server.url + f"/replays/{replay_id}")
    page.wait_for_selector("[data-player][data-first-frame]", state="attached", timeout=15000)
    page.wait_for_selector("[data-player][data-breadcrumbs=ready]", state="attached", timeout=15000)
    page.locator("[data-action=toggle]").click()
    page.wait_for_function("() => ['paused', 'ended'].includes(document.querySelector('[data-player]').dataset.state)")
    page.errors = errors
    return page


def current_ms(page: Any) -> int:
    return int(page.get_attribute("[data-player]", "data-current"))


def seek(page: Any, t: float) -> None:
    page.evaluate("(t) => globalThis.replaydPlayer.seek(t)", t)
    page.wait_for_function(f"() => Math.abs(+document.querySelector('[data-player]').dataset.current - {t}) < 5")


def current_row_follows(page: Any, rows_selector: str) -> None:
    """The highlighted row is the last shown one at or before the playhead; it moves with a seek."""
    times = [int(t) for t in page.locator(f"{rows_selector}:not([hidden])").evaluate_all(
        "rows => rows.map((r) => r.dataset.t)")]
    assert len(times) >= 2, times
    for t in (times[0], times[-1] + 1, times[0] - 1 if times[0] > 0 else None):
        if t is None:
            continue
        seek(page, t)
        current = page.locator(f"{rows_selector}.current")
        expected = [x for x in times if x <= t]
        if expected:
            assert current.count() == 1 and int(current.get_attribute("data-t")) == expected[-1], (t, times)
        else:
            assert current.count() == 0


# --- (1) at rest ----------------------------------------------------------------------------

def test_the_requests_details_were_recorded_and_are_stored_scrubbed(recorded: Recorded) -> None:
    events = recorded.server.replay_events(recorded.replay_id)
    spans = {e["data"]["payload"]["description"]: e["data"]["payload"] for e in events
             if e["type"] == 5 and e["data"].get("tag") == "performanceSpan"
             and e["data"]["payload"].get("op") == "resource.fetch"}
    profile = next(v for k, v in spans.items() if k.startswith("/api/profile"))["data"]
    # the SDK sent the details (the search below is only worth something if they went through)
    assert profile["request"]["headers"] == {"authorization": "[Filtered]", "x-customer-email": "[email]",
                                             "content-type": "application/json"}, profile
    assert profile["request"]["body"]["contact"] == "[email]" and profile["request"]["body"]["card"].count("*") >= 16
    assert profile["response"]["headers"]["x-session-token"] == "[Filtered]", profile
    assert profile["response"]["body"]["owner"] == "[email]", profile
    catalog = spans["/api/catalog"]["data"]
    assert len(catalog["response"]["body"]) == CATALOG_ITEMS
    assert catalog["response"]["body"][400]["contact"] == "[email]"
    assert spans["/other/ping"]["data"]["request"]["_meta"]["warnings"] == ["URL_SKIPPED"]


def test_no_planted_value_is_stored_anywhere(recorded: Recorded) -> None:
    leaks = [f"{found} in {where}" for where, text in _texts_in_data_dir(recorded.server) for found in planted_in(text)]
    assert not leaks, f"{len(leaks)} planted values reached storage:\n" + "\n".join(leaks[:40])


# --- (2) in the player ----------------------------------------------------------------------

def open_request(page: Any, url_part: str) -> Any:
    page.click("[data-tab=network]")
    row = page.locator("[data-network] li.net-row", has_text=url_part).first
    row.locator(".url").click()
    pane = page.locator("[data-network-detail]")
    page.wait_for_selector("[data-network-detail][data-state=ready]", state="attached")
    assert pane.is_visible()
    return row, pane


def field(pane: Any, name: str) -> str:
    return pane.locator(f"[data-field={name}]").inner_text()


def headers(pane: Any, part: str) -> dict[str, str]:
    return dict(pane.locator(f"table[data-headers={part}] tr").evaluate_all(
        "rows => rows.map((r) => [r.cells[0].textContent, r.cells[1].textContent])"))


def test_network_pane_shows_a_request_scrubbed(player_page: Any, recorded: Recorded) -> None:
    page = player_page
    page.click("[data-tab=network]")
    rows = page.locator("[data-network] li.net-row")
    urls = rows.locator(".url").all_inner_texts()
    assert any(u.startswith("/api/profile") for u in urls) and "/api/catalog" in urls and "/other/ping" in urls, urls
    row, pane = open_request(page, "/api/profile")
    # a click on the row seeks to the request's start
    assert abs(current_ms(page) - int(row.get_attribute("data-t"))) <= 2
    assert "selected" in (row.get_attribute("class") or "")
    assert field(pane, "method") == "POST"
    assert field(pane, "url").startswith("/api/profile")
    assert field(pane, "status") == "200"
    assert field(pane, "op") == "resource.fetch"
    assert re.fullmatch(r"\d+ ms|\d+\.\d\d s", field(pane, "duration")), field(pane, "duration")
    assert re.fullmatch(r"\d+ B", field(pane, "request-size")), field(pane, "request-size")
    assert re.fullmatch(r"\d+ B", field(pane, "response-size")), field(pane, "response-size")
    assert headers(pane, "request") == {"authorization": "[Filtered]", "x-customer-email": "[email]",
                                        "content-type": "application/json"}
    response_headers = headers(pane, "response")
    assert response_headers["x-session-token"] == "[Filtered]", response_headers
    assert re.fullmatch(r"[*\s]+", response_headers["x-customer-phone"]), response_headers
    request_body = pane.locator("[data-body=request] pre").inner_text()
    assert request_body.startswith("{\n  \"contact\": \"[email]\",\n"), request_body  # pretty-printed JSON
    assert json.loads(request_body)["note"] == "leave the parcel at the back door"
    response_body = json.loads(pane.locator("[data-body=response] pre").inner_text())
    assert response_body["owner"] == "[email]" and response_body["status"] == "saved", response_body
    assert re.fullmatch(r"[*\s]+", response_body["payout"]), response_body
    # nothing planted anywhere on the page (every panel's text, hidden ones too)
    shown = page.evaluate("() => document.body.textContent")
    assert not planted_in(shown), planted_in(shown)
    assert page.locator("[data-panel=network] img, [data-panel=console] img").count() == 0


def test_network_pane_cuts_a_large_body_and_says_what_was_not_captured(player_page: Any) -> None:
    page = player_page
    _, pane = open_request(page, "/api/catalog")
    note = pane.locator("[data-body=response] [data-truncated]")
    full = json.dumps(json.loads(json.dumps(CATALOG).replace("deep.catalog@example.com", "[email]")), indent=2)
    assert re.fullmatch(rf"Showing the first 10,000 of {len(full):,} characters, \d+\.\d KB\. Show all",
                        note.inner_text()), note.inner_text()
    body = pane.locator("[data-body=response] pre")
    assert len(body.inner_text()) == 10_001  # the first 10,000 characters and an ellipsis
    note.locator("button").click()
    assert body.inner_text() == full
    assert '"contact": "[email]"' in body.inner_text()
    # outside networkDetailAllowUrls: the SDK kept no headers or bodies, and the pane says why
    _, pane = open_request(page, "/other/ping")
    assert field(pane, "status") == "200"
    assert "not in the recorder’s networkDetailAllowUrls" in pane.locator("[data-part=request]").inner_text()
    page.click("[data-detail-close]")
    assert pane.is_hidden()


def test_network_pane_shows_a_request_that_got_no_answer_as_failed(player_page: Any) -> None:
    """A fetch and an XHR to a port nothing listens on: the SDK records them with statusCode 0; the row and
    the pane say "failed" (not a status of 0) with the method, URL, type and timing."""
    page = player_page
    for url, method, op in (("/stock/fetch", "GET", "resource.fetch"), ("/stock/xhr", "POST", "resource.xhr")):
        row, pane = open_request(page, url)
        assert "failed" in (row.get_attribute("class") or "").split()
        assert row.locator(".status").inner_text() == "failed"
        assert field(pane, "status") == "failed"
        assert field(pane, "method") == method and field(pane, "op") == op
        assert field(pane, "url") == "http://127.0.0.1:9" + url
        assert re.fullmatch(r"\d+ ms|\d+\.\d\d s", field(pane, "duration")), field(pane, "duration")
    page.click("[data-detail-close]")


def test_network_rows_follow_the_playhead(player_page: Any) -> None:
    player_page.click("[data-tab=network]")
    current_row_follows(player_page, "[data-network] li.net-row")


def test_console_panel_levels_search_and_playhead(player_page: Any) -> None:
    page = player_page
    page.click("[data-tab=console]")
    rows = page.locator("[data-console] li.console-row")
    visible = page.locator("[data-console] li.console-row:not([hidden])")
    recorded_rows = rows.evaluate_all("rows => rows.map((r) => [r.dataset.level, r.querySelector('.message')"
                                      ".textContent])")
    assert recorded_rows == [
        ["log", "cache warm"],  # console.debug: shown with the logs
        ["info", "profile saved for [email]"],
        ["log", "catalog loaded: 600 items"],
        ["warn", "slow response from /api/catalog (600 items)"],
        ["error", "payment service unavailable: retry in 30 s"],
    ], recorded_rows
    total = rows.count()
    assert page.locator("[data-console-count]").inner_text() == str(total)
    # levels
    for level in ("log", "info"):
        page.locator(f"[data-console-levels] input[value={level}]").uncheck()
    assert sorted(visible.evaluate_all("rows => rows.map((r) => r.dataset.level)")) == ["error", "warn"]
    assert page.locator("[data-console-count]").inner_text() == f"2 of {total}"
    # text search, with the level filter still on: only the warning mentions the catalogue
    page.fill("[data-console-search]", "CATALOG")
    assert visible.locator(".message").all_inner_texts() == ["slow response from /api/catalog (600 items)"]
    page.locator("[data-console-levels] input[value=log]").check()
    assert sorted(visible.locator(".message").all_inner_texts()) == [
        "catalog loaded: 600 items", "slow response from /api/catalog (600 items)"]
    page.fill("[data-console-search]", "no such text")
    assert visible.count() == 0 and page.locator("[data-console-count]").inner_text() == f"0 of {total}"
    page.fill("[data-console-search]", "")
    page.locator("[data-console-levels] input[value=info]").check()
    assert visible.count() == total
    # a click on a row seeks there; the highlighted row follows the playhead
    error_row = page.locator("[data-console] li.console-row[data-level=error]")
    error_row.locator(".message").click()
    page.wait_for_function(f"() => +document.querySelector('[data-player]').dataset.current === "
                           f"{int(error_row.get_attribute('data-t'))} + 1 || "
                           f"+document.querySelector('[data-player]').dataset.current === "
                           f"{int(error_row.get_attribute('data-t'))}")
    assert "current" in (error_row.get_attribute("class") or "")
    current_row_follows(page, "[data-console] li.console-row")


def test_screenshots_of_the_network_and_console_panels(player_page: Any, tmp_path: Path) -> None:
    """docs/screenshots/network.png and console.png with REPLAYD_UPDATE_SCREENSHOTS=1
    (`REPLAYD_UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/test_player_network.py -k screenshots`)."""
    page = player_page
    shots = SCREENSHOTS if os.environ.get("REPLAYD_UPDATE_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    page.evaluate("""() => {
        document.querySelectorAll('[data-console-levels] input').forEach((i) => { i.checked = true; });
        const search = document.querySelector('[data-console-search]');
        search.value = '';
        search.dispatchEvent(new Event('input'));
    }""")
    open_request(page, "/api/profile")
    page.screenshot(path=str(shots / "network.png"))
    page.click("[data-tab=console]")
    warning = page.locator("[data-console] li.console-row[data-level=warn]")
    warning.locator(".message").click()  # seeks there: the rows before it in full colour, it highlighted
    page.wait_for_function("() => document.querySelector('[data-console] li.console-row[data-level=warn]')"
                           ".classList.contains('current')")
    page.screenshot(path=str(shots / "console.png"))
    for name in ("network", "console"):
        assert (shots / f"{name}.png").stat().st_size > 10_000
