"""Three ``replayd serve`` processes on one PostgreSQL database and one S3 bucket (moto's server over
HTTP), as docs/deploy.md sets them up: any node takes any segment of any replay.

- Real recordings (the corpus cut into segments), each replay's segments sent round-robin over the
  three nodes, several replays at once: every segment reads back from every node, and the stored
  blobs are byte for byte what one node stores for the same input (scrubbed in order, each segment
  with the state the previous one left, whichever node had it).
- One node SIGKILLed mid-load: nothing acknowledged is lost, the others keep answering, and the
  replays continue on them.
- A segment in one node's spool (its blob store down) reads from another node as 503 "not yet
  uploaded" with Retry-After, in the API and the player.
- The privacy end-to-end flow (tests/test_privacy_e2e.py) through a round-robin balancer in front of
  a three-node cluster: nothing planted in S3, PostgreSQL, the spools, the logs or the data dirs, and
  its storage-agnostic tests run here as they do against one node.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import itertools
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import brotli
import msgpack
import pytest
from aiohttp import web

from replayd.player.timeline import event_ms
from replayd.server.app import create_app
from replayd.server.codec import iter_events, unpack_blob
from replayd.server.index.postgres import replay_lock
from replayd.server.ingest.jobs import process_segment
from replayd.server.ingest.routes import ingestor_key
from replayd.server.keys import index_key
from tests import test_privacy_e2e as privacy
from tests.conftest import S3Server
from tests.envelopes import cut_segments, recording_envelope, replay_event, text_mutation
from tests.harness import (
    API_TOKEN,
    PUBLIC_KEY,
    RunningServer,
    free_port,
    launch_server,
    load_recording,
    make_config,
    without_digest,
)
from tests.postgres import PostgresServer, run_async
from tests.test_ingest import AUTH, T0, post, segment_envelope
from tests.test_privacy_e2e import PrivacySession, record_privacy_session
from tests.waiting import wait_until

SCRUB_SECRET = "cluster-test-scrubbing-secret-0123456789"  # the same on every node and the reference node
NODES = 3
REPLAYS = 6
SEGMENT_SECONDS = 1.0  # the corpus in ~30 segments, so a replay's segments go round the nodes many times


# --- the cluster ----------------------------------------------------------------------------

def s3_storage(s3: S3Server, bucket: str) -> dict[str, Any]:
    return {"backend": "s3", "bucket": bucket, "endpoint_url": s3.endpoint_url}


def start_nodes(root: Path, index_url: str, storage: dict[str, Any], count: int = NODES) -> list[RunningServer]:
    """``count`` nodes started together on one new database (they race to migrate it), each with its
    own data directory and spool."""
    def start(n: int) -> RunningServer:
        data_dir = root / f"node{n}"
        data_dir.mkdir()
        return launch_server(data_dir, index={"url": index_url}, storage=storage,
                             scrubbing={"secret": SCRUB_SECRET})

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(start, range(count)))


@pytest.fixture
def cluster(tmp_path, new_postgres_url, s3_server, s3_bucket) -> Iterator[list[RunningServer]]:
    nodes = start_nodes(tmp_path, new_postgres_url, s3_storage(s3_server, s3_bucket))
    yield nodes
    for node in nodes:
        node.kill()


# --- the input: the corpus as several replays, cut as the SDK cuts -------------------------

def recording_envelopes(replay_id: str, shift_s: float = 0.0) -> list[bytes]:
    """The corpus as replay ``replay_id``'s segment envelopes, in order (its times moved by ``shift_s``)."""
    events = load_recording()
    if shift_s:
        events = [{**e, "timestamp": e["timestamp"] + shift_s * 1000} if isinstance(e.get("timestamp"), (int, float))
                  else e for e in events]
    groups = cut_segments(events, SEGMENT_SECONDS)
    start = min(ms for e in events if (ms := event_ms(e)) is not None) / 1000
    envelopes = []
    for segment_id, group in enumerate(groups):
        times = [ms / 1000 for e in group if (ms := event_ms(e)) is not None]
        urls = [e["data"]["href"] for e in group if e.get("type") == 4 and isinstance(e.get("data"), dict)
                and isinstance(e["data"].get("href"), str)]
        event = replay_event(replay_id, segment_id, start, max(times, default=start), urls)
        envelopes.append(recording_envelope(event, zlib.compress(json.dumps(group).encode(), 6)))
    return envelopes


