"""The Sentry envelope front door: auth, CORS, items, limits, idempotency, errors linked to replays."""

from __future__ import annotations

import asyncio
import gzip
import json
import tracemalloc
import uuid
import zlib
from pathlib import Path

import brotli
import pytest

from replayd.server import jsontext
from replayd.server.app import create_app
from replayd.server.codec import iter_events
from replayd.server.ingest.bounds import decompress_recording
from replayd.server.ingest.refused import IngestRefused
from replayd.server.ingest.routes import ingestor_key
from replayd.server.keys import index_key
from replayd.server.useragent import parse_user_agent
from tests.harness import API_TOKEN, ON_BOTH_INDEXES, PUBLIC_KEY, SDK_TRAFFIC, make_config

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
T0 = 1_790_000_000.0


def item(headers: dict, payload: bytes, with_length: bool = True) -> bytes:
    if with_length:
        headers = {**headers, "length": len(payload)}
    return json.dumps(headers).encode() + b"\n" + payload


def envelope(*items: bytes, **headers) -> bytes:
    return b"\n".join([json.dumps(headers).encode(), *items])


def page_events(t: float, text: str = "Hello replay", full: bool = True) -> list[dict]:
    ms = int(t * 1000)
    events: list[dict] = []
    if full:
        events += [
            {"type": 4, "data": {"href": "https://shop.example/cart", "width": 800, "height": 600}, "timestamp": ms},
            {"type": 2, "timestamp": ms + 1, "data": {"initialOffset": {"left": 0, "top": 0}, "node": {
                "type": 0, "id": 1, "childNodes": [{"type": 2, "id": 2, "tagName": "html", "attributes": {}, "childNodes": [  # noqa: E501
                    {"type": 2, "id": 3, "tagName": "body", "attributes": {}, "childNodes": [
                        {"type": 3, "id": 4, "textContent": text}]}]}]}}},
        ]
    events.append({"type": 3, "timestamp": ms + 500, "data": {"source": 2, "type": 2, "id": 3, "x": 1, "y": 1}})
    return events


