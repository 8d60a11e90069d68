"""UI routes, static files (the pinned vendor files among them), and the pages' CSP."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from .auth import setup_auth
from .json_views import setup_json_views
from .page_helpers import setup_templates
from .segments import setup_segments
from .signin import setup_signin
from .views import setup_views

# replayd.static sits next to this package both installed (site-packages/replayd/) and in the repo,
# where pyproject.toml's package-dir maps static/ to it.
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# Scripts only from our origin, never inline. The replay iframe (about:blank) inherits this policy, so
# it is also what recorded pages may load: styles, images, fonts and media from our origin, data:,
# blob: and https: only — recorded http:// URLs are upgraded by static/player/urlpolicy.js, and without
# http: no redirect or fetched stylesheet can lead the browser to a plain-HTTP service on the
# developer's network either (docs/security.md). No frames (rrweb's about:blank ones need no source),
# plugins or base elements; forms only to our origin (the sign-out form; the iframe's sandbox stops
# recorded forms); nobody else may frame us.
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline' https:",
    "img-src 'self' data: blob: https:",
    "font-src 'self' data: https:",
    "media-src 'self' data: blob: https:",
    "connect-src 'self'",
    "frame-src 'none'",
    "child-src 'none'",
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])


@web.middleware
async def page_security(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A strict Content-Security-Policy on every HTML page (errors included), no framing by others."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "text/html" or not request.path.startswith("/api/"):
            exc.headers.setdefault("Content-Security-Policy", CSP)
            exc.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        raise
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    return response


@web.middleware
async def static_caching(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Static files are cacheable; a ``?v=<hash>`` URL names one version, so it never changes."""
    response = await handler(request)
    if request.path.startswith("/static/") and response.status == 200:
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if "v" in request.query else "public, max-age=3600"
        )
    return response


def setup_player_routes(app: web.Application) -> None:
    app.middlewares.extend([page_security, static_caching])
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
    setup_templates(app)
    setup_auth(app)
    setup_signin(app)
    setup_views(app)
    setup_json_views(app)
    setup_segments(app)
