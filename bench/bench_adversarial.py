"""Benchmark: the scrubber on text built to make its patterns backtrack (tests/adversarial.py).

    .venv/bin/python bench/bench_adversarial.py [--reps N]

For each near-miss unit (repeated to 200 KB): the best of N times of ``Scrubber.scrub_text`` with the
default rules and a cold per-string cache, in ms and MB/s. For each crafted 100 KB string: the same
for the text, an error event's request (URL, body, headers, query) and a recording (attributes,
text node, input, console payload) made of it, as tests/test_scrubbing_review.py scrubs them. Linear
patterns take milliseconds to a second here; a pattern that backtracks takes minutes to hours. Exits 1
when a near miss takes over 2 s or a crafted string over 5 s (the bounds the tests used to assert).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from replayd.scrubbing import RuleSet, Scrubber  # noqa: E402
from tests.adversarial import CRAFTED, NEAR_MISS_UNITS, near_miss_text  # noqa: E402

NEAR_MISS_LIMIT_S = 2.0
CRAFTED_LIMIT_S = 5.0


def scrub_text(scrubber: Scrubber, text: str) -> None:
    scrubber.scrub_text(text)


def scrub_everywhere(scrubber: Scrubber, text: str) -> None:
    scrubber.scrub_text(text)
    scrubber.scrub_error_event({"request": {"url": text, "data": text, "headers": text, "query_string": text}})
    link = {"type": 2, "id": 5, "tagName": "a",
            "attributes": {"href": text, "srcset": text, "style": text, "title": text},
            "childNodes": [{"type": 3, "id": 6, "textContent": text}]}
    body = {"type": 2, "id": 2, "tagName": "body", "attributes": {}, "childNodes": [link]}
    scrubber.scrub_recording([
        {"type": 2, "timestamp": 1,
         "data": {"initialOffset": {"left": 0, "top": 0}, "node": {"type": 0, "id": 1, "childNodes": [body]}}},
        {"type": 3, "timestamp": 2, "data": {"source": 5, "id": 5, "text": text + " a@"}},
        {"type": 6, "timestamp": 3, "data": {"plugin": "rrweb/console@1", "payload": {"payload": [text, "{" + text]}}},
    ])


def best_time(scrub, text: str, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        scrubber = Scrubber(RuleSet.default(), secret=b"bench-secret")  # cold per-string cache
        started = time.perf_counter()
        scrub(scrubber, text)
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)

    inputs = {f"near miss {unit[:12]!r}": (scrub_text, near_miss_text(unit), NEAR_MISS_LIMIT_S)
              for unit in NEAR_MISS_UNITS}
    inputs.update({f"crafted {name}": (scrub_everywhere, text, CRAFTED_LIMIT_S) for name, text in CRAFTED.items()})
    too_slow = []
    print(f"{'input':<32} {'KB':>6} {'ms':>8} {'MB/s':>8}")
    for name, (scrub, text, limit) in inputs.items():
        seconds = best_time(scrub, text, args.reps)
        size = len(text.encode())
        print(f"{name:<32} {size / 1000:>6.0f} {seconds * 1000:>8.1f} {size / 1e6 / seconds:>8.1f}")
        if seconds > limit:
            too_slow.append(name)
    if too_slow:
        print(f"over the limit: {', '.join(too_slow)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
