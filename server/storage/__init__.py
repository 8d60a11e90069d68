"""Blob stores: one small interface, a local directory and S3 (through aiobotocore).

Key layout (relative to the store's root or ``storage.prefix``)::

    {project_id}/{replay_id}/{segment_id:06d}

One object per segment, holding the codec's bytes (see ``server.codec``). A replay's
segments share a prefix, so deleting a replay deletes its prefix.
"""

from __future__ import annotations

from typing import Protocol

from ..config import StorageConfig


class BlobNotFound(KeyError):
    """The key does not exist in the store."""


class BlobStore(Protocol):
    name: str

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete_prefix(self, prefix: str) -> int: ...

    async def exists(self, key: str) -> bool: ...

    async def check(self) -> None:
        """Raise if the store cannot be reached or written."""

    async def close(self) -> None: ...


def segment_key(project_id: int, replay_id: str, segment_id: int) -> str:
    return f"{project_id}/{replay_id}/{segment_id:06d}"


def replay_prefix(project_id: int, replay_id: str) -> str:
    return f"{project_id}/{replay_id}/"


async def open_blob_store(config: StorageConfig) -> BlobStore:
    if config.backend == "s3":
        from .s3 import S3BlobStore

        return await S3BlobStore.open(config)
    from .local import LocalBlobStore

    return LocalBlobStore(config.path)
