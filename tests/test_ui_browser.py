"""The player and error pages in real Chromium against a running ``replayd serve``.

One server for the module (data ingested through the envelope endpoint: the real SDK's captured
traffic, the real nodedocs recording, a synthetic 60 s "counter" recording and a hostile one), one
signed-in browser context. Also takes the screenshots of docs/screenshots/*.png.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import Any

import pytest

from tests.envelopes import (
    breadcrumb,
    click,
    cut_segments,
    element,
    error_envelope,
    mouse_move,
    new_id,
    page_events,
    post_envelope,
    replay_envelope,
    text,
    text_mutation,
)
from tests.harness import ADMIN_PASSWORD, PUBLIC_KEY, REPO, SDK_TRAFFIC, launch_server, load_recording

SCREENSHOTS = REPO / "docs" / "screenshots"
TODO_REPLAY = "7dca85bbbdd840acbe95417f9c826b99"
TODO_ERROR = "f8e25082bf5e4f4e978c1fe345b5c8a5"
HOUR_AGO_MS = (time.time() - 3600) * 1000
ERROR_AT_S = 32.0  # the counter replay's error, seconds from its start


def counter_replay(start_ms: float, seconds: int = 60, url: str = "https://counter.test/steps") -> list[dict]:
    """A page whose paragraph reads "Step N" at second N; full snapshots at 0 s and 30 s."""
    events = []
    for s in range(seconds):
        t = start_ms + s * 1000
        if s in (0, 30):
            events += page_events(t, url, "Counter page", [f"Step {s}"],
                                  body_extra=[element(40, "button", [text(41, "Next step")], id="next")])
        else:
            events.append(text_mutation(t, 21, f"Step {s}"))
        events.append(mouse_move(t + 300, 100 + s, 200))
        if s % 10 == 5:
            events.append(click(t + 500, 40))
    return events


def ingest_counter(server_url: str, replay_id: str, start_ms: float, **counter: Any) -> None:
    for i, segment in enumerate(cut_segments(counter_replay(start_ms, **counter), 5)):
        post_envelope(server_url, replay_envelope(replay_id, i, segment, user={"id": "u-counter"}), PUBLIC_KEY)


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory):
    server = launch_server(tmp_path_factory.mktemp("ui-server"))
    try:
        for name in ("001", "002", "003"):
            post_envelope(server.url, (SDK_TRAFFIC / f"{name}.envelope").read_bytes(), PUBLIC_KEY)
        corpus = load_recording()
        server.nodedocs = new_id()
        for i, segment in enumerate(cut_segments(corpus, 5)):
            post_envelope(server.url, replay_envelope(server.nodedocs, i, segment,
                                                      user={"id": "u-2048", "username": "docs-reader"}), PUBLIC_KEY)
        server.counter = new_id()
        ingest_counter(server.url, server.counter, HOUR_AGO_MS)
        server.counter_error = new_id()
        post_envelope(server.url, error_envelope(server.counter_error, server.counter,
                                                 timestamp=(HOUR_AGO_MS + ERROR_AT_S * 1000) / 1000,
                                                 url="https://counter.test/steps"), PUBLIC_KEY)
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def context(browser, ui_server):
    """A browser context signed in once through the real sign-in form."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    page.goto(ui_server.url + "/")
    assert "/login" in page.url
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(ui_server.url + "/")
    page.close()
    yield ctx
    ctx.close()


@pytest.fixture
def ui(context):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    yield page
    page.close()


def wait_first_frame(page, timeout: float = 15000) -> None:
    page.wait_for_selector("[data-player][data-first-frame]", state="attached", timeout=timeout)


def replay_text(page) -> str:
    return page.evaluate("""() => {
        const iframe = document.querySelector('.replayer-wrapper iframe');
        return iframe && iframe.contentDocument && iframe.contentDocument.body
            ? iframe.contentDocument.body.innerText : '';
    }""")


def current_ms(page) -> int:
    return int(page.get_attribute("[data-player]", "data-current"))


# --- tests -----------------------------------------------------------------------------------

