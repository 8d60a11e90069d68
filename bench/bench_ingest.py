"""Ingest benchmark: real recordings, cut into 5-second segments, posted to one ``replayd serve``.

    .venv/bin/python bench/bench_ingest.py [--recording PATH ...] [--sessions N] [--concurrency 8]
                                           [--phases cold,warm] [--profile] [--json OUT.json]

Starts its own ``replayd serve`` on its defaults (``server.workers`` = one per core, brotli quality
5, default scrubbing rules; temporary data directory, local blob store, SQLite), then posts two
loads of ``--sessions`` replays each, ``--concurrency`` replays in flight, a replay's segments one
after the other (as one browser sends them), each segment zlib-6 compressed as the Sentry SDK does:

- COLD: every session's text is new to the server. The recordings (tests/recordings.RECORDINGS: the
  shared corpus and the ones recorded for this project, each click followed by the ``ui.click``
  breadcrumb the snippet adds: ``with_click_breadcrumbs``) are taken in turn, and each session is a
  rewrite of one (tests/recordings.Rewriter: the same shape, sizes, keys and numbers, every letter
  and digit of its text permuted by the session's own seed), so no per-string cache turns a copy
  into hits.
- WARM: identical copies of the recordings (new replay ids only): after the first copy, the
  workers' caches answer most of the scrubber's look-ups.

For each load: MB/s of raw JSON, segments/s, p50/p99 latency of one envelope's POST, the server's
CPU per MB, and against the **one-core floor** measured in this process on the same segments in the
same run: the fastest JSON parser on the machine (``orjson.loads`` or ``json.loads``, whichever is
faster here) + brotli-5 of the JSON (``FLOOR_QUALITY``, whatever the server stores at), best of 3,
before and after the loads (the faster counts). Stored bytes against zlib-6 of the same segments,
per recording (cold sessions).
``--profile`` samples the server's processes with py-spy during the cold load (that load's figures
are then disturbed by the sampling) and prints where the workers' CPU went, by pipeline stage.
See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import aiohttp
import brotli
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from replayd.player.timeline import event_ms
from replayd.server.config import StorageConfig
from tests.envelopes import cut_segments, recording_envelope, replay_event, segment_texts
from tests.harness import PUBLIC_KEY, RunningServer, launch_server, load_recording
from tests.recordings import RECORDINGS, Rewriter, rewrite_text, with_click_breadcrumbs

SEGMENT_SECONDS = 5.0
MB = 1e6
QUALITY = StorageConfig().compression_quality  # the server's default
FLOOR_QUALITY = 5  # issue #13's floor: the fastest parser + brotli-5, fixed so that it does not move with the codec


# --- the recordings, cut into segments, and their sessions -----------------------------------

@dataclass
class Recording:
    name: str
    segments: list[bytes]  # the JSON the SDK would compress, one per segment
    rewriters: list[Rewriter]
    start_ms: float
    end_ms: list[float]  # per segment
    urls: list[list[str]]  # Meta hrefs per segment


def load(path: Path, seconds: float) -> Recording:
    events = with_click_breadcrumbs(load_recording(path))  # as the snippet records a click now
    groups = cut_segments(events, seconds)
    texts = segment_texts(events, seconds)
    times = [[ms for e in g if (ms := event_ms(e)) is not None] for g in groups]
    urls = [[e["data"]["href"] for e in g if e.get("type") == 4 and isinstance(e.get("data"), dict)
             and isinstance(e["data"].get("href"), str)] for g in groups]
    return Recording(path.name.split(".")[0], texts, [Rewriter(t) for t in texts],
                     min(t for ts in times for t in ts), [max(ts) for ts in times], urls)


@dataclass
class Session:
    recording: Recording
    replay_id: str
    envelopes: list[bytes]
    segment_bytes: list[int]  # raw JSON of each envelope's segment
    raw_bytes: int
    zlib_bytes: int


def make_session(recording: Recording, seed: int | None) -> Session:
    """A replay of ``recording``: its text rewritten by ``seed`` (cold), or as recorded (``None``, warm)."""
    replay_id = uuid.uuid4().hex
    envelopes = []
    segment_bytes = []
    raw_total = zlib_total = 0
    for i, rewriter in enumerate(recording.rewriters):
        raw = recording.segments[i] if seed is None else rewriter.rewrite(seed)
        body = zlib.compress(raw, 6)
        urls = recording.urls[i] if seed is None else [rewrite_text(u, seed) for u in recording.urls[i]]
        event = replay_event(replay_id, i, recording.start_ms / 1000, recording.end_ms[i] / 1000, urls)
        event["environment"] = "bench"
        envelopes.append(recording_envelope(event, body))
        segment_bytes.append(len(raw))
        raw_total += len(raw)
        zlib_total += len(body)
    return Session(recording, replay_id, envelopes, segment_bytes, raw_total, zlib_total)


def sessions_for(recordings: list[Recording], count: int, cold: bool, first_seed: int) -> list[Session]:
    """``count`` sessions taking the recordings in turn (so the load mixes them)."""
    return [make_session(recordings[i % len(recordings)], first_seed + i if cold else None) for i in range(count)]


# --- the one-core floor, in this process -----------------------------------------------------

def fastest_parser(segments: list[bytes]) -> tuple[str, Any]:
    """orjson.loads or json.loads, whichever parses these segments faster here."""
    timings = {}
    for name, fn in (("orjson.loads", orjson.loads), ("json.loads", json.loads)):
        t0 = time.process_time()
        for s in segments:
            fn(s)
        timings[name] = (time.process_time() - t0, fn)
    name = min(timings, key=lambda k: timings[k][0])
    return name, timings[name][1]


def floor_seconds(segments: list[bytes], parse: Any, quality: int, passes: int = 3) -> tuple[float, float]:
    """Best of ``passes`` of parse + brotli(quality) of every segment, in one process: (wall, CPU) seconds."""
    best, best_cpu = float("inf"), float("inf")
    for _ in range(passes):
        t0, c0 = time.perf_counter(), time.process_time()
        for segment in segments:
            parse(segment)
            brotli.compress(segment, quality=quality)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best, best_cpu


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


def thread_cpu(pid: int) -> float:
    """CPU seconds of the main thread of ``pid`` (its task whose id is the pid): the event loop."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


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


