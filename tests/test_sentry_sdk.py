"""End to end with the real ``@sentry/browser`` SDK: Chromium → replayd → read API → rrweb's Replayer.

The SDK (bundled from node_modules with esbuild at test time) runs on two pages served by a small
static server on another origin than replayd, with ``replayIntegration``. A person types, clicks,
goes to the second page and hits a thrown error. The test records every envelope the SDK posts and
checks, through the read API, that replayd kept one replay with every segment sent, linked the error
both ways, and stored segments that replay in rrweb's Replayer with the pages' text.

The flow runs once per module (a few seconds); the tests below look at what it left behind.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.envelopes import parse_envelope, read_recording
from tests.harness import REPO, RunningServer, launch_server
from tests.sites import StaticSite, page_files, replayer_files, rrweb_replayer, sentry_files, wait_for_js

PAGES = REPO / "tests" / "pages" / "sentry"
TYPED = "Copper watering can"

# --- what the SDK sent ----------------------------------------------------------------------

@dataclass
class SentEnvelope:
    url: str
    body: bytes
    status: int | None  # None: the request failed (no HTTP answer)
    answer: str
    headers: dict[str, Any] = field(default_factory=dict)
    items: list[tuple[dict[str, Any], bytes]] = field(default_factory=list)

    def item_types(self) -> list[str]:
        return [h.get("type", "") for h, _ in self.items]


@dataclass
class SdkSession:
    server: RunningServer
    site: StaticSite
    envelopes: list[SentEnvelope]
    replay_id: str  # as the SDK named it

    def replay_items(self, kind: str) -> list[tuple[dict[str, Any], bytes]]:
        return [(h, p) for env in self.envelopes for h, p in env.items if h.get("type") == kind]

    def sent_segment_ids(self) -> list[int]:
        return [read_recording(p)[0] for _, p in self.replay_items("replay_recording")]

    def sent_error_ids(self) -> list[str]:
        return [env.headers["event_id"] for env in self.envelopes if "event" in env.item_types()]


# --- the flow: start replayd, drive the SDK through both pages ------------------------------

@pytest.fixture(scope="module")
def replayd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """``replayd serve`` for this module: one SDK flow, several tests looking at what it left."""
    server = launch_server(tmp_path_factory.mktemp("replayd-sentry"))
    yield server
    server.kill()


@pytest.fixture(scope="module")
def sdk_session(browser, replayd: RunningServer, sentry_bundle: Path) -> Iterator[SdkSession]:
    site = StaticSite({**page_files(PAGES, "shop.html", "checkout.html", "init.js"),
                       **sentry_files(sentry_bundle, replayd.dsn), **replayer_files()})
    try:
        envelopes, replay_id = _drive_the_sdk(browser, site)
        yield SdkSession(replayd, site, envelopes, replay_id)
    finally:
        site.close()


def _drive_the_sdk(browser: Any, site: StaticSite) -> tuple[list[SentEnvelope], str]:
    """A person on both pages; returns every envelope the SDK posted (with replayd's answer) and the replay id."""
    context = browser.new_context()
    page = context.new_page()
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r) if r.method == "POST" and "/envelope/" in r.url else None)
    try:
        # Page one: type, add an item, tick it, send what was recorded so far.
        page.goto(site.url + "/shop.html")
        replay_id = wait_for_js(page, "() => window.Sentry && Sentry.getReplay() && Sentry.getReplay().getReplayId()",
                          "the SDK to start a replay")
        page.locator("#new").press_sequentially(TYPED, delay=20)
        page.click("#add")
        page.click("#list li:last-child")
        page.wait_for_timeout(300)
        page.evaluate("() => Sentry.getReplay().flush()")

        # Page two: the same replay continues; paying throws a TypeError.
        page.click("#next")
        page.wait_for_url("**/checkout.html")
        again = wait_for_js(page, "() => window.Sentry && Sentry.getReplay() && Sentry.getReplay().getReplayId()",
                      "the SDK to resume the replay on page two")
        assert again == replay_id, "the SDK started a new replay on page two instead of continuing it"
        page.click("#pay")
        deadline = time.monotonic() + 20
        while not any(b'"type":"event"' in (r.post_data_buffer or b"") for r in requests):
            assert time.monotonic() < deadline, "the SDK sent no error event for the thrown TypeError"
            page.wait_for_timeout(100)
        page.wait_for_timeout(300)
        # Stop recording: the SDK flushes the last segment (carrying error_ids) and waits for the answer.
        page.evaluate("async () => { await Sentry.getReplay().stop(); await Sentry.flush(10000); }")

        envelopes = []
        for request in requests:
            response = request.response()  # waits for the answer; None when the request failed
            status = response.status if response is not None else None
            answer = ""
            if response is not None:
                # a keepalive request whose page is gone: its status is known, its body not
                with contextlib.suppress(Exception):
                    answer = response.text()[:300]
            headers, items = parse_envelope(request.post_data_buffer or b"")
            envelopes.append(SentEnvelope(request.url, request.post_data_buffer or b"", status, answer, headers, items))
    finally:
        context.close()
    return envelopes, replay_id


