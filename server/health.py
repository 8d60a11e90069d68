"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from aiohttp import web

from .keys import blobs_key, index_key

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
    if failing:
        detail = "not ready: " + ", ".join(f"{name} unreachable ({why})" for name, why in failing.items())
        return web.json_response({"status": "unavailable", "detail": detail, "failing": failing}, status=503)
    return web.json_response({"status": "ok"})


def setup_health(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
