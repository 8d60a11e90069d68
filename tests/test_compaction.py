"""Compaction (server/compaction.py): a finished replay rewritten as one object, read the same as before,
on both blob stores and both index backends; interrupted at each step, during an outage, with a late
segment, deleted and expired."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from pathlib import Path

import aiohttp
import brotli
import msgpack
import pytest

from replayd.player.json_views import crumbs_cache_key
from replayd.server.app import create_app
from replayd.server.cli import main
from replayd.server.codec import unpack_blob
from replayd.server.compaction import Compactor, compactor_key
from replayd.server.keys import blobs_key, index_key
from replayd.server.retention import sweep_expired
from replayd.server.segment_reader import chunk_cache_key
from replayd.server.storage import StoreUnavailable
from tests.envelopes import click, mouse_move, new_id, page_events, replay_envelope
from tests.harness import PUBLIC_KEY, make_config
from tests.stored_formats import v1_blob, v2_blob
from tests.test_ingest import AUTH, error_envelope, error_event, get

T = 1_790_000_000_000.0  # ms
SEGMENTS = 8
FULL_AT = (0, 3, 6)  # page loads: segments with a full snapshot, where a chunk may start


@pytest.fixture(params=["local", "s3"])
def store_kind(request) -> str:
    return request.param


@pytest.fixture(params=["sqlite", "postgres"])
def index_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'replayd.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def compaction_config(tmp_path, request, store_kind: str = "local", index_url: str | None = None, **compaction):
    storage: dict = {}
    if store_kind == "s3":
        s3 = request.getfixturevalue("s3_server")
        storage = {"backend": "s3", "bucket": request.getfixturevalue("s3_bucket"), "endpoint_url": s3.endpoint_url,
                   "prefix": "r/"}
    # small chunks, so that a replay of a few segments makes several
    return make_config(tmp_path, storage=storage, index={"url": index_url or f"sqlite:///{tmp_path / 'i.sqlite3'}"},
                       compaction={"chunk_bytes": 2000, "quality": 5, **compaction})


@pytest.fixture
async def app_client(aiohttp_client, tmp_path, request):
    async def start(store_kind: str = "local", index_url: str | None = None, **compaction):
        config = compaction_config(tmp_path, request, store_kind, index_url, **compaction)
        return await aiohttp_client(create_app(config)), config

    return start


def segment_events(n: int, variant: str = "") -> list[dict]:
    t = T + n * 5000
    events = page_events(t, f"https://shop.test/page{n}", f"Page {n}{variant}",
                         [f"paragraph {k} of page {n}, the same words again and again" for k in range(20)]) \
        if n in FULL_AT else []
    events += [mouse_move(t + 100 * k, k, k) for k in range(1, 30)]
    events.append(click(t + 4000, 9))
    return events


async def send(client, replay_id: str, n: int, variant: str = "") -> None:
    response = await client.post(f"/api/1/envelope/?sentry_key={PUBLIC_KEY}",
                                 data=replay_envelope(replay_id, n, segment_events(n, variant)))
    assert response.status == 200, await response.text()


async def record(client, segments: int = SEGMENTS, with_error: bool = True) -> tuple[str, str]:
    replay_id, event_id = new_id(), new_id()
    for n in range(segments):
        await send(client, replay_id, n)
    if with_error:
        event = error_event(event_id, replay_id, t=(T + 7000) / 1000)
        response = await client.post(f"/api/1/envelope/?sentry_key={PUBLIC_KEY}", data=error_envelope(event))
        assert response.status == 200
    return replay_id, event_id


async def answers(client, replay_id: str) -> dict:
    """Everything a reader gets of a replay, less what compaction may change (stored bytes)."""
    detail = await get(client, f"/api/0/projects/1/replays/{replay_id}/")
    detail.pop("stored_bytes")
    for seg in detail["segments"]:
        seg.pop("stored_bytes")
    segments = {}
    for seg in detail["segments"]:
        path = f"/api/0/projects/1/replays/{replay_id}/segments/{seg['segment_id']}/"
        as_json = await client.get(path, headers=AUTH)
        assert as_json.status == 200
        packed = await client.get(path + "?format=msgpack", headers={**AUTH, "Accept-Encoding": "br"},
                                  auto_decompress=False)
        assert packed.headers["Content-Encoding"] == "br"
        segments[seg["segment_id"]] = (await as_json.read(), msgpack.unpackb(brotli.decompress(await packed.read())))
    last = detail["segments"][-1]["segment_id"]
    batches = []
    for first, to in ((0, last), (2, 4), (last, last)):
        response = await client.get(f"/projects/1/replays/{replay_id}/segments.pack?from={first}&to={to}",
                                    headers={**AUTH, "Accept-Encoding": "br"})
        assert response.status == 200
        batches.append(msgpack.unpackb(await response.read()))
    client.app[crumbs_cache_key].clear()  # built from the segments as stored now, not remembered
    crumbs = await client.get(f"/projects/1/replays/{replay_id}/breadcrumbs.json", headers=AUTH)
    return {"detail": detail, "segments": segments, "batches": batches, "breadcrumbs": await crumbs.json()}


async def stored_keys(client, config, replay_id: str) -> list[str]:
    """The names of the replay's objects, a segment's without its digest (``000003``, not ``000003-<16 hex>``)."""
    return sorted(re.sub(r"-[0-9a-f]{16}$", "", name) for name in await stored_names(client, config, replay_id))


async def stored_names(client, config, replay_id: str) -> list[str]:
    if config.storage.backend == "local":
        root = Path(config.storage.path) / "1" / replay_id
        return sorted(p.name for p in root.iterdir()) if root.exists() else []
    blobs = client.app[blobs_key]
    pages = blobs._client.get_paginator("list_objects_v2").paginate(Bucket=blobs.bucket,
                                                                     Prefix=f"r/1/{replay_id}/")
    return sorted([obj["Key"].rsplit("/", 1)[1] async for page in pages for obj in page.get("Contents", [])])


def compactor(client, **changes) -> Compactor:
    """A compactor like the server's background one (its own retry memory)."""
    running = client.app[compactor_key]
    return Compactor(running.config, running.index, changes.pop("blobs", running.blobs), run_cpu=running.run_cpu,
                     decoded_limit=running.decoded_limit,
                     metrics=running.metrics, lock_timeout=running.lock_timeout)