def replay_event(replay_id: str, segment_id: int, t: float, **extra) -> dict:
    return {
        "type": "replay_event", "replay_id": replay_id, "segment_id": segment_id, "replay_type": "session",
        "replay_start_timestamp": T0, "timestamp": t, "urls": [f"https://shop.example/page{segment_id}"],
        "error_ids": [], "trace_ids": [],
        "request": {"url": "https://shop.example/", "headers": {
            "User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                          "Chrome/126.0.0.0 Safari/537.36"}},
        "user": {"id": "u-1"}, "sdk": {"name": "sentry.javascript.browser", "version": "11.12.0"},
        **extra,
    }


def recording(segment_id: int, events: list | bytes, compress: bool = True) -> bytes:
    body = events if isinstance(events, bytes) else json.dumps(events).encode()
    if compress:
        body = zlib.compress(body)
    return item({"type": "replay_recording"}, json.dumps({"segment_id": segment_id}).encode() + b"\n" + body)


def segment_envelope(replay_id: str, segment_id: int, t: float | None = None, events: list | None = None,
                     compress: bool = True, **extra) -> bytes:
    t = T0 + 5 * segment_id if t is None else t
    events = page_events(t, full=segment_id == 0) if events is None else events
    return envelope(
        item({"type": "replay_event"}, json.dumps(replay_event(replay_id, segment_id, t, **extra)).encode(),
             with_length=False),
        recording(segment_id, events, compress),
        event_id=replay_id, sent_at="2026-11-26T00:00:00Z",
    )


def error_event(event_id: str, replay_id: str | None = None, t: float = T0 + 3, **extra) -> dict:
    event = {
        "event_id": event_id, "timestamp": t, "level": "error", "platform": "javascript",
        "exception": {"values": [{"type": "TypeError", "value": "x is undefined", "stacktrace": {"frames": [
            {"function": "main", "filename": "https://shop.example/app.js", "lineno": 1, "in_app": True},
            {"function": "checkout", "filename": "https://shop.example/cart.js", "lineno": 42, "in_app": True},
        ]}}]},
        "request": {"url": "https://shop.example/cart", "headers": {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac "
                    "OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"}},
        **extra,
    }
    if replay_id:
        event["contexts"] = {"replay": {"replay_id": replay_id}}
    return event


def error_envelope(event: dict, **headers) -> bytes:
    return envelope(item({"type": "event"}, json.dumps(event).encode()), event_id=event["event_id"], **headers)


async def post(client, body: bytes, key: str | None = PUBLIC_KEY, project: int | str = 1, headers=None):
    params = {"sentry_key": key, "sentry_version": "7"} if key else {}
    return await client.post(f"/api/{project}/envelope/", params=params, data=body, headers=headers or {})


async def get(client, path: str):
    response = await client.get(path, headers=AUTH)
    assert response.status == 200, await response.text()
    return (await response.json())["data"]


def rid() -> str:
    return uuid.uuid4().hex


# --- the real SDK's traffic ------------------------------------------------------------------

async def test_real_sdk_envelopes(client):
    for n in ("001", "002", "003"):
        request = json.loads((SDK_TRAFFIC / f"{n}.request.json").read_text())
        params = {**request["query"], "sentry_key": PUBLIC_KEY}
        response = await client.post("/api/1/envelope/", params=params, headers=request["headers"],
                                     data=(SDK_TRAFFIC / f"{n}.envelope").read_bytes())
        assert response.status == 200, await response.text()
        assert response.headers["Access-Control-Allow-Origin"] == request["headers"]["Origin"]
    replays = await get(client, "/api/0/projects/1/replays/")
    assert len(replays) == 1
    replay = await get(client, f"/api/0/projects/1/replays/{replays[0]['replay_id']}/")
    assert [s["segment_id"] for s in replay["segments"]] == [0, 1]
    assert replay["error_ids"] == ["f8e25082bf5e4f4e978c1fe345b5c8a5"]
    assert replay["browser"] == "HeadlessChrome 156" and replay["os"] == "Linux"
    assert replay["errors"][0]["type"] == "TypeError"
    assert 0 < replay["duration"] < 60
    error = await get(client, "/api/0/projects/1/errors/f8e25082bf5e4f4e978c1fe345b5c8a5/")
    assert error["replay_id"] == replays[0]["replay_id"]
    assert 0 <= error["replay_offset"] <= replay["duration"]
    events = await (await client.get(f"/api/0/projects/1/replays/{replay['replay_id']}/segments/0/", headers=AUTH)).json()  # noqa: E501
    assert any(e["type"] == 4 for e in events) and any(e["type"] == 2 for e in events)


# --- auth and CORS ---------------------------------------------------------------------------

async def test_auth_by_query_header_and_envelope_dsn(client):
    body = segment_envelope(rid(), 0)
    assert (await post(client, body)).status == 200
    header = {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={PUBLIC_KEY}, sentry_client=test/1.0"}
    assert (await post(client, segment_envelope(rid(), 0), key=None, headers=header)).status == 200
    with_dsn = envelope(recording(0, page_events(T0)), event_id=rid(), dsn=f"https://{PUBLIC_KEY}@replay.example/1")
    assert (await post(client, with_dsn, key=None)).status == 200
    assert len(await get(client, "/api/0/projects/1/replays/")) == 3


@pytest.mark.parametrize("key, project, status, words", [
    (None, 1, 401, "missing sentry_key"),
    ("wrong", 1, 403, "not a key of project 1"),
    (PUBLIC_KEY, 2, 403, "unknown project"),
    (PUBLIC_KEY, "abc", 403, "unknown project"),
])
async def test_auth_rejections(client, key, project, status, words):
    response = await post(client, segment_envelope(rid(), 0), key=key, project=project)
    assert response.status == status
    assert words in (await response.json())["detail"]
    assert await get(client, "/api/0/projects/1/replays/") == []


async def test_cors(aiohttp_client, tmp_path):
    config = make_config(tmp_path, projects=[{"id": 1, "public_keys": [PUBLIC_KEY],
                                              "allowed_origins": ["https://shop.example"]}])
    client = await aiohttp_client(create_app(config))
    preflight = await client.options("/api/1/envelope/", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    ok = await post(client, segment_envelope(rid(), 0), headers={"Origin": "https://shop.example"})
    assert ok.status == 200 and ok.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    denied = await post(client, segment_envelope(rid(), 0), headers={"Origin": "https://evil.example"})
    assert denied.status == 403 and "not allowed" in (await denied.json())["detail"]
    assert "Access-Control-Allow-Origin" not in denied.headers
    assert (await client.options("/api/1/envelope/", headers={"Origin": "https://evil.example"})).status == 403


async def test_an_unexpected_ingest_failure_is_a_500_a_browser_can_read(aiohttp_client, tmp_path, monkeypatch):
    """Without CORS headers a browser sees a 500 as a network error: no status, no Retry-After."""
    config = make_config(tmp_path, projects=[{"id": 1, "public_keys": [PUBLIC_KEY],
                                              "allowed_origins": ["https://shop.example"]}])
    client = await aiohttp_client(create_app(config))

    async def bug(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(client.server.app[ingestor_key], "ingest", bug)
    response = await post(client, segment_envelope(rid(), 0), headers={"Origin": "https://shop.example"})
    assert response.status == 500
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "internal error" in (await response.json())["detail"]


# --- envelope and item formats -----------------------------------------------------------------

async def test_plain_json_body_and_items_without_length(client):
    replay_id = rid()
    body = envelope(
        item({"type": "replay_event"}, json.dumps(replay_event(replay_id, 0, T0)).encode(), with_length=False),
        item({"type": "replay_recording"}, b'{"segment_id":0}\n' + json.dumps(page_events(T0)).encode()),
        item({"type": "client_report"}, b'{"discarded_events":[]}', with_length=False),
        item({"type": "transaction"}, b'{"spans":[]}'),
        item({"type": "attachment", "filename": "a.bin"}, b"\x00\x01\n\x02"),
        event_id=replay_id,
    )
    response = await post(client, body)
    assert response.status == 200, await response.text()
    assert (await response.json())["id"] == replay_id
    assert (await get(client, f"/api/0/projects/1/replays/{replay_id}/"))["segment_count"] == 1


@pytest.mark.parametrize("encoding, compress", [
    ("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli.compress)])
async def test_whole_body_content_encoding(client, encoding, compress):
    replay_id = rid()
    response = await post(client, compress(segment_envelope(replay_id, 0)), headers={"Content-Encoding": encoding})
    assert response.status == 200, await response.text()
    assert (await get(client, f"/api/0/projects/1/replays/{replay_id}/"))["segment_count"] == 1


@pytest.mark.parametrize("body, words", [
    (b"", "empty envelope"),
    (b"not json\n", "envelope header is not valid JSON"),
    (b'["a list"]\n', "envelope header must be a JSON object"),
    (b'{}\n{"length": 3}\nabc', "item 1 header has no type"),
    (b'{}\n{"type": "event", "length": 99}\n{}', "declares 99 bytes but only 2 follow"),
    (b'{}\n{"type": "event", "length": -1}\n{}', "invalid length"),
    (b'{}\n{"type": "event"}\n{not json}', "event item is not valid JSON"),
    (b'{}\n{"type": "event"}\n[1, 2]', "event item must be a JSON object"),
    (b'{"event_id": "0123456789abcdef0123456789abcdef"}\n{"type": "replay_recording", "length": 5}\n{"a":', "no segment header line"),  # noqa: E501
    (b'{"event_id": "0123456789abcdef0123456789abcdef"}\n{"type": "replay_recording", "length": 18}\n{"segment_id":-1}\n', "integer segment_id from 0 to 2147483647"),  # noqa: E501
    (b'{}\n{"type": "replay_recording", "length": 19}\n{"segment_id":0}\n[]', "without a replay id"),
])
async def test_malformed_envelopes_are_400_with_detail(client, body, words):
    response = await post(client, body)
    assert response.status == 400, await response.text()
    assert words in (await response.json())["detail"]


@pytest.mark.parametrize("payload, words", [
    (b"\x78\x9c garbage", "neither JSON nor valid zlib"),
    (zlib.compress(b"[1, 2, 3]"), "event 0 is not an object"),
    (zlib.compress(b'{"not": "a list"}'), "must be a JSON array"),
    (zlib.compress(b'[{"type": 2,'), "not valid JSON"),
    (zlib.compress(b'[{"type": 3}]')[:-3], "truncated"),
])
async def test_malformed_recordings_are_400(client, payload, words):
    replay_id = rid()
    body = envelope(item({"type": "replay_event"}, json.dumps(replay_event(replay_id, 0, T0)).encode()),
                    item({"type": "replay_recording"}, b'{"segment_id":0}\n' + payload), event_id=replay_id)
    response = await post(client, body)
    assert response.status == 400, await response.text()
    assert words in (await response.json())["detail"]
    # nothing of the refused envelope is kept, not even its replay_event
    assert (await client.get(f"/api/0/projects/1/replays/{replay_id}/", headers=AUTH)).status == 404


# --- limits ----------------------------------------------------------------------------------

async def test_envelope_over_the_size_limit_is_413(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, limits={"max_envelope_bytes": 2000})))
    big = segment_envelope(rid(), 0, events=page_events(T0, text="x" * 5000), compress=False)
    response = await post(client, big)
    assert response.status == 413
    assert "limits.max_envelope_bytes" in (await response.json())["detail"]
    # The same limit holds after whole-body decompression.
    response = await post(client, gzip.compress(big), headers={"Content-Encoding": "gzip"})
    assert response.status == 413
    assert (await post(client, segment_envelope(rid(), 0))).status == 200


async def test_zip_bomb_recording_is_refused_without_inflating_it(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, limits={"max_recording_bytes": 1_000_000})))
    bomb = zlib.compress(b"[" + b" " * 200_000_000 + b"]", 9)  # 200 MB of JSON in ~200 KB
    assert len(bomb) < 300_000
    replay_id = rid()
    body = envelope(item({"type": "replay_recording"}, b'{"segment_id":0}\n' + bomb), event_id=replay_id)
    response = await post(client, body)
    assert response.status == 413
    assert "limits.max_recording_bytes" in (await response.json())["detail"]
    assert (await client.get(f"/api/0/projects/1/replays/{replay_id}/", headers=AUTH)).status == 404
    # It stops at the limit instead of inflating 200 MB: what the worker allocates stays near 1 MB.
    tracemalloc.start()
    try:
        with pytest.raises(IngestRefused, match=r"limits\.max_recording_bytes"):
            decompress_recording(bomb, 1_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000


async def test_events_per_segment_limit(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, limits={"max_events_per_segment": 10})))
    events = page_events(T0) + [{"type": 3, "timestamp": T0 * 1000 + i, "data": {"source": 1, "positions": []}}
                                for i in range(20)]
    response = await post(client, segment_envelope(rid(), 0, events=events))
    assert response.status == 413
    assert "limits.max_events_per_segment (10)" in (await response.json())["detail"]


def deep_document(levels: int) -> dict:
    node: dict = {"type": 3, "id": levels + 10, "textContent": "deep text"}
    for i in range(levels):
        node = {"type": 2, "id": levels + 10 - i - 1 + 1_000_000, "tagName": "div", "attributes": {}, "childNodes": [node]}  # noqa: E501
    return {"type": 0, "id": 1, "childNodes": [node]}


async def test_deep_nesting_is_stored_and_read_back(client):
    """10,000 nested elements: no recursion error anywhere from ingest to the read API."""
    replay_id = rid()
    full = {"type": 2, "timestamp": int(T0 * 1000), "data": {"node": deep_document(10_000), "initialOffset": {}}}
    # deeper than json.dumps goes on Python 3.12+, whatever the recursion limit
    meta = {"type": 4, "timestamp": int(T0 * 1000), "data": {"href": "https://a.example/", "width": 800, "height": 600}}
    payload = jsontext.dumps([meta, full])
    response = await post(client, segment_envelope(replay_id, 0, events=payload.encode()))  # type: ignore[arg-type]
    assert response.status == 200, await response.text()
    segment = await client.get(f"/api/0/projects/1/replays/{replay_id}/segments/0/", headers=AUTH)
    assert segment.status == 200
    body = await segment.read()
    assert body.count(b'"childNodes"') == 10_001 and b"deep text" in body
    # the player's breadcrumbs decode every stored event, this one too (in a worker)
    crumbs = await client.get(f"/projects/1/replays/{replay_id}/breadcrumbs.json", headers=AUTH)
    assert crumbs.status == 200, await crumbs.text()
    assert [c["label"] for c in (await crumbs.json())["breadcrumbs"]] == ["https://a.example/"]


async def test_nesting_past_the_limit_is_413_and_the_worker_survives(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, limits={"max_nesting_depth": 1000})))
    payload = b'[{"type": 5, "timestamp": 1, "data": ' + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}]"
    response = await post(client, segment_envelope(rid(), 0, events=payload))  # type: ignore[arg-type]
    assert response.status == 413
    assert "limits.max_nesting_depth" in (await response.json())["detail"]
    assert (await post(client, segment_envelope(rid(), 0))).status == 200


