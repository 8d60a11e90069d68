"""What the worker reads from a segment's scrubbed events for the index: clicks, the elements the
recorder's ``ui.click`` breadcrumbs describe, dead and rage clicks (server/ingest/clicks.py)."""

from __future__ import annotations

import msgpack
import pytest

from replayd.scrubbing import ReplayState, Scrubber
from replayd.server.ingest.clicks import KNOWN_ELEMENTS, ClickTracker, SegmentClicks, pack_state, unpack_state

SCRUBBER = Scrubber(secret=b"test")
SAVED = pytest.mark.parametrize("saved", [False, True], ids=["in-memory", "saved"])


class Replay:
    """A replay's segments through the scrubber and the click tracker, as the worker runs them;
    ``saved``: the state through its bytes between segments, as the worker stores it."""

    def __init__(self, saved: bool = False) -> None:
        self.saved = saved
        self.state = ReplayState()
        self.tracker = ClickTracker()

    def segment(self, segment_id: int, events: list[dict], max_clicks: int = 100) -> SegmentClicks:
        result = SCRUBBER.scrub_recording(events, self.state)
        self.state = result.state
        out = self.tracker.segment(segment_id, result.events, max_clicks)
        if self.saved:
            scrubber_state, self.tracker = unpack_state(pack_state(self.state.to_bytes(), self.tracker))
            self.state = ReplayState.from_bytes(scrubber_state)
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


# What replayd's snippet says of a click on each node of ``snapshot``: the innermost clickable
# element, its attributes and its text nodes.
ELEMENTS = {
    10: {"id": 10, "tagName": "BUTTON", "attributes": {"id": "pay", "class": "btn primary"},
         "texts": [[12, "Pay  now"]]},
    20: {"id": 20, "tagName": "BUTTON", "attributes": {"data-testid": "buy"}, "texts": [[21, "Buy"]]},
    30: {"id": 30, "tagName": "A", "attributes": {}, "texts": [[31, "Checkout"]]},
}
ELEMENTS[11] = ELEMENTS[12] = ELEMENTS[10]


def breadcrumb(node_id: int, node: dict | None, at: int) -> dict:
    data: dict = {"nodeId": node_id}
    if node is not None:
        data["node"] = node
    return {"type": 5, "timestamp": at, "data": {"tag": "breadcrumb", "payload": {
        "timestamp": at / 1000, "type": "default", "category": "ui.click", "data": data}}}


def raw_click(node_id: int, at: int) -> dict:
    return {"type": 3, "timestamp": at, "data": {"source": 2, "type": 2, "id": node_id, "x": 1, "y": 1}}


def click(node_id: int, at: int, node: dict | None = None) -> list[dict]:
    """A click as the snippet records it: rrweb's event, then the breadcrumb describing its element."""
    described = node if node is not None else ELEMENTS.get(node_id)
    return [raw_click(node_id, at)] + ([breadcrumb(node_id, described, at)] if described else [])


def mutation(at: int) -> dict:
    return {"type": 3, "timestamp": at, "data": {"source": 0, "adds": [], "removes": [], "texts": [],
                                                   "attributes": [{"id": 40, "attributes": {"class": "x"}}]}}


def move(at: int) -> dict:
    return {"type": 3, "timestamp": at, "data": {"source": 1, "positions": []}}


def described(out: SegmentClicks) -> list[tuple[str, str, str]]:
    return [(c.tag, c.elem_id, c.text) for c in out.clicks]


def test_a_click_is_named_by_the_element_its_breadcrumb_describes():
    out = Replay().segment(0, [snapshot(T), *click(11, T + 10), mutation(T + 20)])
    (c,) = out.clicks
    assert (c.tag, c.elem_id, c.classes, c.text, c.node_id) == ("button", "pay", "btn primary", "Pay now", 10)
    assert c.selector == "button#pay.btn.primary" and not c.is_dead


def test_a_breadcrumb_before_its_click_describes_it_too():
    """The Sentry SDK adds its breadcrumb before rrweb's click event."""
    out = Replay().segment(0, [snapshot(T), breadcrumb(30, ELEMENTS[30], T + 10), raw_click(30, T + 10)])
    assert described(out) == [("a", "", "Checkout")]


