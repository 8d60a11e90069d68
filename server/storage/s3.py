"""Blob store in an S3-compatible bucket through aiobotocore.

Credentials come from the standard AWS chain (environment, profile); ``endpoint_url`` points
at MinIO, R2, moto or any other S3-compatible server.
"""

from __future__ import annotations

import contextlib

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from ..config import StorageConfig
from . import BlobNotFound


class S3BlobStore:
    name = "s3"

    def __init__(self, client, stack: contextlib.AsyncExitStack, bucket: str, prefix: str):
        self._client = client
        self._stack = stack
        self.bucket = bucket
        self.prefix = prefix

    @classmethod
    async def open(cls, config: StorageConfig) -> "S3BlobStore":
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
        await self._client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    async def get(self, key: str) -> bytes:
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobNotFound(key) from None
            raise
        async with response["Body"] as body:
            return await body.read()

    async def exists(self, key: str) -> bool:
        try:
            await self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise
        return True

    async def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                await self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted

    async def check(self) -> None:
        await self._client.head_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        await self._stack.aclose()