def test_sign_in_then_list_filter_and_open(browser, ui_server):
    """The list's filters count this test's own replays (on a host of their own): the other tests
    add replays to the same server, in whatever order they run."""
    host = f"list-{new_id()[:8]}.test"
    quiet, failing = new_id(), new_id()
    for replay_id in (quiet, failing):
        ingest_counter(ui_server.url, replay_id, HOUR_AGO_MS, seconds=10, url=f"https://{host}/steps")
    post_envelope(ui_server.url, error_envelope(new_id(), failing, timestamp=(HOUR_AGO_MS + 5000) / 1000,
                                                url=f"https://{host}/steps"), PUBLIC_KEY)
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    try:
        page.goto(ui_server.url + f"/replays/{ui_server.counter}")
        assert "/login" in page.url
        page.fill("input[name=password]", "wrong")
        page.click("form.login-form button[type=submit]")
        assert page.locator(".flash.error").inner_text() == "Wrong password."
        page.fill("input[name=password]", ADMIN_PASSWORD)
        page.click("form.login-form button[type=submit]")
        page.wait_for_url(f"**/replays/{ui_server.counter}")  # back where we were going
        cookies = {c["name"]: c for c in ctx.cookies()}
        assert cookies["replayd_session"]["httpOnly"] and cookies["replayd_session"]["sameSite"] == "Lax"

        page.goto(ui_server.url + "/")
        rows = page.locator("table.replays tbody tr")
        page.fill("input[name=url]", host)
        page.click("form.filters button[type=submit]")
        page.wait_for_url(f"**url={host}**")
        assert rows.count() == 2
        assert host in page.locator("table.replays").inner_text()
        page.select_option("select[name=has_errors]", "1")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**has_errors=1**")
        assert rows.count() == 1  # the replay with an error
        rows.first.locator("td").nth(1).click()  # anywhere on the row opens it
        page.wait_for_url(f"**/replays/{failing}")
        wait_first_frame(page)
    finally:
        ctx.close()


def test_replay_shows_the_recorded_page_and_its_panels(ui, ui_server):
    ui.goto(ui_server.url + f"/replays/{TODO_REPLAY}")
    wait_first_frame(ui)
    assert ui.get_attribute(".replayer-wrapper iframe", "sandbox") == "allow-same-origin"
    ui.wait_for_function("() => document.querySelector('.replayer-wrapper iframe')"
                         ".contentDocument.body.innerText.includes('Todos for')")
    assert "Add" in replay_text(ui)
    ui.wait_for_selector("[data-player][data-breadcrumbs=ready]", state="attached")
    crumbs = ui.locator("[data-crumbs] li")
    labels = crumbs.all_inner_texts()
    assert any("todo.html" in label for label in labels)
    assert any("button#add" in label for label in labels)
    assert ui.locator(".marker.error").count() == 1
    assert ui.locator(".marker.navigation").count() >= 2
    ui.click("[data-tab=errors]")
    assert ui.locator(f"[data-panel=errors] a[href='/errors/{TODO_ERROR}']").is_visible()
    ui.click("[data-tab=meta]")
    assert "Chrome" in ui.locator("[data-panel=meta]").inner_text()
    assert ui.errors == []


def test_seek_with_t_and_keyboard(ui, ui_server):
    # Open at 42 s: the first request fetches the segments from the 30 s full snapshot to 42 s only.
    segment_requests: list[str] = []
    ui.on("request", lambda r: segment_requests.append(r.url) if "segments.pack" in r.url else None)
    ui.goto(ui_server.url + f"/replays/{ui_server.counter}?t=42")
    wait_first_frame(ui)
    assert segment_requests[0].endswith("segments.pack?from=6&to=8")
    ui.wait_for_function("() => /Step 4[2-9]/.test(document.querySelector('.replayer-wrapper iframe')"
                         ".contentDocument.body.innerText)")
    assert 42000 <= current_ms(ui) <= 50000
    ui.locator("[data-action=toggle]").click()  # pause
    ui.wait_for_selector("[data-player][data-state=paused]", state="attached")
    ui.locator("body").click(position={"x": 5, "y": 500})
    before = current_ms(ui)
    ui.keyboard.press("ArrowLeft")
    ui.wait_for_function(f"() => +document.querySelector('[data-player]').dataset.current <= {before - 4000}")
    # a moment before the 30 s snapshot: a new Replayer on the first one
    ui.goto(ui_server.url + f"/replays/{ui_server.counter}?t=12")
    wait_first_frame(ui)
    ui.wait_for_function("() => /Step 1[2-9]/.test(document.querySelector('.replayer-wrapper iframe')"
                         ".contentDocument.body.innerText)")
    ui.keyboard.press("Space")
    ui.wait_for_selector("[data-player][data-state=paused]", state="attached")
    at = current_ms(ui)
    ui.keyboard.press("ArrowRight")
    ui.wait_for_function(f"() => +document.querySelector('[data-player]').dataset.current >= {at + 4900}")
    ui.wait_for_selector("[data-player][data-breadcrumbs=ready]", state="attached")
    ui.keyboard.press(".")  # the next event (a click at 25.5 s or the error at 32 s)
    ui.wait_for_function(f"() => +document.querySelector('[data-player]').dataset.current > {at + 5000}")
    # seek by clicking the end of the timeline: a range not loaded yet is loaded, then shown
    box = ui.locator("[data-timeline]").bounding_box()
    ui.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    ui.wait_for_function("() => /Step 5[5-9]/.test(document.querySelector('.replayer-wrapper iframe')"
                         ".contentDocument.body.innerText)")
    ui.click("[data-action=copy-link]")
    ui.wait_for_selector("[data-action=copy-link][data-link]", state="attached")
    link = ui.get_attribute("[data-action=copy-link]", "data-link")
    assert re.search(rf"/replays/{ui_server.counter}\?t=5\d\.\d$", link)
    assert ui.errors == []