# --- the tests ----------------------------------------------------------------------------

def test_every_envelope_the_sdk_sent_got_a_2xx_answer(sdk_session: SdkSession) -> None:
    assert sdk_session.envelopes, "the SDK sent no envelopes"
    answers = [(env.item_types(), env.status, env.answer) for env in sdk_session.envelopes]
    assert all(status is not None and 200 <= status < 300 for _, status, _ in answers), answers
    # The flow sends recordings on both pages and an error; all of it must have been answered.
    assert len(sdk_session.sent_segment_ids()) >= 2, answers
    assert len(sdk_session.sent_error_ids()) == 1, answers
    log = sdk_session.server.log()
    assert "Traceback" not in log, log


def test_one_replay_with_every_segment_sent_in_order(sdk_session: SdkSession) -> None:
    server = sdk_session.server
    replays = server.api("/api/0/projects/1/replays/")["data"]
    assert [r["replay_id"] for r in replays] == [sdk_session.replay_id]

    sent = sdk_session.sent_segment_ids()
    assert sent == sorted(set(sent)), f"the SDK sent segments {sent}"
    replay = server.api(f"/api/0/projects/1/replays/{sdk_session.replay_id}/")["data"]
    stored = [s["segment_id"] for s in replay["segments"]]
    assert stored == sent, f"stored segments {stored}, the SDK sent {sent}"
    assert replay["segment_count"] == len(sent)
    starts = [s["started_at"] for s in replay["segments"]]
    assert starts == sorted(starts), f"segment start times out of order: {starts}"

    # Both pages are in the replay's URLs; the SDK's user agent gave a browser.
    urls = replay["urls"]
    assert any("/shop.html" in u for u in urls), urls
    assert any("/checkout.html" in u for u in urls), urls
    assert "Chrom" in (replay.get("browser") or ""), replay.get("browser")

    # Every event the SDK recorded is stored (scrubbing may change values, never drop events).
    recordings = (p for _, p in sdk_session.replay_items("replay_recording"))
    sent_counts = {sid: len(json.loads(data)) for sid, data in map(read_recording, recordings)}
    assert {s["segment_id"]: s["event_count"] for s in replay["segments"]} == sent_counts


def test_the_error_is_stored_and_linked_both_ways(sdk_session: SdkSession) -> None:
    server = sdk_session.server
    (error_id,) = sdk_session.sent_error_ids()
    replay = server.api(f"/api/0/projects/1/replays/{sdk_session.replay_id}/")["data"]
    assert error_id in replay["error_ids"]
    assert error_id in [e["event_id"] for e in replay["errors"]]

    error = server.api(f"/api/0/projects/1/errors/{error_id}/")["data"]
    assert error["replay_id"] == sdk_session.replay_id
    assert error["type"] == "TypeError"
    assert "basketTotal" in error["value"]
    assert "/checkout.html" in error["url"]

    with_errors = server.api("/api/0/projects/1/replays/?has_errors=1")["data"]
    assert [r["replay_id"] for r in with_errors] == [sdk_session.replay_id]
    assert with_errors[0]["error_count"] == 1

    issues = server.api("/api/0/projects/1/issues/")["data"]
    assert [(i["count"], i["replay_count"]) for i in issues] == [(1, 1)], issues

    # The SDK only learns the error's id after sending it, and names it on a later replay_event.
    named = [eid for h, p in sdk_session.replay_items("replay_event") for eid in json.loads(p).get("error_ids", [])]
    assert error_id in named, "the SDK never listed the error in a replay_event (the test flow changed?)"


def _replay_text_at(page: Any, offset_ms: float) -> str:
    return page.evaluate(
        """(t) => { window.replayer.pause(t);
                    const doc = window.replayer.iframe.contentDocument;
                    return doc && doc.body ? doc.body.innerText : ''; }""",
        offset_ms,
    )


def test_stored_segments_replay_in_rrweb(sdk_session: SdkSession, browser) -> None:
    events = sdk_session.server.replay_events(sdk_session.replay_id)
    assert sum(e["type"] == 2 for e in events) >= 2, "expected a full snapshot per page"

    # Offsets into the replay: just before page two's Meta event, and the end.
    start = events[0]["timestamp"]
    page_two = next(e["timestamp"] for e in events if e["type"] == 4 and "/checkout.html" in e["data"]["href"])
    end = events[-1]["timestamp"]

    with rrweb_replayer(browser, sdk_session.site.url, events) as page:
        first_page = _replay_text_at(page, page_two - start - 1)
        assert "Greenhouse shopping list" in first_page, first_page
        assert "Seeds and tools for the spring planting." in first_page
        assert TYPED in first_page, f"the item added by typing is not in the replayed page:\n{first_page}"

        second_page = _replay_text_at(page, end - start + 1)  # events strictly before the offset apply
        assert "Checkout for the greenhouse order" in second_page, second_page
        assert "Payment is being processed" in second_page, "the click's DOM change did not replay"
        assert "Greenhouse shopping list" not in second_page