def test_dead_clicks_within_a_segment_and_decided_by_the_next():
    replay = Replay()
    first = replay.segment(0, [snapshot(T), *click(30, T + 100), mutation(T + 200),  # works
                               *click(10, T + 1000), move(T + 9000),  # dead within the segment
                               *click(20, T + 10_000), move(T + 12_000)])  # undecided at the end
    assert [(c.tag, c.is_dead) for c in first.clicks] == [("a", False), ("button", True), ("button", False)]
    scrubber_state, carried = unpack_state(pack_state(b"scrubber", replay.tracker))
    assert scrubber_state == b"scrubber"
    replay.tracker = carried
    second = replay.segment(1, [move(T + 20_000)])
    assert second.dead_earlier == [(0, 2, False)]
    # a mutation in time keeps a pending click alive
    replay.segment(2, click(20, T + 30_000))
    assert replay.segment(3, [mutation(T + 31_000), move(T + 40_000)]).dead_earlier == []


def test_rage_clicks_and_an_undescribed_click_is_never_dead():
    """Sentry's rule: a burst of 5 clicks (each within 1 s of the one before) whose first is dead is
    one rage click, on its first click; the others of the burst are neither dead nor rage."""
    events = [snapshot(T), *(e for i in range(5) for e in click(20, T + 100 + i * 900)),
              *click(40, T + 5000), move(T + 20_000)]
    out = Replay().segment(0, events)
    assert out.click_count == 6 and out.rage_click_count == 1
    assert [(c.is_dead, c.is_rage) for c in out.clicks[:5]] == [(True, True)] + [(False, False)] * 4
    assert out.clicks[-1].tag == "" and not out.clicks[-1].is_dead  # no breadcrumb: not known clickable
    assert out.clicks[0].testid == "buy"


def test_no_rage_click_without_a_dead_one_or_with_fewer_clicks_or_gaps():
    burst = [e for i in range(5) for e in click(20, T + 100 + i * 200)]
    # the DOM changes after the burst's first click: not dead, so not rage either
    out = Replay().segment(0, [snapshot(T), *burst, mutation(T + 3000), move(T + 20_000)])
    assert out.rage_click_count == 0 and not any(c.is_dead or c.is_rage for c in out.clicks)
    # four clicks: dead, not rage
    out = Replay().segment(0, [snapshot(T), *burst[:8], move(T + 20_000)])
    assert out.rage_click_count == 0 and [c.is_dead for c in out.clicks] == [True, False, False, False]
    # five clicks 1.5 s apart: five bursts of one, each dead
    spaced = [e for i in range(5) for e in click(20, T + 100 + i * 1500)]
    out = Replay().segment(0, [snapshot(T), *spaced, move(T + 20_000)])
    assert out.rage_click_count == 0 and all(c.is_dead for c in out.clicks)


def test_a_rage_click_a_later_segment_decides():
    replay = Replay()
    replay.segment(0, [snapshot(T), *(e for i in range(6) for e in click(20, T + 100 + i * 200))])
    replay.tracker = unpack_state(pack_state(b"", replay.tracker))[1]
    later = replay.segment(1, [move(T + 9000)])
    assert later.dead_earlier == [(0, 0, True)] and later.rage_click_count == 1


@SAVED
def test_the_sentry_sdks_one_breadcrumb_for_a_burst_describes_every_click_of_it(saved):
    """The Sentry SDK debounces its click breadcrumbs (one per element a second): the burst's
    other clicks, in this segment or the next, are the same element's. (It names data-testid
    ``testId``.)"""
    replay = Replay(saved=saved)
    sentry_node = {"id": 20, "tagName": "BUTTON", "textContent": "Buy", "attributes": {"testId": "buy"}}
    first = replay.segment(0, [snapshot(T), breadcrumb(20, sentry_node, T + 100), raw_click(20, T + 100),
                               raw_click(20, T + 300)])
    second = replay.segment(1, [raw_click(20, T + 500), raw_click(20, T + 700), raw_click(20, T + 900),
                                move(T + 9000)])
    assert [c.testid for c in first.clicks + second.clicks] == ["buy"] * 5
    assert second.dead_earlier == [(0, 0, True)] and second.rage_click_count == 1


