"""Retention: replays (blobs, then rows) and errors not updated for ``retention_days`` are deleted,
once an hour for the life of the app (``resources.retention_ctx`` runs ``sweep_forever``)."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from .erase import delete_replay_data
from .keys import blobs_key, config_key, index_key, spool_key

log = logging.getLogger("replayd")

RETENTION_INTERVAL = 3600.0


async def sweep_expired(app: web.Application) -> int:
    """Delete replays (blobs, then rows) and errors not updated for ``retention_days``."""
    config, index, blobs, spool = app[config_key], app[index_key], app[blobs_key], app[spool_key]
    cutoff = time.time() - config.retention_days * 86400
    deleted = 0
    while batch := await index.replays_older_than(cutoff):
        for project_id, replay_id in batch:
            await delete_replay_data(index, blobs, spool, project_id, replay_id)
            deleted += 1
    errors = await index.delete_errors_older_than(cutoff)
    if deleted or errors:
        log.info("retention: deleted %d replays and %d errors older than %d days", deleted, errors,
                 config.retention_days)
    return deleted


async def sweep_forever(app: web.Application) -> None:
    """A sweep now and every ``RETENTION_INTERVAL`` seconds; a failed sweep is logged and retried."""
    while True:
        try:
            async with app[index_key].leader("retention") as leading:  # one node of several at a time
                if leading:
                    await sweep_expired(app)
        except Exception:
            log.exception("retention sweep failed; retrying in an hour")
        await asyncio.sleep(RETENTION_INTERVAL)
