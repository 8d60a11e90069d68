"""What indexing clicks adds to ingest's CPU: the worker's whole job on the benchmark recordings, with
and without the click extraction, in one process, interleaved, on the same segments.

    .venv/bin/python bench/bench_clicks.py [RECORDING ...] [--reps N]

By default every recording in tests/data (``tests.recordings.RECORDINGS``), each with the
``ui.click`` breadcrumb the snippet adds after a click (``tests.recordings.with_click_breadcrumbs``:
the recordings predate it), and with a click added after every 10th incremental event on an element
seen so far (``--no-extra-clicks``: only the recordings' own), each with its breadcrumb, so that
clicks are not rare. Cuts each into 5 s segments; each repetition sends a fresh cold rewrite of
them (``tests.recordings.Rewriter``, a new seed a repetition, the same seed for the run with clicks
and the one without), zlib-compressed as the SDK does, and runs ``process_segment`` (decompress,
bounds, parse, scrub, extract clicks, msgpack, brotli) over the whole replay in order, carrying the
state from segment to segment as ingest does; then the same with ``ClickTracker.segment`` replaced
by a stub that returns nothing. Runs alternate, per recording, best of N each; prints both CPU
times and the extraction's share. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import random
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
from tests.recordings import RECORDINGS, Rewriter, with_click_breadcrumbs


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


def with_more_clicks(events: list, seed: int) -> list:
    """``events`` with a click after every 10th incremental event, on a node of the last full
    snapshot (a fixed seed)."""
    rng = random.Random(seed)
    ids: list[int] = []
    out: list = []
    seen = 0
    for event in events:
        out.append(event)
        if not isinstance(event, dict):
            continue
        if event.get("type") == 2:
            stack, ids = [event["data"]["node"]], []
            while stack:
                node = stack.pop()
                if node.get("type") == 2:
                    ids.append(node["id"])
                stack.extend(node.get("childNodes") or [])
        elif event.get("type") == 3 and ids:
            seen += 1
            if seen % 10 == 0:
                out.append({"type": 3, "timestamp": event["timestamp"],
                            "data": {"source": 2, "type": 2, "id": rng.choice(ids), "x": 1, "y": 1}})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("recordings", nargs="*", default=[str(p) for p in RECORDINGS])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-extra-clicks", action="store_true")
    args = ap.parse_args()
    worker.init_worker(None, "bench-secret", LimitsConfig())
    worker._Worker.thread = None  # jobs on this thread: process_time counts them
    replays = []  # per recording: a Rewriter per 5 s segment
    n_events = 0
    for path in args.recordings:
        events = load_recording(Path(path))
        if not args.no_extra_clicks:
            events = with_more_clicks(events, 7)
        events = with_click_breadcrumbs(events)
        n_events += len(events)
        replays.append([Rewriter(json.dumps(seg, separators=(",", ":")).encode()) for seg in cut_segments(events, 5.0)])
    real = ClickTracker.segment

    def stub(self: ClickTracker, segment_id: int, events: list, max_clicks: int) -> SegmentClicks:
        return SegmentClicks()

    spent = [0.0]  # the extraction's own CPU, timed around each call: steadier than a difference of runs

    def timed(self: ClickTracker, segment_id: int, events: list, max_clicks: int) -> SegmentClicks:
        start = time.process_time()
        try:
            return real(self, segment_id, events, max_clicks)
        finally:
            spent[0] += time.process_time() - start

    # per recording, the best of N with and without: a burst of load on the shared machine then
    # spoils one run of one recording, not a whole repetition
    with_clicks = [float("inf")] * len(replays)
    without = [float("inf")] * len(replays)
    own = [0.0] * len(replays)  # the extraction's CPU inside each best run with it
    clicks = state_bytes = 0
    for rep in range(args.reps):
        for i, segments in enumerate(replays):
            payloads = [zlib.compress(r.rewrite(1000 + rep), 6) for r in segments]  # cold: new text a rep
            # which runs first alternates too: a warm cache or a frequency step favours neither
            for on in ((True, False) if (rep + i) % 2 == 0 else (False, True)):
                ClickTracker.segment = timed if on else stub  # type: ignore[method-assign]
                spent[0] = 0.0
                t, n, size = run_replay(payloads)
                if on:
                    if t < with_clicks[i]:
                        own[i] = spent[0]
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
    print(f"click extraction adds {100 * (a - b) / b:.1f} % to the worker's CPU (difference of the runs)")
    print(f"ClickTracker.segment itself: {1000 * sum(own):.1f} ms of {a:.3f} s, {100 * sum(own) / a:.2f} % (timed "
          "around each call)")


if __name__ == "__main__":
    main()
