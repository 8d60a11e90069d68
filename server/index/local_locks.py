"""Locks for the SQLite index, which one process uses: a replay's segment lock in this process's
memory, and a job's leader lock as a file lock beside the database (so even two processes on one
machine sharing the file never run retention at once)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path

from .protocol import ReplayBusy

MAX_LOCKS = 10_000


class ReplayLocks:
    """One asyncio lock per replay, forgetting idle ones beyond MAX_LOCKS."""

    def __init__(self) -> None:
        self._locks: OrderedDict[tuple[int, str], asyncio.Lock] = OrderedDict()

    def get(self, key: tuple[int, str]) -> asyncio.Lock:
        lock = self._locks.pop(key, None) or asyncio.Lock()
        self._locks[key] = lock
        while len(self._locks) > MAX_LOCKS:
            oldest_key, oldest = next(iter(self._locks.items()))
            if oldest.locked():
                break
            del self._locks[oldest_key]
        return lock

    @contextlib.asynccontextmanager
    async def hold(self, key: tuple[int, str], timeout: float) -> AsyncIterator[None]:
        lock = self.get(key)
        try:
            await asyncio.wait_for(lock.acquire(), timeout)
        except TimeoutError:
            raise ReplayBusy(f"replay {key[1]} was locked by another writer for {timeout:g} s") from None
        try:
            yield
        finally:
            lock.release()


@contextlib.asynccontextmanager
async def file_leader(path: Path) -> AsyncIterator[bool]:
    """True while this process holds ``path``'s exclusive lock (taken without waiting), else False.
    The kernel lets go when the process dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True  # closing the descriptor below lets go
    finally:
        os.close(fd)
