"""Compaction benchmark: stored bytes of compacted replays against zlib-6 of their segments, per recording.

    .venv/bin/python bench/bench_compaction.py [RECORDING ...] [--qualities 5,7,9,11] [--chunk-bytes N] [--seeds S,...]
    .venv/bin/python bench/bench_compaction.py --formats [RECORDING ...] [--rounds 3] [--seeds S,...]

Each recording (default: every file in tests/data/corpus/ and tests/data/recordings/) is cut into
5-second segments as the SDK uploads them. For each it prints, against zlib-6 of the segments' JSON
(what Sentry stores): the segments as ingest stores them (``codec.encode_segment`` at quality 5, one
object each), and the replay compacted as the job writes it (``compaction.starts_chunk`` cuts the
chunks, ``codec.encode_chunk`` compresses each with a 16 MiB window) at each ``--qualities``, with
the CPU time compaction takes per MB of JSON. Target: compacted <= 0.5x zlib-6.

``--formats`` compares the stored formats instead (``server/strings_apart.py``: v3, written today;
v2, before it; v1, brotli of the msgpack), per recording: stored at ingest at quality 4 and 5, and
compacted at ``compaction.quality``, each against zlib-6, with the CPU ms per MB of JSON of encoding
(ingest: from parsed events, as the worker does; compacted: from the segments' v1 bytes or v3 blobs,
as the job hands them over) and of decoding a compacted chunk back to what readers get. v1 and v3 run
interleaved, best of ``--rounds``; v2 is written by the tests' writer (``tests/stored_formats.py``):
its sizes are v2's, its CPU is not (printed as -). Target: ingest <= 0.75x.

``--seeds 20001,20002`` measures each recording's rewrites by those seeds instead of the recording as
recorded (``tests/recordings.Rewriter``: the same shapes, sizes and repeats, text no codec was tuned
on; what bench_ingest.py's cold sessions send); ``--seeds 0,20001`` both (0: as recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

import brotli
import orjson

from replayd.server.codec import _pack_events, decode_chunk, encode_chunk, encode_segment, unpack_blob
from replayd.server.compaction import starts_chunk
from replayd.server.config import CompactionConfig
from tests.envelopes import cut_segments, segment_texts
from tests.harness import REPO, load_recording
from tests.recordings import Rewriter
from tests.stored_formats import v2_blob, v2_frame, v2_streams

DEFAULT_DIRS = [REPO / "tests" / "data" / "corpus", REPO / "tests" / "data" / "recordings"]


def chunks_of(packed: list[bytes], full: list[bool], config: CompactionConfig) -> list[list[bytes]]:
    chunks: list[list[bytes]] = [[]]
    size = 0
    for data, has_full in zip(packed, full, strict=True):
        if starts_chunk(size, len(data), has_full, config):
            chunks.append([])
            size = 0
        chunks[-1].append(data)
        size += len(data)
    return chunks


def segments_of(path: Path, seed: int) -> tuple[str, list[list]]:
    """The recording's 5-second segments, as recorded (seed 0) or rewritten by ``seed``."""
    name = path.name.split(".")[0]
    if not seed:
        return name, cut_segments(load_recording(path), 5.0)
    return f"{name}@{seed}", [orjson.loads(Rewriter(t).rewrite(seed)) for t in segment_texts(load_recording(path))]


def measure(path: Path, seed: int, qualities: list[int], config: CompactionConfig) -> dict:
    name, segments = segments_of(path, seed)
    raw = [json.dumps(s, separators=(",", ":"), ensure_ascii=False).encode() for s in segments]
    zlib6 = sum(len(zlib.compress(r, 6)) for r in raw)
    blobs = [encode_segment(s, 5) for s in segments]
    packed = [unpack_blob(b) for b in blobs]
    full = [any(isinstance(e, dict) and e.get("type") == 2 for e in s) for s in segments]
    chunks = chunks_of(packed, full, config)
    result = {"recording": name, "segments": len(segments), "raw": sum(map(len, raw)), "zlib6": zlib6,
              "ingest": sum(map(len, blobs)), "chunks": len(chunks), "full": sum(full), "compacted": {}}
    for quality in qualities:
        started = time.process_time()
        encoded = [encode_chunk(chunk, quality) for chunk in chunks]
        cpu = time.process_time() - started
        started = time.process_time()
        for data in encoded:
            decode_chunk(data)
        decode = time.process_time() - started
        result["compacted"][quality] = (sum(map(len, encoded)), cpu, decode)
    return result


def v1_segment(events: list, quality: int) -> bytes:
    return brotli.compress(_pack_events(events), quality=quality)


def v1_chunk(packed: list[bytes], quality: int) -> bytes:
    return brotli.compress(b"".join(packed), quality=quality, lgwin=24)


def v2_segment(events: list, quality: int) -> bytes:
    return v2_blob(_pack_events(events), quality)


def v2_chunk(packed: list[bytes], quality: int) -> bytes:
    return v2_frame(*(brotli.compress(b"".join(s), quality=quality, lgwin=24)
                      for s in zip(*map(v2_streams, packed), strict=True)))


