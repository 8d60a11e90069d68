"""A PostgreSQL server for the tests, found or started: the one ``REPLAYD_TEST_POSTGRES_URL`` names
(default ``postgresql://postgres@127.0.0.1:5432/postgres``, the developers' and CI's), else a private
throw-away cluster of Debian's ``postgresql`` binaries in a temp dir, stopped and removed at the end.

Each test run works in a database of its own (a random name), dropped at the end; the schema is
migrated once and each test starts from empty tables. A test that needs a
database no replayd has opened asks for ``new_postgres_url``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests.harness import free_port

ENV = "REPLAYD_TEST_POSTGRES_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
T = TypeVar("T")


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """``await fn()`` from synchronous code, in a thread of its own: the test's event loop (if
    any) stays untouched."""
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, fn()).result()  # type: ignore[arg-type]


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


@dataclass
class PostgresServer:
    admin_url: str  # a database of the server to connect to for CREATE and DROP DATABASE

    def url(self, database: str) -> str:
        return with_database(self.admin_url, database)

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def create_database(self, name: str) -> str:
        run_async(lambda: self._admin(f'CREATE DATABASE "{name}"'))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        run_async(lambda: self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def answers(url: str) -> bool:
    async def connect() -> None:
        conn = await asyncpg.connect(url, timeout=5)
        await conn.close()

    try:
        run_async(connect)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    return True


def _postgres_bin() -> Path:
    """The newest Debian ``postgresql-NN`` binaries."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        pytest.fail(f"no PostgreSQL server answers ({ENV} or {DEFAULT_URL}) and none can be started here: "
                    "install Debian's postgresql package, or set REPLAYD_TEST_POSTGRES_URL")
    return found[-1].parent


@contextlib.contextmanager
def private_cluster() -> Iterator[str]:
    """A throw-away cluster in a temp dir on a free port (trust auth, no fsync), removed at the end.
    initdb refuses to run as root: then the cluster belongs to the ``postgres`` user (Debian's
    package makes it)."""
    bindir = _postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="replayd-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(base, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", free_port()

    def run(*command: Any) -> None:
        done = subprocess.run([*as_user, *map(str, command)], capture_output=True, text=True)
        if done.returncode:
            pytest.fail(f"{' '.join(map(str, command))} failed:\n{done.stdout}{done.stderr}")

    try:
        run(bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8",
            "--locale=C.UTF-8")
        run(bindir / "pg_ctl", "-D", data, "-l", base / "server.log", "-w", "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", "start")
        print(f"\n[tests] started a private PostgreSQL on 127.0.0.1:{port} in {base}", file=sys.stderr)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    url = os.environ.get(ENV) or DEFAULT_URL
    if answers(url):
        yield PostgresServer(url)
        return
    with private_cluster() as private_url:
        yield PostgresServer(private_url)


@pytest.fixture(scope="session")
def postgres_run_database(postgres_server: PostgresServer) -> Iterator[str]:
    """This test run's database, migrated, dropped at the end."""
    from replayd.server.index.postgres import PostgresIndex

    name = f"replayd_test_{secrets.token_hex(4)}"
    url = postgres_server.create_database(name)

    async def migrate() -> None:
        await (await PostgresIndex.open(url, min_size=0)).close()

    try:
        run_async(migrate)
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def postgres_url(postgres_run_database: str) -> str:
    """The run's database with every table empty, as a new replayd would find it."""

    async def empty() -> None:
        conn = await asyncpg.connect(postgres_run_database)
        try:
            tables = [r[0] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_version'")]
            # DELETE, not TRUNCATE: on a test's few rows it is ~500 times faster
            await conn.execute("; ".join(f"DELETE FROM {table}" for table in tables))
        finally:
            await conn.close()

    run_async(empty)
    return postgres_run_database


@pytest.fixture
def new_postgres_url(postgres_server: PostgresServer, postgres_run_database: str) -> Iterator[str]:
    """A database no replayd has opened (no schema), dropped after the test."""
    name = f"{urlsplit(postgres_run_database).path.lstrip('/')}_{secrets.token_hex(3)}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)
