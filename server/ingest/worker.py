"""The CPU-heavy half of ingest, run in worker processes: bytes in, scrubbed bytes out.

decompress (bounded) → check the JSON's bounds → parse → scrub → encode msgpack → compress brotli.
Nothing unscrubbed leaves a worker: the event loop only ever sees the stored blob, counts and the
scrub report.

A job's memory is bounded before it is parsed: the bytes are bounded by ``limits.max_recording_bytes``
(and the envelope's size), the number of JSON values and the nesting by ``limits.max_json_values`` and
``limits.max_nesting_depth``, both checked on the text (server/jsontext.py) so a document over them is
refused with a 413 without being built.

Each worker runs its jobs on one thread with a large stack and a raised recursion limit: on
Python 3.11 the C JSON parser and encoder then handle documents nested to the limit at full speed.
The limits never depend on it (newer Pythons cap the C parser at a fixed depth; server/jsontext.py
takes over past it).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from replayd.scrubbing import ReplayState, Scrubber
from replayd.scrubbing.events import CUSTOM, FULL_SNAPSHOT, RageClicks, is_click, timestamp_ms

from ..codec import encode_segment
from ..config import LimitsConfig
from ..jsontext import JsonTooLarge, check_bounds, loads
from ..scrub_rules import load_rules_file
from ..timestamps import plausible

T = TypeVar("T")
log = logging.getLogger("replayd.worker")

JOB_STACK_BYTES = 512 * 1024 * 1024
ITEM_MAX_DEPTH = 32  # error and replay events are trimmed below this depth
DEPTH_MARKER = "[max depth]"


class RecordingError(Exception):
    """A recording or item that cannot be ingested; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, detail: str):
        super().__init__(status, detail)
        self.status = status
        self.detail = detail


@dataclass(slots=True)
class SegmentJob:
    payload: bytes
    quality: int
    max_recording_bytes: int
    max_events: int
    state: bytes | None = None
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


class _Worker:
    """What one worker process keeps between jobs: the compiled scrubber, the limits, the job thread.
    Called in-process (tests, the scrub CLI), jobs run on the caller's thread with the default limits."""

    scrubber: Scrubber | None = None
    limits: LimitsConfig = LimitsConfig()
    thread: ThreadPoolExecutor | None = None


def init_worker(rules_path: str | None, secret: str, limits: LimitsConfig) -> None:
    sys.setrecursionlimit(limits.max_nesting_depth + 500)
    threading.stack_size(JOB_STACK_BYTES)
    _Worker.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job")
    threading.stack_size(0)
    _Worker.scrubber = Scrubber(load_rules_file(rules_path), secret=secret.encode())
    _Worker.limits = limits


def run_job(fn: Callable[..., T], *args: Any) -> T:
    """What the pool calls: ``fn(*args)`` on the job thread."""
    if _Worker.thread is None:
        return fn(*args)
    return _Worker.thread.submit(fn, *args).result()


def _scrubber() -> Scrubber:
    assert _Worker.scrubber is not None, "init_worker was not called"
    return _Worker.scrubber


def decompress_recording(data: bytes, limit: int) -> bytes:
    """Plain JSON, zlib or gzip; refuses to inflate past ``limit`` bytes (zip bombs)."""
    start = data.lstrip()[:1]
    if start in (b"[", b"{"):
        if len(data) > limit:
            raise RecordingError(413, f"recording is {len(data)} bytes, over limits.max_recording_bytes ({limit})")
        return data
    inflater = zlib.decompressobj(wbits=47)  # zlib or gzip header, detected
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise RecordingError(400, "recording is neither JSON nor valid zlib/gzip data") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise RecordingError(413, f"recording inflates past limits.max_recording_bytes ({limit} bytes)")
    if not inflater.eof:
        raise RecordingError(400, "recording's compressed data is truncated")
    return out


def parse_json(data: bytes, what: str, limits: LimitsConfig) -> Any:
    try:
        check_bounds(data, limits.max_json_values, limits.max_nesting_depth)
    except JsonTooLarge as over:
        raise RecordingError(413, f"{what} {over}") from None
    try:
        return loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordingError(400, f"{what} is not valid JSON: {str(exc)[:200]}") from None


