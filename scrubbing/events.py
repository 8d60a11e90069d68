"""rrweb facts: event, source, interaction and node numbers, event times, clicks and rage clicks.

The one place these are written down, like rrweb's own ``@rrweb/types``: the scrubber's walk,
the ingest summary (``server/ingest/summary.py``) and the player's markers (``player/timeline.py``)
import them from here.  A leaf module: it imports nothing of ours.
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Any


class EventType(IntEnum):
    DOM_CONTENT_LOADED = 0
    LOAD = 1
    FULL_SNAPSHOT = 2
    INCREMENTAL_SNAPSHOT = 3
    META = 4
    CUSTOM = 5
    PLUGIN = 6
    ASSET = 7
    ANNOTATION = 8


class IncrementalSource(IntEnum):
    MUTATION = 0
    MOUSE_MOVE = 1
    MOUSE_INTERACTION = 2
    SCROLL = 3
    VIEWPORT_RESIZE = 4
    INPUT = 5
    TOUCH_MOVE = 6
    MEDIA_INTERACTION = 7
    STYLE_SHEET_RULE = 8
    CANVAS_MUTATION = 9
    FONT = 10
    LOG = 11
    DRAG = 12
    STYLE_DECLARATION = 13
    SELECTION = 14
    ADOPTED_STYLE_SHEET = 15
    CUSTOM_ELEMENT = 16


class MouseInteraction(IntEnum):
    MOUSE_UP = 0
    MOUSE_DOWN = 1
    CLICK = 2
    CONTEXT_MENU = 3
    DBL_CLICK = 4
    FOCUS = 5
    BLUR = 6
    TOUCH_START = 7
    TOUCH_MOVE_DEPARTED = 8
    TOUCH_END = 9
    TOUCH_CANCEL = 10


class NodeType(IntEnum):
    """Serialized nodes of ``rrweb-snapshot`` (not the DOM's ``Node.nodeType`` numbers)."""

    DOCUMENT = 0
    DOCUMENT_TYPE = 1
    ELEMENT = 2
    TEXT = 3
    CDATA = 4
    COMMENT = 5


# Plain ints of the members that per-event and per-node loops compare with: CPython specialises
# int == int only, and comparing with an IntEnum member costs 2-6x as much (measured on 3.11
# and 3.13), which the scrubber's node walk would feel.
DOM_CONTENT_LOADED = EventType.DOM_CONTENT_LOADED.value
LOAD = EventType.LOAD.value
FULL_SNAPSHOT = EventType.FULL_SNAPSHOT.value
INCREMENTAL_SNAPSHOT = EventType.INCREMENTAL_SNAPSHOT.value
META = EventType.META.value
CUSTOM = EventType.CUSTOM.value
PLUGIN = EventType.PLUGIN.value

MUTATION = IncrementalSource.MUTATION.value
MOUSE_INTERACTION = IncrementalSource.MOUSE_INTERACTION.value
INPUT = IncrementalSource.INPUT.value
STYLE_SHEET_RULE = IncrementalSource.STYLE_SHEET_RULE.value
CANVAS_MUTATION = IncrementalSource.CANVAS_MUTATION.value
FONT = IncrementalSource.FONT.value
LOG = IncrementalSource.LOG.value
STYLE_DECLARATION = IncrementalSource.STYLE_DECLARATION.value
ADOPTED_STYLE_SHEET = IncrementalSource.ADOPTED_STYLE_SHEET.value

CLICK = MouseInteraction.CLICK.value

DOCUMENT_NODE = NodeType.DOCUMENT.value
ELEMENT_NODE = NodeType.ELEMENT.value
TEXT_NODE = NodeType.TEXT.value
CDATA_NODE = NodeType.CDATA.value
COMMENT_NODE = NodeType.COMMENT.value


# ---- times ------------------------------------------------------------------------------------

# rrweb writes event times in ms since the epoch; the Sentry SDK writes its custom events' (and
# their payloads') times in seconds.  A time under this is seconds: in ms it would be before 1973.
SECONDS_BELOW = 1e11


def timestamp_ms(ts: Any) -> float | None:
    """A recorded time in ms (seconds if under ``SECONDS_BELOW``); None unless a finite number."""
    if ts.__class__ is bool or not isinstance(ts, (int, float)):
        return None
    try:
        ms = float(ts) * 1000 if ts < SECONDS_BELOW else float(ts)
    except OverflowError:  # an integer past a float's range
        return None
    return ms if math.isfinite(ms) else None


def event_ms(event: dict[str, Any]) -> float | None:
    """An event's ``timestamp`` in ms, as :func:`timestamp_ms` reads it."""
    return timestamp_ms(event.get("timestamp"))


# ---- clicks -----------------------------------------------------------------------------------

def is_click(event: dict[str, Any]) -> bool:
    """A mouse click as rrweb records it: a MouseInteraction of type Click."""
    data = event.get("data")
    return (
        event.get("type") == INCREMENTAL_SNAPSHOT
        and isinstance(data, dict)
        and data.get("source") == MOUSE_INTERACTION
        and data.get("type") == CLICK
    )


RAGE_CLICKS = 3  # clicks on one node within RAGE_WINDOW_MS make a rage click
RAGE_WINDOW_MS = 1000


class RageClicks:
    """The rage-click rule, for the ingest summary and the player's markers alike.

    ``click(node, ms)`` is true when exactly ``RAGE_CLICKS`` clicks on ``node`` (this one included)
    lie within ``RAGE_WINDOW_MS`` of it: a burst counts once, a steady series once per window.
    Only the last ``RAGE_CLICKS`` clicks of a node are remembered (all a decision needs), so
    thousands of clicks at one instant cost linear time and constant memory per node.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[Any, list[float]] = {}

    def click(self, node: Any, ms: float | None) -> bool:
        if ms is None or isinstance(node, (dict, list)):  # no time, or an id no map can hold
            return False
        last = self._last.get(node)
        if last is None:
            last = self._last[node] = []
        near = 1 + sum(1 for t in last if abs(ms - t) <= RAGE_WINDOW_MS)
        last.append(ms)
        if len(last) > RAGE_CLICKS:
            del last[0]
        return near == RAGE_CLICKS

    def forget_idle(self) -> None:
        """Forget nodes whose last click is over RAGE_WINDOW_MS before the latest click: they can
        make no rage click with a later one, so a long replay's many nodes cost no memory."""
        latest = max((times[-1] for times in self._last.values()), default=0.0)
        self._last = {node: times for node, times in self._last.items() if latest - times[-1] <= RAGE_WINDOW_MS}