# --- the load -------------------------------------------------------------------------------

@dataclass
class LoadResult:
    wall: float = 0.0
    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)  # raw JSON bytes of each envelope's segment, as latencies
    failures: list[str] = field(default_factory=list)


async def post_replays(url: str, replays: list[list[bytes]], concurrency: int,
                       sizes: list[list[int]] | None = None) -> LoadResult:
    """``concurrency`` replays in flight; each replay's envelopes one after the other."""
    result = LoadResult()
    endpoint = f"{url}/api/1/envelope/?sentry_version=7&sentry_key={PUBLIC_KEY}&sentry_client=bench%2F1.0"
    queue: asyncio.Queue[tuple[list[bytes], list[int]]] = asyncio.Queue()
    for i, replay in enumerate(replays):
        queue.put_nowait((replay, sizes[i] if sizes else [0] * len(replay)))

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            bodies, raw_sizes = queue.get_nowait()
            for body, size in zip(bodies, raw_sizes, strict=True):
                t0 = time.perf_counter()
                async with session.post(endpoint, data=body, headers={"Content-Type": "text/plain;charset=UTF-8"}) as r:
                    answer = await r.read()
                result.latencies.append(time.perf_counter() - t0)
                result.sizes.append(size)
                if not 200 <= r.status < 300:
                    result.failures.append(f"{r.status}: {answer[:200]!r}")

    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        result.wall = time.perf_counter() - t0
    return result


def stored_by_replay(server: RunningServer) -> dict[str, dict[str, Any]]:
    """Every replay of project 1 as the read API lists it, by replay id."""
    replays: dict[str, dict[str, Any]] = {}
    cursor: str | None = "0"
    while cursor is not None:
        page = server.api(f"/api/0/projects/1/replays/?per_page=200&cursor={cursor}")
        replays.update((r["replay_id"], r) for r in page["data"])
        cursor = page.get("next_cursor")
    return replays


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


# --- where the workers' CPU goes: py-spy on the server's processes -----------------------------

