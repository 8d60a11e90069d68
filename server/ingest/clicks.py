"""Clicks for the index, read from a segment's SCRUBBED events: what was clicked, when, and whether
it was a dead click or a rage click; also the segment's console errors.

A click names only a node id; the element it hit (tag, id, classes, role, aria-label,
data-testid, alt, title, visible text) is what the recorder said in the ``ui.click`` breadcrumb it
adds to the recording with the click, as the Sentry SDK does and replayd's snippet does in the same
shape (``data.nodeId``: the click's node; ``data.node``: the element, already scrubbed by the
scrubber like the DOM it came from, ``scrubbing/custom_events.py``). The snippet names the
innermost clickable element (link, button, form field, label, widget role, ``data-testid``) and
sends its text nodes apart; the Sentry SDK names the clicked node itself. The server keeps no map
of the DOM for this: describing a page's thousands of links on the chance that one is clicked cost
a sixth of the worker's job. The Sentry SDK gives one breadcrumb for quick clicks on one element
(it debounces them), so the last ``KNOWN_ELEMENTS`` descriptions stay known across segments until
the next full snapshot. A click no breadcrumb describes (a recorder that sends none) is indexed
with its time only. The clicks a later segment must decide are kept next to the scrubber's state
(``pack_state`` / ``unpack_state``).

Dead click (Sentry's rule): a click on a link, a button or a button-like input after which the DOM
does not change (no mutation, no new snapshot or page) within ``DEAD_CLICK_MS``. A click less than
that before its segment's last event cannot be decided yet: it stays pending in the state and the
next segment decides it (``SegmentClicks.dead_earlier`` names the earlier clicks found dead). With
the Sentry SDK, its own ``ui.slowClickDetected`` breadcrumbs with ``timeAfterClickMs`` of at least
``DEAD_CLICK_MS`` mark the click dead too. A replay's last clicks stay undecided (not dead) when no
later segment comes. Rage click (Sentry's rule, ``scrubbing.events``): clicks on one such element,
each within ``RAGE_GAP_MS`` of the one before, form a burst; when the burst's first click is found
dead and the burst has ``RAGE_CLICKS`` clicks, that first click is a rage click too (the others of
the burst are neither: Sentry merges them into one). A ``ui.slowClickDetected`` breadcrumb with a
``clickCount`` of ``RAGE_CLICKS`` marks it rage as well.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, cast

import msgpack

from replayd.scrubbing.events import (
    CUSTOM,
    DEAD_CLICK_MS,
    FULL_SNAPSHOT,
    INCREMENTAL_SNAPSHOT,
    META,
    MUTATION,
    PLUGIN,
    RAGE_CLICKS,
    is_click,
    is_rage_burst,
    joins_burst,
    timestamp_ms,
)

from ..index.records import ClickRecord

MAX_TEXT = 100  # characters of an element's visible text kept
MAX_ATTR = 200  # characters of an attribute value kept
BUTTON_INPUTS = frozenset({"button", "submit", "reset", "image"})
RECENT_CLICKS = 64  # clicks a later segment may still decide (pending) or a breadcrumb may name
KNOWN_ELEMENTS = 64  # elements described by a breadcrumb, kept for the clicks of later segments
SLOW_CLICK = "ui.slowClickDetected"
STATE_MARK = "ws1"



@dataclass(slots=True)
class SegmentClicks:
    clicks: list[ClickRecord] = field(default_factory=list)  # at most limits.max_clicks_per_segment
    click_count: int = 0  # every click, also those past the limit
    rage_click_count: int = 0
    console_error_count: int = 0
    # (segment id, seq, rage too) of earlier segments' clicks found dead
    dead_earlier: list[tuple[int, int, bool]] = field(default_factory=list)


# An element as a breadcrumb describes it, trimmed: (element id, tag, id, class, role, aria-label,
# data-testid, alt, title, type, visible text).
Element = tuple[int, str, str, str, str, str, str, str, str, str, str]
_DESCRIBED = ("id", "class", "role", "aria-label", "data-testid", "alt", "title", "type")


class ClickTracker:
    """The clicks still open to a decision (dead or not), across a replay's segments, and the
    elements breadcrumbs described lately."""

    __slots__ = ("recent", "known", "_bursts")

    def __init__(self) -> None:
        # [segment id, seq, ms, node id, state]: state 0 pending, 1 decided not dead (or part of a
        # burst its first click decides), 2 dead; a burst's first click also [.., clicks, last click's ms]
        self.recent: list[list[Any]] = []
        self.known: dict[int, Element] = {}  # clicked node id -> its element, oldest first
        self._bursts: dict[Any, list[Any]] = {}  # node id -> its latest burst's first click, this segment

    # --- persisted next to the scrubber's state ----------------------------------------------

    def to_plain(self) -> dict[str, Any]:
        return {"recent": self.recent, "known": [[k, *v] for k, v in self.known.items()]}

    @classmethod
    def from_plain(cls, plain: Any) -> ClickTracker:
        tracker = cls()
        if isinstance(plain, dict):  # a list: written before elements were kept (recent clicks only)
            known = plain.get("known")
            if isinstance(known, list):
                tracker.known = {k[0]: cast(Element, tuple(k[1:])) for k in known if _is_known(k)}
            plain = plain.get("recent")
        if isinstance(plain, list):
            tracker.recent = [r for r in plain if _is_recent(r)]
        return tracker

    # --- a segment -----------------------------------------------------------------------

    def segment(self, segment_id: int, events: list[Any], max_clicks: int) -> SegmentClicks:
        out = SegmentClicks()
        described = _breadcrumb_elements(events)
        # clicks that may still be found dead: [segment id, seq, ms, node id, state], the earlier
        # segments' pending ones first
        open_clicks = [r for r in self.recent if r[4] == 0]
        self._bursts = {r[3]: r for r in open_clicks if len(r) == 7}
        recent = self.recent
        known = self.known
        page = 0  # full snapshots so far in this segment: node ids are a document's
        last_ms: float | None = None
        seq = 0
        clicks: list[ClickRecord] = out.clicks
        dead_seqs: dict[int, bool] = {}  # this segment's clicks found dead: seq -> rage too
        for event in events:
            if event.__class__ is not dict:
                continue
            ms = timestamp_ms(event.get("timestamp"))
            if ms is not None:
                last_ms = ms if last_ms is None or ms > last_ms else last_ms
                if open_clicks:
                    # no change within the window: dead
                    still = []
                    for c in open_clicks:
                        if ms - c[2] > DEAD_CLICK_MS:
                            self._dead(c, segment_id, dead_seqs, out)
                        else:
                            still.append(c)
                    open_clicks = still
            kind = event.get("type")
            data = event.get("data")
            if kind == INCREMENTAL_SNAPSHOT and data.__class__ is dict:
                source = data.get("source")
                if source == MUTATION:
                    if open_clicks and _changes(data):
                        for c in open_clicks:
                            c[4] = 1
                        open_clicks = []
                elif is_click(event):
                    out.click_count += 1
                    if seq >= max_clicks:
                        continue
                    node_id = data.get("id")
                    element = None
                    if node_id.__class__ is int:
                        element = described.get((page, node_id))
                        if element is not None:
                            known.pop(node_id, None)  # the newest last
                            known[node_id] = element
                        else:
                            element = known.get(node_id)
                    else:
                        node_id = None
                    target_id = element[0] if element is not None else node_id
                    tag, eid, cls, role, label, testid, alt, title, typ, text = element[1:] if element else _UNKNOWN
                    entry: list[Any] = [segment_id, seq, ms, target_id, 1]
                    if ms is not None and (tag in ("a", "button") or role in ("button", "link")
                                           or (tag == "input" and typ.lower() in BUTTON_INPUTS)):
                        burst = self._burst(target_id, ms)
                        if burst is not None:  # one more click of a burst its first click decides
                            burst[5] += 1
                            burst[6] = ms
                        else:
                            entry[4:] = [0, 1, ms]
                            open_clicks.append(entry)
                            self._bursts[target_id] = entry
                    recent.append(entry)
                    clicks.append(ClickRecord(
                        seq=seq, timestamp=(ms or 0.0) / 1000, node_id=target_id, tag=tag, elem_id=eid,
                        classes=cls, role=role, label=label, testid=testid, alt=alt, title=title, text=text,
                        is_dead=False, is_rage=False))
                    seq += 1
            elif kind == FULL_SNAPSHOT or (kind == META and open_clicks):
                for c in open_clicks:
                    c[4] = 1
                open_clicks = []
                if kind == FULL_SNAPSHOT:
                    page += 1
                    known.clear()
            elif kind == CUSTOM and data.__class__ is dict:
                self._custom(data, segment_id, dead_seqs, out)
            elif kind == PLUGIN and data.__class__ is dict:
                payload = data.get("payload")
                if (isinstance(data.get("plugin"), str) and "console" in data["plugin"]
                        and isinstance(payload, dict) and payload.get("level") == "error"):
                    out.console_error_count += 1
        for (p, node_id), element in described.items():  # a click the next segment starts with too
            if p == page and node_id not in known:
                known[node_id] = element
        if last_ms is not None:
            for c in open_clicks:
                if last_ms - c[2] >= DEAD_CLICK_MS:
                    self._dead(c, segment_id, dead_seqs, out)
        if dead_seqs:
            out.clicks[:] = [c if c.seq not in dead_seqs else _dead_click(c, dead_seqs[c.seq]) for c in out.clicks]
        del recent[:-RECENT_CLICKS]
        while len(known) > KNOWN_ELEMENTS:
            del known[next(iter(known))]
        return out

    def _burst(self, node_id: Any, ms: float) -> list[Any] | None:
        """The burst of clicks on ``node_id`` still open to a decision that a click at ``ms`` continues."""
        head = self._bursts.get(node_id)
        return head if head is not None and head[4] == 0 and joins_burst(head[6], ms) else None

    @staticmethod
    def _dead(entry: list[Any], segment_id: int, dead_seqs: dict[int, bool], out: SegmentClicks,
              rage: bool = False) -> None:
        if entry[4] == 2:
            return
        entry[4] = 2
        rage = rage or (len(entry) == 7 and is_rage_burst(entry[5], True))
        out.rage_click_count += rage
        if entry[0] == segment_id:
            dead_seqs[entry[1]] = rage
        else:
            out.dead_earlier.append((entry[0], entry[1], rage))

    def _custom(self, data: dict[str, Any], segment_id: int, dead_seqs: dict[int, bool], out: SegmentClicks) -> None:
        """The Sentry SDK's breadcrumbs: slow clicks it timed out on are dead, console errors count."""
        if data.get("tag") != "breadcrumb":
            return
        payload = data.get("payload")
        if not isinstance(payload, dict):
            return
        category = payload.get("category")
        if category == "console" and payload.get("level") == "error":
            out.console_error_count += 1
        elif category == SLOW_CLICK:
            info = payload.get("data")
            if not isinstance(info, dict):
                return
            after = info.get("timeAfterClickMs")
            if after.__class__ not in (int, float) or after < DEAD_CLICK_MS:
                return
            node_id = info.get("nodeId")
            element = self.known.get(node_id) if node_id.__class__ is int else None
            target_id = element[0] if element is not None else None
            count = info.get("clickCount")
            rage = count.__class__ is int and count >= RAGE_CLICKS
            # the latest burst on that node (or its element), else its latest click
            ids = {node_id, target_id} - {None}  # an undescribed click without an id is no one's
            latest = [e for e in self.recent if e[3] in ids]
            heads = [e for e in latest if len(e) == 7]
            if heads or latest:
                self._dead((heads or latest)[-1], segment_id, dead_seqs, out, rage)


