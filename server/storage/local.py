"""Blob store in a local directory; writes are atomic (temp file, fsync, rename)."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from . import BlobNotFound, check_blob_key, check_replay_prefix


def write_atomically(path: Path, data: bytes, sync_dir: bool = False) -> None:
    """Readers see the old file or the whole new one, never a part: temp file, fsync, rename.
    ``sync_dir`` also fsyncs the directory, so the rename itself survives a power loss."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_dir:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class LocalBlobStore:
    name = "local"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)  # recordings: the owner's only

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in (".", ".."):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root.joinpath(*parts)

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)

    def _get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(key) from None

    def _get_range(self, key: str, start: int, end: int) -> bytes:
        try:
            with self._path(key).open("rb") as f:
                f.seek(start)
                return f.read(max(0, end - start))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise BlobNotFound(key) from None

    def _delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _delete_prefix(self, prefix: str) -> int:
        path = self.root / prefix
        if not path.is_dir():
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path, ignore_errors=True)
        return count

    def _check(self) -> None:
        if not self.root.is_dir():
            raise OSError(f"{self.root} is not a directory")
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".ready-")
        os.close(fd)
        os.unlink(tmp)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, check_blob_key(key), data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        return await asyncio.to_thread(self._get_range, key, start, end)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, check_blob_key(key))

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def delete_prefix(self, prefix: str) -> int:
        return await asyncio.to_thread(self._delete_prefix, check_replay_prefix(prefix))

    async def check(self) -> None:
        await asyncio.to_thread(self._check)

    async def close(self) -> None:
        pass
