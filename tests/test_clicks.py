"""What the worker reads from a segment's scrubbed events for the index: clicks, their elements
(noted by the scrubber's walk), dead and rage clicks (server/ingest/clicks.py)."""

from __future__ import annotations

import msgpack
import pytest

from replayd.scrubbing import ReplayState, Scrubber
from replayd.scrubbing.clickmap import entry_text
from replayd.server.ingest.clicks import ClickTracker, SegmentClicks, pack_state, unpack_state

SCRUBBER = Scrubber(secret=b"test")


class Replay:
    """A replay's segments through the scrubber and the click tracker, as the worker runs them;
    ``saved``: the state through its bytes between segments, as the worker stores it."""

    def __init__(self, limit: int = 1000, saved: bool = False) -> None:
        self.limit = limit
        self.saved = saved
        self.state = ReplayState()
        self.state.click_limit = limit
        self.tracker = ClickTracker()

    def segment(self, segment_id: int, events: list[dict], max_clicks: int = 100) -> SegmentClicks:
        result = SCRUBBER.scrub_recording(events, self.state)
        self.state = result.state
        out = self.tracker.segment(segment_id, result.events, max_clicks, self.state)
        if self.saved:
            scrubber_state, self.tracker = unpack_state(pack_state(self.state.to_bytes(), self.tracker))
            self.state = ReplayState.from_bytes(scrubber_state)
            self.state.click_limit = self.limit
        return out

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
    kept = ReplayState.from_bytes(tracker.state.to_bytes()).clicks  # bounded when saved
    assert len(kept) <= 2 and kept.owner_count <= 2 and out.click_count == 2 and len(out.clicks) == 1
    tracker = Replay()
    out = tracker.segment(0, [snapshot(T), click(40, T + 1)], 10)
    assert out.clicks[0].tag == ""  # a paragraph: neither clickable nor inside one


def test_the_node_map_survives_the_state_bytes_and_a_removal():
    tracker = Replay()
    tracker.segment(0, [snapshot(T)])
    state = ReplayState.from_bytes(tracker.state.to_bytes())
    cid, entry = state.clicks.target(30)
    assert (cid, entry[:-1], entry_text(entry)) == (30, ("a", *[None] * 8), "Checkout")
    assert state.clicks.clickable(11) == 10 and state.clicks.clickable(12) == 10
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


# --- the element as it was at the click's time (the map is read lazily, between segments as bytes) --

SAVED = pytest.mark.parametrize("saved", [False, True], ids=["in-memory", "saved"])


def page(at: int, *body: dict) -> dict:
    return {"type": 2, "timestamp": at,
            "data": {"node": {"type": 0, "id": 1, "childNodes": [el(2, "html", [el(3, "body", list(body))])]}}}


def texts(at: int, *changes: tuple[int, str]) -> dict:
    return {"type": 3, "timestamp": at, "data": {"source": 0, "adds": [], "removes": [], "attributes": [],
                                                   "texts": [{"id": i, "value": v} for i, v in changes]}}


def click_record(out: SegmentClicks) -> list[tuple[str, str, str]]:
    return [(c.tag, c.elem_id, c.text) for c in out.clicks]


@SAVED
def test_a_click_before_a_new_page_in_its_segment_names_the_old_pages_element(saved):
    """A click, then a full snapshot of the next page in the same segment (rrweb reuses low ids on
    a new page): the click was on the old page's button, not on what carries its id now."""
    replay = Replay(saved=saved)
    out = replay.segment(0, [snapshot(T), click(11, T + 10),
                             page(T + 500, el(10, "a", [text(11, "Home")], id="home"))])
    assert click_record(out) == [("button", "pay", "Pay now")]
    later = replay.segment(1, [click(10, T + 6000)])  # a click on the new page names the new page's
    assert click_record(later) == [("a", "home", "Home")]


@SAVED
def test_a_buttons_text_changed_by_a_mutation_names_its_clicks_from_then_on(saved):
    replay = Replay(saved=saved)
    first = replay.segment(0, [snapshot(T), click(20, T + 10), texts(T + 20, (21, "Bought"))])
    assert click_record(first) == [("button", "", "Buy")]  # clicked before the change
    second = replay.segment(1, [click(20, T + 6000), texts(T + 6100, (21, "Buy again")), click(20, T + 6200)])
    assert click_record(second) == [("button", "", "Bought"), ("button", "", "Buy again")]


@SAVED
def test_text_replaced_inside_a_button_by_removal_and_addition(saved):
    """React swaps a label's text node (or the span holding it) rather than editing it."""
    replay = Replay(saved=saved)
    replay.segment(0, [snapshot(T)])
    swap = {"type": 3, "timestamp": T + 6000, "data": {
        "source": 0, "texts": [], "attributes": [],
        "removes": [{"parentId": 11, "id": 12}],
        "adds": [{"parentId": 11, "nextId": None, "node": text(13, "Paying")}]}}
    out = replay.segment(1, [swap, click(10, T + 6100)])
    assert click_record(out) == [("button", "pay", "Paying")]
    span = {"type": 3, "timestamp": T + 7000, "data": {
        "source": 0, "texts": [], "attributes": [],
        "removes": [{"parentId": 10, "id": 11}],
        "adds": [{"parentId": 10, "nextId": None, "node": el(14, "b", [text(15, "Paid")])}]}}
    assert click_record(replay.segment(2, [span, click(14, T + 7100)])) == [("button", "pay", "Paid")]