# --- the replay reads the same ---------------------------------------------------------------

async def test_a_compacted_replay_reads_the_same_on_both_stores_and_indexes(app_client, store_kind, index_url):
    client, config = await app_client(store_kind, index_url)
    replay_id, event_id = await record(client)
    other, _ = await record(client, segments=2, with_error=False)
    before = await answers(client, replay_id)
    stored_before = (await get(client, f"/api/0/projects/1/replays/{replay_id}/"))["stored_bytes"]

    totals = await compactor(client).run_once(older_than=0)
    assert totals.replays == 2 and totals.failed == 0 and totals.segments == SEGMENTS + 2
    assert await answers(client, replay_id) == before
    assert await stored_keys(client, config, replay_id) == ["compacted-000001"]
    rows = await client.app[index_key].replay_segments(1, replay_id)
    chunks = sorted({(r.chunk_start, r.chunk_end) for r in rows})
    assert len(chunks) == 3  # cut before the segments with a full snapshot, as chunk_bytes allows
    assert [r.segment_id for r in rows if r.chunk_offset == 0] == list(FULL_AT)
    stored_after = (await get(client, f"/api/0/projects/1/replays/{replay_id}/"))["stored_bytes"]
    assert stored_after == chunks[-1][1] < stored_before  # the object's size
    # the error still points into the replay
    error = await get(client, f"/api/0/projects/1/errors/{event_id}/")
    assert error["replay_id"] == replay_id and error["replay_available"] and error["replay_offset"] == 7.0
    assert (await get(client, f"/api/0/projects/1/replays/{replay_id}/"))["error_ids"] == [event_id]
    assert await stored_keys(client, config, other) == ["compacted-000001"]
    # nothing left to do: a second round changes nothing
    assert (await compactor(client).run_once(older_than=0)).replays == 0
    metrics = await (await client.get("/metrics")).text()
    assert "replayd_compaction_replays_total 2.0" in metrics
    assert "replayd_compaction_objects_deleted_total 10.0" in metrics


async def test_a_replay_of_v1_v2_and_v3_segments_compacts_to_v3_and_reads_the_same(app_client):
    """Segments stored as v1, v2 and v3 blobs in one replay: compacted into v3 chunks (a v3 or v2
    blob's streams as stored, a v1 blob's decoded and split), read the same before and after, and
    compacted again after a late segment."""
    client, config = await app_client()
    replay_id, _ = await record(client)
    stored = sorted((Path(config.storage.path) / "1" / replay_id).glob("*-*"))
    for path in stored[1::2]:  # every other segment as an earlier replayd stored it
        path.write_bytes(v1_blob(unpack_blob(path.read_bytes())))
    for path in stored[2::4]:  # and two as v2 stored them
        path.write_bytes(v2_blob(unpack_blob(path.read_bytes())))
    # and the first as another msgpack packed it (str 32-255 as raw 16): its chunk, segments 0-2, stays v1
    packed = msgpack.packb(msgpack.unpackb(unpack_blob(stored[0].read_bytes())), use_bin_type=False)
    stored[0].write_bytes(brotli.compress(packed, quality=5))
    assert sum(path.read_bytes().startswith(b"rpd\x02") for path in stored) == 2
    assert sum(path.read_bytes().startswith(b"rpd\x03") for path in stored) == SEGMENTS // 2 - 3
    before = await answers(client, replay_id)
    assert (await compactor(client).run_once(older_than=0)).replays == 1
    assert await answers(client, replay_id) == before
    (compacted,) = (Path(config.storage.path) / "1" / replay_id).glob("compacted-*")
    rows = await client.app[index_key].replay_segments(1, replay_id)
    data = compacted.read_bytes()
    # each row's codec names what its chunk holds
    assert [data[r.chunk_start:r.chunk_end].startswith(b"rpd\x03") for r in rows] == [False] * 3 + [True] * 5
    assert [r.codec for r in rows] == ["msgpack-br-v1"] * 3 + ["msgpack-br-v3"] * 5
    await send(client, replay_id, SEGMENTS)  # a late segment: loose v3 beside the compacted ones
    before = await answers(client, replay_id)
    assert (await compactor(client).run_once(older_than=0)).replays == 1
    assert await answers(client, replay_id) == before