async def test_rate_limit_is_429_with_retry_after(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, limits={"rate_limit_per_second": 0.05})))
    statuses = [(await post(client, error_envelope(error_event(rid())))).status for _ in range(4)]
    assert statuses[:3] == [200, 200, 200]
    response = await post(client, error_envelope(error_event(rid())))
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert "rate limit" in (await response.json())["detail"]


# --- idempotency and order -------------------------------------------------------------------

async def test_resent_and_out_of_order_segments(client):
    replay_id = rid()
    for segment_id in (2, 0, 1, 2, 0):
        response = await post(client, segment_envelope(replay_id, segment_id))
        assert response.status == 200, await response.text()
    replay = await get(client, f"/api/0/projects/1/replays/{replay_id}/")
    assert [s["segment_id"] for s in replay["segments"]] == [0, 1, 2]
    assert replay["segment_count"] == 3
    assert replay["click_count"] == 3  # one click per segment, re-sends not counted twice
    assert replay["started_at"] == T0 and replay["duration"] == pytest.approx(10.5, abs=0.01)
    assert replay["urls"] == ["https://shop.example/page2", "https://shop.example/page0", "https://shop.example/page1"]


async def test_replay_event_and_recording_in_separate_envelopes(client):
    replay_id = rid()
    only_recording = envelope(recording(0, page_events(T0)), event_id=replay_id)
    assert (await post(client, only_recording)).status == 200
    only_event = envelope(item({"type": "replay_event"}, json.dumps(replay_event(replay_id, 0, T0)).encode()),
                          event_id=replay_id)
    assert (await post(client, only_event)).status == 200
    replay = await get(client, f"/api/0/projects/1/replays/{replay_id}/")
    assert replay["segment_count"] == 1 and replay["browser"] == "Chrome 126" and replay["os"] == "Windows 10"


