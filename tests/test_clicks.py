"""What the worker reads from a segment's scrubbed events for the index: clicks, their elements
(noted by the scrubber's walk), dead and rage clicks (server/ingest/clicks.py)."""

from __future__ import annotations

from replayd.scrubbing import ReplayState, Scrubber
from replayd.server.ingest.clicks import ClickTracker, SegmentClicks, pack_state, unpack_state

SCRUBBER = Scrubber(secret=b"test")


class Replay:
    """A replay's segments through the scrubber and the click tracker, as the worker runs them."""

    def __init__(self, limit: int = 1000) -> None:
        self.state = ReplayState()
        self.state.click_limit = limit
        self.tracker = ClickTracker()

    def segment(self, segment_id: int, events: list[dict], max_clicks: int = 100) -> SegmentClicks:
        result = SCRUBBER.scrub_recording(events, self.state)
        self.state = result.state
        return self.tracker.segment(segment_id, result.events, max_clicks, self.state)

T = 1_790_000_000_000  # ms


def el(node_id: int, tag: str, children=(), **attrs) -> dict:
    return {"type": 2, "id": node_id, "tagName": tag, "attributes": attrs, "childNodes": list(children)}


def text(node_id: int, value: str) -> dict:
    return {"type": 3, "id": node_id, "textContent": value}


def snapshot(at: int) -> dict:
    body = el(3, "body", [
        el(10, "button", [el(11, "span", [text(12, "Pay  now")])], id="pay", **{"class": "btn primary"}),
        el(20, "button", [text(21, "Buy")], **{"data-testid": "buy"}),
        el(30, "a", [text(31, "Checkout")], href="/checkout"),
        el(40, "div", [text(41, "plain")]),
    ])
    return {"type": 2, "timestamp": at, "data": {"node": {"type": 0, "id": 1, "childNodes": [el(2, "html", [body])]}}}


def click(node_id: int, at: int) -> dict:
    return {"type": 3, "timestamp": at, "data": {"source": 2, "type": 2, "id": node_id, "x": 1, "y": 1}}


def mutation(at: int) -> dict:
    return {"type": 3, "timestamp": at, "data": {"source": 0, "adds": [], "removes": [], "texts": [],
                                                   "attributes": [{"id": 40, "attributes": {"class": "x"}}]}}


def move(at: int) -> dict:
    return {"type": 3, "timestamp": at, "data": {"source": 1, "positions": []}}


def test_a_click_names_the_interactive_element_it_landed_in():
    tracker = Replay()
    out = tracker.segment(0, [snapshot(T), click(11, T + 10), mutation(T + 20)], 100)
    (c,) = out.clicks
    assert (c.tag, c.elem_id, c.classes, c.text, c.node_id) == ("button", "pay", "btn primary", "Pay now", 10)
    assert c.selector == "button#pay.btn.primary" and not c.is_dead


def test_dead_clicks_within_a_segment_and_decided_by_the_next():
    tracker = Replay()
    first = tracker.segment(0, [snapshot(T), click(30, T + 100), mutation(T + 200),  # works
                                click(10, T + 1000), move(T + 9000),  # dead within the segment
                                click(20, T + 10_000), move(T + 12_000)], 100)  # undecided at the end
    assert [(c.tag, c.is_dead) for c in first.clicks] == [("a", False), ("button", True), ("button", False)]
    scrubber_state, carried = unpack_state(pack_state(b"scrubber", tracker.tracker))
    assert scrubber_state == b"scrubber"
    tracker.tracker = carried
    second = tracker.segment(1, [move(T + 20_000)], 100)
    assert second.dead_earlier == [(0, 2, False)]
    # a mutation in time keeps a pending click alive
    tracker.segment(2, [click(20, T + 30_000)], 100)
    assert tracker.segment(3, [mutation(T + 31_000), move(T + 40_000)], 100).dead_earlier == []


def test_rage_clicks_and_a_plain_div_is_never_dead():
    """Sentry's rule: a burst of 5 clicks (each within 1 s of the one before) whose first is dead is
    one rage click, on its first click; the others of the burst are neither dead nor rage."""
    tracker = Replay()
    events = [snapshot(T), *(click(20, T + 100 + i * 900) for i in range(5)), click(40, T + 5000), move(T + 20_000)]
    out = tracker.segment(0, events, 100)
    assert out.click_count == 6 and out.rage_click_count == 1
    assert [(c.is_dead, c.is_rage) for c in out.clicks[:5]] == [(True, True)] + [(False, False)] * 4
    assert out.clicks[-1].tag == "" and not out.clicks[-1].is_dead  # a div: not clickable, never dead
    assert out.clicks[0].testid == "buy"


