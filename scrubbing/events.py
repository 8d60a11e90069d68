"""rrweb facts: event, source, interaction and node numbers, event times, clicks; the dead and rage click rule.

The one place these are written down, like rrweb's own ``@rrweb/types``: the scrubber's walk,
the ingest summary and clicks (``server/ingest/``) and the player (``player/timeline.py``) import
them from here.  A leaf module: it imports nothing of ours.
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


# Frustration, Sentry's rules (its replay SDK's ClickDetector and its documented dead/rage clicks):
# a click on a link or button after which the DOM does not change within DEAD_CLICK_MS is dead;
# clicks on one element each within RAGE_GAP_MS of the one before form a burst (Sentry's
# multi-click); a burst of at least RAGE_CLICKS clicks whose first click is dead is a rage click,
# marked at its first click. server/ingest/clicks.py applies it when a segment is indexed; the
# player marks the rage clicks the index holds, so both show the same ones.
DEAD_CLICK_MS = 7000
RAGE_CLICKS = 5
RAGE_GAP_MS = 1000


def joins_burst(last_click_ms: float, ms: float) -> bool:
    """Whether a click at ``ms`` on the element last clicked at ``last_click_ms`` continues that burst."""
    return 0 <= ms - last_click_ms <= RAGE_GAP_MS


def is_rage_burst(clicks: int, first_click_dead: bool) -> bool:
    return first_click_dead and clicks >= RAGE_CLICKS
