"""A request cannot make a worker, or the server reading a replay, hold memory out of proportion.

The worker's peak is read from inside the worker process (its maximum resident set size) after a
real request through the app's real pool. The bound stated in docs/architecture.md is 460 MiB per
worker with the default limits; a JSON bomb refused before parsing stays far below it.
"""

from __future__ import annotations

import io
import json
import resource
import tracemalloc
import zlib

import pytest

from replayd.player import timeline
from replayd.server.app import create_app
from replayd.server.codec import encode_segment
from replayd.server.keys import pool_key
from tests.envelopes import click, element, error_envelope, mouse_move, new_id, page_events, replay_envelope, text
from tests.harness import PUBLIC_KEY, make_config

MiB = 1024 * 1024
WORKER_BOUND_MIB = 460  # any request under the default limits (docs/architecture.md)
BOMB_BOUND_MIB = 256  # measured ~100 MiB; 800 MiB before the values were counted
T = 1_795_650_000_000


def worker_peak_mib() -> int:
    """Run in a worker: the most memory this process has held (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


async def post(client, body: bytes):
    return await client.post(f"/api/1/envelope/?sentry_key={PUBLIC_KEY}", data=io.BytesIO(body))


def recording_envelope(replay_id: str, raw_events: bytes) -> bytes:
    """A replay_recording item whose body is the given JSON text, zlib-compressed as the SDK sends it."""
    body = b'{"segment_id":0}\n' + zlib.compress(raw_events, 9)
    header = json.dumps({"type": "replay_recording", "length": len(body)}).encode()
    return b"\n".join([json.dumps({"event_id": replay_id}).encode(), header, body])


async def test_a_json_bomb_is_refused_before_it_is_built(client):
    """30 MB of empty lists (30 KB compressed) would be 10 million Python lists, about 700 MiB."""
    bomb = b"[" + b"[]," * 10_000_000 + b"[]]"
    response = await post(client, recording_envelope(new_id(), bomb))
    assert response.status == 413
    assert "more than limits.max_json_values (2500000) JSON values" in (await response.json())["detail"]
    assert await client.server.app[pool_key].run(worker_peak_mib) < BOMB_BOUND_MIB


async def test_an_item_bomb_is_refused_too(client):
    """Error events are parsed by the same rule (an envelope's 20 MiB of text, no compression needed)."""
    body = error_envelope(new_id(), None, extra={"x": [[]] * 5_000_000})
    response = await post(client, body)
    assert response.status == 413
    assert "event item has more than limits.max_json_values" in (await response.json())["detail"]
    assert await client.server.app[pool_key].run(worker_peak_mib) < BOMB_BOUND_MIB


def big_page(ts: int, nodes: int) -> list[dict]:
    """Meta + a full snapshot of ``nodes`` nodes: rows of a product list, each a div and its text."""
    rows = [element(100 + 2 * i, "div", [text(101 + 2 * i, f"Product {i} · 12.{i % 100:02d} EUR · in stock")],
                    **{"class": f"row row-{i % 7}", "data-sku": f"SKU-{i:06d}"})
            for i in range(nodes // 2)]
    return page_events(ts, "https://shop.example/catalogue", "Catalogue", body_extra=rows)


def busy_events(ts: int, count: int) -> list[dict]:
    """Mouse moves, scrolls, inputs, text mutations and clicks, as a busy page records them."""
    events = []
    for i in range(count):
        t = ts + 10 * i
        kind = i % 5
        if kind == 0:
            events.append(mouse_move(t, i % 1280, i % 800, 100 + i % 1000))
        elif kind == 1:
            events.append({"type": 3, "timestamp": t, "data": {"source": 3, "id": 1, "x": 0, "y": i % 5000}})
        elif kind == 2:
            events.append({"type": 3, "timestamp": t, "data": {"source": 5, "id": 11, "text": f"query {i}",
                                                               "isChecked": False}})
        elif kind == 3:
            events.append({"type": 3, "timestamp": t, "data": {
                "source": 0, "texts": [{"id": 101 + 2 * (i % 1000), "value": f"Product {i} · sold out"}],
                "attributes": [{"id": 100 + 2 * (i % 1000), "attributes": {"class": "row sold"}}],
                "removes": [], "adds": []}})
        else:
            events.append(click(t, 100 + 2 * (i % 1000)))
    return events


async def test_a_large_real_recording_still_ingests(client, auth_headers):
    """A 30,000-node snapshot and 100,000 events in one segment: stored, under the stated bound."""
    replay_id = new_id()
    events = big_page(T, 30_000) + busy_events(T + 100, 99_998)
    response = await post(client, replay_envelope(replay_id, 0, events))
    assert response.status == 200, await response.text()
    replay = await (await client.get(f"/api/0/projects/1/replays/{replay_id}/", headers=auth_headers)).json()
    assert replay["data"]["segments"][0]["event_count"] == 100_000
    assert await client.server.app[pool_key].run(worker_peak_mib) < WORKER_BOUND_MIB


# --- reading a replay ---------------------------------------------------------------------------

def noisy_segment(ts: int, seed: int, size: int) -> list[dict]:
    """A segment whose stored blob stays big: text that brotli cannot shrink much."""
    import random

    noise = random.Random(seed).randbytes(size // 2).hex()
    return [mouse_move(ts, 1, 1), {"type": 3, "timestamp": ts + 1, "data": {
        "source": 0, "texts": [{"id": 11, "value": noise}], "attributes": [], "removes": [], "adds": []}}]


@pytest.fixture
def long_replay(aiohttp_client, tmp_path):
    """A client and a replay of ten segments of ~2 MB each (~1.1 MB stored), under the given limits."""

    async def make(**limits):
        client = await aiohttp_client(create_app(make_config(tmp_path, limits=limits)))
        replay_id = new_id()
        for segment_id in range(10):
            ts = T + segment_id * 5000
            events = (page_events(ts, "https://a.test/", "A") if segment_id == 0 else []) \
                + noisy_segment(ts + 2, segment_id, 2 * MiB)
            response = await post(client, replay_envelope(replay_id, segment_id, events))
            assert response.status == 200, await response.text()
        return client, replay_id

    return make


async def test_a_batch_of_segments_is_streamed_one_segment_at_a_time(long_replay, auth_headers):
    client, replay_id = await long_replay()
    tracemalloc.start()
    try:
        response = await client.get(f"/projects/1/replays/{replay_id}/segments.pack?from=0&to=9",
                                    headers={**auth_headers, "Accept-Encoding": "identity"})
        assert response.status == 200
        received = 0
        async for chunk in response.content.iter_chunked(256 * 1024):
            received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Ten segments of ~2 MB (~1.1 MB stored) went out while the server held one, and the next few
    # as stored (player/segments.py READ_AHEAD): less than the batch itself, which it used to build.
    assert received > 20 * MiB
    assert peak < 16 * MiB


async def test_breadcrumbs_read_a_long_replay_in_batches_and_are_bounded(long_replay, auth_headers):
    client, replay_id = await long_replay(max_read_batch_bytes=MiB, max_breadcrumbs=3)
    tracemalloc.start()
    try:
        response = await client.get(f"/projects/1/replays/{replay_id}/breadcrumbs.json", headers=auth_headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status == 200
    body = await response.json()
    assert len(body["breadcrumbs"]) <= 3 and body["truncated"]  # limits.max_breadcrumbs
    assert peak < 8 * MiB  # ~10 MB of stored segments, read 1 MiB (one segment) at a time


def test_what_breadcrumbs_keep_does_not_grow_with_the_replay():
    """User input keeps its first and last time per 10 s; breadcrumbs stop at their limit."""
    extracted = timeline.Extracted(limit=50)
    blobs = [encode_segment([mouse_move(T + 2000 * i + k, k, k) for k in range(0, 1000, 10)]
                            + [click(T + 2000 * i, 10_000 + i)], 5) for i in range(100)]  # 200 s, 100 segments
    extracted = timeline.extract_from_blobs(blobs, T, extracted)
    assert len(extracted.activity) == 20 and all(len(first_last) == 2 for first_last in extracted.activity.values())
    assert len(extracted.breadcrumbs) == 50 and extracted.truncated  # 100 clicks, limit 50
    assert timeline.finish(extracted, 300_000, [], T)["inactive"] == [[198_990, 300_000]]