def test_no_rage_click_without_a_dead_one_or_with_fewer_clicks_or_gaps():
    burst = [click(20, T + 100 + i * 200) for i in range(5)]
    # the DOM changes after the burst's first click: not dead, so not rage either
    out = Replay().segment(0, [snapshot(T), *burst, mutation(T + 3000), move(T + 20_000)], 100)
    assert out.rage_click_count == 0 and not any(c.is_dead or c.is_rage for c in out.clicks)
    # four clicks: dead, not rage
    out = Replay().segment(0, [snapshot(T), *burst[:4], move(T + 20_000)], 100)
    assert out.rage_click_count == 0 and [c.is_dead for c in out.clicks] == [True, False, False, False]
    # five clicks 1.5 s apart: five bursts of one, each dead
    spaced = [click(20, T + 100 + i * 1500) for i in range(5)]
    out = Replay().segment(0, [snapshot(T), *spaced, move(T + 20_000)], 100)
    assert out.rage_click_count == 0 and all(c.is_dead for c in out.clicks)


def test_a_rage_click_a_later_segment_decides():
    tracker = Replay()
    tracker.segment(0, [snapshot(T), *(click(20, T + 100 + i * 200) for i in range(6))], 100)
    tracker.tracker = unpack_state(pack_state(b"", tracker.tracker))[1]
    later = tracker.segment(1, [move(T + 9000)], 100)
    assert later.dead_earlier == [(0, 0, True)] and later.rage_click_count == 1


def test_sentry_slow_click_breadcrumbs_mark_dead_and_console_errors_count():
    tracker = Replay()
    crumb = {"type": 5, "timestamp": T + 8000, "data": {"tag": "breadcrumb", "payload": {
        "category": "ui.slowClickDetected", "data": {"nodeId": 30, "timeAfterClickMs": 7000}}}}
    console = {"type": 5, "timestamp": T + 1, "data": {"tag": "breadcrumb", "payload": {
        "category": "console", "level": "error"}}}
    out = tracker.segment(0, [snapshot(T), console, click(30, T + 100), mutation(T + 200), crumb], 100)
    assert [c.is_dead for c in out.clicks] == [True] and out.console_error_count == 1


def test_the_node_map_and_the_clicks_kept_are_bounded():
    tracker = Replay(limit=2)
    out = tracker.segment(0, [snapshot(T), click(30, T + 1), click(10, T + 5000)], 1)
    assert len(tracker.state.clickables) <= 2 and out.click_count == 2 and len(out.clicks) == 1
    tracker = Replay()
    out = tracker.segment(0, [snapshot(T), click(40, T + 1)], 10)
    assert out.clicks[0].tag == ""  # a paragraph: neither clickable nor inside one


def test_the_node_map_survives_the_state_bytes_and_a_removal():
    tracker = Replay()
    tracker.segment(0, [snapshot(T)])
    state = ReplayState.from_bytes(tracker.state.to_bytes())
    assert state.clickables[30] == ("a", *[None] * 8, "Checkout") and state.owners[11] == 10
    removal = {"type": 3, "timestamp": T + 10, "data": {"source": 0, "adds": [], "texts": [], "attributes": [],
                                                         "removes": [{"parentId": 3, "id": 10}]}}
    tracker.state = state
    out = tracker.segment(1, [removal, click(11, T + 5)])  # clicked, then removed: still described
    assert out.clicks[0].elem_id == "pay"


def test_a_state_from_before_clicks_were_indexed_reads_as_the_scrubbers():
    assert unpack_state(b"\x93\xa3rs1")[0] == b"\x93\xa3rs1"
    assert unpack_state(None)[0] is None


def test_the_sentry_sdks_click_breadcrumb_describes_an_element_the_map_does_not_know():
    tracker = Replay()
    crumb = {"type": 5, "timestamp": T + 2, "data": {"tag": "breadcrumb", "payload": {
        "category": "ui.click", "message": "body > p", "data": {"nodeId": 40, "node": {
            "id": 40, "tagName": "P", "textContent": "plain  words", "attributes": {"class": "note big"}}}}}}
    out = tracker.segment(0, [snapshot(T), click(40, T + 1), crumb])
    (c,) = out.clicks
    assert (c.tag, c.classes, c.text) == ("p", "note big", "plain words")


def test_sentry_slow_click_with_five_clicks_is_a_rage_click():
    tracker = Replay()
    crumb = {"type": 5, "timestamp": T + 8000, "data": {"tag": "breadcrumb", "payload": {
        "category": "ui.slowClickDetected", "data": {"nodeId": 30, "timeAfterClickMs": 7000, "clickCount": 5}}}}
    out = tracker.segment(0, [snapshot(T), click(30, T + 100), mutation(T + 200), crumb], 100)
    assert [(c.is_dead, c.is_rage) for c in out.clicks] == [(True, True)] and out.rage_click_count == 1


def test_attribute_changes_on_a_recorded_element_update_its_description():
    tracker = Replay()
    relabel = {"type": 3, "timestamp": T + 50, "data": {"source": 0, "adds": [], "removes": [], "texts": [],
                                                         "attributes": [{"id": 20, "attributes": {
                                                             "aria-label": "Buy it now", "data-testid": None,
                                                             "class": "btn busy"}}]}}
    out = tracker.segment(0, [snapshot(T), relabel, click(20, T + 100), mutation(T + 200)], 100)
    (c,) = out.clicks
    assert (c.tag, c.label, c.testid, c.classes, c.text) == ("button", "Buy it now", "", "btn busy", "Buy")
