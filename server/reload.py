"""SIGHUP (``runner.serve``): reload the scrubbing rules without a restart."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from .config import ConfigError
from .keys import config_key, pool_key
from .scrub_rules import load_rules_file

log = logging.getLogger("replayd")


async def reload_rules(app: web.Application) -> bool:
    """Validate the rules file again and move ingest to workers with the new rules.

    Jobs already running finish on the old workers; an invalid file is refused and the old rules stay.
    """
    path = app[config_key].scrubbing.rules
    try:
        await asyncio.to_thread(load_rules_file, path)
    except ConfigError as exc:
        log.error("scrubbing rules not reloaded: %s", "; ".join(exc.problems))
        return False
    app[pool_key].reload(path)
    log.info("scrubbing rules reloaded from %s", path or "the built-in defaults")
    return True
