"""A worker's segment job, stage by stage, in one process: CPU ms per MB of JSON of each, on cold text.

    .venv/bin/python bench/bench_ingest_job.py [--seeds 2] [--recording PATH ...]

Runs what ``server/ingest/jobs.process_segment`` runs, in its order and with the garbage collector
off as in a worker, over rewrites of the recordings (tests/recordings.Rewriter: text no cache has
seen), each replay's segments in order with the state carried, timing each stage with the process's
CPU clock; then the one-core floor's two steps on the same segments (orjson.loads, brotli-5 of the
JSON). CPU time, so steadier than bench_ingest.py on a busy machine; no event loop, no pool hand-off.
See docs/benchmarks.md, § Where the CPU goes.
"""

from __future__ import annotations

import argparse
import gc
import pickle
import sys
import time
import zlib
from collections import defaultdict
from pathlib import Path

import brotli
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from replayd.scrubbing import ReplayState, Scrubber
from replayd.server import strings_apart
from replayd.server.codec import VERSION, _pack_events
from replayd.server.config import LimitsConfig, StorageConfig
from replayd.server.ingest.bounds import decompress_recording
from replayd.server.ingest.clicks import pack_state, unpack_state
from replayd.server.ingest.jobs import SegmentResult
from replayd.server.ingest.summary import summarise
from replayd.server.jsontext import check_bounds, loads
from replayd.server.scrub_rules import load_rules_file
from tests.envelopes import segment_texts
from tests.harness import load_recording
from tests.recordings import RECORDINGS, Rewriter

MB = 1e6
FLOOR_QUALITY = 5  # issue #13's floor: orjson.loads + brotli-5, whatever the server stores at


class Stages:
    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self._t = 0.0

    def start(self) -> None:
        self._t = time.process_time()

    def done(self, stage: str) -> None:
        now = time.process_time()
        self.cpu[stage] += now - self._t
        self._t = now


def run_replay(rewriters: list[Rewriter], seed: int, scrubber: Scrubber, limits: LimitsConfig, quality: int,
               job: Stages, floor: Stages) -> int:
    """One replay's segments through the job's stages; its bytes of JSON."""
    state: bytes | None = None
    total = 0
    for segment_id, rewriter in enumerate(rewriters):
        text = rewriter.rewrite(seed)
        payload = zlib.compress(text, 6)
        total += len(text)
        gc.collect()
        gc.disable()
        job.start()
        raw = decompress_recording(payload, limits.max_recording_bytes)
        job.done("zlib decompress")
        check_bounds(raw, limits.max_json_values, limits.max_nesting_depth)
        job.done("JSON bounds check")
        events = loads(raw)
        job.done("parse (orjson)")
        summary = summarise(events)
        job.done("summarise")
        scrubber_state, tracker = unpack_state(state)
        replay_state = ReplayState.from_bytes(scrubber_state) if scrubber_state else ReplayState()
        job.done("replay state in (unpack)")
        result = scrubber.scrub_recording(events, replay_state)
        job.done("scrub")
        clicks = tracker.segment(segment_id, result.events, limits.max_clicks_per_segment)
        job.done("click index")
        try:  # what codec.encode_segment does, stage by stage
            parts = strings_apart.split([{"v": VERSION, "events": result.events}])
            job.done("strings apart: walk + msgpack pack")
            blob = strings_apart.compress(*parts, quality)
        except strings_apart.CannotHold:
            blob = brotli.compress(_pack_events(result.events), quality=quality, mode=brotli.MODE_GENERIC)
        job.done("brotli compress")
        state = pack_state(result.state.to_bytes(), tracker)
        job.done("replay state out (pack)")
        answer = SegmentResult(blob, len(raw), len(result.events), summary.started_at, summary.ended_at,
                               summary.has_full_snapshot, summary.click_count, clicks.rage_click_count,
                               result.report.to_dict(), state, summary.error_ids, [], clicks)
        pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        job.done("report + pickle the result")
        del events, result, replay_state
        job.done("free the parsed events")
        gc.enable()
        floor.start()
        orjson.loads(text)
        floor.done("orjson.loads")
        brotli.compress(text, quality=FLOOR_QUALITY)
        floor.done(f"brotli q{FLOOR_QUALITY} of the JSON")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recording", type=Path, action="append", help="default: tests/recordings.RECORDINGS")
    parser.add_argument("--seeds", type=int, default=2, help="rewrites of each recording (default 2)")
    parser.add_argument("--quality", type=int, default=StorageConfig().compression_quality)
    args = parser.parse_args()
    scrubber = Scrubber(load_rules_file(None), secret=b"bench")
    limits = LimitsConfig()
    replays = [[Rewriter(t) for t in segment_texts(load_recording(p))] for p in args.recording or RECORDINGS]
    job, floor = Stages(), Stages()
    total = sum(run_replay(rewriters, 20_001 + seed, scrubber, limits, args.quality, job, floor)
                for seed in range(args.seeds) for rewriters in replays)
    job_cpu, floor_cpu = sum(job.cpu.values()), sum(floor.cpu.values())
    print(f"{total / MB:.1f} MB of JSON; the job {job_cpu * 1000 / (total / MB):.1f} CPU ms/MB, "
          f"the floor {floor_cpu * 1000 / (total / MB):.1f} (job / floor {job_cpu / floor_cpu:.2f})")
    for name, stages, whole in (("job", job, job_cpu), ("floor", floor, floor_cpu)):
        for stage, cpu in sorted(stages.cpu.items(), key=lambda kv: -kv[1]):
            print(f"  {name:5s} {stage:30s} {cpu * 1000 / (total / MB):6.2f} ms/MB  {cpu / whole:6.1%}")


if __name__ == "__main__":
    main()
