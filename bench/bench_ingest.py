"""Ingest benchmark: post a real recording, cut into 5-second segments, to a running ``replayd serve``.

    .venv/bin/python bench/bench_ingest.py [--corpus PATH] [--concurrency N] [--repeat K] [--quality Q]

Starts its own ``replayd serve`` (temporary data directory, free port, ``server.workers`` = one per
core unless ``--workers``), cuts the corpus into 5 s segments by event timestamps, makes ``--repeat``
distinct replays of it (same events, new replay ids), zlib-compresses each segment as the Sentry SDK
does, and posts them as Sentry envelopes (``replay_event`` + ``replay_recording``) with
``--concurrency`` replays in flight; one replay's segments go one after the other, in order.

Prints ingest throughput (MB/s of raw JSON, segments/s), request latency (p50/p99), stored bytes
against raw and against zlib level 6 of the same segments (what Sentry stores; target <= 0.8x),
and, measured in the same run on the same segments, the one-core floor: ``json.loads`` + brotli at
the configured quality in this process. Target: ingest throughput / floor >= 1.0 on 2 cores.
Also: where the CPU went (server's event-loop process vs. its worker processes vs. this client),
and the per-stage cost of the worker pipeline in one process (``--profile`` adds a cProfile listing).
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import brotli

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from replayd.player.timeline import event_ms
from tests.envelopes import cut_segments, recording_envelope, replay_event
from tests.harness import CORPUS, PUBLIC_KEY, RunningServer, launch_server, load_recording

SEGMENT_SECONDS = 5.0
MB = 1e6


# --- the corpus, cut into segments ------------------------------------------------------------

@dataclass
class Segment:
    index: int
    raw: bytes  # the JSON the SDK would compress
    zlib: bytes  # what the SDK sends (zlib level 6, like its compression worker)
    start_ms: float
    end_ms: float
    urls: list[str]


def make_segments(events: list[dict[str, Any]], seconds: float = SEGMENT_SECONDS) -> list[Segment]:
    """The recording cut every ``seconds`` of event time (as the SDK flushes), each segment compressed
    once here, outside any timing."""
    segments = []
    for i, group in enumerate(cut_segments(events, seconds)):
        raw = json.dumps(group, separators=(",", ":"), ensure_ascii=False).encode()
        times = [ms for e in group if (ms := event_ms(e)) is not None]
        urls = [e["data"]["href"] for e in group if e.get("type") == 4 and isinstance(e.get("data"), dict)
                and isinstance(e["data"].get("href"), str)]
        segments.append(Segment(i, raw, zlib.compress(raw, 6), min(times), max(times), urls))
    return segments


def envelope(replay_id: str, segment: Segment, replay_start_ms: float) -> bytes:
    """A replay segment as @sentry/browser 11.x sends it, its body compressed beforehand."""
    event = replay_event(replay_id, segment.index, replay_start_ms / 1000, segment.end_ms / 1000, segment.urls)
    event["environment"] = "bench"
    return recording_envelope(event, segment.zlib)


# --- the one-core floor and the worker pipeline's stages, in this process ----------------------

def floor_seconds(segments: list[Segment], quality: int, passes: int = 3) -> tuple[float, float]:
    """Best of ``passes``: json.loads + brotli(quality) of every segment's JSON, in one process.

    Returns (wall seconds, CPU seconds of this process); the CPU time is what other processes on a
    busy machine do not inflate as much.
    """
    best, best_cpu = float("inf"), float("inf")
    for _ in range(passes):
        t0, c0 = time.perf_counter(), time.process_time()
        for segment in segments:
            json.loads(segment.raw)
            brotli.compress(segment.raw, quality=quality)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu


def stage_seconds(segments: list[Segment], quality: int, profile: bool) -> tuple[dict[str, float], str]:
    """The server's worker pipeline in this process, stage by stage (its own functions), one pass, CPU time."""
    from replayd.scrubbing import Scrubber
    from replayd.server.codec import _pack_events
    from replayd.server.ingest.bounds import decompress_recording
    from replayd.server.ingest.summary import summarise
    from replayd.server.scrub_rules import load_rules_file

    scrubber = Scrubber(load_rules_file(None), secret=b"bench-secret")
    stages = dict.fromkeys(["zlib decompress", "json.loads", "summarise", "scrub", "msgpack pack",
                            f"brotli q{quality} (msgpack)"], 0.0)
    profiler = cProfile.Profile() if profile else None
    state = None
    clock = time.process_time  # CPU time: a busy machine disturbs it less than wall time
    for segment in segments:
        t0 = clock()
        raw = decompress_recording(segment.zlib, 1 << 30)
        t1 = clock()
        events = json.loads(raw)
        t2 = clock()
        summarise(events)
        t3 = clock()
        if profiler:
            profiler.enable()
        result = scrubber.scrub_recording(events, state)
        if profiler:
            profiler.disable()
        state = result.state
        t4 = clock()
        packed = _pack_events(result.events)
        t5 = clock()
        brotli.compress(packed, quality=quality, mode=brotli.MODE_GENERIC)
        t6 = clock()
        for name, dt in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
            stages[name] += dt
    listing = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        listing = out.getvalue()
    return stages, listing


