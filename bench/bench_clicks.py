"""What indexing clicks adds to ingest's CPU: the worker's whole job on a real recording, with and
without the click extraction, in one process, interleaved, on the same segments.

    .venv/bin/python bench/bench_clicks.py [CORPUS] [--reps N]

Cuts the corpus into 5 s segments, zlib-compresses each as the SDK does, and runs
``process_segment`` (decompress, bounds, parse, scrub, extract clicks, msgpack, brotli) over the
whole replay in order, carrying the state from segment to segment as ingest does; then the same
with ``limits.max_click_nodes: 0`` (the scrubber's walk notes no clickable element) and
``ClickTracker.segment`` replaced by a stub that returns nothing. Runs alternate, best of N each;
prints both CPU times, the extraction's share and the state's size. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from replayd.server.config import LimitsConfig
from replayd.server.ingest import jobs, worker
from replayd.server.ingest.clicks import ClickTracker, SegmentClicks
from tests.envelopes import cut_segments
from tests.harness import CORPUS, load_recording


def run_replay(payloads: list[bytes]) -> tuple[float, int, int]:
    """The worker's jobs for every segment of one replay, in order; (CPU seconds, clicks, state bytes)."""
    state = None
    clicks = 0
    start = time.process_time()
    for i, payload in enumerate(payloads):
        job = jobs.SegmentJob(payload=payload, quality=5, max_recording_bytes=64 << 20, max_events=10**6,
                                state=state, segment_id=i)
        result = jobs.process_segment(job)
        state = result.state
        clicks += len(result.clicks.clicks)
    return time.process_time() - start, clicks, len(state or b"")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=str(CORPUS))
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    worker.init_worker(None, "bench-secret", LimitsConfig())
    worker._Worker.thread = None  # jobs on this thread: process_time counts them
    events = load_recording(Path(args.corpus))
    payloads = [zlib.compress(json.dumps(seg).encode(), 6) for seg in cut_segments(events, 5.0)]
    real = ClickTracker.segment

    def stub(self: ClickTracker, segment_id: int, events: list, max_clicks: int, state: object) -> SegmentClicks:
        return SegmentClicks()

    with_clicks, without = [], []
    clicks = state_bytes = 0
    for _ in range(args.reps):
        ClickTracker.segment = real  # type: ignore[method-assign]
        worker._Worker.limits = LimitsConfig()
        t, clicks, state_bytes = run_replay(payloads)
        with_clicks.append(t)
        ClickTracker.segment = stub  # type: ignore[method-assign]
        worker._Worker.limits = LimitsConfig(max_click_nodes=0)
        without.append(run_replay(payloads)[0])
    ClickTracker.segment = real  # type: ignore[method-assign]
    a, b = min(with_clicks), min(without)
    print(f"{len(payloads)} segments, {len(events)} events, {clicks} clicks indexed, last state {state_bytes} bytes")
    print(f"worker CPU without click extraction: {b:.3f} s (best of {args.reps})")
    print(f"worker CPU with click extraction:    {a:.3f} s")
    print(f"click extraction adds {100 * (a - b) / b:.1f} % to the worker's CPU")


if __name__ == "__main__":
    main()