async def test_a_segment_read_as_compaction_switches_it_answers_from_the_chunk(app_client):
    """A reader that read the loose row just before the switch finds its blob deleted: it reads the row
    again and answers from the chunk, not a 404."""
    client, _ = await app_client()
    replay_id, _ = await record(client, with_error=False)
    path = f"/api/0/projects/1/replays/{replay_id}/segments/1/"
    before = await (await client.get(path, headers=AUTH)).read()
    index = client.app[index_key]
    stale = await index.get_segment(1, replay_id, 1)  # the loose row, as a reader read it
    assert (await compactor(client).run_once(older_than=0)).replays == 1
    fresh = index.get_segment
    reads = []

    async def first_stale(*args):  # the first read is the one from before the switch
        reads.append(args)
        return stale if len(reads) == 1 else await fresh(*args)

    index.get_segment = first_stale
    try:
        response = await client.get(path, headers=AUTH)
    finally:
        del index.get_segment
    assert response.status == 200 and await response.read() == before and len(reads) >= 2


class StaleRows:
    """``index.get_segment`` answering, the first time each segment is asked for, the row a reader
    read before compaction switched it (``stale``); the index's own answer after that."""

    def __init__(self, index, stale: dict[int, object]):
        self.index, self.stale, self.reads = index, dict(stale), []
        self.fresh = index.get_segment

    async def __call__(self, project_id, replay_id, segment_id):
        self.reads.append(segment_id)
        if (row := self.stale.pop(segment_id, None)) is not None:
            return row
        return await self.fresh(project_id, replay_id, segment_id)

    def __enter__(self):
        self.index.get_segment = self
        return self

    def __exit__(self, *exc):
        del self.index.get_segment


async def batch(client, replay_id: str, first: int, to: int) -> dict:
    response = await client.get(f"/projects/1/replays/{replay_id}/segments.pack?from={first}&to={to}",
                                headers={**AUTH, "Accept-Encoding": "br"})
    assert response.status == 200, await response.text()
    return msgpack.unpackb(await response.read())


async def test_a_batch_read_as_compaction_switches_it_has_every_segment(app_client, index_url):
    """A batch that read its loose rows just before the switch finds their blobs deleted: it reads the
    rows again and sends each segment from its chunk, none left out (was: sent without events)."""
    client, _ = await app_client(index_url=index_url)
    replay_id, _ = await record(client, with_error=False)
    before = await answers(client, replay_id)
    index = client.app[index_key]
    stale = {row.segment_id: row for row in await index.replay_segments(1, replay_id)}
    assert (await compactor(client).run_once(older_than=0)).replays == 1
    with StaleRows(index, stale) as rows:
        whole = await batch(client, replay_id, 0, SEGMENTS - 1)
    assert whole == before["batches"][0] and len(rows.reads) == 2 * SEGMENTS
    assert all(segment["events"] for segment in whole["segments"])
    # the breadcrumbs (read a chunk at a time in the workers) too
    client.app[crumbs_cache_key].clear()
    with StaleRows(index, stale):
        crumbs = await client.get(f"/projects/1/replays/{replay_id}/breadcrumbs.json", headers=AUTH)
        assert crumbs.status == 200 and await crumbs.json() == before["breadcrumbs"]


async def test_a_batch_read_as_a_replay_is_compacted_again_has_every_segment(app_client):
    """Rows read while they pointed into the first compacted object, which the second compaction (after
    a late segment) deleted: read again from the second object, in a batch and alone."""
    client, _ = await app_client()
    replay_id, _ = await record(client, with_error=False)
    await compactor(client).run_once(older_than=0)
    await send(client, replay_id, SEGMENTS)
    before = await answers(client, replay_id)
    index = client.app[index_key]
    stale = {row.segment_id: row for row in await index.replay_segments(1, replay_id)}
    assert (await compactor(client).run_once(older_than=0)).replays == 1
    with StaleRows(index, stale):
        assert await batch(client, replay_id, 0, SEGMENTS) == before["batches"][0]
    with StaleRows(index, {2: stale[2]}):
        response = await client.get(f"/api/0/projects/1/replays/{replay_id}/segments/2/", headers=AUTH)
        assert response.status == 200 and await response.read() == before["segments"][2][0]


