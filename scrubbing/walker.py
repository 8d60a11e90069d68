"""The rrweb recording walk: every event type, every place text lives (see the map in
docs/privacy-rules.md), each event family in its own module.

One :class:`RecordingWalker` per ``scrub_recording`` call; it edits events in place and keeps
the :class:`~scrubbing.state.ReplayState` current.  Node trees (full snapshots, and nodes that
mutations add) are walked by :class:`~scrubbing.domwalk.DomWalker`, the scrubber's hot path.
"""

from __future__ import annotations

from typing import Any

from .builtin import TEXT_ATTRIBUTES
from .canvas import scrub_canvas
from .compiled import Compiled
from .custom_events import scrub_custom, scrub_plugin
from .domwalk import NO_CTX, DomWalker
from .events import (
    CANVAS_MUTATION,
    CUSTOM,
    DOM_CONTENT_LOADED,
    FULL_SNAPSHOT,
    INCREMENTAL_SNAPSHOT,
    INPUT,
    LOAD,
    LOG,
    META,
    MUTATION,
    PLUGIN,
    IncrementalSource,
)
from .inputs import InputEvents
from .mutations import scrub_mutation
from .payloads import scrub_json
from .redaction import mask_text
from .report import ScrubReport
from .state import BLOCK, MASK, ReplayState
from .stylesheets import CSS_SOURCES, scrub_css_event
from .urls import scrub_url

# Incremental sources that carry only numbers and ids (mouse, scroll, viewport, media, drag,
# selection, custom element names): not walked.  Any other unknown source is scrubbed.
_NUMERIC_SOURCES = frozenset(s.value for s in (
    IncrementalSource.MOUSE_MOVE, IncrementalSource.MOUSE_INTERACTION, IncrementalSource.SCROLL,
    IncrementalSource.VIEWPORT_RESIZE, IncrementalSource.TOUCH_MOVE, IncrementalSource.MEDIA_INTERACTION,
    IncrementalSource.DRAG, IncrementalSource.SELECTION, IncrementalSource.CUSTOM_ELEMENT,
))


class RecordingWalker:
    """One segment's walk: each event to the handler of its family, malformed ones to ``_fallback``."""

    def __init__(self, c: Compiled, state: ReplayState, report: ScrubReport) -> None:
        self.c = c
        self.state = state
        self.report = report
        self.dom = DomWalker(c, state, report)
        self.inputs = InputEvents(self.dom)

    def run(self, events: object) -> object:  # a list of events; anything else is scrubbed as a payload
        if not isinstance(events, list):  # not a segment at all: never left unscrubbed
            if isinstance(events, dict):
                scrub_json(self.c, events, "malformed", self.report)
                self.report.add("@fallback", "malformed")
            return events
        for i, e in enumerate(events):
            if not isinstance(e, dict):
                if isinstance(e, (str, list)) and e:
                    events[i] = scrub_json(self.c, e, "malformed", self.report)
                    self.report.add("@fallback", "malformed")
                continue
            if len(e) > 3 or "timestamp" not in e:  # keys beyond type/data/timestamp (delay, or anything a client adds)
                for k in e:
                    if k != "data" and k != "type" and k != "timestamp" and isinstance(e[k], (str, dict, list)):
                        e[k] = scrub_json(self.c, e[k], "malformed", self.report)
            d = e.get("data")
            if not isinstance(d, dict):
                if isinstance(d, (str, list)) and d:
                    e["data"] = scrub_json(self.c, d, "malformed", self.report)
                    self.report.add("@fallback", "malformed")
                continue
            t = e.get("type")
            try:
                if t == INCREMENTAL_SNAPSHOT:
                    self._incremental(d)
                elif t == FULL_SNAPSHOT:
                    self.state.reset()
                    self.dom.walk(d.get("node"), None, 0, NO_CTX)
                elif t == META:
                    self._meta(d)
                elif t == CUSTOM:
                    scrub_custom(self.dom, d)
                elif t == PLUGIN:
                    scrub_plugin(self.dom, d)
                elif t != DOM_CONTENT_LOADED and t != LOAD and d:  # a type of no known shape: as a payload
                    scrub_json(self.c, d, "custom", self.report)
            except Exception:  # malformed event: never store it unscrubbed
                self._fallback(d)
        return events

    def _incremental(self, d: dict[str, Any]) -> None:
        src = d.get("source")
        if src == MUTATION:
            scrub_mutation(self.dom, d)
        elif src == INPUT:
            self.inputs.scrub(d)
        elif src in CSS_SOURCES:
            scrub_css_event(self.c.text, src, d, self.report)
        elif src == CANVAS_MUTATION:
            scrub_canvas(self.dom, d)
        elif src == LOG:  # rrweb 1.x console
            scrub_json(self.c, d, "console", self.report)
        elif src not in _NUMERIC_SOURCES:  # a source of no known shape: every string in it
            scrub_json(self.c, d, "custom", self.report)

    def _meta(self, d: dict[str, Any]) -> None:
        """The page's URL with the URL rules; anything beyond href/width/height as a payload."""
        if isinstance(d.get("href"), str):
            d["href"] = scrub_url(self.c.text, d["href"], "meta.href", self.report, self.dom.label)
        if len(d) > 3 or ("href" in d and not isinstance(d["href"], str)):  # beyond href/width/height
            for k in d:
                if (k != "href" or not isinstance(d[k], str)) and isinstance(d[k], (str, dict, list)):
                    d[k] = scrub_json(self.c, d[k], "meta.href", self.report)

    def _fallback(self, d: dict[str, Any]) -> None:
        """A malformed event: every string through the detectors, and the DOM rules still
        applied to whatever looks like an element (a broken node elsewhere in a snapshot must
        not let a password field's value through)."""
        scrub_json(self.c, d, "malformed", self.report)
        self.report.add("@fallback", "malformed")
        dom = self.c.dom
        if dom.empty:
            return
        stack: list[tuple[Any, bool]] = [(d, False)]
        while stack:
            o, masked = stack.pop()
            if isinstance(o, list):
                stack.extend((v, masked) for v in o)
                continue
            if not isinstance(o, dict):
                continue
            tag, attrs = o.get("tagName"), o.get("attributes")
            if masked and isinstance(o.get("textContent"), str) and not o.get("isStyle"):
                o["textContent"] = mask_text(o["textContent"])
            if isinstance(tag, str) and isinstance(attrs, dict):
                try:
                    matched, _ = dom.match(tag.lower(), attrs, NO_CTX)
                except Exception:
                    matched = None
                nid = o.get("id")
                if matched or masked:
                    flags, mattr, block = (self.dom.apply_matches(matched, MASK if masked else 0, nid) if matched
                                           else (MASK, None, -1))
                    for k, v in list(attrs.items()):
                        if isinstance(v, str) and v and (k in TEXT_ATTRIBUTES or (mattr is not None and k in mattr)):
                            attrs[k] = mask_text(v)
                    if block >= 0:
                        o["childNodes"] = []
                    if isinstance(nid, (int, str)) and flags:
                        self.state.flags[nid] = flags | (BLOCK if block >= 0 else 0)
                    masked = masked or bool(flags & MASK)
            stack.extend((v, masked) for v in o.values() if isinstance(v, (dict, list)))
