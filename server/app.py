"""The application factory: it only calls set-up functions."""

from __future__ import annotations

from aiohttp import web

from replayd.player.routes import setup_player_routes

from . import middlewares
from .api import setup_api_routes
from .compaction import compaction_ctx
from .config import Config
from .health import setup_health
from .ingest.routes import setup_ingest_routes
from .keys import config_key
from .metrics import setup_metrics
from .resources import blobs_ctx, index_ctx, pool_ctx, retention_ctx, spool_ctx
from .segment_reader import setup_segment_reading
from .useragent import compile_user_agent_rules

# Headroom over the envelope limit so an oversized body is read far enough to answer 413 ourselves.
BODY_SLACK = 1024


def request_line_bytes(config: Config) -> int:
    """The longest request line read: a search of limits.max_search_characters, percent-encoded (up to
    12 bytes a character), with the other list parameters. aiohttp's own 8190 would refuse a search
    the config allows, with a plain-text 400."""
    return max(8190, 12 * config.limits.max_search_characters + 4096)


def create_app(config: Config) -> web.Application:
    app = web.Application(
        client_max_size=config.limits.max_envelope_bytes + BODY_SLACK,
        handler_args={"max_line_size": request_line_bytes(config)},
        middlewares=[middlewares.request_log, middlewares.errors, middlewares.security_headers],
    )
    app[config_key] = config
    app.cleanup_ctx.extend([index_ctx, blobs_ctx, pool_ctx, spool_ctx, retention_ctx])
    app.on_startup.append(compile_user_agent_rules)
    setup_metrics(app)
    setup_health(app)
    setup_ingest_routes(app)
    app.cleanup_ctx.append(compaction_ctx)
    setup_api_routes(app)
    setup_segment_reading(app)
    setup_player_routes(app)
    return app
