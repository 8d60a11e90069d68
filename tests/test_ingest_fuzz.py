"""No input crashes ingest: mangled envelopes, wrong types in every field, random bytes — every answer
is a 2xx or a 4xx with a JSON detail, never a 500, and the server keeps serving."""

from __future__ import annotations

import json
import random
import zlib

from tests.conftest import SDK_TRAFFIC
from tests.test_ingest import T0, error_event, item, envelope, page_events, post, replay_event, rid

ODD_VALUES = [None, True, 0, -1, 1e308, "", "x" * 5000, "\u0000\ud7ff", [], [1, [2, [3]]], {}, {"a": {"b": None}},
              "2026-13-45T99:99:99Z", float("1e-300"), 2**70]


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


async def test_no_input_crashes_ingest(client, caplog):
    random.seed(20261126)
    originals = [(SDK_TRAFFIC / f"{n}.envelope").read_bytes() for n in ("001", "002", "003")]
    statuses: dict[int, int] = {}
    for i in range(240):
        if i % 3 == 0:
            body = mangle_bytes(random.choice(originals))
        elif i % 3 == 1:
            body = well_formed_but_odd(rid())
        else:
            body = bytes(random.randrange(256) for _ in range(random.randint(0, 400)))
        response = await post(client, body)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        assert response.status in (200, 400, 413), (response.status, await response.text())
        if response.status != 200:
            detail = (await response.json())["detail"]
            assert detail and "could not be scrubbed" not in detail, detail  # odd types are data, not a reason
    assert statuses.get(200, 0) > 20 and statuses.get(400, 0) > 20, statuses
    assert not [r for r in caplog.records if r.levelname == "ERROR"], [r.getMessage() for r in caplog.records]
    # and it still ingests well-formed data
    assert (await post(client, originals[0])).status == 200
