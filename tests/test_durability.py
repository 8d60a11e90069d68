"""Acknowledged segments survive blob-store outages and crashes (real processes, moto's server over HTTP)."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from replayd.server.app import create_app
from replayd.server.compaction import compactor_key
from replayd.server.keys import blobs_key, index_key, spool_key, uploader_key
from replayd.server.storage import StoreUnavailable, segment_key
from tests.conftest import S3Server
from tests.harness import ON_BOTH_INDEXES, PUBLIC_KEY, RunningServer, free_port, make_config, without_digest
from tests.test_exposure import samples
from tests.test_ingest import AUTH, T0, get, post, rid, segment_envelope
from tests.waiting import wait_until, wait_until_async


@pytest.fixture
def own_s3():
    """A moto server of this test's own, so it can be stopped and started again on the same port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = S3Server(f"http://127.0.0.1:{port}", ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False))
    server.server.start()
    server.running = True
    yield server
    if server.running:
        server.server.stop()


def stop_s3(s3) -> None:
    s3.server.stop()
    s3.running = False


def start_s3(s3) -> None:
    s3.server.start()
    s3.running = True


async def test_outage_spools_then_uploads(aiohttp_client, tmp_path, own_s3):
    bucket = own_s3.make_bucket("outage")
    config = make_config(tmp_path, storage={"backend": "s3", "bucket": bucket, "endpoint_url": own_s3.endpoint_url,
                                            "put_timeout": 1.0}, spool={"max_backoff": 0.5})
    client = await aiohttp_client(create_app(config))
    replay_id, error_id = rid(), rid()
    assert (await post(client, segment_envelope(replay_id, 0))).status == 200
    stop_s3(own_s3)
    for segment_id in (1, 2):
        response = await post(client, segment_envelope(replay_id, segment_id, error_ids=[error_id]))
        assert response.status == 200, await response.text()
    assert len(list((tmp_path / "spool").glob("*.seg"))) == 2
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503 and "blob_store" in body["failing"] and body["spool"]["segments"] == 2
    metrics = samples(await (await client.get("/metrics")).text())
    assert metrics[("replayd_spool_segments", frozenset())] == 2
    assert metrics[("replayd_upload_failures_total", frozenset())] >= 1
    # a spooled segment is already readable
    events = await (await client.get(f"/api/0/projects/1/replays/{replay_id}/segments/2/", headers=AUTH)).json()
    assert events[-1]["data"]["source"] == 2
    start_s3(own_s3)
    await wait_until_async(lambda: not list((tmp_path / "spool").glob("*.seg")), 30, "the spool to drain")
    assert sorted(map(without_digest, own_s3.keys(bucket))) == [f"1/{replay_id}/{i:06d}" for i in range(3)]
    replay = await get(client, f"/api/0/projects/1/replays/{replay_id}/")
    assert [s["segment_id"] for s in replay["segments"]] == [0, 1, 2]
    # the spooled segments' replay_events were kept in their commits, once; their blobs went up as v3
    assert replay["error_ids"] == [error_id] and replay["error_count"] == 1 and len(replay["urls"]) == 3
    store = client.app[blobs_key]
    for segment_id in (1, 2):
        row = await client.app[index_key].get_segment(1, replay_id, segment_id)
        assert row is not None and row.location != "spool" and row.codec == "msgpack-br-v3"
        assert (await store.get(row.blob_key)).startswith(b"rpd\x03")
    assert await (await client.get(f"/api/0/projects/1/replays/{replay_id}/segments/2/", headers=AUTH)).json() == events
    assert (await client.get("/readyz")).status == 200
    assert samples(await (await client.get("/metrics")).text())[("replayd_spool_segments", frozenset())] == 0