async def test_a_segment_that_keeps_moving_is_a_503_never_left_out(app_client):
    """A row that changes under every read (a stand-in for compaction and re-sends racing the reader
    again and again): 503 with Retry-After, for the batch, the single segment and the breadcrumbs."""
    client, _ = await app_client()
    replay_id, _ = await record(client, with_error=False)
    index = client.app[index_key]
    row = await index.get_segment(1, replay_id, 0)
    moves = iter(range(1, 1000))

    async def moving(project_id, replay_id, segment_id):  # a new key each time, never there
        return dataclasses.replace(row, segment_id=segment_id, blob_key=f"1/{replay_id}/{segment_id:06d}-"
                                   f"{next(moves):016x}")

    index.get_segment = moving
    try:
        for path in (f"/projects/1/replays/{replay_id}/segments.pack?from=0&to=3",
                     f"/api/0/projects/1/replays/{replay_id}/segments/1/",
                     f"/projects/1/replays/{replay_id}/breadcrumbs.json"):
            response = await client.get(path, headers=AUTH)
            assert response.status == 503, (path, await response.text())
            assert response.headers["Retry-After"] == "1" and "retry" in (await response.json())["detail"]
    finally:
        del index.get_segment


async def test_a_segment_that_keeps_moving_after_a_batch_started_cuts_it(app_client):
    """Past the first segment the 503 cannot be sent any more: the answer is cut (the player's request
    fails and is asked for again), never completed without segment 5."""
    client, _ = await app_client()
    replay_id, _ = await record(client, with_error=False)
    index = client.app[index_key]
    fresh, moves = index.get_segment, iter(range(1, 1000))

    async def segment_5_moving(project_id, replay_id, segment_id):
        row = await fresh(project_id, replay_id, segment_id)
        if segment_id != 5:
            return row
        return dataclasses.replace(row, blob_key=f"1/{replay_id}/000005-{next(moves):016x}")

    index.get_segment = segment_5_moving
    try:
        response = await client.get(f"/projects/1/replays/{replay_id}/segments.pack?from=0&to={SEGMENTS - 1}",
                                    headers={**AUTH, "Accept-Encoding": "br"})
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    finally:
        del index.get_segment


async def test_a_real_recording_with_events_too_deep_for_msgpack_reads_the_same(app_client):
    from tests.envelopes import cut_segments
    from tests.harness import load_recording
    from tests.test_player_segments import deep_event

    client, config = await app_client(chunk_bytes=1_000_000)
    replay_id = new_id()
    segments = cut_segments(load_recording(), 5.0)
    last = segments[-1][-1]["timestamp"]
    deep = deep_event(300)  # stored as its JSON text (msgpack extension type 1), inside a chunk
    deep["timestamp"] = last + 1000
    for n, events in enumerate([*segments, [deep, {**deep, "timestamp": last + 2000}]]):
        response = await client.post(f"/api/1/envelope/?sentry_key={PUBLIC_KEY}",
                                     data=replay_envelope(replay_id, n, events))
        assert response.status == 200, await response.text()
    before = await answers(client, replay_id)
    assert (await compactor(client).run_once(older_than=0)).replays == 1
    assert await answers(client, replay_id) == before
    assert await stored_keys(client, config, replay_id) == ["compacted-000001"]
    rows = await client.app[index_key].replay_segments(1, replay_id)
    assert len({r.chunk_start for r in rows}) > 1  # a full snapshot past chunk_bytes started a chunk
    assert json.loads(before["segments"][len(segments)][0])[0]["data"]["adds"][0]["node"]["id"] == 10_300


def test_the_config_refuses_chunks_larger_than_their_maximum(tmp_path):
    from replayd.server.config import ConfigError

    with pytest.raises(ConfigError, match=r"compaction\.chunk_bytes: larger than compaction\.max_chunk_bytes"):
        make_config(tmp_path, compaction={"chunk_bytes": 2048, "max_chunk_bytes": 1024})
    # a chunk is read back up to limits.max_decoded_bytes: one that may be larger would never read
    with pytest.raises(ConfigError, match=r"compaction\.max_chunk_bytes: larger than limits\.max_decoded_bytes"):
        make_config(tmp_path, compaction={"chunk_bytes": 1024, "max_chunk_bytes": 2048},
                    limits={"max_decoded_bytes": 1024})


async def test_only_finished_replays_are_compacted(app_client):
    client, config = await app_client(idle_seconds=3600, max_duration_seconds=30, settle_seconds=0)
    short, _ = await record(client, segments=2, with_error=False)  # 5 s long, written just now
    long, _ = await record(client, segments=SEGMENTS, with_error=False)  # 35 s long: at the maximum length
    totals = await compactor(client).run_once()
    assert totals.replays == 1
    assert await stored_keys(client, config, long) == ["compacted-000001"]
    assert await stored_keys(client, config, short) == ["000000", "000001"]


# --- crash-safe and idempotent ----------------------------------------------------------------

class Crash(BaseException):
    """Stands for the process dying at that point: nothing after it runs (no handler of the job's
    catches it, as none would run after a kill)."""


