"""The read API: auth, listing with filters and cursors, segments, delete, retention, both blob stores."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import brotli
import msgpack
import pytest

from replayd.server.app import create_app
from replayd.server.keys import config_key, index_key
from replayd.server.retention import sweep_expired
from tests.harness import API_TOKEN, ON_BOTH_INDEXES, make_config, without_digest
from tests.test_ingest import AUTH, T0, error_envelope, error_event, get, post, rid, segment_envelope

PATHS = [
    "/api/0/projects/1/replays/",
    "/api/0/projects/1/replays/0123456789abcdef0123456789abcdef/",
    "/api/0/projects/1/replays/0123456789abcdef0123456789abcdef/segments/0/",
    "/api/0/projects/1/errors/0123456789abcdef0123456789abcdef/",
    "/api/0/projects/1/issues/",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dGVzdA=="}])
async def test_read_api_needs_a_token(client, path, headers):
    response = await client.get(path, headers=headers)
    assert response.status == 401
    assert "authentication required" in (await response.json())["detail"]


@ON_BOTH_INDEXES
async def test_delete_needs_a_token(client):
    replay_id = rid()
    await post(client, segment_envelope(replay_id, 0))
    assert (await client.delete(f"/api/0/projects/1/replays/{replay_id}/")).status == 401
    assert (await get(client, f"/api/0/projects/1/replays/{replay_id}/"))["segment_count"] == 1


READER, DELETER = "reader-token-0123456789", "deleter-token-0123456789"
# the test config's bare token (no scopes listed: read and delete, as before scopes), a read-only
# token and a delete-only one (an erasure job's)
SCOPED_TOKENS = [API_TOKEN, {"token": READER, "scopes": ["read"]}, {"token": DELETER, "scopes": ["delete"]}]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_token_reads_and_deletes_only_with_those_scopes(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, auth={"api_tokens": SCOPED_TOKENS})))
    replay_id = rid()
    await post(client, segment_envelope(replay_id, 0))
    path = f"/api/0/projects/1/replays/{replay_id}/"
    assert (await client.get(path, headers=bearer(READER))).status == 200
    refused = await client.delete(path, headers=bearer(READER))
    assert refused.status == 403
    assert await refused.json() == {"missing_scope": "delete", "detail": "this API token lacks the 'delete' scope "
                                    "(auth.api_tokens: scopes); see docs/security.md"}
    for read in [*PATHS, path, "/projects/1/replays"]:  # the API and the player's pages
        response = await client.get(read, headers=bearer(DELETER))
        assert response.status == 403, read
        assert (await response.json())["missing_scope"] == "read"
    assert (await get(client, path))["segment_count"] == 1  # nothing deleted so far
    assert (await client.delete(path, headers=bearer(DELETER))).status == 200
    assert (await client.get(path, headers=bearer(API_TOKEN))).status == 404


@ON_BOTH_INDEXES
async def test_unknown_things_are_404(client):
    for path in [*PATHS[1:4], "/api/0/projects/9/replays/"]:
        response = await client.get(path, headers=AUTH)
        assert response.status == 404, path
        assert "detail" in await response.json()


@ON_BOTH_INDEXES
async def test_list_filters_sorting_and_cursor(client, monkeypatch):
    ids = [rid() for _ in range(5)]
    for n, replay_id in enumerate(ids):
        await post(client, segment_envelope(replay_id, 0, t=T0 + n * 100, replay_start_timestamp=T0 + n * 100,
                                            user={"id": f"user-{n}"}, urls=[f"https://shop.example/p{n}"]))
        for segment_id in range(1, n + 1):  # replay n lasts n * 5 s
            await post(client, segment_envelope(replay_id, segment_id, t=T0 + n * 100 + segment_id * 5,
                                                replay_start_timestamp=T0 + n * 100, user={"id": f"user-{n}"}))
    await post(client, error_envelope(error_event(rid(), ids[2])))

    data = await get(client, "/api/0/projects/1/replays/")
    assert [r["replay_id"] for r in data] == ids[::-1]  # newest first
    assert data[0]["segment_count"] == 5 and data[0]["user"] == {"id": "user-4"}
    assert [r["replay_id"] for r in await get(client, "/api/0/projects/1/replays/?has_errors=1")] == [ids[2]]
    assert len(await get(client, "/api/0/projects/1/replays/?has_errors=0")) == 4
    assert [r["replay_id"] for r in await get(client, "/api/0/projects/1/replays/?url=example/p3")] == [ids[3]]
    assert [r["replay_id"] for r in await get(client, "/api/0/projects/1/replays/?user=user-1")] == [ids[1]]
    assert {r["replay_id"] for r in await get(client, "/api/0/projects/1/replays/?min_duration=10")} == set(ids[2:])
    assert [r["replay_id"] for r in await get(client, "/api/0/projects/1/replays/?sort=started_at")] == ids
    assert (await get(client, "/api/0/projects/1/replays/?sort=-duration"))[0]["replay_id"] == ids[4]
    after = T0 + 150
    started_after = await get(client, f"/api/0/projects/1/replays/?started_after={after}")
    assert {r["replay_id"] for r in started_after} == set(ids[2:])
    day = datetime.fromtimestamp(T0, UTC).date()  # the list page's date fields: UTC days, both inclusive
    assert len(await get(client, f"/api/0/projects/1/replays/?from={day}&to={day}")) == 5
    assert await get(client, f"/api/0/projects/1/replays/?to={day - timedelta(days=1)}") == []
    narrower = await get(client, f"/api/0/projects/1/replays/?from={day}&started_after={after}")
    assert {r["replay_id"] for r in narrower} == set(ids[2:])

    seen, cursor = [], ""
    while True:
        response = await client.get(f"/api/0/projects/1/replays/?per_page=2&cursor={cursor}", headers=AUTH)
        page = await response.json()
        seen += [r["replay_id"] for r in page["data"]]
        assert page["total"] == 5
        if page["next_cursor"] is None:
            assert "Link" not in response.headers
            break
        assert 'rel="next"' in response.headers["Link"]
        cursor = page["next_cursor"]
    assert seen == ids[::-1]
    # past the count's cap (limits.list_total_cap, 10,000; 3 here) the total says so, and the pages go on
    monkeypatch.setattr(client.app[config_key].limits, "list_total_cap", 3)
    seen, cursor = [], ""
    for expected_total, exact in [(3, False), (4, False), (5, True)]:
        page = await (await client.get(f"/api/0/projects/1/replays/?per_page=2&cursor={cursor}", headers=AUTH)).json()
        assert (page["total"], page["total_exact"]) == (expected_total, exact), page
        seen += [r["replay_id"] for r in page["data"]]
        cursor = page["next_cursor"]
    assert seen == ids[::-1] and cursor is None
    bad = await client.get("/api/0/projects/1/replays/?per_page=0", headers=AUTH)
    assert bad.status == 400 and "per_page" in (await bad.json())["detail"]
    for query, named in [("min_duration=abc", "min_duration"), ("sort=-price", "sort"), ("from=yesterday", "from"),
                         ("has_errors=maybe", "has_errors")]:
        bad = await client.get(f"/api/0/projects/1/replays/?{query}", headers=AUTH)
        assert bad.status == 400 and f"query parameter {named} must be" in (await bad.json())["detail"], query


@ON_BOTH_INDEXES
async def test_segment_as_json_or_stored_brotli_msgpack(client):
    replay_id = rid()
    await post(client, segment_envelope(replay_id, 0))
    path = f"/api/0/projects/1/replays/{replay_id}/segments/0/"
    as_json = await client.get(path, headers=AUTH)
    assert as_json.content_type == "application/json"
    events = await as_json.json()
    # v1's msgpack, brotli-compressed, for a client that decodes brotli itself (the player's browser):
    # the stored v2 blob is not that form, so it is decoded and compressed again, never sent as is.
    packed = await client.get(path + "?format=msgpack", headers={**AUTH, "Accept-Encoding": "br"},
                              auto_decompress=False)
    assert packed.headers["Content-Encoding"] == "br" and packed.headers["X-Replayd-Codec"] == "msgpack-br-v1"
    document = msgpack.unpackb(brotli.decompress(await packed.read()))
    assert document == {"v": 1, "events": events}
    # one URL, two forms by Accept-Encoding: a shared cache must not hand one client the other's
    assert "Accept-Encoding" in as_json.headers["Vary"] and "Accept-Encoding" in packed.headers["Vary"]


async def test_a_v1_blob_stored_before_v2_is_still_served_and_as_is(client, config):
    replay_id = rid()
    await post(client, segment_envelope(replay_id, 0))
    path = f"/api/0/projects/1/replays/{replay_id}/segments/0/"
    events = await (await client.get(path, headers=AUTH)).json()
    (stored,) = (Path(config.storage.path) / "1" / replay_id).glob("000000-*")
    assert stored.read_bytes().startswith(b"rpd\x03")  # stored as v3
    old = brotli.compress(msgpack.packb({"v": 1, "events": events}), quality=5)
    stored.write_bytes(old)  # as an earlier replayd stored it
    assert await (await client.get(path, headers=AUTH)).json() == events
    raw = await client.get(path + "?format=msgpack", headers={**AUTH, "Accept-Encoding": "br"}, auto_decompress=False)
    assert await raw.read() == old  # a v1 blob is what the browser reads: sent as stored, no CPU spent


@pytest.mark.parametrize("form", ["v1", "v2"])
async def test_a_stored_blob_that_expands_past_the_limit_is_refused_not_decompressed(aiohttp_client, tmp_path, form):
    """A blob of a few hundred bytes whose brotli expands to 64 MB (a buggy node's, or one put in the
    store): a read stops at limits.max_decoded_bytes and fails, where it used to decompress it all (and
    a v2 blob's strings, split, ~70 times that)."""
    from replayd.server import strings_apart

    config = make_config(tmp_path, limits={"max_decoded_bytes": 1 << 20},
                         compaction={"chunk_bytes": 1 << 19, "max_chunk_bytes": 1 << 20})
    client = await aiohttp_client(create_app(config))
    replay_id = rid()
    await post(client, segment_envelope(replay_id, 0))
    path = f"/api/0/projects/1/replays/{replay_id}/segments/0/"
    assert (await client.get(path, headers=AUTH)).status == 200  # a real segment is well under the limit
    size = 64 << 20
    bomb = (brotli.compress(b"\0" * size) if form == "v1" else
            strings_apart.frame(brotli.compress(strings_apart.PLACEHOLDER * (size // 3)),
                                brotli.compress(strings_apart.NO_IDS), brotli.compress(b"")))
    (stored,) = (Path(config.storage.path) / "1" / replay_id).glob("000000-*")
    stored.write_bytes(bomb)
    tracemalloc.start()
    try:
        as_json = await client.get(path, headers=AUTH)
        packed = await client.get(path + "?format=msgpack", headers={**AUTH, "Accept-Encoding": "br"},
                                  auto_decompress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert as_json.status == 500
    if form == "v1":  # sent as stored, for the browser to decompress: the server decompresses nothing
        assert packed.status == 200 and await packed.read() == bomb
    else:
        assert packed.status == 500
    assert peak < 8 << 20


@ON_BOTH_INDEXES
async def test_delete_removes_blobs_and_rows(client, config):
    from pathlib import Path

    replay_id, event_id = rid(), rid()
    for segment_id in range(3):
        await post(client, segment_envelope(replay_id, segment_id))
    await post(client, error_envelope(error_event(event_id, replay_id)))
    assert (Path(config.storage.path) / "1" / replay_id).is_dir()
    response = await client.delete(f"/api/0/projects/1/replays/{replay_id}/", headers=AUTH)
    assert response.status == 200 and (await response.json())["blobs"] == 3
    assert not (Path(config.storage.path) / "1" / replay_id).exists()
    assert (await client.get(f"/api/0/projects/1/replays/{replay_id}/", headers=AUTH)).status == 404
    assert (await client.get(f"/api/0/projects/1/replays/{replay_id}/segments/0/", headers=AUTH)).status == 404
    assert await get(client, "/api/0/projects/1/replays/") == []
    # the error stays, its replay is gone
    assert (await get(client, f"/api/0/projects/1/errors/{event_id}/"))["replay_available"] is False
    assert (await client.delete(f"/api/0/projects/1/replays/{replay_id}/", headers=AUTH)).status == 404


async def test_retention_sweeper_deletes_old_replays(client, config):
    old, new = rid(), rid()
    await post(client, segment_envelope(old, 0))
    await post(client, error_envelope(error_event(rid(), old)))
    index = client.app[index_key]
    stale = time.time() - (config.retention_days + 1) * 86400
    await index._run(index.db.execute, "UPDATE replays SET updated_at = ? WHERE replay_id = ?", (stale, old))
    await index._run(index.db.execute, "UPDATE errors SET received_at = ?", (stale,))
    await post(client, segment_envelope(new, 0))
    assert await sweep_expired(client.app) == 1
    assert [r["replay_id"] for r in await get(client, "/api/0/projects/1/replays/")] == [new]
    assert not (Path(config.storage.path) / "1" / old).exists()
    assert (Path(config.storage.path) / "1" / new).exists()
    assert (await get(client, "/api/0/projects/1/issues/")) == []


@ON_BOTH_INDEXES
async def test_ingest_and_read_through_s3(aiohttp_client, tmp_path, s3_server, s3_bucket, index_url):
    config = make_config(tmp_path, storage={"backend": "s3", "bucket": s3_bucket,
                                            "endpoint_url": s3_server.endpoint_url, "prefix": "r/"},
                         index={"url": index_url})
    client = await aiohttp_client(create_app(config))
    replay_id = rid()
    for segment_id in range(2):
        assert (await post(client, segment_envelope(replay_id, segment_id))).status == 200
    assert sorted(map(without_digest, s3_server.keys(s3_bucket))) == [f"r/1/{replay_id}/000000",
                                                                       f"r/1/{replay_id}/000001"]
    events = await (await client.get(f"/api/0/projects/1/replays/{replay_id}/segments/1/", headers=AUTH)).json()
    assert events[-1]["data"]["source"] == 2
    assert (await client.get("/readyz")).status == 200
    assert (await client.delete(f"/api/0/projects/1/replays/{replay_id}/", headers=AUTH)).status == 200
    assert s3_server.keys(s3_bucket) == []