# --- CPU time of a process tree (Linux /proc) ---------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used (busy jiffies of /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds of ``root`` and every descendant, by pid."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            parents[int(entry)], cpu[int(entry)] = st
    keep: dict[int, float] = {}
    for pid in cpu:
        p = pid
        while p and p != root:
            p = parents.get(p, 0)
        if p == root:
            keep[pid] = cpu[pid]
    return keep


# --- the server -----------------------------------------------------------------------------

# --- the load -------------------------------------------------------------------------------

@dataclass
class LoadResult:
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


async def post_replays(url: str, replays: list[list[bytes]], concurrency: int) -> LoadResult:
    """``concurrency`` replays in flight; each replay's envelopes one after the other."""
    result = LoadResult()
    endpoint = f"{url}/api/1/envelope/?sentry_version=7&sentry_key={PUBLIC_KEY}&sentry_client=bench%2F1.0"
    queue: asyncio.Queue[list[bytes]] = asyncio.Queue()
    for replay in replays:
        queue.put_nowait(replay)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            for body in queue.get_nowait():
                t0 = time.perf_counter()
                async with session.post(endpoint, data=body, headers={"Content-Type": "text/plain;charset=UTF-8"}) as r:
                    answer = await r.read()
                result.latencies.append(time.perf_counter() - t0)
                if not 200 <= r.status < 300:
                    result.failures.append(f"{r.status}: {answer[:200]!r}")

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        result.wall = time.perf_counter() - t0
    return result


def stored_totals(server: RunningServer, replay_ids: set[str]) -> tuple[int, int, int, int]:
    """(stored bytes, raw bytes, segments, replays) of the given replays, from the read API."""
    stored = raw = segments = found = 0
    cursor: str | None = "0"
    while cursor is not None:
        page = server.api(f"/api/0/projects/1/replays/?per_page=200&cursor={cursor}")
        for replay in page["data"]:
            if replay["replay_id"] in replay_ids:
                stored += replay["stored_bytes"]
                raw += replay["raw_bytes"]
                segments += replay["segment_count"]
                found += 1
        cursor = page.get("next_cursor")
    return stored, raw, segments, found