STEPS = ["read_chunks", "write", "verify", "switch", "delete_replaced"]


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", STEPS)
async def test_interrupted_at_any_step_loses_nothing_and_a_rerun_finishes(app_client, step, when):
    client, config = await app_client()
    replay_id, _ = await record(client)
    before = await answers(client, replay_id)
    crashing = compactor(client)
    original = getattr(crashing, step)

    async def interrupted(*args, **kwargs):
        if when == "before":
            raise Crash(step)
        result = await original(*args, **kwargs)
        raise Crash(step)
        return result

    setattr(crashing, step, interrupted)
    with pytest.raises(Crash):
        await crashing.run_once(older_than=0)
    assert await answers(client, replay_id) == before  # every segment still reads the same

    totals = await compactor(client).run_once(older_than=0)  # the next round (or a restart) finishes
    assert totals.failed == 0
    assert await answers(client, replay_id) == before
    assert await stored_keys(client, config, replay_id) == ["compacted-000001"]
    assert await client.app[index_key].garbage() == []
    assert all(r.compacted for r in await client.app[index_key].replay_segments(1, replay_id))


class FailingStore:
    """The blob store during an outage: every call fails as S3 or a dead disk would."""

    def __init__(self, store, fail: tuple[str, ...]):
        self._store, self._fail = store, fail

    def __getattr__(self, name):
        attribute = getattr(self._store, name)
        if name not in self._fail:
            return attribute

        async def failing(*args, **kwargs):
            raise StoreUnavailable(f"{name} failed: the store is down")

        return failing


@pytest.mark.parametrize("fail", [("get", "get_range"), ("put",), ("delete",)])
async def test_during_a_blob_store_outage_nothing_is_lost_and_it_is_retried(app_client, store_kind, fail, request):
    client, config = await app_client(store_kind)
    replay_id, _ = await record(client)
    before = await answers(client, replay_id)
    outage = compactor(client, blobs=FailingStore(client.app[blobs_key], fail))
    totals = await outage.run_once(older_than=0)
    assert await answers(client, replay_id) == before
    if fail == ("delete",):  # switched; the replaced objects wait in the index's garbage
        assert totals.replays == 1 and len(await client.app[index_key].garbage()) == SEGMENTS
    else:
        assert totals.failed == 1 and totals.replays == 0
        assert (await outage.run_once(older_than=0)).replays == 0  # not hammered: retried after a while
    totals = await compactor(client).run_once(older_than=0)  # the store is back
    assert totals.failed == 0
    assert await answers(client, replay_id) == before
    assert await stored_keys(client, config, replay_id) == ["compacted-000001"]
    assert await client.app[index_key].garbage() == []


async def test_a_replay_that_cannot_be_compacted_does_not_hold_up_the_others(app_client):
    client, config = await app_client(batch=1)
    broken, _ = await record(client, segments=3, with_error=False)  # the oldest: tried first
    fine, _ = await record(client, segments=3, with_error=False)
    missing = (await client.app[index_key].get_segment(1, broken, 1)).blob_key
    await client.app[blobs_key].delete(missing)  # a blob gone missing
    job = compactor(client)
    assert (await job.run_once(older_than=0)).failed == 1
    assert job.backlog == 2
    totals = await job.run_once(older_than=0)  # the broken one waits before it is tried again
    assert totals.replays == 1 and totals.failed == 0
    assert await stored_keys(client, config, fine) == ["compacted-000001"]
    assert await stored_keys(client, config, broken) == ["000000", "000002"]  # left as it was
    assert job.backlog == 1


async def test_with_s3_unreachable_nothing_is_lost_and_a_later_round_compacts(app_client):
    """The real failure: aiobotocore against an endpoint nothing answers (S3 down), then S3 back."""
    from replayd.server.config import StorageConfig
    from replayd.server.storage.backends import open_blob_store
    from tests.harness import free_port

    client, config = await app_client("s3")
    replay_id, _ = await record(client)
    before = await answers(client, replay_id)
    down = await open_blob_store(StorageConfig(backend="s3", bucket=config.storage.bucket, prefix="r/",
                                               endpoint_url=f"http://127.0.0.1:{free_port()}"))
    try:
        totals = await compactor(client, blobs=down).run_once(older_than=0)
    finally:
        await down.close()
    assert totals.failed == 1 and totals.replays == 0
    assert await answers(client, replay_id) == before
    assert len(await stored_keys(client, config, replay_id)) == SEGMENTS
    assert (await compactor(client).run_once(older_than=0)).replays == 1
    assert await answers(client, replay_id) == before
    assert await stored_keys(client, config, replay_id) == ["compacted-000001"]


