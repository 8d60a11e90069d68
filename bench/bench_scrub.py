"""Benchmark: default-rules scrubbing vs JSON parsing of the same data, in the same run.

    .venv/bin/python bench/bench_scrub.py [CORPUS] [--reps N]

CORPUS defaults to tests/data/corpus/nodedocs-session.json.br (in the repository): a
brotli-compressed JSON array of rrweb events.  It is cut into 5-second segments (as browser
SDKs upload them); each segment's JSON text is what both timings are per MB of.

- parse: ``json.loads`` of every segment.
- scrub: ``Scrubber.scrub_recording`` of every segment (already parsed, outside the timing),
  threading the ReplayState through the segments; a NEW Scrubber per repetition, so its
  per-string cache starts cold for each run over the session (the headline figure).
- scrub warm: the same with one long-lived Scrubber that has seen the session before (a
  worker process in steady state).
Best of N repetitions for each; the ratio is scrub_time / parse_time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from replayd.scrubbing import ReplayState, RuleSet, Scrubber
from tests.envelopes import segment_texts
from tests.harness import CORPUS, load_recording


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(CORPUS))
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args(argv)

    events = load_recording(Path(args.corpus))
    segs = segment_texts(events)
    total = sum(len(s) for s in segs)
    mb = total / 1e6

    parse_best = scrub_best = warm_best = float("inf")
    changed = 0
    long_lived = Scrubber(RuleSet.default(), secret=b"bench-secret")
    for _ in range(args.reps):
        t0 = time.perf_counter()
        for s in segs:
            json.loads(s)
        parse_best = min(parse_best, time.perf_counter() - t0)

        parsed = [json.loads(s) for s in segs]
        scrubber = Scrubber(RuleSet.default(), secret=b"bench-secret")
        state = ReplayState()
        t0 = time.perf_counter()
        for evs in parsed:
            res = scrubber.scrub_recording(evs, state)
            state = res.state
            changed += res.report.total
        scrub_best = min(scrub_best, time.perf_counter() - t0)

        # steady state: one long-lived Scrubber (as in a worker process) that has seen the
        # session before, so its per-string cache is warm
        parsed = [json.loads(s) for s in segs]
        state = ReplayState()
        t0 = time.perf_counter()
        for evs in parsed:
            state = long_lived.scrub_recording(evs, state).state
        warm_best = min(warm_best, time.perf_counter() - t0)

    print(f"corpus: {args.corpus}")
    print(f"segments: {len(segs)}  raw JSON: {mb:.2f} MB  reps: {args.reps} (best of)")
    print(f"json.loads : {mb / parse_best:8.1f} MB/s  ({parse_best * 1000:.1f} ms)")
    print(f"scrub      : {mb / scrub_best:8.1f} MB/s  ({scrub_best * 1000:.1f} ms)  "
          f"redactions/run: {changed // args.reps}")
    print(f"scrub warm : {mb / warm_best:8.1f} MB/s  ({warm_best * 1000:.1f} ms)  (long-lived Scrubber, cache warm)")
    print(f"ratio scrub/parse: {scrub_best / parse_best:.2f}   warm: {warm_best / parse_best:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