def server_cpu_total(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(v - before.get(pid, 0.0) for pid, v in after.items())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


# --- main -----------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="rrweb events, JSON (.br allowed)")
    parser.add_argument("--concurrency", type=int, default=8, help="replays posted at once (default 8)")
    parser.add_argument("--repeat", type=int, default=60, help="distinct replays made of the corpus (default 60)")
    parser.add_argument("--quality", type=int, default=5, help="storage.compression_quality (default 5)")
    parser.add_argument("--segment-seconds", type=float, default=SEGMENT_SECONDS,
                        help="cut the corpus every N seconds of event time (default 5, as the SDK)")
    parser.add_argument("--workers", type=int, default=0, help="server.workers (default 0: one per core)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile listing of the scrub stage")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the server's data directory")
    args = parser.parse_args(argv)

    events = load_recording(args.corpus)
    segments = make_segments(events, args.segment_seconds)
    raw_total = sum(len(s.raw) for s in segments)
    zlib_total = sum(len(s.zlib) for s in segments)
    replay_start = segments[0].start_ms
    cores = os.cpu_count() or 1
    largest = max(len(s.raw) for s in segments)
    print(f"corpus: {args.corpus.name}: {len(events)} events, {raw_total / MB:.2f} MB JSON, "
          f"{len(segments)} segments of {args.segment_seconds:g} s (largest {largest / 1e3:.0f} KB); "
          f"zlib-6 {zlib_total / MB:.3f} MB")
    print(f"load: {args.repeat} replays x {len(segments)} segments = {args.repeat * len(segments)} envelopes, "
          f"{args.repeat * raw_total / MB:.1f} MB JSON; concurrency {args.concurrency}; "
          f"{cores} cores, server.workers={args.workers or cores}, quality {args.quality}")

    # The floor before and after the load (the better of the two counts: the stricter target).
    floor_before = floor_seconds(segments, args.quality)
    stages, listing = stage_seconds(segments, args.quality, args.profile)
    pipeline = sum(stages.values())

    warmup_ids = [uuid.uuid4().hex for _ in range(max(2, min(args.concurrency, cores * 2)))]
    replay_ids = [uuid.uuid4().hex for _ in range(args.repeat)]
    warmup = [[envelope(rid, s, replay_start) for s in segments[:2]] for rid in warmup_ids]
    replays = [[envelope(rid, s, replay_start) for s in segments] for rid in replay_ids]
    envelope_bytes = sum(len(b) for r in replays for b in r)

    tmp = Path(tempfile.mkdtemp(prefix="replayd-bench-"))
    server = launch_server(tmp, server={"workers": args.workers}, storage={"compression_quality": args.quality})
    try:
        warm = asyncio.run(post_replays(server.url, warmup, args.concurrency))  # spawn and warm the workers
        if warm.failures:
            raise SystemExit(f"warm-up failed: {warm.failures[:3]}\n{server.log_path.read_text()[-3000:]}")
        cpu_before = tree_cpu(server.process.pid)
        client_before = time.process_time()
        machine_before = machine_busy()
        load = asyncio.run(post_replays(server.url, replays, args.concurrency))
        machine_cpu = machine_busy() - machine_before
        client_cpu = time.process_time() - client_before
        cpu_after = tree_cpu(server.process.pid)
        stored, raw_stored, segs_stored, found = stored_totals(server, set(replay_ids))
    finally:
        server.close()
        floor_after = floor_seconds(segments, args.quality)
        log_tail = server.log_path.read_text(errors="replace")[-3000:]
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"server data kept in {tmp}")

    n = len(load.latencies)
    floor_mbs = raw_total / min(floor_before[0], floor_after[0]) / MB
    floor_cpu_mbs = raw_total / min(floor_before[1], floor_after[1]) / MB
    server_cpu = server_cpu_total(cpu_before, cpu_after)
    other_cpu = max(0.0, machine_cpu - server_cpu - client_cpu)
    # What the server would do with every core to itself: MB of JSON per CPU second, times the cores.
    projected = cores * args.repeat * raw_total / server_cpu / MB if server_cpu else 0.0
    throughput = args.repeat * raw_total / load.wall / MB
    main_pid = server.process.pid
    main_cpu = cpu_after.get(main_pid, 0.0) - cpu_before.get(main_pid, 0.0)
    worker_cpu = sum(v - cpu_before.get(pid, 0.0) for pid, v in cpu_after.items() if pid != main_pid)
    figures = {
        "envelopes": n, "failures": len(load.failures), "wall_s": load.wall,
        "raw_mb_per_s": throughput, "segments_per_s": n / load.wall,
        "envelope_mb_per_s": envelope_bytes / load.wall / MB,
        "latency_p50_ms": percentile(load.latencies, 50) * 1000,
        "latency_p99_ms": percentile(load.latencies, 99) * 1000,
        "stored_bytes": stored, "raw_bytes": args.repeat * raw_total, "zlib6_bytes": args.repeat * zlib_total,
        "stored_vs_raw": stored / (args.repeat * raw_total) if stored else None,
        "stored_vs_zlib6": stored / (args.repeat * zlib_total) if stored else None,
        "floor_mb_per_s": floor_mbs, "throughput_vs_floor": throughput / floor_mbs,
        "pipeline_mb_per_s": raw_total / pipeline / MB,
        "stages_ms_per_mb": {k: v * 1000 / (raw_total / MB) for k, v in stages.items()},
        "floor_mb_per_s_before_after": [raw_total / floor_before[0] / MB, raw_total / floor_after[0] / MB],
        "floor_cpu_mb_per_s": floor_cpu_mbs,
        "server_cpu_ms_per_mb": server_cpu * 1000 / (args.repeat * raw_total / MB) if server_cpu else None,
        "projected_mb_per_s": projected, "projected_vs_floor_cpu": projected / floor_cpu_mbs,
        "cpu_s": {"server_main": main_cpu, "server_workers": worker_cpu, "client": client_cpu, "other": other_cpu},
        "cores": cores, "workers": args.workers or cores, "concurrency": args.concurrency,
        "repeat": args.repeat, "quality": args.quality, "segments_per_replay": len(segments),
    }

    print()
    if load.failures:
        print(f"FAILED: {len(load.failures)} of {n} envelopes were refused, e.g. {load.failures[:3]}")
    if found != args.repeat or segs_stored != args.repeat * len(segments) or raw_stored != args.repeat * raw_total:
        print(f"MISMATCH: the API lists {found}/{args.repeat} replays, {segs_stored}/{args.repeat * len(segments)} "
              f"segments, {raw_stored}/{args.repeat * raw_total} raw bytes")
    print(f"ingest      {throughput:7.1f} MB/s raw JSON   {n / load.wall:7.1f} segments/s   "
          f"({n} envelopes, {figures['envelope_mb_per_s']:.1f} MB/s on the wire, in {load.wall:.2f} s)")
    print(f"latency     p50 {figures['latency_p50_ms']:.0f} ms   p99 {figures['latency_p99_ms']:.0f} ms")
    if stored:
        print(f"stored      {stored / MB:.2f} MB = {figures['stored_vs_raw']:.3f}x raw "
              f"({1 / figures['stored_vs_raw']:.1f}:1), "
              f"{figures['stored_vs_zlib6']:.3f}x zlib-6 (target <= 0.8) "
              f"[{'ok' if figures['stored_vs_zlib6'] <= 0.8 else 'MISSED'}]")
    print(f"floor       {floor_mbs:7.1f} MB/s   json.loads + brotli q{args.quality} of the same segments, one core "
          f"(before {raw_total / floor_before[0] / MB:.1f}, after {raw_total / floor_after[0] / MB:.1f}; "
          f"{floor_cpu_mbs:.1f} per CPU second)")
    print(f"vs floor    {figures['throughput_vs_floor']:.2f}x (target >= 1.0) "
          f"[{'ok' if figures['throughput_vs_floor'] >= 1.0 else 'MISSED'}]")
    print(f"cpu         server event loop {main_cpu:.2f} s, server workers {worker_cpu:.2f} s, this client "
          f"{client_cpu:.2f} s, over {load.wall:.2f} s wall on {cores} cores "
          f"({(main_cpu + worker_cpu + client_cpu) / load.wall / cores:.0%} busy); other processes {other_cpu:.2f} s")
    print(f"cpu cost    server {figures['server_cpu_ms_per_mb']:.1f} CPU ms per MB of JSON "
          f"(floor {1000 / floor_cpu_mbs:.1f}); "
          f"on {cores} idle cores that is {projected:.1f} MB/s = {figures['projected_vs_floor_cpu']:.2f}x the floor")
    if other_cpu > 0.1 * load.wall * cores:
        print(f"WARNING: other processes used {other_cpu / load.wall / cores:.0%} of the machine during the run; "
              "the figures are not reliable")
    print(f"pipeline    {figures['pipeline_mb_per_s']:.1f} MB/s per CPU second in one process "
          "(the worker's stages, CPU ms per MB of JSON):")
    for name, ms in figures["stages_ms_per_mb"].items():
        print(f"              {name:22s} {ms:7.1f} ms/MB  ({ms / sum(figures['stages_ms_per_mb'].values()):.0%})")
    if listing:
        print("\ncProfile of the scrub stage (cumulative):\n" + listing)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if "Traceback" in log_tail:
        print("\nserver log tail:\n" + log_tail)
    return 1 if load.failures else 0


if __name__ == "__main__":
    sys.exit(main())