async def test_concurrent_segments_of_one_replay(client):
    replay_id = rid()
    responses = await asyncio.gather(*(post(client, segment_envelope(replay_id, i)) for i in range(8)))
    assert [r.status for r in responses] == [200] * 8
    replay = await get(client, f"/api/0/projects/1/replays/{replay_id}/")
    assert [s["segment_id"] for s in replay["segments"]] == list(range(8))


async def test_stored_blob_is_v3_and_smaller(client, config):
    replay_id = rid()
    events = page_events(T0, text="Some ordinary page text. " * 200)
    assert (await post(client, segment_envelope(replay_id, 0, events=events))).status == 200
    (path,) = (Path(config.storage.path) / "1" / replay_id).glob("000000-*")  # named by its digest
    blob = path.read_bytes()
    assert blob.startswith(b"rpd\x03")  # v3: the strings and ids apart from the structure
    assert list(iter_events(blob)) == events
    replay = await get(client, f"/api/0/projects/1/replays/{replay_id}/")
    assert replay["segments"][0].get("codec", "msgpack-br-v3") == "msgpack-br-v3"
    assert replay["stored_bytes"] == len(blob) < replay["raw_bytes"] / 5


@ON_BOTH_INDEXES
async def test_a_segments_replay_event_is_kept_in_the_segments_commit(client, monkeypatch):
    """The SDK sends a replay_event with every segment: it is written in the segment's own commit (one
    index transaction an envelope, not two), so no second write can fail and leave a stored segment
    without its replay's metadata or error links."""
    index = client.app[index_key]

    async def refused(event):
        raise AssertionError("a second index write for the segment's own replay_event")

    monkeypatch.setattr(index, "record_replay_event", refused)
    replay_id, event_id = rid(), rid()
    assert (await post(client, segment_envelope(replay_id, 0))).status == 200
    response = await post(client, segment_envelope(replay_id, 1, error_ids=[event_id]))
    assert response.status == 200, await response.text()
    replay = await get(client, f"/api/0/projects/1/replays/{replay_id}/")
    assert replay["segment_count"] == 2 and replay["browser"] == "Chrome 126"
    assert replay["urls"] == ["https://shop.example/page0", "https://shop.example/page1"]
    assert replay["error_ids"] == [event_id] and replay["error_count"] == 1
    # a replay_event of another replay in the envelope is still kept, apart
    other = rid()
    body = envelope(item({"type": "replay_event"}, json.dumps(replay_event(other, 0, T0)).encode()),
                    recording(2, page_events(T0 + 10, full=False)), event_id=replay_id)
    monkeypatch.undo()
    assert (await post(client, body)).status == 200
    assert (await get(client, f"/api/0/projects/1/replays/{replay_id}/"))["segment_count"] == 3
    kept = await index.get_replay(1, other)
    assert kept is not None and kept.urls == ["https://shop.example/page0"] and kept.segment_count == 0


