"""Blob store in an S3-compatible bucket through aiobotocore.

Credentials come from the standard AWS chain (environment, profile); ``endpoint_url`` points
at MinIO, R2, moto or any other S3-compatible server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from ..config import StorageConfig
from . import BlobNotFound, StoreUnavailable, check_blob_key, check_replay_prefix

NOT_FOUND = ("NoSuchKey", "404", "NotFound")


@contextlib.contextmanager
def _outage(action: str) -> Iterator[None]:
    """What S3 or the way to it raises becomes ``StoreUnavailable``: the caller retries later."""
    try:
        yield
    except (BotoCoreError, ClientError, aiohttp.ClientError) as exc:
        raise StoreUnavailable(f"S3 {action} failed: {type(exc).__name__}") from exc


def _not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in NOT_FOUND


class S3BlobStore:
    name = "s3"

    def __init__(self, client, stack: contextlib.AsyncExitStack, bucket: str, prefix: str):
        self._client = client
        self._stack = stack
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    async def open(cls, config: StorageConfig) -> S3BlobStore:
        stack = contextlib.AsyncExitStack()
        session = get_session()
        client = await stack.enter_async_context(
            session.create_client(
                "s3",
                region_name=config.region,
                endpoint_url=config.endpoint_url,
                config=AioConfig(
                    connect_timeout=5,
                    read_timeout=30,
                    retries={"max_attempts": 3, "mode": "standard"},
                ),
            )
        )
        return cls(client, stack, config.bucket or "", config.prefix)

    async def put(self, key: str, data: bytes) -> None:
        key = self.prefix + check_blob_key(key)
        with _outage("put"):
            await self._client.put_object(Bucket=self.bucket, Key=key, Body=data)

    async def get(self, key: str) -> bytes:
        return await self._read(key)

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        if end <= start:
            return b""
        return await self._read(key, Range=f"bytes={start}-{end - 1}")

    async def _read(self, key: str, **request: str) -> bytes:
        with _outage("get"):
            try:
                response = await self._client.get_object(Bucket=self.bucket, Key=self.prefix + key, **request)
            except ClientError as exc:
                if _not_found(exc):
                    raise BlobNotFound(key) from None
                raise
            async with response["Body"] as body:
                return await body.read()

    async def delete(self, key: str) -> None:
        with _outage("delete"):
            await self._client.delete_object(Bucket=self.bucket, Key=self.prefix + check_blob_key(key))

    async def exists(self, key: str) -> bool:
        with _outage("head"):
            try:
                await self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            except ClientError as exc:
                if _not_found(exc):
                    return False
                raise
        return True

    async def delete_prefix(self, prefix: str) -> int:
        prefix = self.prefix + check_replay_prefix(prefix)
        deleted = 0
        with _outage("delete"):
            paginator = self._client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if keys:
                    await self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                    deleted += len(keys)
        return deleted

    async def check(self) -> None:
        with _outage("check"):
            await self._client.head_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        await self._stack.aclose()
