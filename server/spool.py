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
        self._bytes = sum(e.size for e in self.entries())

    @staticmethod
    def entry_name(project_id: int, replay_id: str, segment_id: int) -> str:
        return f"{project_id}-{replay_id}-{segment_id:06d}{SUFFIX}"

    def entries(self) -> list[SpoolEntry]:
        found = []
        for path in self.path.glob("*" + SUFFIX):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            found.append(SpoolEntry(path, st.st_size, st.st_mtime))
        return sorted(found, key=lambda e: (e.mtime, e.path.name))

    @property
    def bytes(self) -> int:
        return self._bytes

    def oldest_age(self) -> float:
        entries = self.entries()
        return max(0.0, time.time() - entries[0].mtime) if entries else 0.0

    def _write(self, target: Path, data: bytes) -> int:
        """Write ``data`` durably as ``target``; returns the size of the entry it replaced (0 if none)."""
        try:
            replaced = target.stat().st_size if target.exists() else 0
            write_atomically(target, data, sync_dir=True)
        except OSError as exc:
            raise SpoolFull(f"cannot write to the spool: {exc.strerror or exc}") from None
        return replaced

    async def put(self, record: SegmentRecord, blob: bytes, state: bytes) -> Path:
        header = json.dumps({"record": dataclasses.asdict(record), "state": state.hex()}).encode()
        data = _LEN.pack(len(header)) + header + blob
        if self._bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"spool holds {self._bytes} bytes, limit {self.max_bytes}")
        # Reserved on the event loop before the write, so concurrent writes cannot overshoot the limit.
        self._bytes += len(data)
        target = self.path / self.entry_name(record.project_id, record.replay_id, record.segment_id)
        try:
            replaced = await asyncio.to_thread(self._write, target, data)
        except BaseException:
            self._bytes -= len(data)
            raise
        self._bytes -= replaced
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
        try:
            size = path.stat().st_size
            path.unlink()
            self._bytes -= size
        except FileNotFoundError:
            pass
