"""A durable local spool for scrubbed, compressed segments the blob store could not take in time.

Each entry is one file: a 4-byte length, a JSON header (the segment's index record) and the blob.
It is written to a temp file, fsync'd and renamed into place (and the directory fsync'd) before
the client gets its 2xx. A background task uploads entries oldest first with backoff; entries left
by a crash are uploaded after a restart. Raw, unscrubbed data never comes here.

A spool belongs to one process: it holds an exclusive lock on ``.lock`` in its directory for its
life (the kernel lets go when the process dies), and a second process on the same directory refuses
to start (``SpoolLocked``) — else each would upload and delete the other's entries. With several
nodes, each has a spool directory (a volume) of its own; a segment another node spooled is read from
the blob store once that node has uploaded it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import json
import os
import struct
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from .index import SegmentRecord
from .storage.local import write_atomically

SUFFIX = ".seg"
_LEN = struct.Struct(">I")


class SpoolFull(Exception):
    """No room: the spool is at its size limit or the disk is full."""


class SpoolLocked(Exception):
    """Another process holds the spool directory."""


def _lock_directory(path: Path) -> int:
    """An open descriptor holding ``path/.lock`` exclusively; SpoolLocked if another process has it."""
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolLocked(f"spool directory {path} is in use by another replayd process; each process "
                          "needs a spool.path of its own") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # for a person looking: which process holds it
    return fd


@dataclass(slots=True)
class SpoolEntry:
    path: Path
    size: int
    mtime: float


class Spool:
    def __init__(self, path: str | os.PathLike, max_bytes: int):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)  # recordings: the owner's only
        self._lock_fd: int | None = _lock_directory(self.path)
        for stale in self.path.glob(".tmp-*"):  # a write interrupted by a crash was never acknowledged
            stale.unlink(missing_ok=True)
        # What the spool holds, by file name, oldest first: /metrics and /readyz read this instead of
        # listing the directory. put and remove keep it; a listing (start-up, each uploader round)
        # refreshes it, which also accounts for files moved aside or left by a cancelled write.
        self._held: OrderedDict[str, SpoolEntry] = OrderedDict()
        self._held_bytes = 0
        self._reserved_bytes = 0  # of writes under way
        self.entries()

    def close(self) -> None:
        """Let go of the directory's lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @staticmethod
    def entry_name(record: SegmentRecord) -> str:
        """Named by the blob's key (which names its bytes): another version of the segment, stored
        meanwhile, is an entry of its own that uploading or dropping this one never touches."""
        return f"{record.project_id}-{record.replay_id}-{record.blob_key.rpartition('/')[2]}{SUFFIX}"

    def entries(self) -> list[SpoolEntry]:
        """Lists the directory, oldest first (and refreshes the counters from what it found)."""
        found = []
        for path in self.path.glob("*" + SUFFIX):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            found.append(SpoolEntry(path, st.st_size, st.st_mtime))
        found.sort(key=lambda e: (e.mtime, e.path.name))
        self._held = OrderedDict((e.path.name, e) for e in found)
        self._held_bytes = sum(e.size for e in found)
        return found

    @property
    def count(self) -> int:
        """Entries held."""
        return len(self._held)

    @property
    def used_bytes(self) -> int:
        """Bytes held, plus those of writes under way."""
        return self._held_bytes + self._reserved_bytes

    def oldest_age(self) -> float:
        oldest = next(iter(self._held.values()), None)
        return max(0.0, time.time() - oldest.mtime) if oldest else 0.0

    def _hold(self, entry: SpoolEntry) -> None:
        self._forget(entry.path.name)
        self._held[entry.path.name] = entry
        self._held_bytes += entry.size

    def _forget(self, name: str) -> None:
        if (entry := self._held.pop(name, None)) is not None:
            self._held_bytes -= entry.size

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        try:
            write_atomically(target, data, sync_dir=True)
        except OSError as exc:
            raise SpoolFull(f"cannot write to the spool: {exc.strerror or exc}") from None

    async def put(self, record: SegmentRecord, blob: bytes, state: bytes) -> Path:
        header = json.dumps({"record": dataclasses.asdict(record), "state": state.hex()}).encode()
        data = _LEN.pack(len(header)) + header + blob
        if self.used_bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"spool holds {self.used_bytes} bytes, limit {self.max_bytes}")
        # Reserved on the event loop before the write, so concurrent writes cannot overshoot the limit.
        self._reserved_bytes += len(data)
        target = self.path / self.entry_name(record)
        try:
            await asyncio.to_thread(self._write, target, data)
        finally:
            self._reserved_bytes -= len(data)
        self._hold(SpoolEntry(target, len(data), time.time()))
        return target

    @staticmethod
    def _read(path: Path) -> tuple[SegmentRecord, bytes, bytes]:
        data = path.read_bytes()
        (length,) = _LEN.unpack_from(data)
        header = json.loads(data[4:4 + length])
        return SegmentRecord(**header["record"]), data[4 + length:], bytes.fromhex(header["state"])

    async def read(self, path: Path) -> tuple[SegmentRecord, bytes, bytes]:
        return await asyncio.to_thread(self._read, path)

    async def blob(self, record: SegmentRecord) -> bytes | None:
        """The spooled bytes of the segment ``record`` names, None if this spool has none."""
        name = self.entry_name(record)
        try:
            return (await self.read(self.path / name))[1]
        except FileNotFoundError:
            return None

    def remove_replay(self, project_id: int, replay_id: str) -> int:
        paths = list(self.path.glob(f"{project_id}-{replay_id}-*{SUFFIX}"))
        for path in paths:
            self.remove(path)
        return len(paths)

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._forget(path.name)
