"""What the index keeps of a segment besides its blob: its times, full snapshot, clicks and error marks.

rrweb's numbers and event times come from ``scrubbing/events.py``. Dead and rage clicks are decided
from the scrubbed events (``clicks.py``): a rage click needs a dead one, which a later segment may
decide.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

from replayd.scrubbing.events import CUSTOM, FULL_SNAPSHOT, is_click, timestamp_ms

from ..timestamps import plausible
from .refused import IngestRefused


class SegmentSummary(NamedTuple):
    started_at: float | None  # seconds
    ended_at: float | None
    has_full_snapshot: bool
    click_count: int
    error_ids: list[str]  # the Sentry errors the recording marks


def _event_ms(ts: Any, now: float) -> float | None:
    """An event's time in ms, or None if it is missing or implausible (``server.timestamps``)."""
    ms = timestamp_ms(ts)
    return ms if ms is not None and plausible(ms / 1000, now) is not None else None


def summarise(events: list[Any]) -> SegmentSummary:
    """One pass over a segment's events, before they are scrubbed.

    Only plausible event times count, so a hostile timestamp cannot stretch a replay to infinity.
    """
    now = time.time()
    start = end = None
    full = False
    clicks = 0
    error_ids: list[str] = []
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise IngestRefused(400, f"recording event {i} is not an object")
        ts = _event_ms(event.get("timestamp"), now)
        if ts is not None:
            start = ts if start is None or ts < start else start
            end = ts if end is None or ts > end else end
        kind = event.get("type")
        data = event.get("data")
        if kind == FULL_SNAPSHOT:
            full = True
        elif is_click(event):
            clicks += 1
        elif kind == CUSTOM and isinstance(data, dict) and data.get("tag") == "error":
            payload = data.get("payload")
            if isinstance(payload, dict) and isinstance(payload.get("eventId"), str):
                error_ids.append(payload["eventId"])

    def to_s(ms: float | None) -> float | None:
        return None if ms is None else ms / 1000.0

    return SegmentSummary(to_s(start), to_s(end), full, clicks, error_ids)
