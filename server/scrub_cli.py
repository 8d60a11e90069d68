"""``replayd scrub``: try scrubbing rules on a recording or an envelope before deploying them."""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path
from typing import Any

import brotli

from .config import ConfigError


def add_scrub_parser(sub: argparse._SubParsersAction) -> None:
    scrub = sub.add_parser(
        "scrub",
        help="print a recording or envelope scrubbed by a rules file, and what matched where",
        description="Scrub INPUT (a JSON array of rrweb events, optionally .br/.gz/zlib-compressed, or a "
        "Sentry envelope) with the rules and print the scrubbed result to stdout and a summary of what "
        "matched where (rule and location counts, never the values) to stderr.",
    )
    scrub.add_argument("input", metavar="INPUT", help="file to scrub, or - for standard input")
    scrub.add_argument("--rules", metavar="FILE", help="rules file (default: the built-in rules)")
    scrub.add_argument("--secret", default="replayd-scrub-preview", help="key for `hash` redactions")
    scrub.add_argument("--summary-only", action="store_true", help="print only the summary")
    scrub.set_defaults(func=cmd_scrub)


def _read(path: str) -> bytes:
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    if path.endswith(".br"):
        return brotli.decompress(data)
    if data[:2] == b"\x1f\x8b" or data[:1] == b"\x78":
        return zlib.decompress(data, wbits=47)
    return data


def cmd_scrub(args: argparse.Namespace) -> int:
    from replayd.scrubbing import Scrubber, ScrubReport

    from .ingest.bounds import decompress_recording
    from .ingest.envelope import EnvelopeError, parse_envelope, split_recording
    from .scrub_rules import load_rules_file

    try:
        rules = load_rules_file(args.rules)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"rules error: {line}", file=sys.stderr)
        return 2
    try:
        data = _read(args.input)
    except OSError as exc:
        print(f"cannot read {args.input}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    scrubber = Scrubber(rules, secret=args.secret.encode())
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 200_000))
    output: list[Any] = []
    reports: list[tuple[str, ScrubReport]] = []
    if data.lstrip()[:1] == b"[":
        result = scrubber.scrub_recording(json.loads(data))
        output, reports = result.events, [("recording", result.report)]
    else:
        try:
            envelope = parse_envelope(data)
        except EnvelopeError as exc:
            print(f"INPUT is neither a JSON array of events nor an envelope: {exc}", file=sys.stderr)
            return 2
        state = None
        for item in envelope.items:
            if item.type == "replay_recording":
                segment_id, body = split_recording(item.payload)
                result = scrubber.scrub_recording(json.loads(decompress_recording(body, 1 << 31)), state)
                state = result.state
                output.append({"type": item.type, "segment_id": segment_id, "events": result.events})
                reports.append((f"replay_recording {segment_id}", result.report))
            elif item.type in ("event", "replay_event"):
                scrub = scrubber.scrub_error_event if item.type == "event" else scrubber.scrub_replay_event
                scrubbed, report = scrub(json.loads(item.payload))
                output.append({"type": item.type, "payload": scrubbed})
                reports.append((item.type, report))
    if not args.summary_only:
        json.dump(output, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    for name, report in reports:
        print(f"{name}: {report.total} redactions", file=sys.stderr)
        for rule, count in sorted(report.by_rule.items()):
            print(f"  rule {rule}: {count}", file=sys.stderr)
        for location, count in sorted(report.by_location.items()):
            print(f"  in {location}: {count}", file=sys.stderr)
    return 0
