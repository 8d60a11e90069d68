"""No input crashes ingest: mangled envelopes, wrong types in every field, odd ids and times, header
lines around their limit, random bytes — every answer is a 2xx or a 4xx with a JSON detail, never a
500, and the server keeps storing segments in the blob store and serving its pages."""

from __future__ import annotations

import json
import random
import zlib

from replayd.server.keys import config_key, index_key
from tests.harness import SDK_TRAFFIC
from tests.test_ingest import (
    AUTH,
    T0,
    envelope,
    error_event,
    item,
    page_events,
    post,
    replay_event,
    rid,
    segment_envelope,
)

ODD_VALUES = [None, True, 0, -1, 1e308, "", "x" * 5000, "\u0000\ud7ff", [], [1, [2, [3]]], {}, {"a": {"b": None}},
              "2026-13-45T99:99:99Z", float("1e-300"), 2**70]


# Ids and times as JSON text, so that NaN, Infinity and 1e400 (which json.dumps cannot write) are sent too.
ODD_IDS = [json.dumps(v) for v in [
    "----------------", "0123456789abcdef\n", "0123456789abcdef0123456789abcdef\n", "0123456789abcdef",
    "0123456789abcdef0123456789abcdef0", "0123456789abcdeg0123456789abcdef", "\u0660" + "0" * 31,
    "ａｂｃｄｅｆ０１２３４５６７８９ａｂｃｄｅｆ０１２３４５６７８９ａｂ", "", "-" * 5000, 0, None, [],
]]
ODD_TIMES = ["Infinity", "-Infinity", "NaN", "1e300", "1e400", "-1", "0", "-1e300", '"not a time"',
             '"9999-12-31T23:59:59Z"', '"0001-01-01T00:00:00"', "4102444800", "true", "2e9", "1790000000000"]


def odd() -> object:
    return random.choice(ODD_VALUES)


def mangle_json(value: object, rate: float) -> object:
    """Replace values anywhere in a JSON document with values of the wrong type, at ``rate``."""
    if random.random() < rate:
        return odd()
    if isinstance(value, dict):
        return {k: mangle_json(v, rate) for k, v in value.items()}
    if isinstance(value, list):
        return [mangle_json(v, rate) for v in value]
    return value


