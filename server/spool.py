"""A durable local spool for scrubbed, compressed segments the blob store could not take in time.

Each entry is one file: a 4-byte length, a JSON header (the segment's index record) and the blob.
It is written to a temp file, fsync'd and renamed into place (and the directory fsync'd) before
the client gets its 2xx. A background task uploads entries oldest first with backoff; entries left
by a crash are uploaded after a restart. Raw, unscrubbed data never comes here.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
        for stale in self.path.glob(".tmp-*"):  # a write interrupted by a crash was never acknowledged
            stale.unlink(missing_ok=True)
        # What the spool holds, by file name, oldest first: /metrics and /readyz read this instead of
        # listing the directory. put and remove keep it; a listing (start-up, each uploader round)
        # refreshes it, which also accounts for files moved aside or left by a cancelled write.
        self._held: OrderedDict[str, SpoolEntry] = OrderedDict()
        self._held_bytes = 0
        self._reserved_bytes = 0  # of writes under way
        self.entries()

    @staticmethod
    def entry_name(project_id: int, replay_id: str, segment_id: int) -> str:
        return f"{project_id}-{replay_id}-{segment_id:06d}{SUFFIX}"

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
        target = self.path / self.entry_name(record.project_id, record.replay_id, record.segment_id)
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

    async def blob(self, name: str) -> bytes | None:
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