_UNKNOWN = ("",) * 10


def _is_known(k: Any) -> bool:
    """A stored element: [clicked node id, element id, ten strings] (a damaged state: dropped)."""
    return (k.__class__ is list and len(k) == 12 and k[0].__class__ is int and k[1].__class__ is int
            and all(v.__class__ is str for v in k[2:]))


def _is_recent(r: Any) -> bool:
    """A stored click: [segment id, seq, ms or None, node id or None, state 0-2] (+ [clicks, last ms])."""
    return (r.__class__ is list and len(r) in (5, 7) and r[0].__class__ is int and r[1].__class__ is int
            and (r[2] is None or r[2].__class__ in (int, float)) and (r[3] is None or r[3].__class__ is int)
            and r[4] in (0, 1, 2) and r[4].__class__ is int and (r[4] == 0) <= (r[2] is not None)
            and (len(r) == 5 or (r[5].__class__ is int and r[6].__class__ in (int, float))))


def _breadcrumb_elements(events: list[Any]) -> dict[tuple[int, int], Element]:
    """The elements the segment's ``ui.click`` breadcrumbs describe: (full snapshots before it,
    clicked node id) -> element. A breadcrumb may come just before or just after its click."""
    found: dict[tuple[int, int], Element] = {}
    page = 0
    for event in events:
        if event.__class__ is not dict:
            continue
        kind = event.get("type")
        if kind == FULL_SNAPSHOT:
            page += 1
        elif kind == CUSTOM:
            data = event.get("data")
            payload = data.get("payload") if data.__class__ is dict and data.get("tag") == "breadcrumb" else None
            info = payload.get("data") if payload.__class__ is dict and payload.get("category") == "ui.click" else None
            if info.__class__ is dict and info.get("nodeId").__class__ is int:
                element = _element(info.get("node"))
                if element is not None:
                    found[(page, info["nodeId"])] = element
    return found


