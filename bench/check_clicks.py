"""The clicks ingest indexes from every recording in tests/data, written as JSON lines or compared
with such a file: a change to the click map or the tracker must describe every click the same.

    .venv/bin/python bench/check_clicks.py --write OUT.jsonl     # e.g. on main's code
    .venv/bin/python bench/check_clicks.py --compare OUT.jsonl   # on the changed code: exits 1 on a difference

The recordings have few clicks of their own (141 over the three cuttings, 9 on a link), so each is
run twice: as recorded, and with a click added after every 10th incremental event on an element
seen so far (chosen by a fixed seed; half of them on or inside a link, button or other clickable
tag). Each is cut into segments of 1, 5 and 30 s (a click's element then lies in the same segment,
an earlier one, or many segments back) and run through the worker's job in order, the state carried
from segment to segment as ingest does. A line per segment: its clicks (every column the index
keeps), the earlier clicks it found dead, its rage and console-error counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from replayd.server.config import LimitsConfig
from replayd.server.ingest import jobs, worker
from tests.envelopes import cut_segments
from tests.harness import load_recording
from tests.recordings import RECORDINGS

CLICKABLE = frozenset({"a", "button", "input", "select", "textarea", "summary", "label", "option"})


def with_clicks(events: list[Any], seed: int) -> list[Any]:
    """``events`` with a click after every 10th incremental event, on an element seen so far."""
    rng = random.Random(seed)
    anywhere: list[int] = []
    clickable: list[int] = []  # on or inside a clickable tag

    def note(node: Any, inside: bool) -> None:
        stack = [(node, inside)]
        while stack:
            n, inside = stack.pop()
            if not isinstance(n, dict):
                continue
            if n.get("type") == 2 and isinstance(n.get("id"), int):
                inside = inside or str(n.get("tagName", "")).lower() in CLICKABLE
                (clickable if inside else anywhere).append(n["id"])
            stack.extend((kid, inside) for kid in n.get("childNodes") or ())

    out = []
    incremental = 0
    for event in events:
        out.append(event)
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            continue
        if event.get("type") == 2:
            note(data.get("node"), False)
        elif event.get("type") == 3:
            for add in data.get("adds") or () if data.get("source") == 0 else ():
                note(add.get("node") if isinstance(add, dict) else None, False)
            incremental += 1
            pool = clickable if clickable and incremental % 20 == 0 else anywhere or clickable
            if incremental % 10 == 0 and pool:
                out.append({"type": 3, "timestamp": event.get("timestamp"),
                            "data": {"source": 2, "type": 2, "id": rng.choice(pool), "x": 1, "y": 1}})
    return out


def lines() -> list[str]:
    out = []
    for path in RECORDINGS:
        recorded = load_recording(path)
        for variant, events in (("recorded", recorded), ("clicks added", with_clicks(recorded, 7))):
            for seconds in (1.0, 5.0, 30.0):
                state = None
                for i, seg in enumerate(cut_segments(events, seconds)):
                    payload = zlib.compress(json.dumps(seg, separators=(",", ":")).encode(), 6)
                    job = jobs.SegmentJob(payload=payload, quality=1, max_recording_bytes=64 << 20,
                                          max_events=10**6, state=state, segment_id=i)
                    result = worker.run_job(jobs.process_segment, job)
                    state = result.state
                    c = result.clicks
                    out.append(json.dumps({
                        "recording": path.name, "variant": variant, "seconds": seconds, "segment": i,
                        "clicks": [dataclasses.astuple(k) for k in c.clicks], "click_count": c.click_count,
                        "dead_earlier": c.dead_earlier, "rage": c.rage_click_count,
                        "console": c.console_error_count,
                    }, sort_keys=True))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path)
    group.add_argument("--compare", type=Path)
    args = ap.parse_args()
    worker.init_worker(None, "check-secret", LimitsConfig())
    worker._Worker.thread = None
    got = lines()
    clicks = sum(len(json.loads(line)["clicks"]) for line in got)
    if args.write:
        args.write.write_text("\n".join(got) + "\n")
        print(f"{len(got)} segments, {clicks} clicks written to {args.write}")
        return
    want = args.compare.read_text().splitlines()
    differ = [(w, g) for w, g in zip(want, got, strict=False) if w != g]
    if len(want) != len(got) or differ:
        for w, g in differ[:5]:
            print(f"- {w}\n+ {g}")
        print(f"DIFFERENT: {len(differ)} of {len(got)} segments ({len(want)} expected)")
        sys.exit(1)
    print(f"same: {len(got)} segments, {clicks} clicks")


if __name__ == "__main__":
    main()
