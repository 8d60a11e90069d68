"""The worker pool: a job that kills its worker process is refused after one retry, and the pool
(replaced) runs the next jobs; a server whose C walks were not built says so when it starts."""

from __future__ import annotations

import asyncio
import logging
import os

import pytest

from replayd.scrubbing import domwalk
from replayd.server import strings_apart
from replayd.server.app import create_app
from replayd.server.config import LimitsConfig
from replayd.server.ingest.refused import IngestRefused
from replayd.server.workers import WorkerPool


async def test_a_job_that_kills_its_worker_is_refused_and_the_pool_runs_on():
    pool = WorkerPool(1, None, "secret", LimitsConfig())
    try:
        with pytest.raises(IngestRefused, match="crashed a worker process twice"):
            await pool.run(os._exit, 1)
        pids = await asyncio.gather(*(pool.run(os.getpid) for _ in range(3)))
        assert len(set(pids)) == 1 and pids[0] != os.getpid()
    finally:
        pool.close()


async def test_a_server_without_the_c_walk_says_so_when_it_starts(aiohttp_client, config, monkeypatch, caplog):
    with caplog.at_level(logging.WARNING, logger="replayd"):
        client = await aiohttp_client(create_app(config))
        await client.close()
        assert "not built" not in caplog.text  # built here (test_codec and test_scrubbing_walk_in_c check it)
        monkeypatch.setattr(strings_apart, "_split_in_c", None)
        client = await aiohttp_client(create_app(config))
        await client.close()
        assert "server/_apart.c was not built" in caplog.text
        monkeypatch.setattr(domwalk, "_walk_in_c", None)
        await aiohttp_client(create_app(config))
    assert "server/_apart.c and scrubbing/_domwalk.c were not built" in caplog.text