async def test_a_segment_that_cannot_be_decoded_fails_its_replay_only(app_client):
    client, config = await app_client()
    broken, _ = await record(client, segments=3, with_error=False)
    fine, _ = await record(client, segments=3, with_error=False)
    await client.app[blobs_key].put((await client.app[index_key].get_segment(1, broken, 1)).blob_key,
                                    b"not brotli at all")
    totals = await compactor(client).run_once(older_than=0)
    assert totals.failed == 1 and totals.replays == 1
    assert await stored_keys(client, config, broken) == ["000000", "000001", "000002"]
    assert await stored_keys(client, config, fine) == ["compacted-000001"]


# --- late segments ----------------------------------------------------------------------------

async def test_a_late_segment_after_compaction_is_stored_played_and_compacted_again(app_client, store_kind):
    client, config = await app_client(store_kind)
    replay_id, _ = await record(client)
    await compactor(client).run_once(older_than=0)
    await send(client, replay_id, 3, variant=" re-sent")  # a re-send of a compacted segment wins
    await send(client, replay_id, SEGMENTS)  # and a new one
    after_late = await answers(client, replay_id)
    assert after_late["detail"]["segment_count"] == SEGMENTS + 1
    assert b"Page 3 re-sent" in after_late["segments"][3][0]
    ids = [s["id"] for s in after_late["batches"][0]["segments"]]
    assert ids == list(range(SEGMENTS + 1))
    assert await stored_keys(client, config, replay_id) == ["000003", f"{SEGMENTS:06d}", "compacted-000001"]

    totals = await compactor(client).run_once(older_than=0)
    assert totals.replays == 1
    assert await answers(client, replay_id) == after_late
    assert await stored_keys(client, config, replay_id) == ["compacted-000002"]


async def test_re_sending_every_segment_of_a_compacted_replay(app_client, store_kind, index_url):
    """Each re-send replaces a segment that lives in the compacted object: every segment then reads
    with its new bytes (alone and in batches, also for a reader whose rows were read before), the
    object goes once no row names it, and a later round compacts the replay again — into an object of
    its own, never over the key of one the index pointed at (a reader still holding the old rows, or a
    process's chunk cache, would be served other bytes under it)."""
    client, config = await app_client(store_kind, index_url)
    replay_id, _ = await record(client, with_error=False)
    assert (await compactor(client).run_once(older_than=0)).replays == 1
    index = client.app[index_key]
    compacted = {row.segment_id: row for row in await index.replay_segments(1, replay_id)}
    first_object = compacted[0].blob_key
    before = await answers(client, replay_id)  # the chunks now in this process's cache
    for n in range(SEGMENTS):
        await send(client, replay_id, n, variant=" again")
    resent = await answers(client, replay_id)
    for n in range(SEGMENTS):
        as_json = json.loads(resent["segments"][n][0])
        assert resent["batches"][0]["segments"][n] == {"id": n, "events": as_json}
        assert (b"Page %d again" % n in resent["segments"][n][0]) == (n in FULL_AT)
    assert resent["detail"]["segment_count"] == SEGMENTS
    assert not any(row.compacted for row in await index.replay_segments(1, replay_id))
    names = await stored_names(client, config, replay_id)
    assert first_object.rsplit("/", 1)[1] not in names and len(names) == SEGMENTS  # the object is gone
    with StaleRows(index, compacted):  # rows read while they pointed into the first object: every
        stale = await batch(client, replay_id, 0, SEGMENTS - 1)  # segment, as it was then or is now
    assert [segment in (before["batches"][0]["segments"][n], resent["batches"][0]["segments"][n])
            for n, segment in enumerate(stale["segments"])] == [True] * SEGMENTS

    assert (await compactor(client).run_once(older_than=0)).replays == 1  # compacted again
    again = {row.segment_id: row for row in await index.replay_segments(1, replay_id)}
    assert all(row.compacted for row in again.values()) and again[0].blob_key != first_object
    assert await stored_names(client, config, replay_id) == [again[0].blob_key.rsplit("/", 1)[1]]
    assert await answers(client, replay_id) == resent
    client.app[chunk_cache_key].__init__(client.app[chunk_cache_key].max_bytes)  # as in another process
    with StaleRows(index, compacted):  # rows from before the re-sends: their object is no more
        assert await batch(client, replay_id, 0, SEGMENTS - 1) == resent["batches"][0]
    assert await index.garbage() == []


async def test_a_segment_arriving_while_the_replay_is_compacted_waits_for_the_next_round(app_client):
    client, config = await app_client()
    replay_id, _ = await record(client)
    racing = compactor(client)
    original = racing.read_chunks

    async def read_then_a_segment_comes(rows):
        chunks = await original(rows)
        await send(client, replay_id, 5)  # the same segment again: its blob is written again
        await send(client, replay_id, 3, variant=" late")
        return chunks

    racing.read_chunks = read_then_a_segment_comes
    assert (await racing.run_once(older_than=0)).skipped == 1
    assert "compacted-000001" not in await stored_keys(client, config, replay_id)  # the new object is gone
    late = await answers(client, replay_id)
    assert b"Page 3 late" in late["segments"][3][0]
    assert (await compactor(client).run_once(older_than=0)).replays == 1
    assert await answers(client, replay_id) == late