@SAVED
def test_attribute_changes_between_segments_reach_a_later_click(saved):
    replay = Replay(saved=saved)
    replay.segment(0, [snapshot(T)])
    relabel = {"type": 3, "timestamp": T + 6000, "data": {"source": 0, "adds": [], "removes": [], "texts": [],
                                                           "attributes": [{"id": 30, "attributes": {"class": "busy"}}]}}
    replay.segment(1, [relabel])
    (c,) = replay.segment(2, [click(30, T + 12_000)]).clicks
    assert (c.tag, c.classes, c.text, c.node_id) == ("a", "busy", "Checkout", 30)


def test_the_innermost_clickable_names_a_click_and_landmarks_name_none():
    """A button inside a [data-testid] panel is the button; a paragraph of role=main is no element."""
    replay = Replay()
    out = replay.segment(0, [
        page(T, el(4, "div", [
            el(5, "section", [el(6, "button", [text(7, "Pay")], id="pay"), el(8, "span", [text(9, "Total")])],
               **{"data-testid": "checkout"}),
            el(10, "p", [text(11, "Terms")]),
        ], role="main")),
        click(6, T + 1), click(8, T + 2), click(10, T + 3)])
    assert click_record(out) == [("button", "pay", "Pay"), ("section", "", "Pay Total"), ("", "", "")]
    assert out.clicks[1].testid == "checkout"


@SAVED
def test_dead_and_rage_clicks_hold_with_the_map_read_lazily(saved):
    """Sentry's rules through saved states: a burst of 5 on a button whose first click sees no DOM
    change within 7 s is one dead rage click; a link whose page changes is not dead; a slow-click
    breadcrumb marks its click dead in a later segment."""
    replay = Replay(saved=saved)
    first = replay.segment(0, [snapshot(T), click(30, T + 100), mutation(T + 300),
                               *(click(11, T + 1000 + i * 300) for i in range(5))])
    assert [(c.tag, c.is_dead) for c in first.clicks] == [("a", False)] + [("button", False)] * 5
    second = replay.segment(1, [move(T + 9000)])
    assert second.dead_earlier == [(0, 1, True)] and second.rage_click_count == 1
    crumb = {"type": 5, "timestamp": T + 20_000, "data": {"tag": "breadcrumb", "payload": {
        "category": "ui.slowClickDetected", "data": {"nodeId": 20, "timeAfterClickMs": 7000, "clickCount": 1}}}}
    third = replay.segment(2, [click(20, T + 12_000), mutation(T + 12_500), crumb])
    assert [(c.tag, c.is_dead, c.is_rage) for c in third.clicks] == [("button", True, False)]


def test_a_state_stored_before_the_click_map_was_packed_apart_still_reads():
    """Bytes as the previous release wrote them (``rs1``: the clickables as one map, entries with
    their text as one string) load, describe clicks, and are written anew in the current layout."""
    entry = ["button", "pay", "btn primary", None, None, None, None, None, None, "Pay now"]
    old = msgpack.packb(["rs1", SCRUBBER.fingerprint, {}, {}, {}, {}, {10: entry}, {11: 10, 12: 10}],
                       use_bin_type=True)
    state = ReplayState.from_bytes(old)
    state.click_limit = 1000
    tracker = ClickTracker()
    result = SCRUBBER.scrub_recording([click(12, T + 10)], state)
    (c,) = tracker.segment(3, result.events, 100, result.state).clicks
    assert (c.tag, c.elem_id, c.classes, c.text, c.node_id) == ("button", "pay", "btn primary", "Pay now", 10)
    again = ReplayState.from_bytes(result.state.to_bytes())
    cid, described = again.clicks.target(11)
    assert cid == 10 and described is not None and entry_text(described) == "Pay now"
    assert msgpack.unpackb(result.state.to_bytes(), strict_map_key=False)[0] == "rs2"


def test_a_segment_without_clicks_leaves_the_earlier_map_packed():
    replay = Replay(saved=True)
    replay.segment(0, [snapshot(T)])
    replay.segment(1, [move(T + 6000), mutation(T + 6100)])  # a mutation outside every clickable
    assert replay.state.clicks._old is None  # not unpacked
    assert click_record(replay.segment(2, [click(30, T + 7000)])) == [("a", "", "Checkout")]


def test_a_damaged_chunk_of_the_map_leaves_its_clicks_undescribed_and_the_segment_indexed():
    replay = Replay(saved=True)
    replay.segment(0, [snapshot(T)])
    replay.state.clicks.chunks = [b"\xc1 not msgpack"]  # bytes of the right state version, damaged inside
    out = replay.segment(1, [click(10, T + 6000), mutation(T + 6100)])
    assert out.click_count == 1 and click_record(out) == [("", "", "")]
