"""What indexing clicks adds to ingest's CPU: the worker's whole job on the benchmark recordings, with
and without the click extraction, in one process, interleaved, on the same segments.

    .venv/bin/python bench/bench_clicks.py [RECORDING ...] [--reps N]

By default every recording in tests/data (``tests.recordings.RECORDINGS``). Cuts each into 5 s
segments; each repetition sends a fresh cold rewrite of them (``tests.recordings.Rewriter``, a new
seed a repetition, the same seed for the run with clicks and the one without), zlib-compressed as
the SDK does, and runs
``process_segment`` (decompress, bounds, parse, scrub, extract clicks, msgpack, brotli) over the
whole replay in order, carrying the state from segment to segment as ingest does; then the same
with ``limits.max_click_nodes: 0`` (the scrubber's walk notes no clickable element) and
``ClickTracker.segment`` replaced by a stub that returns nothing. Runs alternate, per recording, best of N each;
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
from tests.harness import load_recording
from tests.recordings import RECORDINGS, Rewriter


def run_replay(payloads: list[bytes]) -> tuple[float, int, int]:
    """The worker's jobs for every segment of one replay, in order; (CPU seconds, clicks, state bytes).
    The scrubber's text caches are emptied first: the run with clicks and the one without scrub the same
    rewrite, and the second would otherwise find every string of it cached."""
    text = worker.worker_scrubber()._c.text
    text.cache.clear()
    text.url_cache.clear()
    state = None
    clicks = 0
    start = time.process_time()
    for i, payload in enumerate(payloads):
        job = jobs.SegmentJob(payload=payload, quality=5, max_recording_bytes=64 << 20, max_events=10**6,
                                state=state, segment_id=i)
        result = worker.run_job(jobs.process_segment, job)  # as the pool runs it: without the cyclic GC
        state = result.state
        clicks += len(result.clicks.clicks)
    return time.process_time() - start, clicks, len(state or b"")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("recordings", nargs="*", default=[str(p) for p in RECORDINGS])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    worker.init_worker(None, "bench-secret", LimitsConfig())
    worker._Worker.thread = None  # jobs on this thread: process_time counts them
    replays = []  # per recording: a Rewriter per 5 s segment
    n_events = 0
    for path in args.recordings:
        events = load_recording(Path(path))
        n_events += len(events)
        replays.append([Rewriter(json.dumps(seg, separators=(",", ":")).encode()) for seg in cut_segments(events, 5.0)])
    real = ClickTracker.segment

    def stub(self: ClickTracker, segment_id: int, events: list, max_clicks: int, state: object) -> SegmentClicks:
        return SegmentClicks()

    # per recording, the best of N with and without: a burst of load on the shared machine then
    # spoils one run of one recording, not a whole repetition
    with_clicks = [float("inf")] * len(replays)
    without = [float("inf")] * len(replays)
    clicks = state_bytes = 0
    for rep in range(args.reps):
        for i, segments in enumerate(replays):
            payloads = [zlib.compress(r.rewrite(1000 + rep), 6) for r in segments]  # cold: new text a rep
            # which runs first alternates too: a warm cache or a frequency step favours neither
            for on in ((True, False) if (rep + i) % 2 == 0 else (False, True)):
                ClickTracker.segment = real if on else stub  # type: ignore[method-assign]
                worker._Worker.limits = LimitsConfig() if on else LimitsConfig(max_click_nodes=0)
                t, n, size = run_replay(payloads)
                if on:
                    with_clicks[i] = min(with_clicks[i], t)
                    if rep == 0:
                        clicks += n
                    state_bytes = max(state_bytes, size)
                else:
                    without[i] = min(without[i], t)
    ClickTracker.segment = real  # type: ignore[method-assign]
    a, b = sum(with_clicks), sum(without)
    n_segments = sum(len(s) for s in replays)
    print(f"{len(replays)} recordings, {n_segments} segments, {n_events} events, {clicks} clicks indexed, "
          f"largest state {state_bytes} bytes")
    print(f"worker CPU without click extraction: {b:.3f} s (sum over the recordings of the best of {args.reps})")
    print(f"worker CPU with click extraction:    {a:.3f} s")
    print(f"click extraction adds {100 * (a - b) / b:.1f} % to the worker's CPU")


if __name__ == "__main__":
    main()