def test_a_failed_load_is_shown_and_a_seek_retries_it(ui, ui_server):
    """Segments after the first fail to load (the network, a restarting server): playback stops on
    a visible error rather than loading forever, and the next seek loads them."""
    failing = [True]
    ui.route("**/segments.pack*", lambda route: route.abort() if failing[0] and "from=0&" not in route.request.url
             else route.continue_())
    ui.goto(ui_server.url + f"/replays/{ui_server.counter}?t=0")
    wait_first_frame(ui)
    ui.wait_for_selector("[data-player][data-state=failed]", state="attached", timeout=20000)
    assert "Cannot play this replay" in ui.locator("[data-overlay-text]").inner_text()
    failing[0] = False
    box = ui.locator("[data-timeline]").bounding_box()
    ui.mouse.click(box["x"] + box["width"] * 0.95, box["y"] + box["height"] / 2)
    ui.wait_for_function("() => /Step 5[5-9]/.test(document.querySelector('.replayer-wrapper iframe')"
                         ".contentDocument.body.innerText)")
    assert ui.get_attribute("[data-player]", "data-state") in ("paused", "playing", "ended")
    assert ui.locator("[data-overlay]").is_hidden()
    assert ui.errors == []


def test_error_page_shows_the_replay_just_before_the_error(ui, ui_server):
    ui.goto(ui_server.url + f"/errors/{ui_server.counter_error}")
    assert ui.locator(".exc-type").inner_text() == "TypeError"
    assert "computeTotal" in ui.locator(".frames").inner_text()
    assert "release_channel" in ui.locator("table.tags").inner_text()
    wait_first_frame(ui)
    assert ui.get_attribute("[data-player]", "data-state") == "paused"
    at = current_ms(ui)
    assert (ERROR_AT_S - 6) * 1000 <= at < ERROR_AT_S * 1000
    ui.wait_for_function("() => /Step 2[6-7]/.test(document.querySelector('.replayer-wrapper iframe')"
                         ".contentDocument.body.innerText)")
    assert ui.locator(".marker.error.focus").count() == 1
    href = ui.get_attribute("a.open-full", "href")
    assert href == f"/replays/{ui_server.counter}?t=31.0"
    ui.click("a.open-full")
    wait_first_frame(ui)
    assert 31000 <= current_ms(ui) <= 40000
    # an error without a replay says so
    lonely = new_id()
    post_envelope(ui_server.url, error_envelope(lonely, None), PUBLIC_KEY)
    ui.goto(ui_server.url + f"/errors/{lonely}")
    assert ui.locator("[data-no-replay]").inner_text() == "No replay was recorded for this error."
    ui.goto(ui_server.url + "/issues")
    assert "TypeError" in ui.locator("table.issues").inner_text()
    assert ui.errors == []


RECEIPT_S = 20  # the receipt replay: "Step N" at second N, then at 20 s its last event, a new page


@pytest.fixture(scope="module")
def receipt(ui_server):
    """A replay whose last event is a full snapshot of a new page (the receipt), with an error at that
    very moment (its last event) and another 3 s after it (sent after the last segment)."""
    start = HOUR_AGO_MS - 600_000
    replay_id = new_id()
    events = counter_replay(start, seconds=RECEIPT_S, url="https://receipt.test/steps")
    events += page_events(start + RECEIPT_S * 1000, "https://receipt.test/done", "Receipt",
                          ["Thank you, your order is complete"])
    for i, segment in enumerate(cut_segments(events, 5)):
        post_envelope(ui_server.url, replay_envelope(replay_id, i, segment), PUBLIC_KEY)
    last_event_s = (start + RECEIPT_S * 1000 + 1) / 1000
    at_end, after_end = new_id(), new_id()
    for error_id, ts in ((at_end, last_event_s), (after_end, last_event_s + 3)):
        post_envelope(ui_server.url, error_envelope(error_id, replay_id, timestamp=ts, url="https://receipt.test/done"),
                      PUBLIC_KEY)
    return {"id": replay_id, "at_end": at_end, "after_end": after_end}


