"""The process pool that runs the CPU-heavy half of ingest; replaced whole on a crash or a rules reload."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .config import LimitsConfig
from .ingest.refused import IngestRefused
from .ingest.worker import init_worker, run_job

log = logging.getLogger("replayd.workers")


class WorkerPool:
    def __init__(self, size: int, rules_path: str | None, secret: str, limits: LimitsConfig):
        self.size = size
        self._initargs = (rules_path, secret, limits)
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        # forkserver: workers never inherit the event loop's threads or sockets.
        return ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=init_worker,
            initargs=self._initargs,
        )

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            executor = self._executor
            try:
                return await loop.run_in_executor(executor, run_job, fn, *args)
            except BrokenProcessPool:
                log.error("a worker process died; starting a new pool (attempt %d)", attempt)
                if self._executor is executor:
                    self._executor = self._new_executor()
                    executor.shutdown(wait=False, cancel_futures=False)
        raise IngestRefused(400, "this item could not be processed: it crashed a worker process twice")

    def reload(self, rules_path: str | None) -> None:
        """New workers with new rules; jobs already running on the old pool finish there."""
        self._initargs = (rules_path, *self._initargs[1:])
        old, self._executor = self._executor, self._new_executor()
        old.shutdown(wait=False, cancel_futures=False)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