@contextlib.contextmanager
def scrub_failures_refused(what: str) -> Iterator[None]:
    """What the scrubber cannot handle is refused (and logged), never stored unscrubbed, never a 500."""
    try:
        yield
    except RecordingError:
        raise
    except Exception as exc:
        log.exception("the scrubber failed on a %s; refusing it", what)
        raise RecordingError(400, f"{what} could not be scrubbed ({type(exc).__name__}); it was not stored") from None


def _event_ms(ts: Any, now: float) -> float | None:
    """An event's time in ms, or None if it is missing or implausible (``server.timestamps``)."""
    ms = timestamp_ms(ts)
    return ms if ms is not None and plausible(ms / 1000, now) is not None else None


def _summarise(events: list[Any]) -> tuple[float | None, float | None, bool, int, int, list[str]]:
    """Start, end (seconds), whether a full snapshot is present, clicks, rage clicks, error marks.

    Only plausible event times count, so a hostile timestamp cannot stretch a replay to infinity.
    """
    now = time.time()
    start = end = None
    full = False
    clicks = rage = 0
    rage_clicks = RageClicks()
    error_ids: list[str] = []
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise RecordingError(400, f"recording event {i} is not an object")
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
            if rage_clicks.click(cast("dict[str, Any]", data).get("id"), ts):  # is_click: data is a dict
                rage += 1
        elif kind == CUSTOM and isinstance(data, dict) and data.get("tag") == "error":
            payload = data.get("payload")
            if isinstance(payload, dict) and isinstance(payload.get("eventId"), str):
                error_ids.append(payload["eventId"])
    def to_s(ms):
        return (None if ms is None else ms / 1000.0)
    return to_s(start), to_s(end), full, clicks, rage, error_ids


def process_segment(job: SegmentJob) -> SegmentResult:
    replay_events = [process_item("replay_event", payload)[0] for payload in job.replay_events]
    raw = decompress_recording(job.payload, job.max_recording_bytes)
    events = parse_json(raw, "recording", _Worker.limits)
    if not isinstance(events, list):
        raise RecordingError(400, "recording must be a JSON array of rrweb events")
    if len(events) > job.max_events:
        raise RecordingError(
            413, f"recording has {len(events)} events, over limits.max_events_per_segment ({job.max_events})"
        )
    start, end, full, clicks, rage, error_ids = _summarise(events)
    state = ReplayState.from_bytes(job.state) if job.state else None
    with scrub_failures_refused("recording"):
        result = _scrubber().scrub_recording(events, state)
    blob = encode_segment(result.events, job.quality)
    return SegmentResult(
        blob=blob,
        raw_bytes=len(raw),
        event_count=len(result.events),
        started_at=start,
        ended_at=end,
        has_full_snapshot=full,
        click_count=clicks,
        rage_click_count=rage,
        report=result.report.to_dict(),
        state=result.state.to_bytes(),
        error_ids=error_ids,
        replay_events=replay_events,
    )


def process_item(kind: str, payload: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse and scrub an ``event`` or ``replay_event`` item."""
    data = parse_json(payload, f"{kind} item", _Worker.limits)
    if not isinstance(data, dict):
        raise RecordingError(400, f"{kind} item must be a JSON object")
    with scrub_failures_refused(f"{kind} item"):
        if kind == "event":
            scrubbed, report = _scrubber().scrub_error_event(data)
        else:
            scrubbed, report = _scrubber().scrub_replay_event(data)
    return trim_depth(scrubbed, ITEM_MAX_DEPTH), report.to_dict()


def trim_depth(value: Any, max_depth: int) -> Any:
    """Replace containers nested deeper than ``max_depth`` with a marker, as Sentry normalises events.

    Keeps what crosses back to the event loop shallow enough to pickle and serialise safely.
    """
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in list(children):
            if isinstance(child, (dict, list)):
                if depth >= max_depth:
                    node[key] = DEPTH_MARKER
                else:
                    stack.append((child, depth + 1))
    return value