def duration_ms(page) -> float:
    return page.evaluate("() => JSON.parse(document.getElementById('player-config').textContent).duration")


def wait_text(page, pattern: str, timeout: float = 15000) -> None:
    page.wait_for_function("(p) => new RegExp(p).test(document.querySelector('.replayer-wrapper iframe')"
                           ".contentDocument.body.innerText)", arg=pattern, timeout=timeout)


def assert_stays_on_the_last_page(page, duration: float, *, from_first_frame: bool = True) -> None:
    """Opened at or past the end: the last page, ended, the clock at the end from the first frame on;
    and it stays so (no autoplay from the start, which is what ?t=<duration> did)."""
    if from_first_frame:
        assert current_ms(page) >= duration - 50, (current_ms(page), duration)
    page.wait_for_selector("[data-player][data-state=ended]", state="attached", timeout=5000)
    wait_text(page, "Thank you, your order is complete")
    assert current_ms(page) >= duration - 50
    page.wait_for_timeout(1200)
    assert page.get_attribute("[data-player]", "data-state") == "ended"
    assert current_ms(page) >= duration - 50
    assert "Thank you" in replay_text(page) and "Step" not in replay_text(page)
    assert page.locator("span[data-current]").inner_text() == page.locator("span[data-total]").inner_text()


def test_t_at_past_and_before_the_ends(ui, ui_server, receipt):
    url = ui_server.url + f"/replays/{receipt['id']}"
    ui.goto(url)
    wait_first_frame(ui)
    duration = duration_ms(ui)
    assert RECEIPT_S * 1000 <= duration <= RECEIPT_S * 1000 + 5
    # at the end exactly (the case), past it, and past it as no finite number
    for t in (f"{duration / 1000:.3f}", f"{duration / 1000:.1f}", "99999", "1e999", "Infinity"):
        ui.goto(f"{url}?t={t}")
        wait_first_frame(ui)
        assert duration - 50 <= ui.evaluate("() => globalThis.replaydPlayer.target") <= duration, t
        assert_stays_on_the_last_page(ui, duration)
    # a second before the end: plays into the last page, then ends there
    ui.goto(f"{url}?t={duration / 1000 - 1:.1f}")
    wait_first_frame(ui)
    ui.wait_for_selector("[data-player][data-state=ended]", state="attached", timeout=10000)
    assert_stays_on_the_last_page(ui, duration, from_first_frame=False)
    # before the start, and malformed: from the start, playing
    for t in ("-5", "-Infinity", "abc", "NaN", "", "0"):
        ui.goto(f"{url}?t={t}")
        wait_first_frame(ui)
        assert ui.evaluate("() => globalThis.replaydPlayer.target") == 0, t
        wait_text(ui, "Step [0-3]$|Step [0-3]\\n")
        assert current_ms(ui) < 4000, t
        assert ui.get_attribute("[data-player]", "data-state") in ("playing", "loading"), t
    # the keyboard's End and Home go to the same moments
    ui.keyboard.press("End")
    wait_text(ui, "Thank you, your order is complete")
    ui.wait_for_selector("[data-player][data-state=ended]", state="attached")
    ui.keyboard.press("Home")
    wait_text(ui, "Step 0")
    assert ui.errors == []


def test_error_link_for_an_error_that_ends_its_replay(ui, ui_server, receipt):
    # the error is the replay's last event: the link opens a second before it, and plays into the last page
    ui.goto(ui_server.url + f"/errors/{receipt['at_end']}")
    wait_first_frame(ui)
    duration = duration_ms(ui)
    assert ui.get_attribute("[data-player]", "data-state") == "paused"
    wait_text(ui, f"Step {RECEIPT_S - 5}")  # embedded 5 s before the error
    href = ui.get_attribute("a.open-full", "href")
    assert href == f"/replays/{receipt['id']}?t={RECEIPT_S - 1}.0", href
    ui.click("a.open-full")
    wait_first_frame(ui)
    assert current_ms(ui) >= (RECEIPT_S - 1) * 1000
    ui.wait_for_selector("[data-player][data-state=ended]", state="attached", timeout=10000)
    assert_stays_on_the_last_page(ui, duration, from_first_frame=False)
    # an error 3 s after the replay's last event: the link is the replay's end, its last page
    ui.goto(ui_server.url + f"/errors/{receipt['after_end']}")
    wait_first_frame(ui)
    href = ui.get_attribute("a.open-full", "href")
    assert href == f"/replays/{receipt['id']}?t={int(duration / 100) / 10:.1f}", (href, duration)
    ui.click("a.open-full")
    wait_first_frame(ui)
    assert_stays_on_the_last_page(ui, duration)
    assert ui.errors == []