def mangle_bytes(body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(random.randint(1, 8)):
        choice = random.random()
        if not data:
            break
        at = random.randrange(len(data))
        if choice < 0.4:
            data[at] = random.randrange(256)
        elif choice < 0.6:
            del data[at:at + random.randint(1, 50)]
        elif choice < 0.8:
            data[at:at] = random.choice([b"\n", b"{", b"}", b'"length":', b"\x78\x9c", b"\x00", b"\xff\xfe"])
        else:
            data = data[:at]
    return bytes(data)


def well_formed_but_odd(replay_id: str) -> bytes:
    """Envelopes that parse but carry wrong types in every field the server reads."""
    events = mangle_json(page_events(T0), 0.15)
    event = mangle_json(replay_event(replay_id, random.randint(0, 3), T0), 0.3)
    error = mangle_json(error_event(rid(), replay_id), 0.3)
    headers = mangle_json({"event_id": replay_id, "trace": {"replay_id": replay_id}, "sent_at": "x"}, 0.2)
    return envelope(
        item({"type": "replay_event"}, json.dumps(event).encode()),
        item({"type": "replay_recording"}, b'{"segment_id":%d}\n' % random.randint(0, 5)
             + zlib.compress(json.dumps(events).encode())),
        item({"type": "event"}, json.dumps(error).encode()),
        **(headers if isinstance(headers, dict) else {}),
    )


def with_raw(document: dict, raw: dict[str, str]) -> bytes:
    """JSON of ``document`` with the values of ``raw`` written as the given JSON text."""
    text = json.dumps({**document, **{k: f"@@{k}@@" for k in raw}})
    for k, value in raw.items():
        text = text.replace(f'"@@{k}@@"', value)
    return text.encode()


def odd_ids_and_times(replay_id: str) -> bytes:
    """A well-formed replay and error with some of their ids and times replaced by odd JSON values."""
    def some(fields: list[str], values: list[str]) -> dict[str, str]:
        return {f: random.choice(values) for f in fields if random.random() < 0.4}

    header = some(["event_id", "trace"], ODD_IDS)
    if "trace" in header:
        header["trace"] = '{"replay_id": %s}' % header["trace"]
    events = page_events(T0)
    events_raw = {str(i): random.choice(ODD_TIMES) for i in range(len(events)) if random.random() < 0.3}
    recording_text = json.dumps([{**e, "timestamp": f"@@{i}@@"} if str(i) in events_raw else e
                                 for i, e in enumerate(events)])
    for i, value in events_raw.items():
        recording_text = recording_text.replace(f'"@@{i}@@"', value)
    error_ids = some(["error_ids"], ODD_IDS)
    if "error_ids" in error_ids:
        error_ids["error_ids"] = f'[{error_ids["error_ids"]}, "{rid()}"]'
    event = with_raw(replay_event(replay_id, 0, T0),
                     {**some(["replay_id"], ODD_IDS), **some(["timestamp", "replay_start_timestamp"], ODD_TIMES),
                      **error_ids})
    error = with_raw(error_event(rid(), replay_id),
                     {**some(["event_id"], ODD_IDS), **some(["timestamp"], ODD_TIMES)})
    return b"\n".join([
        with_raw({"event_id": replay_id, "trace": {"replay_id": replay_id}}, header),
        item({"type": "replay_event"}, event),
        item({"type": "replay_recording"}, b'{"segment_id":0}\n' + zlib.compress(recording_text.encode())),
        item({"type": "event"}, error),
    ])


def header_lines_near(limit: int, replay_id: str) -> bytes:
    """One header line (the envelope's, an item's or a recording's segment line) a few bytes under or
    over ``limit``."""
    where = random.choice([0, 1, 2])  # which line: the envelope header, the item header, the segment line
    events = zlib.compress(json.dumps(page_events(T0)).encode())

    def build(pad: str) -> bytes:
        padded = [{"pad": pad} if where == n else {} for n in range(3)]
        segment_line = json.dumps({"segment_id": 0, **padded[2]}).encode()
        return envelope(item({"type": "replay_recording", **padded[1]}, segment_line + b"\n" + events),
                        event_id=replay_id, **padded[0])

    overhead = len(build("").split(b"\n")[where])
    return build("x" * (limit - overhead + random.choice([-1, 1]) * random.randint(0, 30)))


async def test_no_input_crashes_ingest(client, caplog):
    random.seed(20261126)
    originals = [(SDK_TRAFFIC / f"{n}.envelope").read_bytes() for n in ("001", "002", "003")]
    statuses: dict[int, int] = {}
    header_limit = client.server.app[config_key].limits.max_header_line_bytes
    for i in range(400):
        if i % 5 == 0:
            body = mangle_bytes(random.choice(originals))
        elif i % 5 == 1:
            body = well_formed_but_odd(rid())
        elif i % 5 == 2:
            body = odd_ids_and_times(rid())
        elif i % 5 == 3:
            body = header_lines_near(header_limit, rid())
        else:
            body = bytes(random.randrange(256) for _ in range(random.randint(0, 400)))
        response = await post(client, body)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        assert response.status in (200, 400, 413), (response.status, await response.text())
        if response.status != 200:
            detail = (await response.json())["detail"]
            assert detail and "could not be scrubbed" not in detail, detail  # odd types are data, not a reason
    assert all(statuses.get(status, 0) > 20 for status in (200, 400, 413)), statuses
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
    # and it still ingests well-formed data, into the blob store (nothing made it look down), and serves pages
    assert (await post(client, originals[0])).status == 200
    replay_id = rid()
    assert (await post(client, segment_envelope(replay_id, 0))).status == 200
    assert (await client.server.app[index_key].get_segment(1, replay_id, 0)).location == "store"
    for path in ("/", "/issues", "/api/0/projects/1/replays/", "/api/0/projects/1/issues/"):
        response = await client.get(path, headers=AUTH)
        assert response.status == 200, (path, await response.text())
