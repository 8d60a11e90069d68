"""Each resource's lifecycle as one async generator on ``app.cleanup_ctx``: open, yield, close."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from aiohttp import web

from replayd.scrubbing import domwalk

from . import strings_apart
from .bootstrap import load_credentials, load_projects
from .index import open_index
from .keys import blobs_key, config_key, credentials_key, index_key, pool_key, projects_key, spool_key, uploader_key
from .metrics import metrics_key
from .retention import sweep_forever
from .spool import Spool
from .storage.backends import open_blob_store
from .uploader import Uploader
from .workers import WorkerPool

log = logging.getLogger("replayd")


@contextlib.asynccontextmanager
async def running(coro: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """A background task for the life of the block, cancelled (and awaited) at its end."""
    task = asyncio.create_task(coro)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def index_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key]
    index = await open_index(config.index)
    app[index_key] = index
    app[projects_key] = await load_projects(config, index)
    app[credentials_key] = await load_credentials(config, index)
    yield
    await index.close()


async def blobs_ctx(app: web.Application) -> AsyncIterator[None]:
    store = await open_blob_store(app[config_key].storage)
    app[blobs_key] = store
    yield
    await store.close()


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key]
    missing = [name for name, built in (("server/_apart.c", strings_apart.walks_in_c()),
                                        ("scrubbing/_domwalk.c", domwalk.walks_in_c())) if not built]
    if missing:
        log.warning("%s not built (no C compiler or Python headers at install): segments are scrubbed and "
                    "written by the Python walks, at several times the CPU; see scripts/ensure-compiler.sh",
                    " and ".join(missing) + (" was" if len(missing) == 1 else " were"))
    pool = WorkerPool(
        size=config.server.workers or os.cpu_count() or 1,
        rules_path=config.scrubbing.rules,
        secret=app[credentials_key].scrub_secret,
        limits=config.limits,
    )
    app[pool_key] = pool
    yield
    pool.close()


async def spool_ctx(app: web.Application) -> AsyncIterator[None]:
    """The spool and its uploader, which also drains what a previous run left behind."""
    config, metrics = app[config_key], app[metrics_key]
    spool = Spool(config.spool.path, config.spool.max_bytes)
    uploader = Uploader(spool, app[blobs_key], app[index_key], metrics, config.storage.put_timeout,
                        config.spool.max_backoff, config.index.replay_lock_timeout)
    app[spool_key], app[uploader_key] = spool, uploader
    # The spool's cached counters: a scrape never lists the spool directory.
    metrics.gauge("replayd_spool_segments", lambda: spool.count)
    metrics.gauge("replayd_spool_bytes", lambda: spool.used_bytes)
    metrics.gauge("replayd_spool_oldest_age_seconds", spool.oldest_age)
    if spool.count:
        log.info("spool holds %d segment(s) from a previous run; uploading", spool.count)
    try:
        async with running(uploader.run()):
            yield
    finally:
        spool.close()


async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
    async with running(sweep_forever(app)):
        yield