def test_drag_to_scrub_previews_the_time_and_seeks_on_release(ui, ui_server):
    ui.goto(ui_server.url + f"/replays/{ui_server.counter}?t=5")
    wait_first_frame(ui)
    ui.locator("[data-action=toggle]").click()
    ui.wait_for_selector("[data-player][data-state=paused]", state="attached")
    duration = duration_ms(ui)
    before = current_ms(ui)
    box = ui.locator("[data-timeline]").bounding_box()
    y = box["y"] + box["height"] / 2
    x = lambda f: box["x"] + box["width"] * f  # noqa: E731
    ui.mouse.move(x(0.1), y)
    ui.mouse.down()
    ui.mouse.move(x(0.3), y, steps=5)
    ui.mouse.move(x(0.75), y, steps=10)
    # while dragging: the preview shows the time under the pointer, the playhead follows it,
    # and the replay has not moved yet
    hover = ui.locator("[data-hover-time]")
    assert hover.is_visible()
    previewed = int(hover.get_attribute("data-t"))
    assert abs(previewed - 0.75 * duration) <= duration * 0.01, (previewed, duration)
    shown = hover.inner_text()
    assert re.fullmatch(r"0:4[3-6]", shown), shown
    assert ui.get_attribute("[data-player]", "data-scrubbing") == "true"
    playhead = ui.locator("[data-playhead]").bounding_box()
    assert abs(playhead["x"] + playhead["width"] / 2 - x(0.75)) <= 3
    assert abs(current_ms(ui) - before) < 1000
    assert re.search(r"Step [4-6]\b", replay_text(ui))
    ui.mouse.up()
    ui.wait_for_function(f"() => Math.abs(+document.querySelector('[data-player]').dataset.current - {previewed})"
                         " < 300")
    wait_text(ui, r"Step 4[3-6]")
    assert ui.get_attribute("[data-player]", "data-scrubbing") is None
    assert ui.get_attribute("[data-player]", "data-state") == "paused"
    # a drag back past the start lands at 0; a plain click still seeks
    ui.mouse.move(x(0.5), y)
    ui.mouse.down()
    ui.mouse.move(box["x"] - 20, y, steps=8)  # left of the timeline, inside the page
    assert hover.inner_text() == "0:00"
    ui.mouse.up()
    wait_text(ui, "Step 0")
    ui.mouse.click(x(0.5), y)
    wait_text(ui, r"Step (29|30|31)")
    assert ui.errors == []


def test_panels_scroll_to_follow_the_playhead(ui, ui_server):
    """Lists longer than their panel (breadcrumbs, console) scroll so that the current row stays in view."""
    chatty = new_id()
    start = HOUR_AGO_MS - 1_200_000
    events = counter_replay(start, seconds=40, url="https://chatty.test/")
    events += [breadcrumb(start + 250 + i * 500, "console", f"tick {i}", level="warning" if i % 5 else "log")
               for i in range(80)]
    events.sort(key=lambda e: e["timestamp"])
    for i, segment in enumerate(cut_segments(events, 5)):
        post_envelope(ui_server.url, replay_envelope(chatty, i, segment), PUBLIC_KEY)
    ui.goto(ui_server.url + f"/replays/{chatty}")
    wait_first_frame(ui)
    ui.wait_for_selector("[data-player][data-breadcrumbs=ready]", state="attached")
    ui.locator("[data-action=toggle]").click()
    ui.wait_for_selector("[data-player][data-state=paused]", state="attached")
    for tab in ("breadcrumbs", "console"):
        ui.click(f"[data-tab={tab}]")
        in_view = f"""() => {{
            const box = document.querySelector('[data-panel={tab}]');
            const row = box.querySelector('li.current');
            const a = box.getBoundingClientRect(), r = row && row.getBoundingClientRect();
            return {{scrollable: box.scrollHeight > box.clientHeight + 200, top: box.scrollTop,
                     current: row && row.dataset.t, visible: !!row && r.top >= a.top - 1 && r.bottom <= a.bottom + 1}};
        }}"""
        ui.keyboard.press("End")
        ui.wait_for_function(f"() => ({in_view})().top > 0")
        at_end = ui.evaluate(in_view)
        assert at_end["scrollable"] and at_end["visible"] and int(at_end["current"]) >= 39_000, (tab, at_end)
        ui.keyboard.press("Home")
        ui.wait_for_function(f"() => ({in_view})().top === 0")
        seek_to = 20_500
        ui.evaluate(f"() => globalThis.replaydPlayer.seek({seek_to})")
        ui.wait_for_function(f"() => ({in_view})().visible && ({in_view})().current === '{seek_to - 250}'")
    assert ui.errors == []


