"""Nodes of a cluster are separate processes with different string-hash seeds, yet must store the
same bytes for the same segments (issue #12) and read each other's replay states: a segment job's
blob, state and report may not depend on PYTHONHASHSEED (a set's iteration order reaching output)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .harness import REPO

# Runs the segments of stdin, in order and carrying the state, the way the worker pool runs them.
JOB = """
import hashlib, json, sys
from replayd.server.config import LimitsConfig
from replayd.server.ingest.jobs import SegmentJob, process_segment
from replayd.server.ingest.worker import init_worker, run_job

init_worker(None, "determinism-secret", LimitsConfig())
state = None
out = []
for n, segment in enumerate(json.load(sys.stdin)):
    job = SegmentJob(payload=json.dumps(segment).encode(), quality=5, max_recording_bytes=1 << 24,
                     max_events=10_000, state=state, segment_id=n)
    result = run_job(process_segment, job)
    state = result.state
    out.append([hashlib.sha256(result.blob).hexdigest(), result.state.hex(),
                json.dumps(result.report, sort_keys=False), repr(result.clicks)])
json.dump(out, sys.stdout)
"""

# Elements with several of the attributes the default DOM rules look at (autocomplete, id, name,
# type): their order in the state came from a set.
FIELDS = [("email", "email", "email"), ("tel", "phone", "tel"), ("text", "cc", "cc-number"),
          ("password", "pw", "current-password"), ("text", "given", "given-name")]


def element(nid, tag, attrs, *kids):
    return {"type": 2, "id": nid, "tagName": tag, "attributes": attrs, "childNodes": list(kids)}


def segments() -> list[list[dict]]:
    inputs = [element(10 + k, "input", {"type": t, "id": f"f-{name}", "name": name, "autocomplete": ac,
                                        "class": "field"})
              for k, (t, name, ac) in enumerate(FIELDS)]
    button = element(30, "button", {"id": "send", "type": "submit"}, {"type": 3, "id": 31, "textContent": "Send"})
    page = {"type": 0, "id": 1, "childNodes": [element(2, "html", {}, element(3, "head", {}),
                                                       element(4, "body", {}, *inputs, button))]}
    first = [
        {"type": 4, "data": {"href": "https://shop.example/checkout", "width": 800, "height": 600},
         "timestamp": 1_700_000_000_000},
        {"type": 2, "data": {"node": page, "initialOffset": {"left": 0, "top": 0}}, "timestamp": 1_700_000_000_001},
        {"type": 3, "data": {"source": 5, "text": "jane@example.net", "isChecked": False, "id": 10},
         "timestamp": 1_700_000_000_500},
        {"type": 3, "data": {"source": 2, "type": 2, "id": 30, "x": 5, "y": 5}, "timestamp": 1_700_000_001_000},
    ]
    later = element(40, "input", {"name": "zip", "type": "text", "autocomplete": "postal-code", "id": "f-zip"})
    second = [
        {"type": 3, "data": {"source": 0, "texts": [], "removes": [], "adds": [
            {"parentId": 4, "nextId": None, "node": later}],
            "attributes": [{"id": 11, "attributes": {"autocomplete": "off", "name": "mobile", "id": "f-mobile"}}]},
         "timestamp": 1_700_000_006_000},
        {"type": 3, "data": {"source": 5, "text": "90210", "isChecked": False, "id": 40},
         "timestamp": 1_700_000_006_500},
        {"type": 3, "data": {"source": 2, "type": 2, "id": 30, "x": 5, "y": 5}, "timestamp": 1_700_000_007_000},
    ]
    return [first, second]


def run_with_hash_seed(seed: int, stdin: bytes) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    return subprocess.Popen([sys.executable, "-c", JOB], cwd=REPO, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_segment_job_stores_the_same_bytes_whatever_the_hash_seed():
    stdin = json.dumps(segments()).encode()
    procs = {seed: run_with_hash_seed(seed, stdin) for seed in (0, 1, 2)}
    outputs = {}
    for seed, proc in procs.items():
        out, err = proc.communicate(stdin, timeout=60)
        assert proc.returncode == 0, err.decode()
        outputs[seed] = json.loads(out)
    # the segments were scrubbed and noted, so the comparison is of something
    assert len(outputs[0]) == 2 and all(json.loads(report)["total"] for _, _, report, _ in outputs[0])
    for seed in (1, 2):
        for n, (ours, theirs) in enumerate(zip(outputs[0], outputs[seed], strict=True)):
            for what, a, b in zip(("blob", "state", "report", "clicks"), ours, theirs, strict=True):
                assert a == b, f"segment {n}: the {what} differs between PYTHONHASHSEED=0 and {seed}"
