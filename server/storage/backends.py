"""The blob store ``storage.backend`` names, opened. S3's module is imported only when it is the one
named: aiobotocore takes a while to import."""

from __future__ import annotations

from ..config import StorageConfig
from . import BlobStore
from .local import LocalBlobStore


async def open_blob_store(config: StorageConfig) -> BlobStore:
    if config.backend == "s3":
        from .s3 import S3BlobStore

        return await S3BlobStore.open(config)
    return LocalBlobStore(config.path)
