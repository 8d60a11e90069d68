"""The real-parts test fixtures: an in-process app, moto's S3 server over HTTP, a running
``replayd serve`` (tests/harness.py, shared with the benchmarks), and Debian's Chromium driven by
Playwright."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from replayd.server.app import create_app
from replayd.server.config import Config
from tests.harness import API_TOKEN, CHROMIUM, CHROMIUM_ARGS, RunningServer, free_port, launch_server, make_config

# moto's server signs nothing with real keys; give aiobotocore the standard chain's variables.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The index ``config`` names: SQLite in the test's directory (make_config's own), or this run's
    PostgreSQL database for a test parametrised with "postgres" (``harness.ON_BOTH_INDEXES``)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite:///{tmp_path / 'replayd.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def config(tmp_path: Path, index_url: str) -> Config:
    return make_config(tmp_path, index={"url": index_url})


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
