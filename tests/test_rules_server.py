"""The rules file in the service: validated by check-config and at start-up, reloaded on SIGHUP,
tried out with `replayd scrub`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import yaml

from tests.harness import PUBLIC_KEY, REPO
from tests.test_config import run_cli, write
from tests.test_ingest import page_events, rid, segment_envelope
from tests.waiting import wait_until

T0 = 1_790_000_000.0


def rules_file(tmp_path, patterns: dict[str, str]):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "custom": [
        {"name": name, "pattern": pattern, "redaction": {"style": "replace", "label": f"[{name}]"}}
        for name, pattern in patterns.items()]}))
    return path


def test_check_config_validates_the_rules_file(tmp_path):
    rules = tmp_path / "rules.yaml"
    config = write(tmp_path, {"scrubbing": {"rules": str(rules)}})
    for bad, names in [({"custom": [{"name": "broken", "pattern": "(unclosed"}]}, "custom[0].pattern"),
                       ({"detectors": {"passport": True}}, "passport"),
                       ({"dom": {"rules": [{"selector": "a:hover", "action": "mask"}]}}, "selector")]:
        rules.write_text(yaml.safe_dump(bad))
        result = run_cli("check-config", str(config))
        assert result.returncode == 2, bad
        assert result.stderr.startswith("config error: scrubbing.rules") and names in result.stderr
        assert "Traceback" not in result.stderr
    examples = str(REPO / "examples" / "rules.yaml")
    good = run_cli("check-config", str(write(tmp_path, {"scrubbing": {"rules": examples}})))
    assert good.returncode == 0, good.stderr
    missing = run_cli("check-config", str(write(tmp_path, {"scrubbing": {"rules": str(tmp_path / "nope.yaml")}})))
    assert missing.returncode == 2 and "scrubbing.rules: cannot read" in missing.stderr


def text_of(server, replay_id: str) -> str:
    return json.dumps(server.api(f"/api/0/projects/1/replays/{replay_id}/segments/0/"))


def test_sighup_reloads_rules_without_dropping_requests(start_server, tmp_path):
    rules = rules_file(tmp_path, {"zebra": r"ZEBRA-\d+"})
    server = start_server(scrubbing={"rules": str(rules)})
    first = rid()
    post(server, segment_envelope(first, 0, events=page_events(T0, text="ZEBRA-42 and GIRAFFE-7 here")))
    assert "ZEBRA-42" not in text_of(server, first) and "GIRAFFE-7" in text_of(server, first)

    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            statuses.append(post(server, segment_envelope(rid(), 0)))

    thread = threading.Thread(target=load)
    thread.start()
    wait_until(lambda: len(statuses) >= 5, 60, "requests before the reload")
    rules_file(tmp_path, {"zebra": r"ZEBRA-\d+", "giraffe": r"GIRAFFE-\d+"})
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "scrubbing rules reloaded" in server.log(), 60, "the rules to be reloaded")
    reloaded_at = len(statuses)
    wait_until(lambda: len(statuses) >= reloaded_at + 5, 60, "requests after the reload")
    stop.set()
    thread.join(30)
    assert statuses and set(statuses) == {200}, statuses
    second = rid()
    post(server, segment_envelope(second, 0, events=page_events(T0, text="ZEBRA-42 and GIRAFFE-7 here")))
    assert "GIRAFFE-7" not in text_of(server, second) and "[giraffe]" in text_of(server, second)

    # A broken file is refused on SIGHUP; the running rules stay.
    (tmp_path / "rules.yaml").write_text("custom: [{name: bad, pattern: '(oops'}]")
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "scrubbing rules not reloaded" in server.log(), 60, "the broken rules to be refused")
    third = rid()
    post(server, segment_envelope(third, 0, events=page_events(T0, text="GIRAFFE-9")))
    assert "GIRAFFE-9" not in text_of(server, third)
    assert server.process.poll() is None


def post(server, body: bytes) -> int:
    request = urllib.request.Request(f"{server.url}/api/1/envelope/?sentry_key={PUBLIC_KEY}", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_scrub_command_on_a_recording_and_an_envelope(tmp_path):
    events = page_events(T0, text="Write to jane.doe@example.com about order 12")
    recording = tmp_path / "rec.json"
    recording.write_text(json.dumps(events))
    result = subprocess.run([sys.executable, "-m", "replayd.server.cli", "scrub", str(recording)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    scrubbed = json.loads(result.stdout)
    assert "jane.doe@example.com" not in result.stdout and "about order 12" in result.stdout
    assert len(scrubbed) == len(events)
    assert "@email" in result.stderr and "jane" not in result.stderr  # counts, never values

    envelope = tmp_path / "seg.envelope"
    envelope.write_bytes(segment_envelope(rid(), 0, events=events))
    result = subprocess.run([sys.executable, "-m", "replayd.server.cli", "scrub", "--summary-only", str(envelope)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == ""
    assert "replay_recording 0:" in result.stderr and "replay_event:" in result.stderr

    rules = rules_file(tmp_path, {"order": r"order \d+"})
    result = subprocess.run([sys.executable, "-m", "replayd.server.cli", "scrub", "--rules", str(rules),
                             str(recording)], capture_output=True, text=True, timeout=60)
    assert "about [order]" in result.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("custom: [{name: x, pattern: '('}]")
    result = subprocess.run([sys.executable, "-m", "replayd.server.cli", "scrub", "--rules", str(bad), str(recording)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "rules error" in result.stderr
