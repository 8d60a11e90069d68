"""Who may read or delete: an API token (``Authorization: Bearer``) with that scope, or a signed-in
session (player/), which may do both.

Neither secret is kept in clear: the admin password as a salted scrypt hash, API tokens as SHA-256
digests (a token is random and long, so a fast digest cannot be guessed back; a password may not be).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from .config import ALL_SCOPES
from .keys import credentials_key

READ, DELETE = "read", "delete"  # the scopes (server/config.py: Scope)

# Other ways of signing in (the player's session cookie) register a checker here.
SessionChecker = Callable[[web.Request], Awaitable[bool]]
session_checker_key: web.AppKey[SessionChecker] = web.AppKey("session_checker")

# scrypt's parameters for interactive logins (N=2^14, r=8, p=1: 16 MiB and tens of ms per check).
# They are stored with each hash, so raising them later keeps older hashes valid.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def generate_token() -> str:
    return "rpd_" + secrets.token_urlsafe(24)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=SCRYPT_MAXMEM, dklen=32)


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$digest`` (base64): slow on purpose, run it off the event loop."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(["scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches a ``hash_password`` result; slow, run it off the event loop."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(computed, base64.b64decode(digest))
    except (ValueError, TypeError):  # a malformed hash (fields, base64, scrypt parameters) matches nothing
        return False


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def token_scopes(request: web.Request, token: str) -> frozenset[str] | None:
    """The scopes of a known token, None for an unknown one. Compares digests, each in constant time,
    and all of them: the answer's timing tells nothing."""
    digest = token_digest(token).encode()
    found = None
    for known, scopes in request.app[credentials_key].token_scopes.items():
        if hmac.compare_digest(digest, known.encode()):
            found = scopes
    return found


async def request_scopes(request: web.Request) -> frozenset[str] | None:
    """What the request may do: its token's scopes, every scope for a signed-in session, None for neither."""
    token = bearer_token(request)
    if token is not None:
        return token_scopes(request, token)
    checker = request.app.get(session_checker_key)
    return ALL_SCOPES if checker and await checker(request) else None


def missing_scope(scope: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(content_type="application/json", text=json.dumps({
        "detail": f"this API token lacks the {scope!r} scope (auth.api_tokens: scopes); see docs/security.md",
        "missing_scope": scope}))


async def require_auth(request: web.Request, scope: str = READ) -> None:
    """401 without a valid token or session; 403 naming ``scope`` for a token without it."""
    scopes = await request_scopes(request)
    if scopes is None:
        raise web.HTTPUnauthorized(
            text="authentication required: send Authorization: Bearer <API token>",
            headers={"WWW-Authenticate": 'Bearer realm="replayd"'},
        )
    if scope not in scopes:
        raise missing_scope(scope)
