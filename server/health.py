"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .keys import blobs_key, index_key, spool_key

CHECK_TIMEOUT = 5.0


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks = {"blob_store": request.app[blobs_key].check, "index": request.app[index_key].check}
    failing = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT)
        except Exception as exc:  # any failure means not ready; name it
            failing[name] = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
    spool = request.app[spool_key]
    entries = spool.entries()
    spool_state = {"segments": len(entries), "bytes": spool.bytes, "max_bytes": spool.max_bytes,
                   "oldest_age_seconds": round(spool.oldest_age(), 1)}
    if spool.bytes >= spool.max_bytes:
        failing["spool"] = "full"
    if failing:
        detail = "not ready: " + ", ".join(f"{name} unreachable ({why})" if name != "spool" else "spool full"
                                          for name, why in failing.items())
        return web.json_response({"status": "unavailable", "detail": detail, "failing": failing,
                                  "spool": spool_state}, status=503)
    return web.json_response({"status": "ok", "spool": spool_state})


def setup_health(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