async def test_a_replaced_object_a_late_segment_points_at_is_kept(app_client):
    """A crash left segment 3's old blob as garbage; then segment 3 was sent again with the same bytes:
    its key (segment and digest) is the garbage's, the row points at it, so the garbage collection
    keeps it."""
    client, config = await app_client()
    replay_id, _ = await record(client)
    index = client.app[index_key]
    old_key = (await index.get_segment(1, replay_id, 3)).blob_key
    crashing = compactor(client)

    async def crash(*args):
        raise Crash

    crashing.delete_replaced = crash
    with pytest.raises(Crash):
        await crashing.run_once(older_than=0)
    assert (1, replay_id, old_key) in await index.garbage()
    await send(client, replay_id, 3)
    assert (await index.get_segment(1, replay_id, 3)).blob_key == old_key
    await compactor(client).collect_garbage()
    assert await index.garbage() == []
    assert old_key.rsplit("/", 1)[1] in await stored_names(client, config, replay_id)
    assert b"Page 3" in (await answers(client, replay_id))["segments"][3][0]


async def test_a_replaced_object_is_not_deleted_while_another_node_writes_the_replay(app_client, postgres_url):
    """Deleting replaced objects waits for the replay's segment lock, which ingest on any node holds
    from its blob write to its row: while another node holds it, the garbage stays for a later round."""
    from replayd.server.config import IndexConfig
    from replayd.server.index import open_index

    client, config = await app_client(index_url=postgres_url)
    replay_id, _ = await record(client)
    crashing = compactor(client)

    async def crash(*args):
        raise Crash

    crashing.delete_replaced = crash
    with pytest.raises(Crash):
        await crashing.run_once(older_than=0)
    garbage = await client.app[index_key].garbage()
    assert garbage
    other_node = await open_index(IndexConfig(url=postgres_url))
    try:
        async with other_node.replay_writer(1, replay_id, 3, timeout=5):
            waiting = compactor(client)
            waiting.lock_timeout = 0.2
            assert await waiting.collect_garbage() == 0
            assert await client.app[index_key].garbage() == garbage
        assert await compactor(client).collect_garbage() == len(garbage)
    finally:
        await other_node.close()
    assert await stored_keys(client, config, replay_id) == ["compacted-000001"]


async def test_re_sends_of_a_compacted_replay_and_a_compaction_round_on_a_pool_of_one(aiohttp_client, tmp_path,
                                                                                       postgres_url):
    """PostgreSQL with index.pool_max_size 1, writers at once: every segment of a compacted replay sent
    again (each writer asks whether the compacted object is still named) while the leader runs a
    compaction round and a reader reads. Each used to wait for a second connection held by itself
    (the writer) or by the leader's lock: nothing finished."""
    config = make_config(tmp_path, index={"url": postgres_url, "pool_min_size": 0, "pool_max_size": 1},
                         compaction={"chunk_bytes": 2000, "quality": 5})
    client = await aiohttp_client(create_app(config))
    replay_id, _ = await record(client, with_error=False)
    other, _ = await record(client, segments=3, with_error=False)
    index = client.app[index_key]
    assert (await compactor(client).run_once(older_than=0)).replays == 2
    await send(client, other, 3)  # a late segment: the other replay is due again

    async def leader_round():
        async with index.leader("compaction") as leading:
            assert leading
            return await compactor(client).run_once(older_than=0)

    async def read():
        return await get(client, f"/api/0/projects/1/replays/{replay_id}/")

    done = await asyncio.wait_for(asyncio.gather(
        *(send(client, replay_id, n, variant=" again") for n in range(SEGMENTS)), leader_round(), read()), 60)
    assert done[SEGMENTS].failed == 0
    after = await answers(client, replay_id)
    assert all(b"again" in after["segments"][n][0] for n in FULL_AT)


async def test_a_request_that_finds_every_index_connection_in_use_is_a_503(aiohttp_client, tmp_path, postgres_url):
    config = make_config(tmp_path, index={"url": postgres_url, "pool_min_size": 0, "pool_max_size": 1,
                                          "pool_acquire_timeout": 0.3})
    client = await aiohttp_client(create_app(config))
    replay_id, _ = await record(client, segments=1, with_error=False)
    async with client.app[index_key].replay_writer(1, new_id(), 0, timeout=5):  # the only connection
        read = await client.get(f"/api/0/projects/1/replays/{replay_id}/", headers=AUTH)
        sent = await client.post(f"/api/1/envelope/?sentry_key={PUBLIC_KEY}",
                                 data=replay_envelope(replay_id, 1, segment_events(1)))
        for response in (read, sent):
            assert response.status == 503 and response.headers["Retry-After"] == "1"
            assert "index.pool_acquire_timeout" in (await response.json())["detail"]
    await send(client, replay_id, 1)  # and then it goes on


# --- deleting and retention -------------------------------------------------------------------