def test_keyboard_steps_and_the_help_overlay(ui, ui_server):
    ui.goto(ui_server.url + f"/replays/{ui_server.counter}?t=20")
    wait_first_frame(ui)
    ui.keyboard.press("Space")
    ui.wait_for_selector("[data-player][data-state=paused]", state="attached")
    ui.wait_for_selector("[data-player][data-breadcrumbs=ready]", state="attached")

    def step(key: str, delta: int) -> None:
        at = current_ms(ui)
        ui.keyboard.press(key)
        ui.wait_for_function(f"() => Math.abs(+document.querySelector('[data-player]').dataset.current - {at + delta})"
                             " < 100")

    step("ArrowRight", 5000)
    step("ArrowLeft", -5000)
    step("Shift+ArrowRight", 1000)
    step("Shift+ArrowLeft", -1000)
    step("PageDown", 30000)
    step("PageUp", -30000)
    at = current_ms(ui)
    ui.keyboard.press(".")  # the next event: the click at 25.5 s
    ui.wait_for_function(f"() => +document.querySelector('[data-player]').dataset.current > {at}")
    assert 25000 <= current_ms(ui) <= 26000
    help_dialog = ui.locator("dialog[data-help]")
    assert help_dialog.is_hidden()
    ui.keyboard.press("?")
    assert help_dialog.is_visible()
    keys = help_dialog.inner_text()
    for expected in ("Space", "Shift + ←", "Page Up", "Home", "End", "previous / next event", "?"):
        assert expected in keys, (expected, keys)
    at = current_ms(ui)
    ui.keyboard.press("ArrowRight")  # the dialog is modal: no seek behind it
    ui.wait_for_timeout(300)
    assert current_ms(ui) == at
    ui.keyboard.press("Escape")
    assert help_dialog.is_hidden()
    ui.click("[data-action=help]")  # the visible button opens it too
    assert help_dialog.is_visible()
    ui.click("[data-help-close]")
    assert help_dialog.is_hidden()
    assert ui.errors == []


def test_delete_a_replay(ui, ui_server):
    doomed = new_id()
    ingest_counter(ui_server.url, doomed, HOUR_AGO_MS - 7200_000)
    ui.goto(ui_server.url + f"/replays/{doomed}")
    wait_first_frame(ui)
    ui.click("[data-action=delete]")
    ui.click("dialog[data-confirm-delete] button[value=cancel]")
    assert ui_server.api(f"/api/0/projects/1/replays/{doomed}/")["data"]["replay_id"] == doomed
    ui.click("[data-action=delete]")
    ui.click("dialog[data-confirm-delete] button[value=delete]")
    ui.wait_for_url("**/?deleted=1")
    assert ui.locator(".flash.ok").inner_text() == "The replay was deleted."
    assert doomed not in ui.content()
    ui.goto(ui_server.url + f"/replays/{doomed}")
    assert "no such replay" in ui.content()
    blobs = list((ui_server.data_dir / "blobs").rglob(f"*{doomed}*"))
    assert blobs == []


def test_screenshots(ui, ui_server, tmp_path):
    """The pages from real recordings, as PNGs; with REPLAYD_UPDATE_SCREENSHOTS=1 into docs/screenshots
    (`REPLAYD_UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/test_ui_browser.py -k screenshots`)."""
    shots = SCREENSHOTS if os.environ.get("REPLAYD_UPDATE_SCREENSHOTS") == "1" else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    ui.goto(ui_server.url + "/")
    ui.screenshot(path=str(shots / "list.png"))
    ui.goto(ui_server.url + f"/replays/{ui_server.nodedocs}?t=9")
    wait_first_frame(ui)
    ui.wait_for_selector("[data-player][data-breadcrumbs=ready]", state="attached")
    ui.locator("[data-action=toggle]").click()
    ui.wait_for_selector("[data-player][data-state=paused]", state="attached")
    ui.screenshot(path=str(shots / "replay.png"))
    ui.goto(ui_server.url + f"/errors/{TODO_ERROR}")
    wait_first_frame(ui)
    ui.wait_for_selector("[data-player][data-breadcrumbs=ready]", state="attached")
    ui.wait_for_selector("[data-player][data-state=paused]", state="attached")  # opens paused before the error
    ui.screenshot(path=str(shots / "error.png"))
    for name in ("list", "replay", "error"):
        assert (shots / f"{name}.png").stat().st_size > 10_000


