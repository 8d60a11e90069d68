"""The worker pool: a job that kills its worker process is refused after one retry, and the pool
(replaced) runs the next jobs."""

from __future__ import annotations

import asyncio
import os

import pytest

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
