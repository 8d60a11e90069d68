"""Both blob stores pass the same suite: the local directory and S3 through moto's server over HTTP."""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ClientError

from server.config import StorageConfig
from server.storage import BlobNotFound, open_blob_store, replay_prefix, segment_key


@pytest.fixture(params=["local", "s3"])
async def store(request, tmp_path):
    if request.param == "local":
        config = StorageConfig(backend="local", path=str(tmp_path / "blobs"))
    else:
        s3 = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        config = StorageConfig(backend="s3", bucket=bucket, endpoint_url=s3.endpoint_url, prefix="pre/")
    blob_store = await open_blob_store(config)
    yield blob_store
    await blob_store.close()


async def test_write_read_delete(store):
    key = segment_key(1, "a" * 32, 3)
    assert key == f"1/{'a' * 32}/000003"
    await store.check()
    assert not await store.exists(key)
    await store.put(key, b"\x00segment bytes\xff")
    assert await store.exists(key)
    assert await store.get(key) == b"\x00segment bytes\xff"
    await store.put(key, b"replaced")  # a re-sent segment overwrites
    assert await store.get(key) == b"replaced"
    await store.put(segment_key(1, "a" * 32, 4), b"four")
    await store.put(segment_key(1, "b" * 32, 0), b"other replay")
    assert await store.delete_prefix(replay_prefix(1, "a" * 32)) == 2
    with pytest.raises(BlobNotFound):
        await store.get(key)
    assert await store.get(segment_key(1, "b" * 32, 0)) == b"other replay"
    assert await store.delete_prefix(replay_prefix(1, "a" * 32)) == 0


async def test_missing_key(store):
    with pytest.raises(BlobNotFound):
        await store.get("1/nothing/000000")


async def test_s3_keys_use_the_prefix(s3_server, s3_bucket):
    store = await open_blob_store(StorageConfig(backend="s3", bucket=s3_bucket, endpoint_url=s3_server.endpoint_url,
                                                prefix="replays/"))
    try:
        await store.put(segment_key(2, "c" * 32, 1), b"x")
    finally:
        await store.close()
    assert s3_server.keys(s3_bucket) == [f"replays/2/{'c' * 32}/000001"]


async def test_s3_check_fails_for_a_missing_bucket(s3_server):
    store = await open_blob_store(StorageConfig(backend="s3", bucket="no-such-bucket", endpoint_url=s3_server.endpoint_url))
    try:
        with pytest.raises(ClientError) as missing:
            await store.check()
        assert missing.value.response["Error"]["Code"] == "404"  # HEAD of a missing bucket: no error body
    finally:
        await store.close()


async def test_local_writes_leave_no_temp_files(tmp_path):
    store = await open_blob_store(StorageConfig(backend="local", path=str(tmp_path / "b")))
    for i in range(5):
        await store.put(segment_key(1, "d" * 32, i), os.urandom(1000))
    files = [p.name for p in (tmp_path / "b").rglob("*") if p.is_file()]
    assert sorted(files) == [f"{i:06d}" for i in range(5)]
    with pytest.raises(ValueError):
        await store.put("../escape", b"x")
