"""Signing in and out: the ``/login`` form, its throttle, and ``/logout``.

The form carries a pre-session CSRF token (double submit: a ``replayd_login`` cookie and a hidden
field). A successful sign-in sets the session cookie (``auth.py``) and leaves a ``replayd_browser``
cookie (a random id and its signature, a year, path /login): the throttle gives such a browser its
own budget of failures (``SignInThrottle``)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import time
from collections import deque
from collections.abc import Sequence

from aiohttp import web

from replayd.server.auth import verify_password
from replayd.server.keys import config_key, credentials_key

from .auth import (
    BROWSER_COOKIE,
    BROWSER_SECONDS,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    SESSION_SECONDS,
    current_session,
    read_browser,
    safe_next,
    secret_key,
    sign_browser,
    sign_session,
    valid_csrf,
)
from .page_helpers import render

LOGIN_COOKIE = "replayd_login"  # the pre-session CSRF token of the sign-in form (double submit)
MAX_CLIENTS = 10_000  # clients the throttle remembers; past that it forgets the oldest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class SignInThrottle:
    """Failed sign-ins per client and of everyone, so a password cannot be guessed at network speed.

    A client is a browser that signed in before (its signed ``replayd_browser`` cookie), else its
    address, an IPv6 address with its whole /64. Past ``per_client`` failures within ``window``
    seconds a client waits (429) until the oldest leaves the window, with the right password too.
    Past ``total`` failures of all clients together, every client that never signed in waits too,
    while browsers that did keep just their own budget: an attack from many addresses slows guessing
    down for everyone but cannot lock out the people who use replayd.
    """

    def __init__(self, per_client: int = 10, total: int = 100, window: float = 600):
        self.per_client, self.total, self.window = per_client, total, window
        self._clients: dict[str, deque[float]] = {}  # times of failures within the window, oldest first
        self._everyone: deque[float] = deque()

    def _wait(self, failures: deque[float], limit: int, now: float) -> int:
        """Seconds until fewer than ``limit`` failures are within the window."""
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        return int(self.window - (now - failures[-limit])) + 1 if len(failures) >= limit else 0

    def retry_after(self, client: str, known: bool, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        wait = self._wait(self._clients.get(client, deque()), self.per_client, now)
        return wait if known else max(wait, self._wait(self._everyone, self.total, now))

    def attempt(self, client: str, now: float | None = None) -> float:
        """Count a sign-in as failed before its password is checked, so that concurrent guesses count
        too (call it right after ``retry_after`` said 0); ``succeeded`` takes it back. Returns its time."""
        now = time.monotonic() if now is None else now
        if client not in self._clients and len(self._clients) >= MAX_CLIENTS:
            self._clients.pop(next(iter(self._clients)))
        self._clients.setdefault(client, deque()).append(now)
        self._everyone.append(now)
        return now

    def succeeded(self, client: str, attempt: float) -> None:
        for failures in (self._clients.get(client, deque()), self._everyone):
            with contextlib.suppress(ValueError):  # already out of the window
                failures.remove(attempt)


throttle_key = web.AppKey("sign_in_throttle", SignInThrottle)


def _ip(text: str | None) -> IPAddress | None:
    try:
        address = ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None
    return (address.ipv4_mapped or address) if isinstance(address, ipaddress.IPv6Address) else address


def client_address(request: web.Request, trusted_proxies: Sequence[IPNetwork]) -> IPAddress | None:
    """Where a request comes from. When the peer is a trusted proxy, the right-most X-Forwarded-For
    entry that is not a trusted proxy itself: each proxy appends the address it saw, so entries to
    the left of that one were written by the client and may say anything."""
    address = _ip(request.remote)
    hops = [hop for value in request.headers.getall("X-Forwarded-For", []) for hop in value.split(",")]
    while address is not None and hops and any(address in network for network in trusted_proxies):
        forwarded = _ip(hops.pop())
        if forwarded is None:  # not an address: the proxy that wrote it is the best we know
            break
        address = forwarded
    return address


def client_bucket(address: IPAddress | None) -> str:
    """One bucket per IPv4 address, and per IPv6 /64: one host usually has a whole /64 to pick from."""
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address) if address is not None else "unknown"


def _cookie_secure(request: web.Request) -> bool:
    return request.secure or request.headers.get("X-Forwarded-Proto", "") == "https"


def _set_login_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Lax", path="/login",
                        secure=_cookie_secure(request), max_age=3600)


async def login_page(request: web.Request) -> web.StreamResponse:
    if current_session(request) is not None:
        raise web.HTTPFound(safe_next(request.query.get("next")))
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", {"login_token": token, "next": safe_next(request.query.get("next")),
                                             "failed": False})
    _set_login_cookie(request, response, token)
    return response


async def login_submit(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    next_url = safe_next(str(form.get("next", "/")))
    expected = request.cookies.get(LOGIN_COOKIE, "")
    submitted = str(form.get(CSRF_FIELD, ""))
    if not expected or not secrets.compare_digest(expected.encode(), submitted.encode()):
        raise web.HTTPForbidden(text="CSRF token missing or invalid: reload the sign-in page and try again")
    throttle = request.app[throttle_key]
    browser = read_browser(secret_key(request), request.cookies.get(BROWSER_COOKIE))
    client = f"browser {browser}" if browser else client_bucket(
        client_address(request, request.app[config_key].server.trusted_proxies))
    if wait := throttle.retry_after(client, known=browser is not None):
        raise web.HTTPTooManyRequests(text=f"too many failed sign-ins; retry in {wait} s",
                                      headers={"Retry-After": str(wait)})
    attempt = throttle.attempt(client)
    password = str(form.get("password", ""))
    if not await asyncio.to_thread(verify_password, request.app[credentials_key].admin_password_hash, password):
        token = secrets.token_urlsafe(24)
        response = render(request, "login.html", {"login_token": token, "next": next_url, "failed": True},
                          status=401)
        _set_login_cookie(request, response, token)
        return response
    throttle.succeeded(client, attempt)
    response = web.HTTPSeeOther(next_url)
    secure = _cookie_secure(request)
    response.set_cookie(SESSION_COOKIE, sign_session(secret_key(request), "admin"), httponly=True, samesite="Lax",
                        path="/", secure=secure, max_age=SESSION_SECONDS)
    response.set_cookie(BROWSER_COOKIE, sign_browser(secret_key(request)), httponly=True, samesite="Strict",
                        path="/login", secure=secure, max_age=BROWSER_SECONDS)
    response.del_cookie(LOGIN_COOKIE, path="/login")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    session = current_session(request)
    if session is not None:
        form = await request.post()
        token = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
        if not valid_csrf(secret_key(request), session, token if isinstance(token, str) else None):
            raise web.HTTPForbidden(text="CSRF token missing or invalid: reload the page and try again")
    response = web.HTTPSeeOther(str(request.app.router["login"].url_for()))
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


def setup_signin(app: web.Application) -> None:
    auth = app[config_key].auth
    app[throttle_key] = SignInThrottle(auth.sign_in_failures, auth.sign_in_failures_total, auth.sign_in_window)
    app.router.add_get("/login", login_page, name="login")
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout, name="logout")