# --- errors and their links ------------------------------------------------------------------

async def test_error_first_then_replay_links_both_ways(client):
    replay_id, event_id = rid(), rid()
    assert (await post(client, error_envelope(error_event(event_id, replay_id)))).status == 200
    error = await get(client, f"/api/0/projects/1/errors/{event_id}/")
    assert error["replay_id"] == replay_id and error["replay_available"] is False
    assert (await post(client, segment_envelope(replay_id, 0))).status == 200
    error = await get(client, f"/api/0/projects/1/errors/{event_id}/")
    assert error["replay_available"] is True and error["replay_offset"] == pytest.approx(3.0)
    replay = await get(client, f"/api/0/projects/1/replays/{replay_id}/")
    assert replay["error_ids"] == [event_id] and replay["error_count"] == 1
    assert error["browser"] == "Safari 17" and error["os"] == "Mac OS X 10.15"
    assert error["type"] == "TypeError" and error["data"]["exception"]["frames"][-1]["function"] == "checkout"


async def test_replay_first_then_error_ids_link(client):
    replay_id, event_id = rid(), rid()
    assert (await post(client, segment_envelope(replay_id, 0))).status == 200
    assert (await post(client, segment_envelope(replay_id, 1, error_ids=[event_id]))).status == 200
    event = error_event(event_id)  # no replay context: linked by the replay's error_ids
    assert (await post(client, error_envelope(event))).status == 200
    error = await get(client, f"/api/0/projects/1/errors/{event_id}/")
    assert error["replay_id"] == replay_id
    assert (await get(client, "/api/0/projects/1/replays/?has_errors=1"))[0]["replay_id"] == replay_id