def replay_ids(count: int) -> list[str]:
    return [secrets.token_hex(16) for _ in range(count)]


def send(url: str, body: bytes, timeout: float = 30) -> int:
    """POST an envelope; the HTTP status (an HTTP error's too). OSError when nothing answers."""
    request = urllib.request.Request(f"{url}/api/1/envelope/?sentry_key={PUBLIC_KEY}", data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def send_until_stored(urls: list[str], first: int, body: bytes, deadline: float) -> int:
    """Send to ``urls[first]``, then on round the others while a node does not answer (connection
    refused: killed) or asks to retry (503); the index of the node that acknowledged it."""
    for n in itertools.count(first):
        assert time.monotonic() < deadline, "a segment found no node to store it"
        try:
            status = send(urls[n % len(urls)], body)
        except OSError:
            continue
        if status == 503:
            time.sleep(0.2)
            continue
        assert 200 <= status < 300, status
        return n % len(urls)
    raise AssertionError("unreachable")


def stored_blobs_s3(s3: S3Server, bucket: str) -> dict[str, bytes]:
    """Every object in the bucket by its key without the digest."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3.endpoint_url, region_name="us-east-1")
    return {without_digest(key): client.get_object(Bucket=bucket, Key=key)["Body"].read()
            for key in s3.keys(bucket)}


def stored_blobs_local(root: Path) -> dict[str, bytes]:
    return {without_digest(p.relative_to(root).as_posix()): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def api(url: str, path: str, **headers: str) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {API_TOKEN}", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


PACKED = {"Accept": "application/vnd.replayd.segment+msgpack", "Accept-Encoding": "br"}


def stored_segment(url: str, replay_id: str, segment_id: int) -> bytes:
    """The segment's msgpack as a node answers it (brotli'd; a v2 blob decoded and compressed again)."""
    status, body, _ = api(url, f"/api/0/projects/1/replays/{replay_id}/segments/{segment_id}/?format=msgpack", **PACKED)
    assert status == 200, (url, replay_id, segment_id, status, body[:200])
    return brotli.decompress(body)


# --- spread over three nodes = one node ------------------------------------------------------

def test_segments_spread_over_three_nodes_are_stored_as_one_node_stores_them(cluster, tmp_path, s3_server,
                                                                             s3_bucket):
    ids = replay_ids(REPLAYS)
    envelopes = {rid: recording_envelopes(rid, shift_s=n * 3600) for n, rid in enumerate(ids)}
    urls = [node.url for node in cluster]
    took: dict[str, list[int]] = {}

    def send_replay(n: int, replay_id: str) -> None:
        # the SDK sends a replay's segments one after another; each goes to the next node in turn
        took[replay_id] = [send_until_stored(urls, n + i, body, time.monotonic() + 120)
                           for i, body in enumerate(envelopes[replay_id])]

    with concurrent.futures.ThreadPoolExecutor(REPLAYS) as pool:  # several replays at once
        list(pool.map(send_replay, range(REPLAYS), ids))
    assert all(len(set(nodes)) == NODES for nodes in took.values()), took  # every replay on all three

    # every segment from every node, as stored
    stored = stored_blobs_s3(s3_server, s3_bucket)
    for node in cluster:
        for replay_id in ids:
            replay = node.api(f"/api/0/projects/1/replays/{replay_id}/")["data"]
            assert [s["segment_id"] for s in replay["segments"]] == list(range(len(envelopes[replay_id])))
            for segment_id in range(len(envelopes[replay_id])):
                assert stored_segment(node.url, replay_id, segment_id) == unpack_blob(
                    stored[f"1/{replay_id}/{segment_id:06d}"])
    assert len(stored) == sum(map(len, envelopes.values()))  # and nothing else: no orphan, no stale copy

    # the same input through one node, one replay after another: the same bytes
    single_dir = tmp_path / "single"
    single_dir.mkdir()
    single = launch_server(single_dir, scrubbing={"secret": SCRUB_SECRET})
    try:
        for replay_id in ids:
            for body in envelopes[replay_id]:
                assert send(single.url, body) == 200
    finally:
        single.kill()
    reference = stored_blobs_local(single_dir / "blobs")
    assert reference.keys() == stored.keys()
    differ = sorted(key for key in reference if reference[key] != stored[key])
    assert differ == [], f"{len(differ)} of {len(reference)} blobs differ from one node's, first {differ[:3]}"
    for node in cluster:
        assert "Traceback" not in node.log(), node.log()


# --- a node killed mid-load ------------------------------------------------------------------

@dataclasses.dataclass
class ClusterLoad:
    """Replays recorded at once, each sending its segments in order round-robin over the nodes, a
    segment that finds its node dead (or busy, 503) sent to the next; remembers what was acknowledged."""

    urls: list[str]
    ids: list[str]
    envelopes: dict[str, list[bytes]]
    acked: list[tuple[str, int, int, float]] = dataclasses.field(default_factory=list)  # replay, segment, node, when
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)
    errors: list[BaseException] = dataclasses.field(default_factory=list)

    def run_replay(self, n: int, replay_id: str) -> None:
        try:
            for segment_id, body in enumerate(self.envelopes[replay_id]):
                if self.stop.is_set():
                    return
                node = send_until_stored(self.urls, n + segment_id, body, time.monotonic() + 120)
                self.acked.append((replay_id, segment_id, node, time.monotonic()))
                time.sleep(0.05)
        except BaseException as exc:
            self.errors.append(exc)

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.run_replay, args=(n, rid), daemon=True)
                   for n, rid in enumerate(self.ids)]
        for thread in threads:
            thread.start()
        return threads


def test_a_node_killed_mid_load_loses_nothing_acknowledged_and_its_replays_go_on(cluster, capsys):
    ids = replay_ids(REPLAYS)
    load = ClusterLoad([node.url for node in cluster], ids, {rid: recording_envelopes(rid) for rid in ids})
    threads = load.start()
    victim = cluster[1]
    wait_until(lambda: sum(1 for a in load.acked if a[2] == 1) >= 10, 120, "segments acknowledged by node 1")
    victim.kill()  # SIGKILL: the process and its workers, mid-request
    killed_at = time.monotonic()
    for thread in threads:
        thread.join(300)
    assert not load.errors, load.errors
    survivors = [node for node in cluster if node is not victim]

    # the others kept answering; an answer node 1 gave just before the kill can be noted just after it
    # by a thread that lost the core in between (seen once under load), hence the second of grace
    after = [a for a in load.acked if a[3] > killed_at + 1.0]
    assert after and {node for _, _, node, _ in after} == {0, 2}
    # every replay the killed node had a part of went on to its end on the others
    had_victim = {rid for rid, _, node, when in load.acked if node == 1 and when <= killed_at}
    assert had_victim
    for replay_id in had_victim:
        acked = sorted(s for rid, s, _, _ in load.acked if rid == replay_id)
        assert acked == list(range(len(load.envelopes[replay_id]))), (replay_id, acked)
    # nothing acknowledged is lost: every one reads back, from each node still running
    for node in survivors:
        for replay_id in ids:
            acked = {s for rid, s, _, _ in load.acked if rid == replay_id}
            replay = node.api(f"/api/0/projects/1/replays/{replay_id}/")["data"]
            listed = {s["segment_id"] for s in replay["segments"]}
            assert acked <= listed, f"lost {sorted(acked - listed)} of {replay_id}"
            for segment_id in listed:
                assert stored_segment(node.url, replay_id, segment_id)
    with capsys.disabled():
        print(f"\n[cluster SIGKILL] acknowledged {len(load.acked)} segments of {REPLAYS} replays, "
              f"{len(after)} after node 1 was killed; lost 0")


# --- a segment still in another node's spool ------------------------------------------------

async def test_a_segment_in_another_nodes_spool_is_503_not_yet_uploaded(aiohttp_client, tmp_path, postgres_url,
                                                                        s3_server, s3_bucket):
    dead_s3 = {"backend": "s3", "bucket": s3_bucket, "endpoint_url": f"http://127.0.0.1:{free_port()}",
               "put_timeout": 1.0}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    spooling = await aiohttp_client(create_app(make_config(
        tmp_path / "a", index={"url": postgres_url}, storage=dead_s3, spool={"max_backoff": 60})))
    other = await aiohttp_client(create_app(make_config(
        tmp_path / "b", index={"url": postgres_url}, storage=s3_storage(s3_server, s3_bucket))))
    replay_id = secrets.token_hex(16)
    assert (await post(spooling, segment_envelope(replay_id, 0))).status == 200  # its store is down: spooled
    path = f"/api/0/projects/1/replays/{replay_id}/segments/0/"

    response = await other.get(path, headers=AUTH)
    assert response.status == 503 and int(response.headers["Retry-After"]) > 0
    assert "not yet uploaded" in (await response.json())["detail"]
    response = await other.get(f"/projects/1/replays/{replay_id}/segments.pack?from=0&to=0", headers=AUTH)
    assert response.status == 503 and int(response.headers["Retry-After"]) > 0
    assert "not yet uploaded" in (await response.json())["detail"]
    # the node that holds it answers from its spool
    response = await spooling.get(path, headers=AUTH)
    assert response.status == 200 and (await response.json())


async def test_a_writer_that_lost_its_lock_mid_scrub_leaves_no_stale_blob(aiohttp_client, tmp_path, postgres_url,
                                                                           s3_server, s3_bucket, caplog):
    """Node A scrubs segment 1 when its session (and the replay's lock with it) is ended — a network
    partition, an administrator — and node B stores other bytes for segment 1 meanwhile. A's blob,
    scrubbed with a state that is now stale, is refused at commit and deleted; A scrubs again with B's
    state; the bucket ends with exactly the blobs the rows name."""
    clients = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        clients.append(await aiohttp_client(create_app(make_config(
            tmp_path / name, index={"url": postgres_url}, storage=s3_storage(s3_server, s3_bucket),
            scrubbing={"secret": SCRUB_SECRET}))))
    a, b = clients
    replay_id = secrets.token_hex(16)
    assert (await post(a, segment_envelope(replay_id, 0))).status == 200
    ingestor = a.app[ingestor_key]
    scrub = ingestor._in_pool
    interrupted: list[int] = []

    async def scrub_then_lose_the_lock(fn, *args):
        result = await scrub(fn, *args)
        if fn is process_segment and not interrupted:
            key = replay_lock(1, replay_id)
            admin = await asyncpg.connect(postgres_url)
            try:
                interrupted.append(await admin.fetchval(
                    "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = $1 AND objid = $2 AND objsubid = 1", (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF))
            finally:
                await admin.close()
            other = segment_envelope(replay_id, 1, events=[text_mutation((T0 + 6) * 1000, 4, "stored by B")])
            assert (await post(b, other)).status == 200  # B gets the lock A lost, and stores its segment 1
        return result

    ingestor._in_pool = scrub_then_lose_the_lock  # type: ignore[method-assign]
    mine = segment_envelope(replay_id, 1, events=[text_mutation((T0 + 5) * 1000, 4, "stored by A")])
    assert (await post(a, mine)).status == 200
    assert interrupted == [1]
    assert "scrubber state changed before its commit; scrubbing again" in caplog.text

    # A's segment 1, scrubbed again after B's: the row names it, and the bucket holds nothing else
    rows = [await a.app[index_key].get_segment(1, replay_id, n) for n in (0, 1)]
    assert sorted(s3_server.keys(s3_bucket)) == sorted(row.blob_key for row in rows if row)
    assert (await a.app[index_key].get_state(1, replay_id)).version == 3  # 0, B's 1, A's 1 again
    events = await (await b.get(f"/api/0/projects/1/replays/{replay_id}/segments/1/", headers=AUTH)).json()
    assert "stored by A" in json.dumps(events) and "stored by B" not in json.dumps(events)


def test_a_second_process_on_one_spool_directory_refuses_to_start(tmp_path):
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = launch_server(tmp_path / "first")
    try:
        with pytest.raises(RuntimeError) as refused:  # it exits at start, saying why
            launch_server(tmp_path / "second", spool={"path": str(tmp_path / "first" / "spool")})
        assert "spool.path" in str(refused.value) and "in use by another replayd process" in str(refused.value)
        assert first.api("/healthz")  # the first one is untouched
    finally:
        first.kill()


# --- the privacy end-to-end flow against three nodes --------------------------------------

class RoundRobin:
    """A load balancer as small as can be, in a thread: each request to the next node in turn, the
    answer passed back as it came (as nginx's upstream does). Envelopes with a replay segment take
    turns of their own, so that a replay's few segments surely go to different nodes."""

    def __init__(self, nodes: list[RunningServer]):
        self.nodes = nodes
        self.port = free_port()
        self.recordings_to: list[int] = []  # the node each envelope with a replay segment went to
        self._turn = itertools.count()
        self._recording_turn = itertools.count()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the balancer did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=1 << 26)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        if b'"type":"replay_recording"' in body:
            n = next(self._recording_turn) % len(self.nodes)
            self.recordings_to.append(n)
        else:
            n = next(self._turn) % len(self.nodes)
        skip = {"host", "content-length", "transfer-encoding", "connection"}
        async with self._session.request(
                request.method, self.nodes[n].url + request.path_qs, data=body,
                headers={k: v for k, v in request.headers.items() if k.lower() not in skip},
                allow_redirects=False) as answer:
            return web.Response(status=answer.status, body=await answer.read(),
                                headers={k: v for k, v in answer.headers.items() if k.lower() not in skip})

    def close(self) -> None:
        async def stop() -> None:
            await self._runner.cleanup()
            await self._session.close()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()


@dataclasses.dataclass
class PrivacyCluster:
    nodes: list[RunningServer]
    balancer: RoundRobin
    index_url: str
    s3: S3Server
    bucket: str


@pytest.fixture(scope="module")
def privacy_cluster(tmp_path_factory, postgres_server: PostgresServer, s3_server) -> Iterator[PrivacyCluster]:
    name = f"replayd_cluster_{secrets.token_hex(4)}"
    index_url = postgres_server.create_database(name)
    bucket = s3_server.make_bucket(f"replayd-cluster-privacy-{secrets.token_hex(4)}")
    nodes = start_nodes(tmp_path_factory.mktemp("cluster-privacy"), index_url, s3_storage(s3_server, bucket))
    balancer = RoundRobin(nodes)
    try:
        yield PrivacyCluster(nodes, balancer, index_url, s3_server, bucket)
    finally:
        balancer.close()
        for node in nodes:
            node.kill()
        postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def privacy_session(browser, privacy_cluster: PrivacyCluster, sentry_bundle: Path) -> Iterator[PrivacySession]:
    """test_privacy_e2e's flow with the SDK's DSN on the balancer (reads through node 0)."""
    front = dataclasses.replace(privacy_cluster.nodes[0], port=privacy_cluster.balancer.port)  # dsn: the balancer
    with record_privacy_session(browser, front, sentry_bundle) as session:
        yield session


# test_privacy_e2e's tests that read through the API, run here against the cluster
test_every_envelope_was_accepted = privacy.test_every_envelope_was_accepted
test_the_scrub_report_counts_rules_without_values = privacy.test_the_scrub_report_counts_rules_without_values
test_the_stored_recording_replays_with_structure_css_and_text = \
    privacy.test_the_stored_recording_replays_with_structure_css_and_text


def _texts_in_postgres(url: str) -> list[tuple[str, str]]:
    """(where, text) of every value of every row of every table, the scrubber state unpacked too."""
    async def read() -> list[tuple[str, str]]:
        conn = await asyncpg.connect(url)
        try:
            texts = []
            tables = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
            assert {"replays", "segments", "errors", "replay_state"} <= set(tables), tables
            for table in tables:
                for row in await conn.fetch(f'SELECT * FROM "{table}"'):
                    for column, value in row.items():
                        where = f"postgresql {table}.{column}"
                        if isinstance(value, bytes):
                            texts.append((where, value.decode("latin-1")))
                            with contextlib.suppress(Exception):
                                unpacked = msgpack.unpackb(value, raw=False, strict_map_key=False)
                                texts.append((where + " (msgpack)", json.dumps(unpacked, default=repr)))
                        elif value is not None:
                            texts.append((where, str(value)))
            return texts
        finally:
            await conn.close()

    return run_async(read)


def test_no_planted_value_is_stored_anywhere_in_the_cluster(privacy_session: PrivacySession,
                                                           privacy_cluster: PrivacyCluster) -> None:
    cluster = privacy_cluster
    # the replay's segments really went to more than one node
    assert len(set(cluster.balancer.recordings_to)) >= 2, cluster.balancer.recordings_to

    texts = [(f"blob s3 {key}", json.dumps(list(iter_events(blob)), ensure_ascii=False))
             for key, blob in stored_blobs_s3(cluster.s3, cluster.bucket).items()]
    assert texts, "no blob was stored"
    texts += _texts_in_postgres(cluster.index_url)
    for n, node in enumerate(cluster.nodes):  # each node's spool, log, config and every other file it wrote
        texts.append((f"node {n} log", node.log()))
        texts += [(f"node {n} file {p.relative_to(node.data_dir)}", p.read_bytes().decode("latin-1"))
                  for p in sorted(node.data_dir.rglob("*")) if p.is_file()]
    privacy.assert_no_planted_value(texts)