def _element(node: Any) -> Element | None:
    """A breadcrumb's ``data.node`` (``{"id", "tagName", "attributes", "texts" or "textContent"}``),
    trimmed for the index."""
    if node.__class__ is not dict or node.get("id").__class__ is not int:
        return None
    attrs = node.get("attributes")
    attrs = attrs if attrs.__class__ is dict else {}
    tag = node.get("tagName")
    texts = node.get("texts")
    content = node.get("textContent")
    if texts.__class__ is list:
        text = " ".join(t[1] for t in texts if t.__class__ is list and len(t) == 2 and t[1].__class__ is str)
    else:
        text = content if content.__class__ is str else ""
    eid, cls, role, label, testid, alt, title, typ = (_attr(attrs, name) for name in _DESCRIBED)
    testid = testid or _attr(attrs, "testId") or _attr(attrs, "data-test-id")  # the Sentry SDK's names
    return (node["id"], tag.lower()[:40] if tag.__class__ is str else "", eid, " ".join(cls.split()), role,
            label, testid, alt, title, typ, " ".join(text.split())[:MAX_TEXT])


def _attr(attrs: dict[str, Any], name: str) -> str:
    value = attrs.get(name)
    return value[:MAX_ATTR] if value.__class__ is str else ""


def _changes(data: dict[str, Any]) -> bool:
    """Whether a mutation changes the DOM at all (rrweb also sends empty ones)."""
    return any(data.get(k) for k in ("adds", "removes", "texts", "attributes"))


def _dead_click(click: ClickRecord, rage: bool) -> ClickRecord:
    return dataclasses.replace(click, is_dead=True, is_rage=rage)


# --- the state kept per replay: the scrubber's and the tracker's, side by side ------------------

def pack_state(scrubber_state: bytes, tracker: ClickTracker) -> bytes:
    packed: bytes = msgpack.packb([STATE_MARK, scrubber_state, tracker.to_plain()], use_bin_type=True)
    return packed


def unpack_state(data: bytes | None) -> tuple[bytes | None, ClickTracker]:
    """The scrubber's state bytes and the click tracker; a state stored before clicks were indexed
    (the scrubber's alone) gives an empty tracker."""
    if not data:
        return None, ClickTracker()
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:  # not ours: the scrubber reads (or refuses) it
        return data, ClickTracker()
    if isinstance(obj, list) and len(obj) == 3 and obj[0] == STATE_MARK and isinstance(obj[1], bytes):
        return obj[1], ClickTracker.from_plain(obj[2])
    return data, ClickTracker()
