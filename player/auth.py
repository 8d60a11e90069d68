"""Who is signed in: the signed session cookie, CSRF tokens, and the checks pages and the API make.

Signatures are itsdangerous's: HMAC-SHA256 under a key derived from ``credentials.secret_key`` and a
salt naming the purpose, compared in constant time. The session cookie is ``{"u": user, "n": nonce}``
with the time it was signed (``URLSafeTimedSerializer``), valid for ``SESSION_SECONDS`` from then. The
CSRF token of a session is the signature of its nonce: it never travels in a cookie, only in pages
(``<meta name=csrf-token>``, hidden form fields) and back in ``X-CSRF-Token`` or a ``csrf_token``
field. Requests authenticated by an API token (Bearer) need no CSRF token: a browser never attaches
one by itself. Signing in and out is ``signin.py``."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from aiohttp import web
from itsdangerous import BadSignature, Signer, URLSafeTimedSerializer

from replayd.server.auth import READ, bearer_token, missing_scope, request_scopes, session_checker_key, token_scopes
from replayd.server.keys import credentials_key

SESSION_COOKIE = "replayd_session"
BROWSER_COOKIE = "replayd_browser"  # a browser that signed in before: its own sign-in budget
SESSION_SECONDS = 14 * 86400
BROWSER_SECONDS = 365 * 86400
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


session_key = web.RequestKey("replayd_session", dict)


def _signer(secret: str, purpose: str) -> Signer:
    """HMAC-SHA256 under a key derived from the secret and the purpose: a signature made for one
    purpose (a browser id) is no signature for another (a CSRF token)."""
    return Signer(secret, salt=purpose, digest_method=hashlib.sha256)


def _sessions(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="session", signer_kwargs={"digest_method": hashlib.sha256})


def sign_session(secret: str, user: str) -> str:
    return _sessions(secret).dumps({"u": user, "n": secrets.token_urlsafe(16)})


def read_session(secret: str, cookie: str | None, max_age: int = SESSION_SECONDS) -> dict[str, Any] | None:
    """The session's payload, or None when the cookie is missing, forged, or signed more than
    ``max_age`` seconds ago."""
    try:
        data = _sessions(secret).loads(cookie or "", max_age=max_age)
    except BadSignature:  # SignatureExpired too
        return None
    return data if isinstance(data, dict) else None


def csrf_token(secret: str, session: dict[str, Any]) -> str:
    return _signer(secret, "csrf").get_signature(str(session.get("n", ""))).decode()


def valid_csrf(secret: str, session: dict[str, Any], token: str | None) -> bool:
    if not token:
        return False
    return _signer(secret, "csrf").verify_signature(str(session.get("n", "")), token)


def sign_browser(secret: str) -> str:
    return _signer(secret, "browser").sign(secrets.token_urlsafe(16)).decode()


def read_browser(secret: str, cookie: str | None) -> str | None:
    """The id of a browser that signed in before, or None (no cookie, or a forged one)."""
    try:
        return _signer(secret, "browser").unsign(cookie or "").decode()
    except BadSignature:
        return None


def secret_key(request: web.Request) -> str:
    return request.app[credentials_key].secret_key


def current_session(request: web.Request) -> dict[str, Any] | None:
    if session_key in request:
        return request[session_key]
    session = read_session(secret_key(request), request.cookies.get(SESSION_COOKIE))
    if session is not None:
        request[session_key] = session
    return session


def request_csrf_token(request: web.Request) -> str:
    """The token to embed in a page; empty for Bearer-authenticated requests (they need none)."""
    session = current_session(request)
    return csrf_token(secret_key(request), session) if session else ""


async def check_session(request: web.Request) -> bool:
    """The app's session checker (server.auth): a valid cookie, and a CSRF token on state changes."""
    session = current_session(request)
    if session is None:
        return False
    if request.method not in SAFE_METHODS:
        token: object = request.headers.get(CSRF_HEADER)
        if token is None and request.content_type == "application/x-www-form-urlencoded":
            token = (await request.post()).get(CSRF_FIELD)
        if not valid_csrf(secret_key(request), session, token if isinstance(token, str) else None):
            raise web.HTTPForbidden(text="CSRF token missing or invalid: reload the page and try again")
    return True


async def page_auth(request: web.Request) -> None:
    """For UI pages: signed in (or a valid Bearer token), else a redirect to the sign-in page."""
    token = bearer_token(request)
    if token is not None:
        scopes = token_scopes(request, token)
        if scopes is None:
            raise web.HTTPUnauthorized(text="invalid API token", headers={"WWW-Authenticate": 'Bearer realm="replayd"'})
        if READ not in scopes:
            raise missing_scope(READ)
        return
    if await request_scopes(request) is None:
        raise web.HTTPFound(request.app.router["login"].url_for().with_query(next=safe_next(request.path_qs)))


def safe_next(target: str | None) -> str:
    """Only local paths: ``//host`` and ``/\\host`` would leave the site, and so would ``/<TAB>/host``:
    browsers (and yarl, building the Location header) drop tabs and newlines from URLs, so any
    control character, space or backslash makes the target unsafe."""
    if (not target or not target.startswith("/") or target.startswith("//")
            or any(c <= " " or c in "\\\x7f" for c in target)):
        return "/"
    return target


def setup_auth(app: web.Application) -> None:
    app[session_checker_key] = check_session