@SAVED
def test_a_new_page_forgets_the_elements_of_the_last(saved):
    """rrweb numbers a new page's nodes from 1 again: a description of id 20 on the old page says
    nothing of id 20 on the new one."""
    replay = Replay(saved=saved)
    replay.segment(0, [snapshot(T), *click(20, T + 10)])
    new_page = {"type": 2, "timestamp": T + 6000, "data": {"node": {"type": 0, "id": 1, "childNodes": [
        el(2, "html", [el(3, "body", [el(20, "p", [text(21, "Terms")])])])]}}}
    out = replay.segment(1, [new_page, raw_click(20, T + 6100)])
    assert described(out) == [("", "", "")]


def test_a_click_before_a_new_page_in_its_segment_names_the_old_pages_element():
    home = {"id": 10, "tagName": "A", "attributes": {"id": "home"}, "texts": [[11, "Home"]]}
    new_page = {"type": 2, "timestamp": T + 500, "data": {"node": {"type": 0, "id": 1, "childNodes": [
        el(2, "html", [el(3, "body", [el(10, "a", [text(11, "Home")], id="home")])])]}}}
    out = Replay().segment(0, [snapshot(T), *click(11, T + 10), new_page, *click(10, T + 600, home)])
    assert described(out) == [("button", "pay", "Pay now"), ("a", "home", "Home")]


def test_sentry_slow_click_breadcrumbs_mark_dead_and_console_errors_count():
    crumb = {"type": 5, "timestamp": T + 8000, "data": {"tag": "breadcrumb", "payload": {
        "category": "ui.slowClickDetected", "data": {"nodeId": 30, "timeAfterClickMs": 7000}}}}
    console = {"type": 5, "timestamp": T + 1, "data": {"tag": "breadcrumb", "payload": {
        "category": "console", "level": "error"}}}
    out = Replay().segment(0, [snapshot(T), console, *click(30, T + 100), mutation(T + 200), crumb])
    assert [c.is_dead for c in out.clicks] == [True] and out.console_error_count == 1


def test_sentry_slow_click_with_five_clicks_is_a_rage_click():
    crumb = {"type": 5, "timestamp": T + 8000, "data": {"tag": "breadcrumb", "payload": {
        "category": "ui.slowClickDetected", "data": {"nodeId": 30, "timeAfterClickMs": 7000, "clickCount": 5}}}}
    out = Replay().segment(0, [snapshot(T), *click(30, T + 100), mutation(T + 200), crumb])
    assert [(c.is_dead, c.is_rage) for c in out.clicks] == [(True, True)] and out.rage_click_count == 1


def test_the_sentry_sdks_description_of_a_paragraph():
    node = {"id": 40, "tagName": "P", "textContent": "plain  words", "attributes": {"class": "note big"}}
    (c,) = Replay().segment(0, [snapshot(T), *click(40, T + 1, node)]).clicks
    assert (c.tag, c.classes, c.text) == ("p", "note big", "plain words")


def test_the_clicks_and_elements_kept_are_bounded():
    replay = Replay(saved=True)
    out = replay.segment(0, [snapshot(T), *click(30, T + 1), *click(10, T + 5000)], max_clicks=1)
    assert out.click_count == 2 and len(out.clicks) == 1
    many = [e for i in range(KNOWN_ELEMENTS + 10) for e in click(100 + i, T + 6000 + i, {
        "id": 100 + i, "tagName": "A", "attributes": {}, "texts": [[1000 + i, f"link {i}"]]})]
    replay.segment(1, many)
    assert len(replay.tracker.known) == KNOWN_ELEMENTS
    assert described(replay.segment(2, [raw_click(100 + KNOWN_ELEMENTS + 9, T + 9000)])) == [
        ("a", "", f"link {KNOWN_ELEMENTS + 9}")]


