"""The real-parts test harness: an in-process app, moto's S3 server over HTTP, a running
``replayd serve``, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from replayd.server.app import create_app
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

# moto's server signs nothing with real keys; give aiobotocore the standard chain's variables.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


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
        "auth": {"api_tokens": [API_TOKEN], "admin_password": "test-password"},
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


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
async def client(aiohttp_client, config: Config):
    """The app in-process, with its real local blob store, SQLite index and worker pool."""
    return await aiohttp_client(create_app(config))


@pytest.fixture
def auth_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


# --- S3: moto's server over real HTTP -------------------------------------------------------

@dataclass
class S3Server:
    endpoint_url: str
    server: Any

    def make_bucket(self, name: str) -> str:
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")
        s3.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield S3Server(f"http://127.0.0.1:{port}", server)
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, request) -> str:
    name = "replayd-" + request.node.name.lower().replace("_", "-").replace("[", "-").replace("]", "")[:40]
    name = name.rstrip("-") + f"-{time.monotonic_ns() % 100000}"
    return s3_server.make_bucket(name)


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

    @property
    def dsn(self) -> str:
        return f"http://{PUBLIC_KEY}@127.0.0.1:{self.port}/1"

    def api(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": f"Bearer {API_TOKEN}"})
        with urllib.request.urlopen(req, timeout=30) as response:
            return json.loads(response.read())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        for group in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.process.wait()

    def start(self) -> None:
        """(Re)start the process on the same port and data directory."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "replayd.server.cli", "serve", "--config", str(self.config_path)],
                cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
            )
        self.groups.append(self.process.pid)
        wait_healthy(self.url, self.process, self.log_path)


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


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Start ``replayd serve`` as a subprocess with its own data directory; extra config sections merge in."""
    started: list[RunningServer] = []

    def start(**sections: Any) -> RunningServer:
        data_dir = tmp_path / f"server{len(started)}"
        data_dir.mkdir()
        server = launch_server(data_dir, **sections)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def launch_server(data_dir: Path, **sections: Any) -> RunningServer:
    """``replayd serve`` on a free port with its config, blobs and index in ``data_dir``."""
    port = free_port()
    config = base_config(data_dir, **sections)
    config["server"] = {**config["server"], "host": "127.0.0.1", "port": port}
    config_path = data_dir / "replayd.yaml"
    config_path.write_text(yaml.safe_dump(config))
    server = RunningServer(f"http://127.0.0.1:{port}", port, data_dir, config_path, None,  # type: ignore[arg-type]
                           data_dir / "replayd.log")
    server.start()
    return server


# --- a real browser ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (the tests fail, not skip, when it is missing)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` (it installs Debian's chromium) or set REPLAYD_CHROMIUM")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def sentry_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real ``@sentry/browser`` from node_modules, bundled for test pages (``window.Sentry``)."""
    from tests.sites import build_sentry_bundle

    return build_sentry_bundle(tmp_path_factory.mktemp("sentry-bundle"))


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def pytest_collection_modifyitems(config, items):
    """Browser tests run last: sync Playwright keeps its own event loop on the main thread for the
    rest of the session, where pytest-asyncio could no longer start one for async tests."""
    uses_browser = [item for item in items if {"browser", "page"} & set(getattr(item, "fixturenames", ()))]
    others = [item for item in items if item not in uses_browser]
    items[:] = others + uses_browser


def pytest_sessionfinish(session, exitstatus):
    """No test may skip: everything a test needs is in the repository or installed by `make test`,
    so a skip can only hide a test that did not run. Skips fail the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter and reporter.stats.get("skipped") and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if skipped := terminalreporter.stats.get("skipped"):
        terminalreporter.write_line(f"{len(skipped)} skipped: a skip fails the run (tests/conftest.py)", red=True)


# --- PostgreSQL: the server the tests use, found or started (tests/postgres.py) -------------

from tests.postgres import new_postgres_url, postgres_run_database, postgres_server, postgres_url  # noqa: E402,F401