@pytest.mark.parametrize("where", ["tags", "trace"])
async def test_replay_id_from_tags_or_envelope_trace(client, where):
    replay_id, event_id = rid(), rid()
    event = error_event(event_id)
    headers = {}
    if where == "tags":
        event["tags"] = {"replayId": replay_id}
    else:
        headers["trace"] = {"trace_id": rid(), "replay_id": replay_id}
    assert (await post(client, error_envelope(event, **headers))).status == 200
    assert (await get(client, f"/api/0/projects/1/errors/{event_id}/"))["replay_id"] == replay_id


async def test_errors_grouped_into_issues(client):
    same_stack = [error_event(rid(), t=T0 + i) for i in range(3)]
    other_stack = error_event(rid())
    other_stack["exception"]["values"][0]["stacktrace"]["frames"][-1]["function"] = "pay"
    own = [error_event(rid(), fingerprint=["payment-gateway"]) for _ in range(2)]
    messages = [{"event_id": rid(), "timestamp": T0, "message": f"Order {n} failed for id 5f3a9c2e8b1d4e6f"}
                for n in (17, 23)]
    for event in [*same_stack, other_stack, *own, *messages]:
        assert (await post(client, error_envelope(event))).status == 200
    response = await client.get("/api/0/projects/1/issues/", headers=AUTH)
    issues = (await response.json())["data"]
    assert sorted(i["count"] for i in issues) == [1, 2, 2, 3]
    by_count = {i["count"]: i for i in issues}
    assert by_count[3]["title"] == "TypeError: x is undefined"
    assert by_count[3]["first_seen"] == T0 and by_count[3]["last_seen"] == T0 + 2
    assert any(i["title"].startswith("Order") for i in issues if i["count"] == 2)
    # the same event id sent twice counts once
    assert (await post(client, error_envelope(same_stack[0]))).status == 200
    response = await client.get("/api/0/projects/1/issues/", headers=AUTH)
    assert sorted(i["count"] for i in (await response.json())["data"]) == [1, 2, 2, 3]


# --- the client, from its user agent ------------------------------------------------------------

