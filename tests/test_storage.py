"""Both blob stores pass the same suite: the local directory and S3 through moto's server over HTTP."""

from __future__ import annotations

import hashlib
import os

import pytest

from replayd.server.config import StorageConfig
from replayd.server.storage import (
    BlobNotFound,
    StoreUnavailable,
    compacted_generation,
    compacted_key,
    object_digest,
    replay_prefix,
    segment_key,
)
from replayd.server.storage.backends import open_blob_store


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


async def test_ranged_reads_and_single_deletes_of_a_compacted_object(store):
    key = compacted_key(1, "a" * 32, 2)
    assert key == f"1/{'a' * 32}/compacted-000002" and compacted_generation(key) == 2
    assert compacted_generation(segment_key(1, "a" * 32, 2)) is None
    data = bytes(range(256)) * 40
    named = compacted_key(1, "a" * 32, 2, object_digest([data[:100], data[100:]]))  # named by its bytes
    assert named == f"{key}-{hashlib.blake2b(data, digest_size=8).hexdigest()}" and compacted_generation(named) == 2
    await store.put(key, data)
    assert await store.get_range(key, 0, 10) == data[:10]
    assert await store.get_range(key, 1000, 5000) == data[1000:5000]
    assert await store.get_range(key, 10, 10) == b""
    await store.put(segment_key(1, "a" * 32, 0), b"segment")
    await store.delete(segment_key(1, "a" * 32, 0))
    assert not await store.exists(segment_key(1, "a" * 32, 0))
    await store.delete(segment_key(1, "a" * 32, 0))  # nothing there: nothing done
    assert await store.get(key) == data
    assert await store.delete_prefix(replay_prefix(1, "a" * 32)) == 1  # the compacted object goes with its replay
    with pytest.raises(BlobNotFound):
        await store.get_range(key, 0, 10)


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


async def test_s3_outages_are_store_unavailable(s3_server):
    config = StorageConfig(backend="s3", bucket="no-such-bucket", endpoint_url=s3_server.endpoint_url)
    store = await open_blob_store(config)
    try:
        with pytest.raises(StoreUnavailable):
            await store.check()
        with pytest.raises(StoreUnavailable):
            await store.put(segment_key(1, "a" * 32, 0), b"x")
    finally:
        await store.close()


BAD_PREFIXES = {
    "empty-id": "1//", "project-only": "1/", "empty": "", "root": "/", "no-slash": "1", "parent": "../",
    "parent-in-id": "1/../", "no-trailing-slash": f"1/{'a' * 32}", "upper-case": f"1/{'A' * 32}/",
    "short": f"1/{'a' * 31}/", "long": f"1/{'a' * 33}/", "a-key": f"1/{'a' * 32}/000000",
    "newline": f"1/{'a' * 32}\n/", "project-not-a-number": f"x/{'a' * 32}/", "double-slash": f"1/{'a' * 32}//",
}
BAD_KEYS = {
    "empty-id": "1//000000", "newline": "1/0123456789abcdef\n/000000", "parent": "../escape",
    "no-segment": f"1/{'a' * 32}/", "segment-not-a-number": f"1/{'a' * 32}/x",
}


@pytest.mark.parametrize("prefix", BAD_PREFIXES.values(), ids=BAD_PREFIXES.keys())
async def test_delete_prefix_refuses_anything_but_one_whole_replay(store, prefix):
    key = segment_key(1, "a" * 32, 0)
    await store.put(key, b"kept")
    with pytest.raises(ValueError, match="not a replay prefix"):
        await store.delete_prefix(prefix)
    assert await store.get(key) == b"kept"


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
async def test_put_refuses_a_malformed_key(store, key):
    with pytest.raises(ValueError, match="not a blob key"):
        await store.put(key, b"x")
    with pytest.raises(ValueError, match="not a blob key"):
        await store.delete(key)


@pytest.mark.parametrize("replay_id", ["", "-" * 16, "0123456789abcdef\n", "A" * 32, "a" * 31])
def test_keys_are_made_only_of_canonical_replay_ids(replay_id):
    with pytest.raises(ValueError):
        segment_key(1, replay_id, 0)
    with pytest.raises(ValueError):
        replay_prefix(1, replay_id)


async def test_local_writes_leave_no_temp_files(tmp_path):
    store = await open_blob_store(StorageConfig(backend="local", path=str(tmp_path / "b")))
    for i in range(5):
        await store.put(segment_key(1, "d" * 32, i), os.urandom(1000))
    files = [p.name for p in (tmp_path / "b").rglob("*") if p.is_file()]
    assert sorted(files) == [f"{i:06d}" for i in range(5)]
    with pytest.raises(ValueError):
        await store.put("../escape", b"x")
