"""Waiting for something to happen: poll a condition until a deadline.

A fixed sleep is a guess at how long the machine needs: too short on a loaded machine (a flaky
failure), too long on an idle one (a slow suite). Tests wait on the condition they need instead, with
a deadline generous enough for a busy machine, and fail naming what did not happen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str, *, interval: float = 0.1,
               sleep: Callable[[float], Any] = time.sleep) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    An ``OSError`` from the predicate (asking a server that is still starting or just stopped)
    counts as "not yet". ``sleep`` is how to pass the time between calls: a Playwright test passes
    ``page.wait_for_timeout``-based sleep, because the sync API delivers page events only inside its
    own calls.
    """
    deadline = time.monotonic() + timeout
    while True:
        value, error = _poll(predicate)
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(timeout, what, error))
        sleep(interval)


async def wait_until_async(predicate: Callable[[], T | Awaitable[T]], timeout: float, what: str, *,
                           interval: float = 0.1) -> T:
    """``wait_until`` for async tests: the event loop (the app under test) runs between calls, and
    ``predicate`` may be async."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            error = None
        except OSError as exc:
            value, error = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(_timed_out(timeout, what, error))
        await asyncio.sleep(interval)


def _poll(predicate: Callable[[], T]) -> tuple[T | None, OSError | None]:
    try:
        return predicate(), None
    except OSError as exc:
        return None, exc


def _timed_out(timeout: float, what: str, error: OSError | None) -> str:
    return f"timed out after {timeout} s waiting for {what}" + (f" (last error: {error!r})" if error else "")
