"""Who may read: an API token (``Authorization: Bearer``) or a signed-in session (player/)."""

from __future__ import annotations

import hmac
from typing import Awaitable, Callable

from aiohttp import web

from .keys import credentials_key

# Other ways of signing in (the player's session cookie) register a checker here.
session_checker_key = web.AppKey("session_checker", Callable[[web.Request], Awaitable[bool]])


def bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def valid_token(request: web.Request, token: str) -> bool:
    return any(hmac.compare_digest(token.encode(), known.encode())
               for known in request.app[credentials_key].api_tokens)


async def is_authenticated(request: web.Request) -> bool:
    token = bearer_token(request)
    if token is not None:
        return valid_token(request, token)
    checker = request.app.get(session_checker_key)
    return bool(checker and await checker(request))


async def require_auth(request: web.Request) -> None:
    if not await is_authenticated(request):
        raise web.HTTPUnauthorized(
            text="authentication required: send Authorization: Bearer <API token>",
            headers={"WWW-Authenticate": 'Bearer realm="replayd"'},
        )
