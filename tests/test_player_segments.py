"""player/segments.py: many stored segments in one response, spliced without re-encoding."""

from __future__ import annotations

import copy
import zlib

import brotli
import msgpack
import pytest

from replayd.player.segments import MAX_SEGMENTS, batch_header, segment_parts, stream_encoder
from replayd.server.codec import CodecError, encode_segment, events_span, unpack_blob
from tests.envelopes import mouse_move, new_id, page_events, replay_envelope
from tests.harness import PUBLIC_KEY

T = 1_795_650_000_000


def deep_event(levels: int) -> dict:
    node: dict = {"type": 3, "textContent": "bottom", "id": 10_000}
    for i in range(levels):
        node = {"type": 2, "tagName": "div", "attributes": {}, "childNodes": [node], "id": 10_000 + i + 1}
    return {"type": 3, "timestamp": T + 5, "data": {"source": 0, "texts": [], "attributes": [], "removes": [],
                                                     "adds": [{"parentId": 9, "nextId": None, "node": node}]}}


def unpack(body: bytes) -> dict:
    def ext(code, data):
        assert code == 1
        return {"json_text": data.decode()}
    return msgpack.unpackb(body, raw=False, ext_hook=ext, strict_map_key=False)


def test_a_batch_keeps_events_and_deep_events_as_stored():
    plain = [*page_events(T, "https://a.test/", "A"), mouse_move(T + 1, 1, 2)]
    deep = [mouse_move(T + 2, 3, 4), deep_event(1000)]  # too deep for msgpack: stored as v1, extension type 1
    parts = [batch_header(3), *segment_parts(3, unpack_blob(encode_segment(copy.deepcopy(plain), 5))),
             *segment_parts(4, unpack_blob(encode_segment(deep, 5))), *segment_parts(5, None)]  # a blob gone missing
    doc = unpack(b"".join(parts))
    assert doc["v"] == 1
    assert [s["id"] for s in doc["segments"]] == [3, 4, 5]
    assert doc["segments"][0]["events"] == plain
    assert doc["segments"][1]["events"][0] == deep[0]
    assert doc["segments"][1]["events"][1]["json_text"].startswith('{"type":3')
    assert doc["segments"][2]["events"] == []


def test_events_span_refuses_unknown_versions():
    with pytest.raises(CodecError):
        events_span(msgpack.packb({"v": 2, "events": []}))
    packed = msgpack.packb({"events": [1, 2], "v": 1})
    count, start, end = events_span(packed)
    assert count == 2 and packed[start:end] == msgpack.packb(1) + msgpack.packb(2)


def test_stream_encoder_follows_accept_encoding():
    pieces = [b"x" * 1000, memoryview(b"y" * 10)]
    for accept, encoding, decode in [("gzip, deflate, br", "br", brotli.decompress),
                                     ("gzip", "gzip", lambda body: zlib.decompress(body, 31)),
                                     ("", None, lambda body: body)]:
        compress, finish, chosen = stream_encoder(accept)
        assert chosen == encoding
        assert decode(b"".join(map(bytes, map(compress, pieces))) + finish()) == b"x" * 1000 + b"y" * 10


async def expect_json_error(request, status: int, words: str) -> None:
    """Errors of the player's data calls are JSON ``{"detail": ...}``, as the API's are."""
    response = await request
    assert response.status == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert words in (await response.json())["detail"]


async def test_segments_pack_endpoint(client, auth_headers):
    rid = new_id()
    for i in range(3):
        events = page_events(T + i * 5000, "https://a.test/", f"Page {i}") if i != 1 else [mouse_move(T + 5000, 1, 1)]
        response = await client.post(f"/api/1/envelope/?sentry_key={PUBLIC_KEY}", data=replay_envelope(rid, i, events))
        assert response.status == 200
    url = f"/projects/1/replays/{rid}/segments.pack"
    await expect_json_error(client.get(url + "?from=0&to=2"), 401, "authentication required")
    response = await client.get(url + "?from=0&to=9", headers={**auth_headers, "Accept-Encoding": "br"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/vnd.replayd.segments+msgpack"
    doc = unpack(await response.read())  # the client undoes Content-Encoding: br
    assert [s["id"] for s in doc["segments"]] == [0, 1, 2]
    assert doc["segments"][1]["events"] == [mouse_move(T + 5000, 1, 1)]
    for bad in ("?from=2&to=1", "?from=x", "", f"?from=0&to={MAX_SEGMENTS}"):
        await expect_json_error(client.get(url + bad, headers=auth_headers), 400, "from")
    await expect_json_error(client.get(f"/projects/1/replays/{new_id()}/segments.pack?from=0", headers=auth_headers),
                            404, "no such replay")
    await expect_json_error(client.get(f"/projects/9/replays/{rid}/segments.pack?from=0", headers=auth_headers),
                            404, "no project 9")


async def test_timeline_json_plans_the_first_load(client, auth_headers):
    rid = new_id()
    for i in range(4):
        events = page_events(T + i * 5000, "https://a.test/", f"P{i}") if i in (0, 2) else [mouse_move(T + i * 5000, 1, 1)]  # noqa: E501
        events.append(mouse_move(T + i * 5000 + 4000, 2, 2))
        response = await client.post(f"/api/1/envelope/?sentry_key={PUBLIC_KEY}", data=replay_envelope(rid, i, events))
        assert response.status == 200
    url = f"/projects/1/replays/{rid}/timeline.json"
    await expect_json_error(client.get(url), 401, "authentication required")
    await expect_json_error(client.get(f"/projects/1/replays/{new_id()}/timeline.json", headers=auth_headers),
                            404, "no such replay")
    await expect_json_error(client.get(f"/projects/1/replays/{new_id()}/breadcrumbs.json"), 401,
                            "authentication required")
    await expect_json_error(client.get(f"/projects/1/replays/{new_id()}/breadcrumbs.json", headers=auth_headers),
                            404, "no such replay")
    data = await (await client.get(url + "?t=17", headers=auth_headers)).json()
    assert [s["full"] for s in data["segments"]] == [True, False, True, False]
    assert data["first_load"] == [2, 3] and data["start"] == 17000
    assert data["preload"] == [f"/projects/1/replays/{rid}/segments.pack?from=2&to=3"]
    assert data["duration"] == 19000