async def test_spool_full_is_503_with_retry_after_then_recovers(aiohttp_client, tmp_path, own_s3):
    bucket = own_s3.make_bucket("full")
    config = make_config(tmp_path, storage={"backend": "s3", "bucket": bucket, "endpoint_url": own_s3.endpoint_url,
                                            "put_timeout": 1.0}, spool={"max_bytes": 1500, "max_backoff": 0.5})
    client = await aiohttp_client(create_app(config))
    stop_s3(own_s3)
    replay_id = rid()
    statuses = []
    for segment_id in range(4):
        response = await post(client, segment_envelope(replay_id, segment_id))
        statuses.append(response.status)
        if response.status == 503:
            assert int(response.headers["Retry-After"]) > 0
            assert "spool" in (await response.json())["detail"]
    assert statuses[0] == 200 and statuses[-1] == 503
    start_s3(own_s3)
    await wait_until_async(lambda: is_accepted(client, segment_envelope(replay_id, 3)), 30,
                           "the segment to be accepted")
    accepted = [i for i, s in enumerate(statuses) if s == 200] + [3]
    await wait_until_async(lambda: not list((tmp_path / "spool").glob("*.seg")), 30, "the spool to drain")
    assert sorted(map(without_digest, own_s3.keys(bucket))) == sorted({f"1/{replay_id}/{i:06d}" for i in accepted})


@ON_BOTH_INDEXES
async def test_a_spooled_segment_replaced_while_it_is_uploaded_leaves_no_blob_behind(aiohttp_client, tmp_path,
                                                                                     index_url):
    """Segment 1 is spooled; each put of it stores the object but its answer is lost (a timeout: the
    store took it after all). While the uploader retries, a re-send with other bytes replaces its row
    and its entry. The first bytes' object must not stay in the store, named by no row (it did)."""
    config = make_config(tmp_path, index={"url": index_url}, spool={"max_backoff": 0.2})
    client = await aiohttp_client(create_app(config))
    replay_id = rid()
    assert (await post(client, segment_envelope(replay_id, 0))).status == 200
    blobs, index = client.app[blobs_key], client.app[index_key]
    landed: list[str] = []

    async def answer_lost(key, data):
        await type(blobs).put(blobs, key, data)
        landed.append(key)
        raise StoreUnavailable("the answer timed out")

    blobs.put = answer_lost
    try:
        assert (await post(client, segment_envelope(replay_id, 1))).status == 200  # spooled (and stored)
        first = (await index.get_segment(1, replay_id, 1)).blob_key
        await wait_until_async(lambda: landed.count(first) >= 2, 30, "the uploader to try segment 1")
        resent = segment_envelope(replay_id, 1, t=T0 + 7)  # other bytes
        assert (await post(client, resent)).status == 200
    finally:
        del blobs.put  # the store answers again
    second = (await index.get_segment(1, replay_id, 1)).blob_key
    assert second != first
    await wait_until_async(lambda: not client.app[spool_key].entries(), 30, "the spool to drain")
    await client.app[compactor_key].collect_garbage()  # what every compaction round does first
    stored = sorted(p.name for p in (Path(config.storage.path) / "1" / replay_id).iterdir())
    assert [name for name in stored if name.startswith("000001")] == [second.rsplit("/", 1)[1]]
    assert await index.garbage() == []
    events = await (await client.get(f"/api/0/projects/1/replays/{replay_id}/segments/1/", headers=AUTH)).json()
    assert events and events[0]["timestamp"] == pytest.approx((T0 + 7) * 1000)


