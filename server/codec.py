"""How a segment is stored: brotli(msgpack({"v": 1, "events": [...]})). Encode and decode live here.

msgpack cannot nest deeper than 511 levels (rrweb documents can be thousands of levels deep) nor
hold integers past 64 bits (JSON can); such an event is stored as msgpack extension type 1 holding
its JSON text. The player's decoder
(static/player) registers the same extension type.
"""

from __future__ import annotations

import json
from typing import Any

import brotli
import msgpack

CODEC = "msgpack-br-v1"
VERSION = 1
EXT_JSON = 1
CONTENT_TYPE = "application/vnd.replayd.segment+msgpack"


class CodecError(ValueError):
    pass


def _pack_events(events: list[Any]) -> bytes:
    try:
        return msgpack.packb({"v": VERSION, "events": events}, use_bin_type=True)
    except (ValueError, OverflowError):
        pass  # too deep or too big for msgpack: pack event by event, those ones as JSON text
    packer = msgpack.Packer(use_bin_type=True)
    parts = [packer.pack_map_header(2), packer.pack("v"), packer.pack(VERSION), packer.pack("events"),
             packer.pack_array_header(len(events))]
    for event in events:
        try:
            parts.append(packer.pack(event))
        except (ValueError, OverflowError):
            text = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
            parts.append(packer.pack(msgpack.ExtType(EXT_JSON, text)))
    return b"".join(parts)


def encode_segment(events: list[Any], quality: int) -> bytes:
    return brotli.compress(_pack_events(events), quality=quality, mode=brotli.MODE_GENERIC)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_JSON:
        return json.loads(data)
    raise CodecError(f"unknown extension type {code} in a stored segment")


def unpack_segment(packed: bytes) -> list[Any]:
    document = msgpack.unpackb(packed, raw=False, ext_hook=_ext_hook, strict_map_key=False)
    if not isinstance(document, dict) or document.get("v") != VERSION:
        version = document.get("v") if isinstance(document, dict) else "?"
        raise CodecError(f"stored segment has an unknown codec version {version}")
    return document["events"]


def decode_segment(blob: bytes) -> list[Any]:
    return unpack_segment(brotli.decompress(blob))


def segment_json(blob: bytes) -> bytes:
    """The stored segment as a JSON array, without re-parsing events kept as JSON text."""
    document = msgpack.unpackb(brotli.decompress(blob), raw=False, strict_map_key=False)
    if not isinstance(document, dict) or document.get("v") != VERSION:
        raise CodecError("stored segment has an unknown codec version")
    parts = []
    for event in document["events"]:
        if isinstance(event, msgpack.ExtType):
            if event.code != EXT_JSON:
                raise CodecError(f"unknown extension type {event.code} in a stored segment")
            parts.append(event.data)
        else:
            parts.append(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
    return b"[" + b",".join(parts) + b"]"
