"""The player's pure browser modules under Node: plan arithmetic mirrors player/timeline.py, and the
state machine's transitions."""

from __future__ import annotations

import json
import random
import subprocess

from player import timeline
from tests.conftest import REPO

NODE = "node"  # `make test` needs Node.js for npm ci: without it these fail rather than skip
STATIC = REPO / "static" / "player"


def run_js(code: str) -> object:
    result = subprocess.run([NODE, "--input-type=module"], input=code, capture_output=True, text=True, timeout=30,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_js_plan_mirrors_python():
    rng = random.Random(6)
    cases = []
    for _ in range(40):
        n = rng.randint(1, 30)
        starts = sorted(rng.sample(range(0, 400_000, 250), n))
        table = [{"id": i, "start": s, "end": s + 4000, "full": i == 0 or rng.random() < 0.2}
                 for i, s in enumerate(starts)]
        for t in [rng.randint(-1000, 420_000) for _ in range(5)]:
            cases.append({"table": table, "t": t, "expected": timeline.plan(table, t)})
    code = f"""
import {{ plan, segmentAt, ranges, formatTime }} from '{(STATIC / "timeline.js").as_uri()}';
const cases = {json.dumps(cases)};
const got = cases.map((c) => plan(c.table, c.t));
const table = [{{start: 0, end: 4000}}, {{start: 5000, end: 9000}}, {{start: 20000, end: 24000}}];
console.log(JSON.stringify({{got, ranges: ranges(table, [2, 0, 1]), gap: ranges(table, [0, 2]),
  times: [formatTime(0), formatTime(65500), formatTime(3723000)]}}));
"""
    out = run_js(code)
    assert out["got"] == [c["expected"] for c in cases]
    assert out["ranges"] == [[0, 24000]]
    assert out["gap"] == [[0, 5000], [20000, 24000]]
    assert out["times"] == ["0:00", "1:05", "1:02:03"]


def test_state_machine_transitions():
    code = f"""
import {{ transition, initialState }} from '{(STATIC / "machine.js").as_uri()}';
const run = (events, s = initialState) => events.reduce((state, type) => transition(state, {{ type }}), s);
console.log(JSON.stringify({{
  loadedPaused: run(['LOADED']).name,
  autoplay: run(['PLAY', 'LOADED']).name,
  toggledTwice: run(['TOGGLE', 'TOGGLE', 'LOADED']).name,
  playPause: run(['LOADED', 'PLAY', 'PAUSE']).name,
  seekWhilePlaying: run(['LOADED', 'PLAY', 'SEEK_UNLOADED']),
  resumesAfterLoad: run(['LOADED', 'PLAY', 'SEEK_UNLOADED', 'LOADED']).name,
  staysPausedAfterLoad: run(['LOADED', 'SEEK_UNLOADED', 'LOADED']).name,
  ended: run(['LOADED', 'PLAY', 'END']).name,
  replay: run(['LOADED', 'PLAY', 'END', 'PLAY']),
  seekAfterEnd: run(['LOADED', 'PLAY', 'END', 'SEEK']).name,
  failed: run(['LOADED', 'PLAY']).name && transition(run(['LOADED']), {{ type: 'FAIL', error: 'x' }}),
  failedIsFinal: run(['PLAY', 'LOADED'], transition(initialState, {{ type: 'FAIL' }})).name,
  seekRetriesAfterFailure: run(['SEEK_UNLOADED', 'LOADED'], transition(initialState, {{ type: 'FAIL' }})).name,
  endIgnoredWhileLoading: run(['END']).name,
}}));
"""
    out = run_js(code)
    assert out["loadedPaused"] == "paused"
    assert out["autoplay"] == "playing"
    assert out["toggledTwice"] == "paused"
    assert out["playPause"] == "paused"
    assert out["seekWhilePlaying"] == {"name": "loading", "resume": True}
    assert out["resumesAfterLoad"] == "playing"
    assert out["staysPausedAfterLoad"] == "paused"
    assert out["ended"] == "ended"
    assert out["replay"] == {"name": "playing", "resume": False, "restart": True}
    assert out["seekAfterEnd"] == "paused"
    assert out["failed"] == {"name": "failed", "resume": False, "error": "x"}
    assert out["failedIsFinal"] == "failed"
    assert out["seekRetriesAfterFailure"] == "paused"  # a seek retries what failed to load
    assert out["endIgnoredWhileLoading"] == "loading"