# A sample's stage: the first of these functions found on its stack, outermost first below the job.
STAGES = (
    ("process_item", "replay_event item (parse + scrub)"),
    ("check_bounds", "JSON bounds check (jsontext)"),
    ("parse_json", "parse (orjson / json)"),
    ("decompress_recording", "zlib decompress"),
    ("summarise", "summarise (times, clicks)"),
    ("scrub_recording", "scrub (scrubbing/)"),
    ("split", "strings apart: walk + msgpack pack (v2)"),
    ("_pack_events", "msgpack pack"),
    ("encode_segment", "brotli compress"),
    ("unpack_state", "replay state in (unpack)"),
    ("from_bytes", "replay state in (unpack)"),
    ("pack_state", "replay state out (pack)"),
    ("to_bytes", "replay state out (pack)"),
    ("segment", "click index"),
)


def stage_of(stack: str) -> str:
    functions = [frame.split(" (", 1)[0].rsplit(".", 1)[-1] for frame in stack.split(";")]  # "Class.method"
    for name, stage in STAGES:
        if name in functions:
            # a stage's own inner stages: the check and the parse share parse_json's frame
            if name == "parse_json" and "check_bounds" in functions:
                return STAGES[1][1]
            if name == "encode_segment" and "_pack_events" in functions:
                return STAGES[6][1]
            return stage
    return "other (pool, pickling, freeing)"


class Sampler:
    """py-spy ``record`` attached to each of the server's processes, stopped with SIGINT."""

    def __init__(self, pids: list[int], out_dir: Path) -> None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(exe).exists():
            raise SystemExit("--profile needs py-spy (.venv/bin/pip install py-spy)")
        self.outputs = {pid: out_dir / f"py-spy-{pid}.txt" for pid in pids}
        # The event loop's process (the first pid) waits in threads (fsync, the pool's pipes) that
        # py-spy counts as running: only its samples holding the GIL are CPU.
        self.procs = [subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                                        "--output", str(out), "--nonblocking", *(["--gil"] if pid == pids[0] else [])],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for pid, out in self.outputs.items()]

    def stop(self) -> dict[int, Counter[str]]:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            p.wait(timeout=60)
        samples: dict[int, Counter[str]] = {}
        for pid, out in self.outputs.items():
            counts: Counter[str] = Counter()
            for line in out.read_text().splitlines() if out.exists() else []:
                stack, _, n = line.rpartition(" ")
                counts[stack] += int(n)
            samples[pid] = counts
        return samples


def print_profile(samples: dict[int, Counter[str]], main_pid: int) -> dict[str, float]:
    workers: Counter[str] = Counter()
    main_total = 0
    for pid, counts in samples.items():
        if pid == main_pid:
            main_total += sum(counts.values())
            continue
        if not any("process_segment" in s for s in counts):
            continue  # the forkserver, the resource tracker
        for stack, n in counts.items():
            workers[stage_of(stack)] += n
    total = sum(workers.values())
    shares = {stage: n / total for stage, n in workers.most_common()} if total else {}
    print(f"\nworkers' CPU by stage (py-spy, {total} samples at 200 Hz; the event loop: {main_total} samples):")
    for stage, share in shares.items():
        print(f"    {stage:38s} {share:6.1%}")
    return shares


# --- main -----------------------------------------------------------------------------------

LARGE_SEGMENT = 2_000_000  # raw JSON bytes: the envelopes whose own scrub sets the p99


