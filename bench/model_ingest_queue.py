"""A queueing model of bench_ingest.py's load: which p99 a worker pool's job order allows.

    .venv/bin/python bench/model_ingest_queue.py [--ms-per-mb 62 ...] [--sessions 32]

No server: ``--concurrency`` clients each post a replay's real segments (the recordings of
tests/recordings.RECORDINGS cut into 5-second segments, as bench_ingest.py sends them) one after the
other; an envelope spends ``--before`` ms on the event loop, then a job of ``size × ms-per-mb`` in a
pool of ``--workers``, then ``--after`` ms (blob write and index commit). Printed per job order:
wall time, p50 and p99 of an envelope, and the worst. Calibrated against the quiet-machine run of
2026-12-01 04:54 (workers at ~65 ms/MB: p99 274–295 ms measured, 272 modelled). See
docs/benchmarks.md, § Where the p99 comes from.
"""

from __future__ import annotations

import argparse
import heapq
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from tests.envelopes import segment_texts
from tests.harness import load_recording
from tests.recordings import RECORDINGS


@dataclass(frozen=True)
class Order:
    name: str
    slots: int | None  # jobs in the executor at once; None: all (ProcessPoolExecutor as it is)
    ms_per_byte: float  # how far a job's compressed byte moves its deadline forward; 0: arrival order


ORDERS = (
    Order("arrival, all in the executor (before)", None, 0.0),
    Order("arrival, workers + 1 in the executor", 1, 0.0),
    Order("deadline, 1 µs per compressed byte", 1, 1e-3),
    Order("deadline, 2 µs per compressed byte", 1, 2e-3),
    Order("largest first", 1, 1e6),
)


def simulate(recordings: list[list[tuple[int, int]]], order: Order, ms_per_mb: float, sessions: int,
             clients: int, workers: int, before: float, after: float) -> tuple[float, float, float, float]:
    """(wall ms, p50, p99, worst) of one load."""
    replays = [recordings[i % len(recordings)] for i in range(sessions)]
    timeline: list[tuple[float, int, str, tuple]] = []
    counter = 0

    def at(ms: float, what: str, data: tuple) -> None:
        nonlocal counter
        counter += 1
        heapq.heappush(timeline, (ms, counter, what, data))

    waiting: list[tuple[float, int, tuple]] = []  # by deadline
    executor: list[tuple] = []  # handed over, in order
    idle = workers
    handed = 0
    latencies: list[float] = []
    slots = workers + order.slots if order.slots is not None else None

    def hand_over(now: float) -> None:
        nonlocal handed, idle
        while waiting and (slots is None or handed < slots):
            executor.append(heapq.heappop(waiting)[2])
            handed += 1
        while executor and idle:
            job = executor.pop(0)
            idle -= 1
            at(now + job[0], "done", job[1])

    for _ in range(min(clients, len(replays))):
        at(0.0, "post", (replays.pop(0), 0, 0.0))
    now = 0.0
    while timeline:
        now, _, what, data = heapq.heappop(timeline)
        if what == "post":
            at(now + before, "job", (data[0], data[1], now))
        elif what == "job":
            raw, compressed = data[0][data[1]]
            counter += 1
            heapq.heappush(waiting, (now - compressed * order.ms_per_byte, counter,
                                     (raw / 1e6 * ms_per_mb + 1.0, data)))
            hand_over(now)
        elif what == "done":
            idle += 1
            handed -= 1
            at(now + after, "answer", data)
            hand_over(now)
        else:  # the answer: the client posts its replay's next segment, or takes the next replay
            segments, i, t0 = data
            latencies.append(now - t0)
            if i + 1 < len(segments):
                at(now, "post", (segments, i + 1, 0.0))
            elif replays:
                at(now, "post", (replays.pop(0), 0, 0.0))
    latencies.sort()
    return now, latencies[len(latencies) // 2], latencies[round(0.99 * (len(latencies) - 1))], latencies[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ms-per-mb", type=float, action="append",
                        help="a worker's CPU ms per MB of JSON; repeatable (default 62, 55, 50)")
    parser.add_argument("--sessions", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--before", type=float, default=2.0, help="ms on the event loop before the job")
    parser.add_argument("--after", type=float, default=6.0, help="ms after it (blob write, index commit)")
    args = parser.parse_args()
    recordings = [[(len(t), len(zlib.compress(t, 6))) for t in segment_texts(load_recording(p))] for p in RECORDINGS]
    for ms_per_mb in args.ms_per_mb or [62.0, 55.0, 50.0]:
        print(f"workers at {ms_per_mb:g} ms per MB of JSON:")
        for order in ORDERS:
            wall, p50, p99, worst = simulate(recordings, order, ms_per_mb, args.sessions, args.concurrency,
                                             args.workers, args.before, args.after)
            print(f"  {order.name:42s} wall {wall / 1000:5.2f} s  p50 {p50:4.0f} ms  p99 {p99:4.0f} ms  "
                  f"worst {worst:4.0f} ms")


if __name__ == "__main__":
    main()
