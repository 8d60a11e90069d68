"""``POST /api/{project_id}/envelope/``: auth, CORS, limits, then the pipeline."""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import StreamReader, web
from aiohttp.web_protocol import RequestPayloadError

from ..config import ProjectConfig
from ..index import IndexBusy
from ..keys import blobs_key, config_key, index_key, pool_key, projects_key, spool_key, uploader_key
from ..metrics import metrics_key
from ..middlewares import errors_log, json_error
from .envelope import EnvelopeError, EnvelopeTooLarge, envelope_header, parse_envelope
from .pipeline import Ingestor, Unavailable
from .refused import IngestRefused

ingestor_key = web.AppKey("ingestor", Ingestor)

_AUTH_KEY = re.compile(r"sentry_key\s*=\s*([^,\s]+)")
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Content-Encoding, X-Sentry-Auth, Authorization",
    "Access-Control-Max-Age": "3600",
    "Access-Control-Expose-Headers": "Retry-After, X-Sentry-Rate-Limits",
}


class RateLimiter:
    """A token bucket per project: ``rate`` envelopes a second, bursts of a minute's worth."""

    def __init__(self, rate: float):
        self.rate = rate
        self.burst = max(1.0, rate * 60)
        self._buckets: dict[int, tuple[float, float]] = {}

    def retry_after(self, project_id: int) -> int:
        """0 when allowed (and a token taken), else seconds until a token is available."""
        if self.rate <= 0:
            return 0
        now = time.monotonic()
        tokens, last = self._buckets.get(project_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1:
            self._buckets[project_id] = (tokens - 1, now)
            return 0
        self._buckets[project_id] = (tokens, now)
        return max(1, math.ceil((1 - tokens) / self.rate))


rate_limiter_key = web.AppKey("rate_limiter", RateLimiter)


def _cors_origin(project: ProjectConfig | None, origin: str | None) -> str | None:
    if not origin or project is None:
        return None
    allowed = project.allowed_origins
    if "*" in allowed:
        return origin
    return origin if origin in allowed else None


def _with_cors(response: web.StreamResponse, origin: str | None) -> web.StreamResponse:
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers.update(CORS_HEADERS)
    return response


def _request_key(request: web.Request) -> str | None:
    """The public key from the query string or an auth header (checked before the body is read)."""
    if key := request.query.get("sentry_key"):
        return key
    for header in ("X-Sentry-Auth", "Authorization"):
        if (m := _AUTH_KEY.search(request.headers.get(header, ""))) is not None:
            return m.group(1)
    return None


def _envelope_key(envelope_headers: dict) -> str | None:
    dsn = envelope_headers.get("dsn")
    try:
        return urlsplit(dsn).username if isinstance(dsn, str) else None
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


def _project(request: web.Request) -> tuple[int | None, ProjectConfig | None]:
    try:
        project_id = int(request.match_info["project_id"])
    except ValueError:
        return None, None
    return project_id, request.app[projects_key].get(project_id)


async def _read_chunk(stream: StreamReader) -> bytes:
    try:
        return await stream.readany()
    except (RequestPayloadError, OSError) as exc:  # bad Content-Encoding data, a broken connection
        raise EnvelopeError(f"could not read the request body: {type(exc).__name__}") from None


async def _read_first_line(stream: StreamReader, max_line: int) -> bytes:
    """The body up to its first newline (and whatever else came in the same chunk), reading no more
    than ``max_line`` bytes past which that line would be over the limit."""
    data = bytearray()
    while data.find(b"\n", 0, max_line + 1) < 0 and len(data) <= max_line:
        chunk = await _read_chunk(stream)
        if not chunk:
            break
        data += chunk
    return bytes(data)


async def _read_rest(stream: StreamReader, head: bytes, limit: int) -> bytes:
    """``head`` and the rest of the body (decompressed), refusing it once over ``limit`` bytes."""
    data = bytearray(head)
    while chunk := await _read_chunk(stream):
        data += chunk
        if len(data) > limit:
            raise EnvelopeTooLarge(f"envelope is over limits.max_envelope_bytes ({limit} bytes, after decompression)")
    return bytes(data)


async def envelope_preflight(request: web.Request) -> web.StreamResponse:
    _, project = _project(request)
    origin = _cors_origin(project, request.headers.get("Origin"))
    return _with_cors(web.Response(status=200 if origin else 403), origin)


async def envelope(request: web.Request) -> web.StreamResponse:
    project_id, project = _project(request)
    origin = _cors_origin(project, request.headers.get("Origin"))

    def fail(status: int, detail: str, headers: dict[str, str] | None = None) -> web.StreamResponse:
        request.app[metrics_key].inc("replayd_rejections_total", status=str(status))
        return _with_cors(json_error(status, detail, headers), origin)

    if project is None:
        return fail(403, f"unknown project {request.match_info['project_id']!r}")
    if request.headers.get("Origin") and origin is None:
        return fail(403, f"origin {request.headers['Origin']!r} is not allowed for project {project_id}")
    key = _request_key(request)
    if key is not None and key not in project.public_keys:
        return fail(403, f"sentry_key is not a key of project {project_id}")
    limits = request.app[config_key].limits
    limit = limits.max_envelope_bytes
    if request.content_length is not None and request.content_length > limit:
        return fail(413, f"envelope of {request.content_length} bytes is over limits.max_envelope_bytes ({limit})")
    try:
        head = b""
        if key is None:  # the key is in the envelope header's dsn: read that line, and no more, first
            head = await _read_first_line(request.content, limits.max_header_line_bytes)
            key = _envelope_key(envelope_header(head, limits.max_header_line_bytes))
            if not key:
                return fail(401, "missing sentry_key (query parameter, X-Sentry-Auth header or envelope dsn)")
            if key not in project.public_keys:
                return fail(403, f"sentry_key is not a key of project {project_id}")
        body = await _read_rest(request.content, head, limit)
        parsed = parse_envelope(body, limits.max_items_per_envelope, limits.max_header_line_bytes)
    except EnvelopeTooLarge as exc:
        return fail(413, str(exc))
    except EnvelopeError as exc:
        return fail(400, f"malformed envelope: {exc}")
    retry = request.app[rate_limiter_key].retry_after(project.id)
    if retry:
        return fail(429, f"rate limit of project {project_id} exceeded; retry in {retry} s",
                    {"Retry-After": str(retry), "X-Sentry-Rate-Limits": f"{retry}::organization"})
    try:
        await request.app[ingestor_key].ingest(project.id, parsed)
    except IngestRefused as exc:
        return fail(exc.status, exc.detail)
    except Unavailable as exc:
        return fail(503, exc.detail, {"Retry-After": str(exc.retry_after)})
    except IndexBusy as exc:
        return fail(503, str(exc), {"Retry-After": str(exc.retry_after)})
    except Exception:  # a bug: still an answer a browser can read (CORS), so the snippet retries it
        errors_log.exception("unhandled error ingesting an envelope for project %s", project_id)
        return fail(500, "internal error; see the server log")
    event_id = parsed.headers.get("event_id")
    return _with_cors(web.json_response({"id": event_id if isinstance(event_id, str) else None}), origin)


async def ingestor_ctx(app: web.Application) -> AsyncIterator[None]:
    app[ingestor_key] = Ingestor(app[config_key], app[index_key], app[blobs_key], app[pool_key], app[spool_key],
                                 app[uploader_key], app[metrics_key])
    app[rate_limiter_key] = RateLimiter(app[config_key].limits.rate_limit_per_second)
    yield


def setup_ingest_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(ingestor_ctx)
    app.router.add_route("OPTIONS", "/api/{project_id}/envelope/", envelope_preflight)
    app.router.add_post("/api/{project_id}/envelope/", envelope)