def run_load(server: RunningServer, sessions: list[Session], concurrency: int,
             sampler_dir: Path | None) -> dict[str, Any]:
    main_pid = server.process.pid
    cpu_before = tree_cpu(main_pid)
    loop_before = thread_cpu(main_pid)
    sampler = Sampler([main_pid, *cpu_before.keys() - {main_pid}], sampler_dir) if sampler_dir else None
    client_before = time.process_time()
    machine_before = machine_busy()
    load = asyncio.run(post_replays(server.url, [s.envelopes for s in sessions], concurrency,
                                    [s.segment_bytes for s in sessions]))
    machine_cpu = machine_busy() - machine_before
    client_cpu = time.process_time() - client_before
    loop_cpu = thread_cpu(main_pid) - loop_before
    cpu_after = tree_cpu(main_pid)
    main_cpu = cpu_after.get(main_pid, 0.0) - cpu_before.get(main_pid, 0.0)
    worker_cpu = sum(v - cpu_before.get(pid, 0.0) for pid, v in cpu_after.items() if pid != main_pid)
    raw = sum(s.raw_bytes for s in sessions)
    large = [t for t, size in zip(load.latencies, load.sizes, strict=True) if size >= LARGE_SEGMENT]
    small = [t for t, size in zip(load.latencies, load.sizes, strict=True) if size < LARGE_SEGMENT]
    figures: dict[str, Any] = {
        "sessions": len(sessions), "envelopes": len(load.latencies), "failures": load.failures[:5],
        "failure_count": len(load.failures), "wall_s": load.wall, "raw_mb": raw / MB,
        "raw_mb_per_s": raw / load.wall / MB, "segments_per_s": len(load.latencies) / load.wall,
        "latency_p50_ms": percentile(load.latencies, 50) * 1000,
        "latency_p99_ms": percentile(load.latencies, 99) * 1000,
        "large_envelopes": len(large),
        "latency_large_p50_ms": percentile(large, 50) * 1000 if large else None,
        "latency_small_p99_ms": percentile(small, 99) * 1000 if small else None,
        "cpu_s": {"server_main": main_cpu, "server_event_loop_thread": loop_cpu, "server_workers": worker_cpu,
                  "client": client_cpu, "other": max(0.0, machine_cpu - main_cpu - worker_cpu - client_cpu)},
        "server_cpu_ms_per_mb": (main_cpu + worker_cpu) * 1000 / (raw / MB),
        "worker_cpu_ms_per_mb": worker_cpu * 1000 / (raw / MB),
        "main_cpu_ms_per_mb": main_cpu * 1000 / (raw / MB),
    }
    if sampler:
        figures["profile"] = print_profile(sampler.stop(), main_pid)
    return figures


def serve_loads(python: str, args: argparse.Namespace, recordings: list[Recording],
                loads: dict[str, list[Session]], profile: bool) -> dict[str, Any]:
    """One ``replayd serve`` (run by ``python``, so another checkout's venv serves its own code):
    warmed up, then every load in turn (the cold one sampled by py-spy with ``profile``); the figures
    of each, and the stored replays as listed."""
    tmp = Path(tempfile.mkdtemp(prefix="replayd-bench-"))
    server_options: dict[str, Any] = {"server": {"workers": args.workers}}
    if args.quality != QUALITY:
        server_options["storage"] = {"compression_quality": args.quality}
    server = launch_server(tmp, python=python, **server_options)
    results: dict[str, Any] = {}
    try:
        # Spawn the workers and warm them on the recordings as recorded (what the warm load sends).
        warmup = [make_session(r, None).envelopes[:2] for r in recordings for _ in range(2)]
        warm = asyncio.run(post_replays(server.url, warmup, args.concurrency))
        if warm.failures:
            raise SystemExit(f"warm-up failed: {warm.failures[:3]}\n{server.log_path.read_text()[-3000:]}")
        for phase, sessions in loads.items():
            results[phase] = run_load(server, sessions, args.concurrency,
                                      tmp if profile and phase == "cold" else None)
        results["_listed"] = stored_by_replay(server)
    finally:
        server.close()
        log_tail = server.log_path.read_text(errors="replace")
        if "Traceback" in log_tail:
            print("\nserver log tail:\n" + log_tail[-3000:])
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"server data kept in {tmp}")
    return results


