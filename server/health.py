"""The endpoints an operator's tooling polls: liveness, readiness and Prometheus metrics.

They are cheap (no directory listing, the spool's counters are cached) and tell an anonymous caller
which part is failing, never why: exception texts (paths, S3 errors) go to the server log only.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .auth import bearer_token
from .keys import blobs_key, config_key, index_key, spool_key
from .metrics import metrics_key
from .middlewares import json_error

log = logging.getLogger("replayd.health")

CHECK_TIMEOUT = 5.0

# The failure last logged per component, so a failing part is logged when its error changes, not
# on every probe of a load balancer.
logged_failures_key = web.AppKey("logged_failures", dict)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _probe(check: Callable[[], Awaitable[None]]) -> tuple[str, str] | None:
    """None when ``check`` succeeds in time; else (what to tell anyone, what to log)."""
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT)
    except TimeoutError:
        return "timed out", f"no answer within {CHECK_TIMEOUT:g} s"
    except Exception as exc:  # any failure means not ready
        return "unreachable", f"{type(exc).__name__}: {exc}"
    return None


def _log_changes(app: web.Application, details: dict[str, str]) -> None:
    logged = app[logged_failures_key]
    for name, detail in details.items():
        if logged.get(name) != detail:
            log.warning("not ready: %s %s", name, detail)
    for name in logged.keys() - details.keys():
        log.info("ready again: %s", name)
    logged.clear()
    logged.update(details)


async def readyz(request: web.Request) -> web.Response:
    checks = {"blob_store": request.app[blobs_key].check, "index": request.app[index_key].check}
    failing: dict[str, str] = {}
    details: dict[str, str] = {}
    for name, check in checks.items():
        if (problem := await _probe(check)) is not None:
            failing[name], details[name] = problem
    spool = request.app[spool_key]
    if spool.used_bytes >= spool.max_bytes:
        failing["spool"] = details["spool"] = "full"
    _log_changes(request.app, details)
    spool_state = {"segments": spool.count, "bytes": spool.used_bytes, "max_bytes": spool.max_bytes,
                   "oldest_age_seconds": round(spool.oldest_age(), 1)}
    if failing:
        detail = "not ready: " + ", ".join(f"{name} {why}" for name, why in failing.items())
        return web.json_response({"status": "unavailable", "detail": detail, "failing": failing,
                                  "spool": spool_state}, status=503)
    return web.json_response({"status": "ok", "spool": spool_state})


def _may_read_metrics(request: web.Request) -> bool:
    expected = request.app[config_key].server.metrics_token
    if expected is None:
        return True
    given = bearer_token(request)
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


async def metrics(request: web.Request) -> web.Response:
    if not _may_read_metrics(request):
        return json_error(401, "metrics token required: send Authorization: Bearer <server.metrics_token>",
                          headers={"WWW-Authenticate": 'Bearer realm="replayd metrics"'})
    body, content_type = request.app[metrics_key].render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


def setup_health(app: web.Application) -> None:
    app[logged_failures_key] = {}
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