def measure_formats(path: Path, seed: int, config: CompactionConfig, rounds: int) -> dict:
    recording, segments = segments_of(path, seed)
    texts = [orjson.dumps(s) for s in segments]
    zlib6 = sum(len(zlib.compress(json.dumps(s, separators=(",", ":"), ensure_ascii=False).encode(), 6))
                for s in segments)
    full = [any(isinstance(e, dict) and e.get("type") == 2 for e in s) for s in segments]
    packed = [_pack_events(s) for s in segments]
    chunks = chunks_of(packed, full, config)
    # the job hands a segment stored as v3 over as its blob (its streams taken as they are)
    stored = iter([encode_segment(orjson.loads(t), 5) for t in texts])
    stored_chunks = [[next(stored) for _ in chunk] for chunk in chunks]
    ingest = {"v1 q5": (v1_segment, 5), "v2 q5": (v2_segment, 5), "v3 q5": (encode_segment, 5),
              "v3 q4": (encode_segment, 4)}
    compact = {"v1": (v1_chunk, chunks), "v2": (v2_chunk, chunks), "v3": (encode_chunk, stored_chunks)}
    sizes: dict[str, int] = {}
    cpu: dict[str, float] = {}
    for _ in range(rounds):
        for name, (encode, quality) in ingest.items():
            events = [orjson.loads(t) for t in texts]  # encode_segment takes the strings out of them
            started = time.process_time()
            sizes[name] = sum(len(encode(e, quality)) for e in events)
            cpu[name] = min(cpu.get(name, 1e9), time.process_time() - started)
        for name, (encode, inputs) in compact.items():
            started = time.process_time()
            encoded = [encode(chunk, config.quality) for chunk in inputs]
            cpu[name] = min(cpu.get(name, 1e9), time.process_time() - started)
            sizes[name] = sum(map(len, encoded))
            started = time.process_time()
            for data, chunk in zip(encoded, chunks, strict=True):
                assert decode_chunk(data) == b"".join(chunk)
            cpu[name + " read"] = min(cpu.get(name + " read", 1e9), time.process_time() - started)
    for name in ("v2 q5", "v2", "v2 read"):
        cpu[name] = float("nan")  # the tests' writer, not what v2's was
    return {"recording": recording, "raw": sum(map(len, texts)), "zlib6": zlib6, "sizes": sizes, "cpu": cpu}


def main_formats(paths: list[Path], seeds: list[int], config: CompactionConfig, rounds: int) -> int:
    names = ["v1 q5", "v2 q5", "v3 q5", "v3 q4", "v1", "v2", "v3"]
    print(f"stored / zlib-6 of the segments' JSON (CPU ms per MB of JSON); compacted at q{config.quality}; "
          f"'read': a compacted chunk decoded to v1's msgpack")
    print(f"{'recording':24} {'MB':>6}" + "".join(f" {'ingest ' + n if ' ' in n else 'compacted ' + n:>20}"
                                                  for n in names) + f" {'read v1':>8} {'read v3':>8}")
    totals: dict[str, int] = {"zlib6": 0}
    for path in paths:
        for seed in seeds:
            r = measure_formats(path, seed, config, rounds)
            mb = r["raw"] / 1e6
            line = f"{r['recording']:24} {mb:6.2f}"
            for n in names:
                line += f" {r['sizes'][n] / r['zlib6']:12.3f} ({r['cpu'][n] * 1000 / mb:4.1f})".replace("nan", "  -")
                totals[n] = totals.get(n, 0) + r["sizes"][n]
            line += f" {r['cpu']['v1 read'] * 1000 / mb:8.1f} {r['cpu']['v3 read'] * 1000 / mb:8.1f}"
            totals["zlib6"] += r["zlib6"]
            print(line, flush=True)
    print(f"{'all together':31}" + "".join(f" {totals[n] / totals['zlib6']:12.3f}       " for n in names))
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recordings", nargs="*", type=Path)
    parser.add_argument("--qualities", default="5,7,9,11")
    parser.add_argument("--chunk-bytes", type=int, default=CompactionConfig().chunk_bytes)
    parser.add_argument("--formats", action="store_true", help="v3 against v2 and v1, at ingest and compacted")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", default="0", help="rewrites of each recording by these seeds (0: as recorded)")
    args = parser.parse_args()
    qualities = [int(q) for q in args.qualities.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    paths = args.recordings or sorted(p for d in DEFAULT_DIRS if d.is_dir() for p in d.glob("*.json*"))
    config = CompactionConfig(chunk_bytes=args.chunk_bytes, max_chunk_bytes=max(args.chunk_bytes,
                                                                               CompactionConfig().max_chunk_bytes))
    print(f"load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs; "
          f"chunk_bytes {config.chunk_bytes}; sizes against zlib-6 of the segments' JSON")
    if args.formats:
        return main_formats(paths, seeds, config, args.rounds)
    header = f"{'recording':28} {'segs':>5} {'full':>4} {'MB JSON':>8} {'chunks':>6} {'ingest q5':>9}"
    print(header + "".join(f" {'q' + str(q):>7} {'ms/MB':>6}" for q in qualities))
    totals = {"zlib6": 0, "ingest": 0, **dict.fromkeys(qualities, 0)}
    for path in paths:
        for seed in seeds:
            r = measure(path, seed, qualities, config)
            mb = r["raw"] / 1e6
            line = (f"{r['recording']:28} {r['segments']:5} {r['full']:4} {mb:8.2f} {r['chunks']:6} "
                    f"{r['ingest'] / r['zlib6']:9.3f}")
            for q in qualities:
                size, cpu, _ = r["compacted"][q]
                line += f" {size / r['zlib6']:7.3f} {cpu * 1000 / mb:6.0f}"
                totals[q] += size
            totals["zlib6"] += r["zlib6"]
            totals["ingest"] += r["ingest"]
            print(line, flush=True)
    line = f"{'all together':28} {'':5} {'':4} {'':8} {'':6} {totals['ingest'] / totals['zlib6']:9.3f}"
    print(line + "".join(f" {totals[q] / totals['zlib6']:7.3f} {'':6}" for q in qualities))
    return 0


if __name__ == "__main__":
    sys.exit(main())