def print_load(label: str, phase: str, f: dict[str, Any], floor: float, floor_cpu: float, cores: int) -> None:
    f["vs_floor"] = f["raw_mb_per_s"] / floor
    f["cpu_vs_floor"] = (1000 / floor_cpu) / f["server_cpu_ms_per_mb"] * cores
    cpu = f["cpu_s"]
    large = (f"; the {f['large_envelopes']} of >= {LARGE_SEGMENT / MB:g} MB: p50 {f['latency_large_p50_ms']:.0f} ms, "
             f"the others' p99 {f['latency_small_p99_ms']:.0f} ms") if f["large_envelopes"] else ""
    print(f"{label}{phase.upper():5s} ingest {f['raw_mb_per_s']:6.1f} MB/s raw JSON  "
          f"{f['segments_per_s']:6.1f} segments/s  "
          f"p50 {f['latency_p50_ms']:.0f} ms  p99 {f['latency_p99_ms']:.0f} ms  = {f['vs_floor']:.2f}x the floor  "
          f"({f['envelopes']} envelopes, {f['raw_mb']:.0f} MB in {f['wall_s']:.1f} s{large})")
    print(f"      cpu: server {f['server_cpu_ms_per_mb']:.1f} ms/MB (workers {f['worker_cpu_ms_per_mb']:.1f}, "
          f"event loop's process {f['main_cpu_ms_per_mb']:.1f}: {cpu['server_main']:.1f} s, of which its loop "
          f"thread {cpu['server_event_loop_thread']:.1f} s), client {cpu['client']:.1f} s, "
          f"other processes {cpu['other']:.1f} s; on {cores} idle cores: {f['cpu_vs_floor']:.2f}x the floor")
    if cpu["other"] > 0.1 * f["wall_s"] * cores:
        print(f"      WARNING: other processes used {cpu['other'] / f['wall_s'] / cores:.0%} of the machine: "
              "the wall-clock figures are not the server's alone")
    if f["failure_count"]:
        print(f"      FAILED: {f['failure_count']} envelopes refused, e.g. {f['failures'][:3]}")


COMPARED = (("server_cpu_ms_per_mb", "server CPU ms/MB"), ("worker_cpu_ms_per_mb", "workers' CPU ms/MB"),
            ("main_cpu_ms_per_mb", "event loop's process CPU ms/MB"), ("raw_mb_per_s", "MB/s"),
            ("latency_p50_ms", "p50 ms"), ("latency_p99_ms", "p99 ms"))


