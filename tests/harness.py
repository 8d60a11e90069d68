"""What the tests and the benchmarks (bench/) share: the repository's paths and test data, the
test config, and ``replayd serve`` started as a subprocess on a free port. No pytest here: the
benchmarks import it too (they run as ``python bench/x.py`` with the repository on sys.path)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import brotli
import pytest
import yaml

from replayd.player.timeline import event_ms
from replayd.server.config import Config, load_config

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"  # recordings and captured traffic the tests read; provenance in their READMEs
CORPUS = DATA / "corpus" / "nodedocs-session.json.br"
SDK_TRAFFIC = DATA / "sentry-browser-11.12.0-todo"
CHROMIUM = os.environ.get("REPLAYD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage",
]
PUBLIC_KEY = "testkey0123456789abcdef01234567"
API_TOKEN = "test-api-token"
ADMIN_PASSWORD = "test-password"


def load_recording(path: Path = CORPUS) -> list[dict[str, Any]]:
    """A recording: a JSON array of rrweb events in a file, brotli-compressed when it ends in .br."""
    data = path.read_bytes()
    events = json.loads(brotli.decompress(data) if path.suffix == ".br" else data)
    if not isinstance(events, list) or not events:
        raise ValueError(f"{path}: expected a JSON array of rrweb events")
    return events


def without_digest(key: str) -> str:
    """A blob key without its bytes' digest: ``1/<replay>/000003-<16 hex>`` is ``1/<replay>/000003``."""
    return re.sub(r"-[0-9a-f]{16}$", "", key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_config(tmp: Path, **sections: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "server": {"workers": 1},
        "storage": {"backend": "local", "path": str(tmp / "blobs")},
        "spool": {"path": str(tmp / "spool")},
        "index": {"url": f"sqlite:///{tmp / 'replayd.sqlite3'}"},
        "projects": [{"id": 1, "name": "test", "public_keys": [PUBLIC_KEY], "allowed_origins": ["*"]}],
        "auth": {"api_tokens": [API_TOKEN], "admin_password": ADMIN_PASSWORD},
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(name), dict):
            data[name] = {**data[name], **value}
        else:
            data[name] = value
    return data


def make_config(tmp: Path, **sections: Any) -> Config:
    path = tmp / "replayd.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp, **sections)))
    return load_config(path, environ={})


# --- a running `replayd serve` --------------------------------------------------------------

@dataclass
class RunningServer:
    url: str
    port: int
    data_dir: Path
    config_path: Path
    process: subprocess.Popen
    log_path: Path
    # Each start runs in a process group of its own; kill() ends them all, worker processes
    # included: a SIGKILLed replayd leaves its forkserver and workers behind.
    groups: list[int] = field(default_factory=list)
    python: str = sys.executable

    @property
    def dsn(self) -> str:
        return f"http://{PUBLIC_KEY}@127.0.0.1:{self.port}/1"

    def api(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"Bearer {API_TOKEN}"})
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read())

    def replay_events(self, replay_id: str, project_id: int = 1) -> list[dict[str, Any]]:
        """Every stored event of a replay, segment by segment from the read API, in time order, each
        ``timestamp`` in ms (the SDK's custom events carry seconds), as rrweb's Replayer wants them."""
        base = f"/api/0/projects/{project_id}/replays/{replay_id}/"
        events: list[dict[str, Any]] = []
        for segment in self.api(base)["data"]["segments"]:
            events += self.api(f"{base}segments/{segment['segment_id']}/")
        for event in events:
            event["timestamp"] = round(event_ms(event))
        return sorted(events, key=lambda e: e["timestamp"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def close(self, timeout: float = 30) -> None:
        """Shut down as an operator would (SIGTERM), then SIGKILL whatever is left after ``timeout``."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.stop(timeout=timeout)
        self.kill()

    def kill(self) -> None:
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.process.wait()

    def start(self) -> None:
        """(Re)start the process on the same port and data directory."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "replayd.server.cli", "serve", "--config", str(self.config_path)],
                cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT,
                env={**server_environment(), "PYTHONUNBUFFERED": "1"}, start_new_session=True,
            )
        self.groups.append(self.process.pid)
        wait_healthy(self.url, self.process, self.log_path)


# The tests' own REPLAYD_* knobs: the server would read them as configuration and stop on an unknown field.
TEST_ENV = ("REPLAYD_CHROMIUM", "REPLAYD_UPDATE_SCREENSHOTS")


def server_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in TEST_ENV}


def wait_healthy(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"replayd exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"replayd did not answer /healthz within {timeout} s:\n{log_path.read_text()}")


def launch_server(data_dir: Path, python: str = sys.executable, **sections: Any) -> RunningServer:
    """``replayd serve`` on a free port with its config, blobs and index in ``data_dir``; ``python``
    runs it (another checkout's venv serves that checkout's code: the benchmark's baseline)."""
    port = free_port()
    config = base_config(data_dir, **sections)
    config["server"] = {**config["server"], "host": "127.0.0.1", "port": port}
    config_path = data_dir / "replayd.yaml"
    config_path.write_text(yaml.safe_dump(config))
    server = RunningServer(f"http://127.0.0.1:{port}", port, data_dir, config_path, None,  # type: ignore[arg-type]
                           data_dir / "replayd.log", python=python)
    server.start()
    return server


# The tests marked so run on both index backends: conftest's ``config`` (and the app on it) with its
# index on SQLite, then on this run's PostgreSQL database.
ON_BOTH_INDEXES = pytest.mark.parametrize("index_url", ["sqlite", "postgres"], indirect=True)