@ON_BOTH_INDEXES
async def test_a_spooled_segment_another_node_replaces_during_its_upload_leaves_no_blob_behind(aiohttp_client,
                                                                                                tmp_path, index_url):
    """The uploader read segment 1's row and is putting it when another node stores the segment again
    (its row names other bytes now); the put lands but its answer is lost. On its next round the
    uploader finds the row naming other bytes: what it stored must go too (it stayed)."""
    config = make_config(tmp_path, index={"url": index_url}, spool={"max_backoff": 0.2})
    client = await aiohttp_client(create_app(config))
    replay_id = rid()
    blobs, index = client.app[blobs_key], client.app[index_key]
    store_put = type(blobs).put

    async def down(key, data):
        raise StoreUnavailable("the store is down")

    blobs.put = down
    assert (await post(client, segment_envelope(replay_id, 1))).status == 200  # spooled
    row = await index.get_segment(1, replay_id, 1)
    other = b"segment 1 as another node stored it"
    raced: list[str] = []

    async def other_node_stores_it_meanwhile(key, data):
        if not raced:
            raced.append(key)
            replaced = dataclasses.replace(row, blob_key=segment_key(1, replay_id, 1, other), location="store")
            await store_put(blobs, replaced.blob_key, other)
            async with index.replay_writer(1, replay_id, 1, 5) as writer:
                await writer.record_segment(replaced, writer.state.data)
        await store_put(blobs, key, data)
        raise StoreUnavailable("the answer timed out")

    blobs.put = other_node_stores_it_meanwhile
    try:
        client.app[uploader_key].wake()
        await wait_until_async(lambda: raced, 30, "the uploader to put segment 1")
    finally:
        del blobs.put
    await wait_until_async(lambda: not client.app[spool_key].entries(), 30, "the spool to drain")
    await client.app[compactor_key].collect_garbage()
    stored = sorted(p.name for p in (Path(config.storage.path) / "1" / replay_id).iterdir())
    assert raced == [row.blob_key] and stored == [segment_key(1, replay_id, 1, other).rsplit("/", 1)[1]]


async def is_accepted(client, body: bytes) -> bool:
    """Post ``body``: True once it is accepted; until then the answer must be the spool's 503."""
    response = await post(client, body)
    assert response.status in (200, 503), (response.status, await response.text())
    return response.status == 200


