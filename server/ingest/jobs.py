"""The jobs a worker process runs: a segment (with its envelope's replay events) and an item.

decompress (bounded) → check the JSON's bounds → parse → summarise → scrub → encode msgpack →
compress brotli. Nothing unscrubbed leaves a worker: the event loop only ever sees the stored blob,
counts and the scrub report.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from replayd.scrubbing import ReplayState

from ..codec import CodecError, encode_segment
from .bounds import ITEM_MAX_DEPTH, decompress_recording, parse_json, trim_depth
from .clicks import SegmentClicks, pack_state, unpack_state
from .refused import IngestRefused
from .summary import summarise
from .worker import worker_limits, worker_scrubber

log = logging.getLogger("replayd.worker")


@dataclass(slots=True)
class SegmentJob:
    payload: bytes
    quality: int
    max_recording_bytes: int
    max_events: int
    state: bytes | None = None
    segment_id: int = 0
    # The envelope's replay_event items, scrubbed in the same job to save a round trip.
    replay_events: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class SegmentResult:
    blob: bytes
    raw_bytes: int
    event_count: int
    started_at: float | None
    ended_at: float | None
    has_full_snapshot: bool
    click_count: int
    rage_click_count: int
    report: dict[str, Any]
    state: bytes
    error_ids: list[str] = field(default_factory=list)
    replay_events: list[dict[str, Any]] = field(default_factory=list)
    clicks: SegmentClicks = field(default_factory=SegmentClicks)


@contextlib.contextmanager
def scrub_failures_refused(what: str) -> Iterator[None]:
    """What the scrubber cannot handle is refused (and logged), never stored unscrubbed, never a 500."""
    try:
        yield
    except IngestRefused:
        raise
    except Exception as exc:
        log.exception("the scrubber failed on a %s; refusing it", what)
        raise IngestRefused(400, f"{what} could not be scrubbed ({type(exc).__name__}); it was not stored") from None


def process_segment(job: SegmentJob) -> SegmentResult:
    replay_events = [process_item("replay_event", payload)[0] for payload in job.replay_events]
    raw = decompress_recording(job.payload, job.max_recording_bytes)
    events = parse_json(raw, "recording", worker_limits())
    if not isinstance(events, list):
        raise IngestRefused(400, "recording must be a JSON array of rrweb events")
    if len(events) > job.max_events:
        raise IngestRefused(
            413, f"recording has {len(events)} events, over limits.max_events_per_segment ({job.max_events})"
        )
    summary = summarise(events)
    limits = worker_limits()
    scrubber_state, tracker = unpack_state(job.state)
    state = ReplayState.from_bytes(scrubber_state) if scrubber_state else ReplayState()
    with scrub_failures_refused("recording"):
        result = worker_scrubber().scrub_recording(events, state)
        # from the scrubbed events: the index never sees what the scrubber removed
        indexed = tracker.segment(job.segment_id, result.events, limits.max_clicks_per_segment)
    state_bytes = pack_state(result.state.to_bytes(), tracker)
    try:
        blob = encode_segment(result.events, job.quality, limits.max_decoded_bytes)
    except CodecError as exc:
        raise IngestRefused(413, f"recording {exc}") from None
    return SegmentResult(
        blob=blob,
        raw_bytes=len(raw),
        event_count=len(result.events),
        started_at=summary.started_at,
        ended_at=summary.ended_at,
        has_full_snapshot=summary.has_full_snapshot,
        click_count=summary.click_count,
        rage_click_count=indexed.rage_click_count,
        report=result.report.to_dict(),
        state=state_bytes,
        error_ids=summary.error_ids,
        replay_events=replay_events,
        clicks=indexed,
    )


def process_item(kind: str, payload: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse and scrub an ``event`` or ``replay_event`` item."""
    data = parse_json(payload, f"{kind} item", worker_limits())
    if not isinstance(data, dict):
        raise IngestRefused(400, f"{kind} item must be a JSON object")
    with scrub_failures_refused(f"{kind} item"):
        if kind == "event":
            scrubbed, report = worker_scrubber().scrub_error_event(data)
        else:
            scrubbed, report = worker_scrubber().scrub_replay_event(data)
    return trim_depth(scrubbed, ITEM_MAX_DEPTH), report.to_dict()
