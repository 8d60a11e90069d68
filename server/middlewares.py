"""Middlewares, outermost first: request log, errors as JSON, security headers."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from .index import IndexBusy
from .metrics import metrics_key
from .segment_reader import SegmentMoving

log = logging.getLogger("replayd.request")
errors_log = logging.getLogger("replayd.error")


def json_error(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"detail": detail}, status=status, headers=headers)


def http_error_as_json(exc: web.HTTPException) -> web.Response:
    """An HTTP error as ``{"detail": ...}``: its text (aiohttp's default "404: Not Found" becomes the
    reason alone), with its headers (Retry-After, WWW-Authenticate...) but its own body's type."""
    detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
    return json_error(exc.status, detail, headers={
        k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")
    })


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One log line and the metrics per request; the path only, never the query string (it can carry keys)."""
    started = time.perf_counter()
    status = 500
    response = None
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        seconds = time.perf_counter() - started
        log.info(
            "%s %s %d",
            request.method,
            request.rel_url.path,
            status,
            extra={"fields": {
                "method": request.method,
                "path": request.rel_url.path,
                "status": status,
                "ms": round(seconds * 1000, 1),
                "bytes_in": request.content_length or 0,
            }},
        )
        bytes_out = getattr(response, "content_length", None) or 0
        request.app[metrics_key].count_request(request, status, seconds, bytes_out)


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP errors become ``{"detail": ...}``; anything unexpected a 500 without a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json" or not _wants_json(request):
            raise
        return http_error_as_json(exc)
    except (IndexBusy, SegmentMoving) as busy:  # passing: the client is told when to ask again
        return json_error(503, str(busy), headers={"Retry-After": str(busy.retry_after)})
    except (ConnectionResetError, TimeoutError):
        raise
    except Exception:
        errors_log.exception("unhandled error in %s %s", request.method, request.rel_url.path)
        return json_error(500, "internal error; see the server log")


SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On every answer, errors and redirects raised as exceptions included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        for name, value in SECURITY_HEADERS.items():
            exc.headers.setdefault(name, value)
        raise
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