def test_disk_full_is_503_then_recovers(tmp_path, own_s3):
    """A spool on a nearly full file system (a 64 KiB tmpfs) refuses with 503, then recovers."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"this test mounts a tmpfs and needs root: {result.stderr}"
    try:
        asyncio.run(_disk_full(tmp_path, mount, own_s3))
    finally:
        subprocess.run(["umount", str(mount)], check=True)


async def _disk_full(tmp_path, mount, own_s3):
    from aiohttp.test_utils import TestClient, TestServer

    bucket = own_s3.make_bucket("disk")
    config = make_config(tmp_path, storage={"backend": "s3", "bucket": bucket, "endpoint_url": own_s3.endpoint_url,
                                            "put_timeout": 1.0}, spool={"path": str(mount), "max_backoff": 0.5})
    async with TestClient(TestServer(create_app(config))) as client:
        stop_s3(own_s3)
        replay_id = rid()
        big = [{"type": 5, "timestamp": 1_790_000_000_000 + i, "data": {"tag": "x", "payload": {"n": str(i) * 40}}}
               for i in range(3000)]
        statuses = []
        for segment_id in range(8):
            response = await post(client, segment_envelope(replay_id, segment_id, events=[{**e, "data": {
                **e["data"], "payload": {"seed": f"{segment_id}-{i}-{time.time_ns()}"}}} for i, e in enumerate(big)]))
            statuses.append(response.status)
            if response.status == 503:
                assert "Retry-After" in response.headers
                assert "No space left" in (await response.json())["detail"]
                break
        assert statuses[-1] == 503 and 200 in statuses, statuses
        start_s3(own_s3)
        await wait_until_async(lambda: is_accepted(client, segment_envelope(replay_id, len(statuses) - 1)), 30,
                               "the refused segment to be accepted")


# --- fault tests against a running `replayd serve` -------------------------------------------

@dataclass
class Load:
    """Posts segments of many replays at a steady pace and remembers which ones were acknowledged."""

    server_url: str
    pace: float = 0.05
    acked: list[tuple[str, int]] = field(default_factory=list)
    refused: list[tuple[str, int, int]] = field(default_factory=list)
    failed: int = 0
    sent: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        replays = [rid() for _ in range(4)]
        next_segment = dict.fromkeys(replays, 0)
        n = 0
        while not self.stop.is_set():
            replay_id = replays[n % len(replays)]
            segment_id = next_segment[replay_id]
            body = segment_envelope(replay_id, segment_id)
            request = urllib.request.Request(f"{self.server_url}/api/1/envelope/?sentry_key={PUBLIC_KEY}",
                                             data=body, method="POST")
            self.sent += 1
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    if 200 <= response.status < 300:
                        self.acked.append((replay_id, segment_id))
                        next_segment[replay_id] += 1
            except urllib.error.HTTPError as exc:
                self.refused.append((replay_id, segment_id, exc.code))
            except OSError:
                self.failed += 1  # server down: not acknowledged, the client retries the same segment
            n += 1
            time.sleep(self.pace)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        return thread


def assert_all_readable(server: RunningServer, acked: list[tuple[str, int]]) -> None:
    by_replay: dict[str, set[int]] = {}
    for replay_id, segment_id in acked:
        by_replay.setdefault(replay_id, set()).add(segment_id)
    for replay_id, segments in by_replay.items():
        replay = server.api(f"/api/0/projects/1/replays/{replay_id}/")["data"]
        listed = {s["segment_id"] for s in replay["segments"]}
        assert segments <= listed, f"lost {sorted(segments - listed)} of {replay_id}"
        for segment_id in listed:  # every listed segment has its blob
            events = server.api(f"/api/0/projects/1/replays/{replay_id}/segments/{segment_id}/")
            assert isinstance(events, list) and events


def test_s3_outage_of_30_seconds_under_load(start_server, own_s3, capsys):
    bucket = own_s3.make_bucket("load")
    server = start_server(storage={"backend": "s3", "bucket": bucket, "endpoint_url": own_s3.endpoint_url,
                                   "put_timeout": 2.0}, spool={"max_backoff": 2.0})
    load = Load(server.url)
    thread = load.start()
    wait_until(lambda: len(load.acked) >= 20, 60, "segments acknowledged before the outage")
    stop_s3(own_s3)
    outage_started = len(load.acked)
    time.sleep(30)  # the outage under test (not a wait for something): S3 down for 30 s under load
    wait_until(lambda: len(load.acked) - outage_started > 20, 60, "segments acknowledged during the outage")
    during_outage = len(load.acked) - outage_started
    start_s3(own_s3)
    after_outage = len(load.acked)
    wait_until(lambda: len(load.acked) - after_outage >= 20, 60, "segments acknowledged after the outage")
    load.stop.set()
    thread.join(30)
    wait_until(lambda: server.api("/readyz")["spool"]["segments"] == 0, 60, "the spool to drain")
    assert load.refused == [] and load.failed == 0, (load.refused, load.failed)
    keys = set(map(without_digest, own_s3.keys(bucket)))
    missing = [(r, s) for r, s in load.acked if f"1/{r}/{s:06d}" not in keys]
    assert missing == []
    assert_all_readable(server, load.acked)
    with capsys.disabled():
        print(f"\n[s3 outage 30 s] sent {load.sent}, acknowledged {len(load.acked)} "
              f"({during_outage} during the outage), stored in S3 {len(load.acked) - len(missing)}, "
              f"lost {len(missing)}")


def test_sigkill_during_load_loses_no_acknowledged_segment(start_server, capsys):
    server = start_server()
    load = Load(server.url, pace=0.02)
    thread = load.start()
    wait_until(lambda: len(load.acked) > 20, 60, "segments acknowledged before the kill")
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    acked_at_kill, failed_at_kill = len(load.acked), load.failed
    wait_until(lambda: load.failed > failed_at_kill, 30, "the load to find the server gone")
    server.start()
    wait_until(lambda: len(load.acked) > acked_at_kill + 20, 60, "segments acknowledged after the restart")
    load.stop.set()
    thread.join(30)
    assert load.refused == []
    assert_all_readable(server, load.acked)
    # and the index lists nothing whose blob is missing
    replays = server.api("/api/0/projects/1/replays/?per_page=200")["data"]
    blobs = {without_digest(p.relative_to(server.data_dir / "blobs").as_posix())
             for p in (server.data_dir / "blobs").rglob("0*")}
    for replay in replays:
        for segment in server.api(f"/api/0/projects/1/replays/{replay['replay_id']}/")["data"]["segments"]:
            assert f"1/{replay['replay_id']}/{segment['segment_id']:06d}" in blobs
    with capsys.disabled():
        print(f"\n[SIGKILL] sent {load.sent}, acknowledged {len(load.acked)}, connection failures {load.failed}, "
              f"lost 0")
