"""Hostile envelopes (issue 10, items 1–3): malformed ids, absurd times, oversized header lines.

Each one is refused with a 4xx naming the field or limit, or kept with the offending value dropped,
and the service goes on storing segments in the blob store and serving its pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sqlite3
import time
import zlib

import pytest

from replayd.server.app import create_app
from replayd.server.config import StorageConfig
from replayd.server.index import SegmentRecord, SQLiteIndex
from replayd.server.ingest.items import hex_id
from replayd.server.keys import index_key
from replayd.server.metrics import Metrics
from replayd.server.spool import Spool
from replayd.server.storage import segment_key
from replayd.server.storage.backends import open_blob_store
from replayd.server.uploader import Uploader
from tests.harness import PUBLIC_KEY, make_config
from tests.test_ingest import (
    AUTH,
    T0,
    envelope,
    error_envelope,
    error_event,
    get,
    item,
    page_events,
    post,
    recording,
    replay_event,
    rid,
    segment_envelope,
)

BAD_IDS = [
    "----------------",  # strips to nothing: once a blob key of "1//000000"
    "0123456789abcdef\n",  # a newline in a file name
    "0123456789abcdef0123456789abcdef\n",  # `$` matches before a trailing newline
    "0123456789abcdef",  # too short
    "0123456789abcdef0123456789abcdef0",  # too long
    "0123456789abcdeg0123456789abcdef",  # not hex
    "٠١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩٠١",  # 32 Arabic-Indic digits
    "",
    12345,
]


def strict_json(text: str):
    """JSON as a browser reads it: Infinity and NaN are not JSON."""
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


async def stored_location(client, replay_id: str, segment_id: int = 0) -> str | None:
    segment = await client.server.app[index_key].get_segment(1, replay_id, segment_id)
    return segment and segment.location


async def assert_refused(response, status: int, words: str) -> None:
    assert response.status == status, await response.text()
    assert words in (await response.json())["detail"]


# --- item 1: ids ------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", BAD_IDS)
async def test_a_malformed_header_event_id_is_400_and_later_segments_reach_the_store(client, bad):
    body = envelope(recording(0, page_events(T0)), event_id=bad)
    await assert_refused(await post(client, body), 400, "envelope header event_id must be 32 hex digits")
    replay_id = rid()
    assert (await post(client, segment_envelope(replay_id, 0))).status == 200
    assert await stored_location(client, replay_id) == "store"  # not the spool: the store is not "down"


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_a_malformed_trace_replay_id_is_400(client, bad):
    body = envelope(recording(0, page_events(T0)), event_id=rid(), trace={"replay_id": bad})
    await assert_refused(await post(client, body), 400, "envelope header trace.replay_id must be 32 hex digits")


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_a_malformed_replay_event_replay_id_is_400_and_nothing_is_stored(client, bad):
    replay_id = rid()
    event = json.dumps(replay_event(bad, 0, T0)).encode()
    alone = envelope(item({"type": "replay_event"}, event))
    await assert_refused(await post(client, alone), 400, "replay_event replay_id must be 32 hex digits")
    # riding along with a recording whose replay the header names: refused before the segment is kept
    with_recording = envelope(item({"type": "replay_event"}, event), recording(0, page_events(T0)), event_id=replay_id)
    await assert_refused(await post(client, with_recording), 400, "replay_event replay_id must be 32 hex digits")
    assert await stored_location(client, replay_id) is None
    assert (await client.get(f"/api/0/projects/1/replays/{replay_id}/", headers=AUTH)).status == 404


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_a_malformed_error_event_id_is_400(client, bad):
    event = error_event(rid())
    event["event_id"] = bad
    body = envelope(item({"type": "event"}, json.dumps(event).encode()))
    await assert_refused(await post(client, body), 400, "event item event_id must be 32 hex digits")


async def test_malformed_ids_in_lists_and_links_are_skipped(client):
    replay_id, good_error = rid(), rid()
    body = segment_envelope(replay_id, 0, error_ids=["----------------", good_error, "0123456789abcdef\n", 7])
    assert (await post(client, body)).status == 200
    assert (await get(client, f"/api/0/projects/1/replays/{replay_id}/"))["error_ids"] == [good_error]
    # an error whose tag names a malformed replay is kept, unlinked
    error_id = rid()
    assert (await post(client, error_envelope(error_event(error_id, tags={"replayId": "-" * 32})))).status == 200
    assert (await get(client, f"/api/0/projects/1/errors/{error_id}/"))["replay_id"] is None


def test_ids_are_32_hex_digits_after_removing_dashes():
    assert hex_id("0123456789ABCDEF0123456789abcdef") == "0123456789abcdef0123456789abcdef"
    assert hex_id("01234567-89ab-cdef-0123-456789abcdef") == "0123456789abcdef0123456789abcdef"
    assert [hex_id(bad) for bad in BAD_IDS] == [None] * len(BAD_IDS)


async def test_a_spool_entry_the_store_refuses_is_set_aside_and_the_rest_uploads(tmp_path, caplog):
    """An entry spooled by an older replayd under a malformed key must not block the spool forever."""
    index = await SQLiteIndex.open(tmp_path / "index.sqlite3")
    blobs = await open_blob_store(StorageConfig(backend="local", path=str(tmp_path / "blobs")))
    spool = Spool(tmp_path / "spool", 10_000_000)
    uploader = Uploader(spool, blobs, index, Metrics(), put_timeout=5, max_backoff=1)
    try:
        poisoned = SegmentRecord(1, "", 0, "1//000000", "msgpack-br-v1", None, None, 1, 1, 1, True, location="spool")
        good_id = rid()
        good = SegmentRecord(1, good_id, 0, segment_key(1, good_id, 0), "msgpack-br-v1", None, None, 1, 1, 1, True,
                             location="spool")
        for record in (poisoned, good):  # the poisoned one first: the oldest is uploaded first
            await spool.put(record, b"blob", b"")
            await index.record_segment(record, b"", 0)
        assert await uploader.drain_once() is True
        assert uploader.store_healthy
        assert await blobs.get(good.blob_key) == b"blob"
        assert (await index.get_segment(1, good_id, 0)).location == "store"
        assert spool.entries() == []
        assert [p.suffix for p in spool.path.iterdir() if p.name != ".lock"] == [".corrupt"]
        assert any("moved aside" in r.getMessage() for r in caplog.records)
    finally:
        await blobs.close()
        await index.close()


# --- item 2: timestamps -----------------------------------------------------------------------

ABSURD_TIMES = {
    "1e300": b"1e300", "inf": b"Infinity", "-inf": b"-Infinity", "nan": b"NaN", "1e400": b"1e400", "negative": b"-1",
    "zero": b"0", "year 9999": b'"9999-12-31T00:00:00Z"', "in 10 days": str(int(time.time()) + 10 * 86400).encode(),
}


def with_raw(document: dict, **raw: bytes) -> bytes:
    """JSON of ``document`` with some values given as raw JSON text (Infinity, NaN, 1e400...)."""
    text = json.dumps({**document, **{k: f"@@{k}@@" for k in raw}})
    for k, value in raw.items():
        text = text.replace(f'"@@{k}@@"', value.decode())
    return text.encode()


async def pages_answer(client, *paths: str) -> None:
    for path in paths:
        response = await client.get(path, headers=AUTH)
        assert response.status == 200, (path, response.status, (await response.text())[:500])
        if response.content_type == "application/json":
            strict_json(await response.text())


@pytest.mark.parametrize("absurd", ABSURD_TIMES.values(), ids=ABSURD_TIMES.keys())
async def test_absurd_replay_and_error_times_are_dropped_for_the_receive_time(client, absurd):
    replay_id, error_id = rid(), rid()
    before = time.time()
    event = with_raw(replay_event(replay_id, 0, T0), timestamp=absurd, replay_start_timestamp=absurd)
    events = [{**e, "timestamp": f"@@{i}@@"} if e["type"] == 3 else e for i, e in enumerate(page_events(T0))]
    raw_events = json.dumps(events)
    for i in range(len(events)):
        raw_events = raw_events.replace(f'"@@{i}@@"', absurd.decode())
    body = envelope(item({"type": "replay_event"}, event), recording(0, raw_events.encode()), event_id=replay_id)
    assert (await post(client, body)).status == 200, absurd
    error = with_raw(error_event(error_id, replay_id), timestamp=absurd)
    assert (await post(client, envelope(item({"type": "event"}, error), event_id=error_id))).status == 200
    after = time.time()

    replay = await get(client, f"/api/0/projects/1/replays/{replay_id}/")
    # the recording's own (good) events still give the segment its times; the absurd click is ignored
    assert replay["started_at"] == pytest.approx(T0) and replay["ended_at"] == pytest.approx(T0 + 0.001)
    stored_error = await get(client, f"/api/0/projects/1/errors/{error_id}/")
    assert before <= stored_error["timestamp"] <= after  # the receive time
    await pages_answer(client, "/", "/issues", f"/replays/{replay_id}", f"/errors/{error_id}",
                       "/api/0/projects/1/replays/", "/api/0/projects/1/issues/")


async def test_old_rows_with_infinite_or_absurd_times_do_not_take_pages_down(client, config):
    """Rows written before ingest checked times: straight into the index, as they were kept."""
    replay_id, error_id = rid(), rid()
    assert (await post(client, segment_envelope(replay_id, 0))).status == 200
    assert (await post(client, segment_envelope(replay_id, 1))).status == 200
    assert (await post(client, error_envelope(error_event(error_id, replay_id)))).status == 200
    updates = [
        ("UPDATE replays SET started_at = ?, ended_at = ?", (1e300, math.inf)),
        ("UPDATE segments SET started_at = ?, ended_at = ? WHERE segment_id = 0", (-math.inf, 1e308)),
        ("UPDATE segments SET started_at = ?, ended_at = ? WHERE segment_id = 1", (math.inf, math.inf)),
        ("UPDATE errors SET timestamp = ?", (math.inf,)),
        ("UPDATE issues SET first_seen = ?, last_seen = ?", (-math.inf, 1e300)),
    ]
    with sqlite3.connect(config.sqlite_path) as db:
        assert [db.execute(sql, args).rowcount for sql, args in updates] == [1] * len(updates)
    db.close()
    await pages_answer(
        client, "/", "/issues", f"/replays/{replay_id}", f"/errors/{error_id}",
        f"/projects/1/replays/{replay_id}/timeline.json", f"/projects/1/replays/{replay_id}/breadcrumbs.json",
        "/api/0/projects/1/replays/", f"/api/0/projects/1/replays/{replay_id}/", "/api/0/projects/1/issues/",
        f"/api/0/projects/1/errors/{error_id}/",
    )
    replay = await get(client, f"/api/0/projects/1/replays/{replay_id}/")
    assert replay["ended_at"] is None and replay["errors"][0]["timestamp"] is None


# --- item 3: header lines and the key before the body -------------------------------------------

async def raw_request(client, head: bytes, body: bytes) -> tuple[int, dict]:
    """Send request headers and part of a body over a plain socket; the answer's status and JSON.

    The body may be shorter than its Content-Length: only an answer given before the rest arrives
    passes (the wait is bounded, so a server that waits for the whole body fails the test)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(head + body)
        sending = asyncio.ensure_future(writer.drain())
        status_line = await asyncio.wait_for(reader.readline(), 60)
        headers = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        length = next(int(line.split(b":")[1]) for line in headers.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        answer = json.loads(await asyncio.wait_for(reader.readexactly(length), 60))
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        return int(status_line.split()[1]), answer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def request_head(length: int, query: str = "") -> bytes:
    return (f"POST /api/1/envelope/{query} HTTP/1.1\r\nHost: test\r\nContent-Length: {length}\r\n"
            "Content-Type: application/x-sentry-envelope\r\n\r\n").encode()


async def test_an_unauthenticated_oversized_header_line_is_refused_before_the_body_is_read(client):
    one_mb_line = b'{"event_id":"' + b"a" * (1024 * 1024) + b'"'
    status, answer = await raw_request(client, request_head(20_000_000), one_mb_line)
    assert status == 413 and "limits.max_header_line_bytes (65536 bytes)" in answer["detail"]


@pytest.mark.parametrize("header, status, words", [
    (b"{}\n", 401, "missing sentry_key"),
    (b'{"dsn":"https://wrongkey@replay.example/1"}\n', 403, "not a key of project 1"),
    (b'{"dsn":"https://[oops/1"}\n', 401, "missing sentry_key"),
])
async def test_the_envelope_key_is_checked_before_the_rest_of_the_body_is_read(client, header, status, words):
    answer_status, answer = await raw_request(client, request_head(5_000_000), header + b'{"type":"event"}\n')
    assert answer_status == status and words in answer["detail"]


@pytest.mark.parametrize("where", ["envelope header", "item 1 header", "replay_recording segment header"])
async def test_header_lines_over_the_limit_are_413(aiohttp_client, tmp_path, where):
    client = await aiohttp_client(create_app(make_config(tmp_path, limits={"max_header_line_bytes": 2048})))
    pad = "x" * 3000
    replay_id = rid()
    events = zlib.compress(json.dumps(page_events(T0)).encode())
    if where == "envelope header":
        body = envelope(recording(0, page_events(T0)), event_id=replay_id, pad=pad)
    elif where == "item 1 header":
        body = envelope(item({"type": "replay_recording", "pad": pad},
                             b'{"segment_id":0}\n' + events), event_id=replay_id)
    else:
        body = envelope(item({"type": "replay_recording"}, json.dumps({"segment_id": 0, "pad": pad}).encode()
                             + b"\n" + events), event_id=replay_id)
    await assert_refused(await post(client, body), 413,
                         f"{where} line is over limits.max_header_line_bytes (2048 bytes)")
    # just under the limit is fine, with or without the key in the query
    assert (await post(client, segment_envelope(replay_id, 0))).status == 200
    fits = envelope(recording(1, page_events(T0 + 5, full=False)), event_id=replay_id,
                    dsn=f"https://{PUBLIC_KEY}@replay.example/1", pad="x" * 1900)
    assert (await post(client, fits, key=None)).status == 200


async def test_lone_surrogates_in_an_error_are_stored_as_replacement_characters(client):
    """JSON may escape a lone surrogate (\\ud800); UTF-8, and so SQLite, cannot hold one: once a 500."""
    event = error_event(rid(), None)
    event["message"] = "bad \ud800 text"
    event["exception"]["values"][0]["value"] = "lone \udfff low"
    response = await post(client, error_envelope(event))
    assert response.status == 200, await response.text()
    stored = await (await client.get(f"/api/0/projects/1/errors/{event['event_id']}/", headers=AUTH)).json()
    assert stored["data"]["message"] == "bad \ufffd text"
    assert stored["data"]["value"] == "lone \ufffd low"


async def test_lone_surrogates_in_a_recording_are_stored_as_replacement_characters(client):
    """A browser's JSON.stringify escapes half a surrogate pair alone (a string cut inside an emoji);
    UTF-8 cannot hold one, so such a segment once failed with a 500 and the SDK lost it."""
    replay_id = rid()
    events = page_events(T0, text="cut \ud83d here, whole \U0001f600")
    events[1]["data"]["node"]["childNodes"][0]["attributes"] = {"title": "x\udfffy", "data-\ud801": "v"}
    response = await post(client, segment_envelope(replay_id, 0, events=events))
    assert response.status == 200, await response.text()
    stored = await (await client.get(f"/api/0/projects/1/replays/{replay_id}/segments/0/", headers=AUTH)).json()
    html = stored[1]["data"]["node"]["childNodes"][0]
    assert html["attributes"] == {"title": "x\ufffdy", "data-\ufffd": "v"}
    assert html["childNodes"][0]["childNodes"][0]["textContent"] == "cut \ufffd here, whole \U0001f600"


async def test_infinite_and_nan_numbers_in_a_recording_are_read_back_as_null(client):
    """``NaN``, ``Infinity`` and ``1e400`` are accepted (nothing well-formed to a browser's recorder is
    dropped), but the segment API once wrote them back as ``NaN``/``Infinity``: not JSON, which a
    client's ``JSON.parse`` refuses. An event too deep for msgpack is kept as JSON text: the same."""
    replay_id = rid()
    events = page_events(T0)
    deep: object = "@@nan@@"
    for _ in range(600):
        deep = [deep]
    events.append({"type": 5, "timestamp": T0 * 1000 + 1,
                   "data": {"tag": "numbers", "payload": {"nan": "@@nan@@", "inf": "@@inf@@", "big": "@@big@@"}}})
    events.append({"type": 5, "timestamp": T0 * 1000 + 2, "data": {"tag": "deep", "payload": deep}})
    raw = json.dumps(events).replace('"@@nan@@"', "NaN").replace('"@@inf@@"', "-Infinity").replace('"@@big@@"', "1e400")
    event_item = item({"type": "replay_event"}, json.dumps(replay_event(replay_id, 0, T0)).encode())
    response = await post(client, envelope(event_item, recording(0, raw.encode()), event_id=replay_id))
    assert response.status == 200, await response.text()
    answer = await client.get(f"/api/0/projects/1/replays/{replay_id}/segments/0/", headers=AUTH)
    assert answer.status == 200
    stored = strict_json(await answer.text())
    assert stored[-2]["data"]["payload"] == {"nan": None, "inf": None, "big": None}
    innermost = stored[-1]["data"]["payload"]
    for _ in range(600):
        innermost = innermost[0]
    assert innermost is None