def test_a_malformed_description_leaves_its_click_undescribed_and_the_segment_indexed():
    bad = [{"id": "10", "tagName": "BUTTON"}, {"id": 10, "tagName": 5, "attributes": ["x"], "texts": "Pay"},
           {"id": 10, "texts": [["12", "Pay"], [12], [12, 5]]}, "node"]
    out = Replay().segment(0, [snapshot(T), *(e for i, node in enumerate(bad) for e in click(10, T + i, node))])
    assert out.click_count == 4 and described(out)[0] == ("", "", "")
    assert all(c.tag == "" and c.text == "" for c in out.clicks[1:])


def test_trackers_stored_before_elements_were_kept_still_read():
    old = msgpack.packb(["ws1", b"scrubber", [[0, 0, T, 20, 0, 1, T]]], use_bin_type=True)
    scrubber_state, tracker = unpack_state(old)
    assert scrubber_state == b"scrubber" and tracker.recent == [[0, 0, T, 20, 0, 1, T]] and tracker.known == {}
    assert unpack_state(b"\x93\xa3rs1")[0] == b"\x93\xa3rs1"  # the scrubber's alone, from before clicks
    assert unpack_state(None)[0] is None


def test_a_scrubber_state_that_held_a_click_map_still_reads():
    """States written while the scrubber kept a map of clickable elements (``rs1``, ``rs2``) load
    with their rules' state; the map is dropped."""
    for mark, clicks in (("rs1", [{10: ["button"]}, {11: 10}]), ("rs2", [[b"chunk", None]])):
        old = msgpack.packb([mark, SCRUBBER.fingerprint, {5: 1}, {}, {}, {}, *clicks], use_bin_type=True)
        state = ReplayState.from_bytes(old)
        assert state.flags == {5: 1}
        rewritten = msgpack.unpackb(state.to_bytes(), strict_map_key=False)
        assert rewritten == ["rs3", SCRUBBER.fingerprint, {5: 1}, {}, {}, {}]


@SAVED
def test_a_breadcrumb_at_a_segments_end_describes_the_click_the_next_starts_with(saved):
    """The snippet's breadcrumb comes just before rrweb's click: a segment may end between them."""
    replay = Replay(saved)
    replay.segment(0, [snapshot(T), breadcrumb(10, ELEMENTS[10], T + 10)])
    out = replay.segment(1, [raw_click(10, T + 11), move(T + 9000)])
    assert described(out) == [("button", "pay", "Pay now")] and out.clicks[0].is_dead


def test_a_slow_click_on_an_unknown_node_marks_no_click_without_an_id_dead():
    no_id = {"type": 3, "timestamp": T + 10, "data": {"source": 2, "type": 2, "id": "x", "x": 1, "y": 1}}
    slow = {"type": 5, "timestamp": T + 20, "data": {"tag": "breadcrumb", "payload": {
        "category": "ui.slowClickDetected", "data": {"nodeId": 999, "timeAfterClickMs": 7000, "clickCount": 1}}}}
    out = Replay().segment(0, [snapshot(T), no_id, slow])
    assert out.click_count == 1 and not out.clicks[0].is_dead


def test_a_damaged_tracker_state_drops_what_it_cannot_read():
    bad = ({"recent": [[0, 0, "x", 5, 0]]}, {"recent": [[0, 0, T, [1], 0, 1, T]]},
           {"recent": [[0, 0, T, 5, 0, "a", T]]}, {"recent": [[0, 0, None, 10, 0]]}, {"recent": [[0, 0, T, 10, True]]},
           {"known": [[10, 10, "button", "", "", "", "", "", "", "", 5, ""]]}, {"known": [[10, *[None] * 11]]})
    for plain in bad:
        _, tracker = unpack_state(msgpack.packb(["ws1", b"", plain], use_bin_type=True))
        assert tracker.recent == [] and tracker.known == {}
        tracker.segment(1, [raw_click(10, T + 1), raw_click(10, T + 2), move(T + 9000)], 100)