HOSTILE_MARKERS = ("pwned-script", "pwned-img", "pwned-link", "pwned-meta", "pwned-svg", "pwned-srcdoc", "pwned-style")


def hostile_events(start_ms: float) -> list[dict]:
    evil = [
        element(50, "script", [text(51, "top.__pwned='script'; fetch('/pwned-script?c='+document.cookie)")]),
        element(52, "img", [], src="/nonexistent.png",
                onerror="top.__pwned='img'; fetch('/pwned-img?c='+document.cookie)"),
        element(53, "a", [text(54, "Click me")], id="jslink",
                href="javascript:top.__pwned='link';fetch('/pwned-link?c='+document.cookie)"),
        element(55, "svg", [], onload="top.__pwned='svg'; fetch('/pwned-svg')"),
        element(56, "iframe", [], srcdoc="<script>top.__pwned='srcdoc';fetch('/pwned-srcdoc')</script>"),
        element(57, "div", [text(58, "styled")], style="background:url(javascript:fetch('/pwned-style'))"),
        element(59, "form", [element(60, "button", [text(61, "Send")], id="send")], id="jsform",
                action="javascript:top.__pwned='form'"),
    ]
    head = [element(62, "meta", [], **{"http-equiv": "refresh",
                                       "content": "0;url=javascript:top.__pwned='meta';fetch('/pwned-meta')"})]
    events = page_events(start_ms, "https://evil.test/", "Hostile page", ["Nothing to see here"],
                         head=head, body_extra=evil)
    # and the same again arriving as a mutation, with an inline handler attribute set later
    handlers = {"onclick": "top.__pwned='attr'", "onmouseover": "top.__pwned='hover'"}
    added_script = element(70, "script", [text(71, "top.__pwned='added'")])
    added_img = element(72, "img", [], src="x:", onerror="top.__pwned='img2'")
    events.append({"type": 3, "timestamp": start_ms + 1000, "data": {
        "source": 0, "texts": [], "removes": [], "attributes": [{"id": 10, "attributes": handlers}],
        "adds": [{"parentId": 9, "nextId": None, "node": added_script},
                 {"parentId": 9, "nextId": None, "node": added_img}]}})
    # recorded strings the side panels and the timeline show: breadcrumbs, a navigation, an error marker
    evil_html = "<img src=x onerror=\"top.__pwned='panel'\">"
    for i, payload in enumerate([
        {"category": "console", "message": evil_html, "level": "error"},
        {"category": "ui.click", "message": evil_html},
        {"category": "navigation", "data": {"from": evil_html, "to": "javascript:top.__pwned='nav'"}},
        {"category": "fetch", "data": {"method": evil_html, "url": "javascript:top.__pwned='url'", "status_code": 500}},
    ]):
        events.append({"type": 5, "timestamp": start_ms + 1100 + i * 50,
                       "data": {"tag": "breadcrumb", "payload": payload}})
    events.append({"type": 5, "timestamp": start_ms + 1400, "data": {"tag": "error", "payload": {
        "eventId": "\"><img src=x onerror=top.__pwned='eid'>", "message": evil_html}}})
    events.append(mouse_move(start_ms + 1500, 30, 30, 10))
    events.append(click(start_ms + 2000, 53))
    events.append(mouse_move(start_ms + 3000, 40, 40, 10))
    return events