def print_comparison(runs: list[tuple[str, dict[str, Any]]], phases: list[str]) -> None:
    """This checkout against --baseline, run by run: the median of each figure and of the ratios of
    the runs taken next to each other (this / baseline)."""
    print("\nthis checkout against the baseline (median over rounds; ratio = this / baseline of the same round):")
    for phase in phases:
        for key, label in COMPARED:
            this = [r[phase][key] for name, r in runs if name == "this"]
            base = [r[phase][key] for name, r in runs if name == "baseline"]
            ratios = [a / b for a, b in zip(this, base, strict=False) if b]
            print(f"  {phase.upper():5s} {label:32s} baseline {median(base):8.1f}  this {median(this):8.1f}  "
                  f"ratio {median(ratios):.3f} (each round: {', '.join(f'{r:.3f}' for r in ratios)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recording", type=Path, action="append",
                        help="rrweb events, a JSON array (.br allowed); repeatable "
                             "(default: tests/recordings.RECORDINGS)")
    parser.add_argument("--sessions", type=int, default=96, help="replays per load (default 96)")
    parser.add_argument("--concurrency", type=int, default=8, help="replays posted at once (default 8)")
    parser.add_argument("--phases", default="cold,warm", help="which loads, in order (default cold,warm)")
    parser.add_argument("--segment-seconds", type=float, default=SEGMENT_SECONDS,
                        help="cut the recordings every N seconds of event time (default 5, as the SDK)")
    parser.add_argument("--workers", type=int, default=0, help="server.workers (default 0: one per core)")
    parser.add_argument("--quality", type=int, default=QUALITY,
                        help=f"storage.compression_quality of the server (default {QUALITY}; "
                             f"the floor: brotli-{FLOOR_QUALITY})")
    parser.add_argument("--baseline", metavar="PYTHON",
                        help="also serve the same loads with this interpreter (another checkout's .venv/bin/python, "
                             "e.g. main's), alternating with this checkout, and compare")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --baseline: rounds of (baseline, this), the order swapped every round (default 1)")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy during the cold load")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the server's data directory")
    args = parser.parse_args(argv)
    phases = [p for p in args.phases.split(",") if p]
    if not set(phases) <= {"cold", "warm"}:
        parser.error("--phases takes cold and/or warm")

    t0 = time.perf_counter()
    recordings = [load(p, args.segment_seconds) for p in (args.recording or RECORDINGS)]
    cores = os.cpu_count() or 1
    for r in recordings:
        raw = sum(map(len, r.segments))
        print(f"recording {r.name}: {raw / MB:.2f} MB JSON in {len(r.segments)} segments of "
              f"{args.segment_seconds:g} s (largest {max(map(len, r.segments)) / 1e3:.0f} KB)")
    loads = {phase: sessions_for(recordings, args.sessions, phase == "cold", first_seed=1) for phase in phases}
    # The floor's segments: two rewrites of each recording, text the parser has not seen either.
    floor_segments = [rw.rewrite(seed) for r in recordings for seed in (10_001, 10_002) for rw in r.rewriters]
    floor_mb = sum(map(len, floor_segments)) / MB
    parser_name, parse = fastest_parser(floor_segments)
    print(f"sessions: {args.sessions} per load ({', '.join(phases)}), {args.concurrency} in flight; {cores} cores, "
          f"server.workers={args.workers or cores}, quality {args.quality}; "
          f"prepared in {time.perf_counter() - t0:.1f} s; "
          f"load average {os.getloadavg()[0]:.2f}")

    # (name, python) in the order served: this checkout alone, or rounds of both, order swapped each round
    order = [("this", sys.executable)]
    if args.baseline:
        pair = [("baseline", args.baseline), ("this", sys.executable)]
        order = [server for i in range(args.rounds) for server in (pair if i % 2 == 0 else pair[::-1])]
    floors = [floor_seconds(floor_segments, parse, FLOOR_QUALITY)]
    runs: list[tuple[str, dict[str, Any]]] = []
    for i, (name, python) in enumerate(order):
        load_average = os.getloadavg()
        if args.baseline:
            print(f"\n--- {name} ({python}), load average {load_average[0]:.2f} {load_average[1]:.2f}")
        # with --baseline, the first round of each is profiled
        runs.append((name, serve_loads(python, args, recordings, loads, args.profile and i < 2)))
        runs[-1][1]["_loadavg"] = load_average
        floors.append(floor_seconds(floor_segments, parse, FLOOR_QUALITY))

    floor = floor_mb / min(f[0] for f in floors)
    floor_cpu = floor_mb / min(f[1] for f in floors)
    print(f"\nfloor       {floor:6.1f} MB/s  {parser_name} + brotli q{FLOOR_QUALITY} of {floor_mb:.1f} MB of segments, "
          f"one process (each time measured: {', '.join(f'{floor_mb / f[0]:.1f}' for f in floors)}; "
          f"{floor_cpu:.1f} MB per CPU second = {1000 / floor_cpu:.1f} CPU ms/MB)")
    failed = False
    for name, results in runs:
        label = f"{name:8s} " if args.baseline else ""
        for phase in phases:
            print_load(label, phase, results[phase], floor, floor_cpu, cores)
            failed = failed or bool(results[phase]["failure_count"])
    if args.baseline:
        print_comparison(runs, phases)

    # Stored bytes per recording, of the cold sessions (text the codec was not tuned on), as this checkout stores them.
    sizes: dict[str, dict[str, float]] = {}
    for name, results in runs:
        listed = results.pop("_listed")
        for phase in phases:
            for s in loads[phase]:
                entry = listed.get(s.replay_id)
                if entry is None or entry["segment_count"] != len(s.envelopes) or entry["raw_bytes"] != s.raw_bytes:
                    failed = True
                    print(f"MISMATCH ({name}): replay {s.replay_id} ({s.recording.name}) is listed as {entry}")
        if name != "this" or sizes:
            continue
        for s in loads[phases[0]]:
            if (entry := listed.get(s.replay_id)) is None:
                continue
            size = sizes.setdefault(s.recording.name, {"stored": 0, "zlib6": 0, "raw": 0})
            size["stored"] += entry["stored_bytes"]
            size["zlib6"] += s.zlib_bytes
            size["raw"] += s.raw_bytes
    print(f"stored ({phases[0]} sessions), against zlib-6 of the same segments:")
    for name, size in sizes.items():
        size["vs_zlib6"] = size["stored"] / size["zlib6"]
        print(f"      {name:28s} {size['vs_zlib6']:.3f}x zlib-6, {size['raw'] / size['stored']:.1f}:1 of raw")
    if args.json:
        args.json.write_text(json.dumps({
            "floor_mb_per_s": floor, "floor_cpu_mb_per_s": floor_cpu, "floor_parser": parser_name,
            "cores": cores, "loadavg_1m_end": os.getloadavg()[0], "runs": runs, "stored": sizes,
        }, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