async def test_deleting_and_expiring_compacted_replays(app_client, store_kind):
    client, config = await app_client(store_kind)
    deleted, _ = await record(client)
    expired, _ = await record(client, with_error=False)
    kept, _ = await record(client, segments=2, with_error=False)
    await compactor(client).run_once(older_than=0)
    response = await client.delete(f"/api/0/projects/1/replays/{deleted}/", headers=AUTH)
    assert response.status == 200 and (await response.json())["blobs"] == 1
    assert await stored_keys(client, config, deleted) == []
    index = client.app[index_key]
    stale = 1_000_000.0
    await index._run(index.db.execute, "UPDATE replays SET updated_at = ? WHERE replay_id = ?", (stale, expired))
    assert await sweep_expired(client.app) == 1
    assert await stored_keys(client, config, expired) == []
    assert (await client.get(f"/api/0/projects/1/replays/{expired}/", headers=AUTH)).status == 404
    assert [r["replay_id"] for r in await get(client, "/api/0/projects/1/replays/")] == [kept]
    assert await stored_keys(client, config, kept) == ["compacted-000001"]


async def test_a_replay_deleted_while_it_is_compacted_leaves_no_object(app_client):
    client, config = await app_client()
    replay_id, _ = await record(client)
    racing = compactor(client)
    original = racing.read_chunks

    async def read_then_delete(rows):
        chunks = await original(rows)  # the replay is deleted before its object is written
        assert (await client.delete(f"/api/0/projects/1/replays/{replay_id}/", headers=AUTH)).status == 200
        return chunks

    racing.read_chunks = read_then_delete
    totals = await racing.run_once(older_than=0)
    assert totals.replays == 0 and totals.skipped == 1
    assert await stored_keys(client, config, replay_id) == []


# --- the command ------------------------------------------------------------------------------

async def test_replayd_compact_runs_a_round_now(app_client, capsys):
    client, config = await app_client()
    replay_id, _ = await record(client)
    config_path = str(Path(config.storage.path).parent / "replayd.yaml")
    assert await asyncio.to_thread(main, ["compact", "--config", config_path, "--older-than", "-1"]) == 2
    assert "--older-than" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["compact", "--config", config_path]) == 0  # not finished yet
    assert "compacted 0 replays" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["compact", "--config", config_path, "--older-than", "0"]) == 0
    out = capsys.readouterr().out
    assert f"compacted 1 replays ({SEGMENTS} segments)" in out
    assert await stored_keys(client, config, replay_id) == ["compacted-000001"]
    assert json.loads((await answers(client, replay_id))["segments"][0][0])[0]["type"] == 4


# --- one node at a time -----------------------------------------------------------------------

async def test_one_node_at_a_time_leads_compaction_on_postgresql(postgres_url):
    """The background loop compacts only while it holds the index's leader lock "compaction"."""
    from replayd.server.compaction import Totals, compaction_loop
    from replayd.server.config import IndexConfig
    from replayd.server.index import open_index
    from tests.waiting import wait_until_async

    class Rounds:
        count = 0

        async def run_once(self) -> Totals:
            self.count += 1
            return Totals()

    rounds = Rounds()
    nodes = [await open_index(IndexConfig(url=postgres_url)) for _ in range(2)]
    try:
        async with nodes[0].leader("compaction") as first:
            assert first
            loop = asyncio.create_task(compaction_loop(rounds, nodes[1], 0.01, [0.0]))  # type: ignore[arg-type]
            await asyncio.sleep(0.3)  # many intervals of the other node's loop
            assert rounds.count == 0
        await wait_until_async(lambda: rounds.count > 0, 10, "the other node compacts once the first lets go")
        loop.cancel()
    finally:
        for node in nodes:
            await node.close()


async def test_readers_share_decompressed_chunks_up_to_a_bound():
    from replayd.server.segment_reader import ChunkCache

    cache = ChunkCache(max_bytes=10)
    loads = []

    async def load(data: bytes):
        loads.append(data)
        await asyncio.sleep(0.01)
        return data

    chunk_a, chunk_b, big = ("k", 0, 4), ("k", 4, 8), ("k", 8, 20)
    assert await asyncio.gather(*(cache.get(chunk_a, lambda: load(b"aaaa")) for _ in range(3))) == [b"aaaa"] * 3
    assert loads == [b"aaaa"]  # three readers at once, one load
    assert await cache.get(chunk_b, lambda: load(b"bbbbbb")) == b"bbbbbb" and cache.used == 10
    assert await cache.get(big, lambda: load(b"x" * 11)) == b"x" * 11 and cache.peek(big) is None  # too big to keep
    await cache.get(chunk_a, lambda: load(b"never"))  # kept: not loaded again, and now the most recent
    assert await cache.get(("k", 20, 24), lambda: load(b"cccc")) == b"cccc"
    assert cache.peek(chunk_b) is None and cache.peek(chunk_a) == b"aaaa" and cache.used == 8
    assert loads == [b"aaaa", b"bbbbbb", b"x" * 11, b"cccc"]