def test_hostile_recording_runs_nothing_in_the_app_origin(ui, ui_server, context):
    hostile = new_id()
    post_envelope(ui_server.url, replay_envelope(hostile, 0, hostile_events(HOUR_AGO_MS + 600_000)), PUBLIC_KEY)
    seen: list[str] = []
    dialogs: list[str] = []
    ui.on("request", lambda r: seen.append(r.url))
    ui.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    response = ui.goto(ui_server.url + f"/replays/{hostile}")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    wait_first_frame(ui)
    ui.wait_for_function("() => document.querySelector('.replayer-wrapper iframe')"
                         ".contentDocument.body.innerText.includes('Nothing to see here')")
    ui.wait_for_selector("[data-player][data-state=ended]", state="attached", timeout=15000)
    # the hostile elements are really in the replayed page (whatever the scrubber left of their attributes)
    assert ui.evaluate("""() => {
        const doc = document.querySelector('.replayer-wrapper iframe').contentDocument;
        return ['jslink', 'jsform', 'send'].every((id) => doc.getElementById(id));
    }""")
    # poke the recorded page the way a viewer might: click the link, submit the form, hover
    ui.evaluate("""() => {
        const doc = document.querySelector('.replayer-wrapper iframe').contentDocument;
        for (const el of doc.querySelectorAll('a, button, h1, img, svg')) {
            try { el.click(); el.dispatchEvent(new MouseEvent('mouseover', {bubbles: true})); } catch (e) {}
        }
        try { doc.getElementById('jsform').requestSubmit(); } catch (e) {}
    }""")
    ui.wait_for_timeout(1000)  # nothing may happen: give whatever the pokes started time to show itself
    # the panels show the recorded strings as text: no element was made of them, no link leads anywhere else
    ui.wait_for_selector("[data-player][data-breadcrumbs=ready]", state="attached")
    panel = ui.locator("[data-crumbs]")
    assert panel.locator("img").count() == 0
    assert "onerror" in panel.inner_text() and "javascript:top.__pwned='nav'" in panel.inner_text()
    hrefs = panel.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert all(href.startswith("/errors/") for href in hrefs)
    ui.evaluate("() => document.querySelectorAll('[data-crumbs] .label').forEach((el) => el.click())")
    assert ui.locator("[data-markers] img").count() == 0
    # the fetch breadcrumb (no span): its detail pane shows what the breadcrumb holds, as text
    ui.click("[data-tab=network]")
    ui.locator("[data-network] li.net-row .url").first.click()
    ui.wait_for_selector("[data-network-detail][data-state=ready]", state="attached")
    pane = ui.locator("[data-network-detail]")
    assert pane.locator("[data-field=status]").inner_text() == "500"
    assert pane.locator("[data-field=method]").inner_text().startswith("<img src=")
    assert pane.locator("[data-field=op]").inner_text() == "fetch"
    assert "Recorded as a breadcrumb only" in pane.inner_text()
    assert pane.locator("img, a, iframe").count() == 0
    assert ui.evaluate("() => window.__pwned") is None
    assert ui.evaluate("() => window.top.__pwned") is None
    assert ui.get_attribute(".replayer-wrapper iframe", "sandbox") == "allow-same-origin"
    assert not [u for u in seen if any(m in u for m in HOSTILE_MARKERS)]
    assert dialogs == []
    assert not any(m in ui_server.log() for m in HOSTILE_MARKERS)
    # the session cookie exists but no script in the page (or its same-origin frame) can read it
    assert any(c["name"] == "replayd_session" for c in context.cookies())
    assert "replayd_session" not in ui.evaluate("() => document.cookie")
    assert "replayd_session" not in ui.evaluate(
        "() => document.querySelector('.replayer-wrapper iframe').contentDocument.cookie")
    # the app still works after playing it
    assert ui.locator("[data-action=toggle]").is_enabled()


def test_deep_recording_plays(ui, ui_server):
    """Events too deep for msgpack are stored as extension type 1; the browser's codec decodes them."""
    deep = new_id()
    node: dict = {"type": 3, "textContent": "Deep text at the bottom", "id": 20_000}
    for i in range(1000):
        node = {"type": 2, "tagName": "div", "attributes": {}, "childNodes": [node], "id": 20_001 + i}
    # the whole document is too deep for msgpack: the full snapshot is stored as JSON text
    events = page_events(HOUR_AGO_MS + 900_000, "https://deep.test/", "Deep page", ["Shallow text"], body_extra=[node])
    events.append(mouse_move(HOUR_AGO_MS + 901_000, 10, 10))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # json.dumps of the deep event
    try:
        body = replay_envelope(deep, 0, events)
    finally:
        sys.setrecursionlimit(limit)
    post_envelope(ui_server.url, body, PUBLIC_KEY)
    ui.goto(ui_server.url + f"/replays/{deep}?t=0.9")
    wait_first_frame(ui)
    ui.wait_for_function("() => document.querySelector('.replayer-wrapper iframe')"
                         ".contentDocument.body.textContent.includes('Deep text at the bottom')")
    assert ui.errors == []