@pytest.mark.parametrize("ua, expected", [
    ("Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 "
     "Safari/537.36 Edg/109.0.1518.78", ("Edge 109", "Windows 8.1", "desktop")),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1", ("Chrome Mobile iOS 126", "iOS 17.5", "mobile")),
    ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Mobile/15E148 Safari/604.1", ("Mobile Safari 17", "iOS 17.5", "tablet")),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 "
     "Mobile Safari/537.36", ("Chrome Mobile 126", "Android 14", "mobile")),
    # An Android tablet's browser leaves out "Mobile".
    ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
     "Safari/537.36", ("Chrome 126", "Android 13", "tablet")),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", ("Googlebot 2", "", "bot")),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", ("Firefox 127", "Linux", "desktop")),
    ("x" * 100_000, ("", "", "desktop")),
    ("", ("", "", "")),
])
def test_user_agent_labels(ua, expected):
    assert parse_user_agent(ua) == expected


# --- nothing raw in the logs ------------------------------------------------------------------

async def test_request_logs_do_not_contain_query_strings(client, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        await post(client, segment_envelope(rid(), 0))
    ours = "\n".join(r.getMessage() + str(getattr(r, "fields", "")) for r in caplog.records
                     if r.name.startswith("replayd"))
    assert "/api/1/envelope/" in ours
    assert PUBLIC_KEY not in ours and "sentry_key" not in ours


async def test_a_wrong_key_is_refused_before_the_body_is_read(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, limits={"max_envelope_bytes": 1000})))
    oversized = segment_envelope(rid(), 0, events=page_events(T0, text="x" * 5000), compress=False)
    response = await post(client, oversized, key="wrong")
    assert response.status == 403  # not 413: the key is checked first


def test_a_scrubber_failure_refuses_the_item_and_stores_nothing(monkeypatch):
    from replayd.server.ingest import jobs, worker

    class Broken:
        def scrub_recording(self, events, state):
            raise TypeError("unexpected shape")

    monkeypatch.setattr(worker._Worker, "scrubber", Broken())
    job = jobs.SegmentJob(payload=json.dumps(page_events(T0)).encode(), quality=5,
                            max_recording_bytes=1 << 20, max_events=1000)
    with pytest.raises(IngestRefused) as refused:
        jobs.process_segment(job)
    assert refused.value.status == 400 and "could not be scrubbed (TypeError)" in refused.value.detail


async def test_a_segment_a_reader_could_not_decode_is_refused_at_ingest(aiohttp_client, tmp_path):
    """Reads refuse a blob that decompresses past limits.max_decoded_bytes: ingest never stores one."""
    config = make_config(tmp_path, limits={"max_decoded_bytes": 4000},
                         compaction={"chunk_bytes": 2000, "max_chunk_bytes": 4000})
    client = await aiohttp_client(create_app(config))
    response = await post(client, segment_envelope(rid(), 0, events=page_events(T0, text="x" * 5000)))
    assert response.status == 413 and "limits.max_decoded_bytes (4000)" in (await response.json())["detail"]
    assert (await post(client, segment_envelope(rid(), 0))).status == 200


async def test_items_per_envelope_limit(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(make_config(tmp_path, limits={"max_items_per_envelope": 3})))
    many = envelope(*[item({"type": "client_report"}, b"{}") for _ in range(4)], event_id=rid())
    response = await post(client, many)
    assert response.status == 413
    assert "limits.max_items_per_envelope (3)" in (await response.json())["detail"]
    assert (await post(client, envelope(*[item({"type": "client_report"}, b"{}") for _ in range(3)]))).status == 200


async def test_integers_past_64_bits_are_kept(client):
    replay_id = rid()
    events = [*page_events(T0), {"type": 5, "timestamp": int(T0 * 1000) + 9, "data": {"tag": "n", "payload": 2 ** 70}}]
    assert (await post(client, segment_envelope(replay_id, 0, events=events))).status == 200
    stored = await (await client.get(f"/api/0/projects/1/replays/{replay_id}/segments/0/", headers=AUTH)).json()
    assert stored[-1]["data"]["payload"] == 2**70


async def test_replay_id_from_the_replay_event_when_the_header_has_none(client):
    replay_id = rid()
    body = envelope(item({"type": "replay_event"}, json.dumps(replay_event(replay_id, 0, T0)).encode()),
                    recording(0, page_events(T0)))  # no event_id, no trace in the envelope header
    assert (await post(client, body)).status == 200
    replay = await get(client, f"/api/0/projects/1/replays/{replay_id}/")
    assert replay["segment_count"] == 1 and replay["browser"] == "Chrome 126"
