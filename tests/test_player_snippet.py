"""The player on recordings made by replayd's own snippet (static/replayd.js) in real Chromium.

(1) A mutation storm (tests/pages/snippet/storm.html): the snippet pauses recording and marks the gap
with ``replayd.paused``; the player shows it as a band on the timeline and a breadcrumb, "recording
paused (N mutations)", and the replay goes on after it. (2) Network details of the URLs in
``networkDetailAllowUrls`` (tests/pages/snippet/network.html), with personal data planted in request
and response headers and bodies: nowhere at rest, and shown scrubbed in the network panel's detail
pane. The pages and their static site are tests/test_snippet.py's; the signed-in player page and the
detail pane's readers are tests/test_player_network.py's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.test_player_network import SCREENSHOTS, field, headers, open_replay, open_request, seek
from tests.test_privacy_e2e import _texts_in_data_dir, variants
from tests.test_snippet import (
    FAST,
    PLANTED_EMAIL,
    PLANTED_NETWORK,
    STORM,
    Site,
    custom,
    flush,
    page_errors,
    start_snippet,
    stored_events,
)

STAGE_TEXT = """() => {
    const iframe = document.querySelector('.replayer-wrapper iframe');
    return iframe && iframe.contentDocument && iframe.contentDocument.body ? iframe.contentDocument.body.innerText : '';
}"""


def stage_text(page: Any) -> str:
    return str(page.evaluate(STAGE_TEXT))


def test_a_mutation_storm_is_a_paused_band_and_the_replay_goes_on_after_it(start_server, browser,
                                                                          tmp_path: Path) -> None:
    """Also takes docs/screenshots/paused.png with REPLAYD_UPDATE_SCREENSHOTS=1 (`REPLAYD_UPDATE_SCREENSHOTS=1
    .venv/bin/pytest tests/test_player_snippet.py -k storm`): the band, the playhead inside it."""
    server = start_server()
    site = Site(server, **FAST, **STORM)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        errors = page_errors(page)
        rid = start_snippet(page, site.url + "/storm.html")
        page.wait_for_function("document.getElementById('status').textContent === 'ready'")
        page.click("#status")
        assert page.evaluate("storm(3)") == 48000
        page.wait_for_timeout(1500)  # more than storm-calm-ms: recording resumes
        page.evaluate("document.getElementById('status').textContent = 'calm again'")
        page.click("#status")
        assert flush(page)
        page.close()
        assert errors == []
        (gap,) = custom(stored_events(server, rid), "replayd.paused")
        label = f"recording paused ({gap['mutations']:,} mutations)"

        ui = open_replay(context, server, rid)
        origin = ui.evaluate("() => globalThis.replaydPlayer.config.origin")
        # the band: from the storm's detection to recording's resumption, labelled with the count
        band = ui.locator("[data-markers] .marker.paused")
        assert band.count() == 1
        assert band.get_attribute("aria-label") == label and label in (band.get_attribute("title") or "")
        assert abs(int(band.get_attribute("data-t")) - (gap["from"] - origin)) <= 1
        timeline = ui.locator("[data-markers]").bounding_box()
        duration = ui.evaluate("() => globalThis.replaydPlayer.config.duration")
        box = band.bounding_box()
        expected_width = (gap["to"] - gap["from"]) / duration * timeline["width"]
        assert box["width"] >= 4 and abs(box["width"] - 4 - expected_width) <= 2, (box, expected_width)
        # and its breadcrumb row
        crumb = ui.locator("[data-crumbs] li.crumb.paused")
        assert crumb.count() == 1 and crumb.locator(".label").inner_text() == label
        # before the storm, the page as loaded
        seek(ui, 0)
        ui.wait_for_function(f"() => ({STAGE_TEXT})().includes('ready')")
        assert "burst" not in stage_text(ui)
        # past the gap the replay goes on: the storm's last burst, then the calm page's text
        seek(ui, duration)
        ui.wait_for_function(f"() => ({STAGE_TEXT})().includes('calm again')")
        text = stage_text(ui)
        assert "burst2-15999" in text and "burst0-" not in text
        # the screenshot: the playhead in the band, its breadcrumb the current row
        seek(ui, round((gap["from"] + gap["to"]) / 2 - origin))
        ui.wait_for_function("() => document.querySelector('[data-crumbs] li.crumb.paused')"
                             ".classList.contains('current')")
        shots = SCREENSHOTS if os.environ.get("REPLAYD_UPDATE_SCREENSHOTS") == "1" else tmp_path
        ui.screenshot(path=str(shots / "paused.png"))
        assert (shots / "paused.png").stat().st_size > 10_000
        assert ui.errors == []
    finally:
        context.close()
        site.close()


NETWORK_OPTIONS = {"network-detail-allow-urls": "/shop-api/", "network-request-headers": "Authorization X-Api-Key",
                   "network-response-headers": "X-Api-Key"}


def test_the_snippets_network_details_are_shown_scrubbed_in_the_detail_pane(start_server, browser) -> None:
    server = start_server()
    site = Site(server, **FAST, **NETWORK_OPTIONS)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        errors = page_errors(page)
        rid = start_snippet(page, site.url + "/network.html")
        page.evaluate("sendAll()")
        assert page.text_content("#result") == "saved 3 items, report 1200"
        assert flush(page)
        page.close()
        assert errors == []
        # the planted values went out with the requests (the page's server saw them) ...
        assert [json.loads(body)["password"] for _, _, body in site.api_posts] == ["planted-pw-3321"] * 2
        # ... and are nowhere at rest
        leaks = [f"{value!r} in {where}" for value in PLANTED_NETWORK for variant in variants(value)
                 for where, text in _texts_in_data_dir(server) if variant in text]
        assert not leaks, leaks

        ui = open_replay(context, server, rid)
        ui.click("[data-tab=network]")
        urls = ui.locator("[data-network] li.net-row .url").all_inner_texts()
        assert sum("/shop-api/profile" in u for u in urls) == 2 and any(u.endswith("/ping.json") for u in urls), urls
        for url, op in (("/shop-api/profile?via=xhr", "resource.xhr"), ("/shop-api/profile", "resource.fetch")):
            row = ui.locator("[data-network] li.net-row").nth(next(i for i, u in enumerate(urls) if u.endswith(url)))
            row.locator(".url").click()
            ui.wait_for_selector("[data-network-detail][data-state=ready]", state="attached")
            pane = ui.locator("[data-network-detail]")
            assert field(pane, "method") == "POST" and field(pane, "op") == op
            assert field(pane, "url").endswith(url) and field(pane, "status") == "200"
            assert headers(pane, "request") == {"authorization": "[Filtered]", "x-api-key": "[Filtered]",
                                                "content-type": "application/json"}, headers(pane, "request")
            assert headers(pane, "response")["x-api-key"] == "[Filtered]", headers(pane, "response")
            request_body = pane.locator("[data-body=request] pre").inner_text()
            assert request_body.startswith("{\n  \"email\": "), request_body  # pretty-printed JSON
            assert json.loads(request_body) == {"email": "[Filtered]", "password": "[Filtered]", "note": "call me"}
            response_body = json.loads(pane.locator("[data-body=response] pre").inner_text())
            assert response_body["items"] == 3 and response_body["owner"] == "[email]", response_body
            assert response_body["token"] != "planted-token-9931", response_body
        # a request outside the allowed URLs: no details, and the pane says why
        _, pane = open_request(ui, "/ping.json")
        assert field(pane, "status") == "200"
        # nothing planted anywhere on the player's page, hidden panels included
        shown = ui.evaluate("() => document.body.textContent")
        assert not [v for value in PLANTED_NETWORK for v in variants(value) if v in shown]
        assert PLANTED_EMAIL not in shown
        assert ui.errors == []
    finally:
        context.close()
        site.close()
