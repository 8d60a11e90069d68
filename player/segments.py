"""Segments for the player: many in one response, spliced from the stored bytes without re-encoding.

``GET /projects/{pid}/replays/{rid}/segments.pack?from=A&to=B`` answers
``msgpack({"v": 1, "segments": [{"id": n, "events": [...]}, ...]})`` for the stored segments with
ids A..B, compressed with brotli (quality 1, ``Content-Encoding: br``) or gzip as the browser
accepts. Each stored blob is decompressed and its events array copied byte for byte (events kept
as msgpack extension type 1 stay so; static/player/codec.js decodes them), so a seek that needs
sixty segments costs one request instead of sixty.
"""

from __future__ import annotations

import asyncio
import zlib

import brotli
import msgpack
from aiohttp import web

from replayd.server.api import read_segment_blob
from replayd.server.codec import VERSION, CodecError
from replayd.server.keys import index_key

CONTENT_TYPE = "application/vnd.replayd.segments+msgpack"
MAX_SEGMENTS = 240
BROTLI_QUALITY = 1
FETCH_CONCURRENCY = 16


async def read_blobs(app: web.Application, pid: int, replay_id: str, segment_ids: list[int],
                     concurrency: int = FETCH_CONCURRENCY) -> list[tuple[int, bytes]]:
    """(segment id, stored bytes) of the segments that exist, in id order."""
    index = app[index_key]
    limit = asyncio.Semaphore(concurrency)

    async def one(segment_id: int) -> tuple[int, bytes | None]:
        async with limit:
            row = await index.get_segment(pid, replay_id, segment_id)
            return segment_id, (await read_segment_blob(app, row) if row else None)

    found = await asyncio.gather(*(one(s) for s in segment_ids))
    return [(sid, blob) for sid, blob in found if blob is not None]


def events_bytes(blob: bytes) -> tuple[int, bytes]:
    """The number of events in a stored segment and its events array's items, as packed bytes."""
    raw = brotli.decompress(blob)
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(raw)
    version = None
    found: tuple[int, bytes] | None = None
    for _ in range(unpacker.read_map_header()):
        key = unpacker.unpack()
        if key == "events":
            count = unpacker.read_array_header()
            start = unpacker.tell()
            for _ in range(count):
                unpacker.skip()
            found = (count, raw[start:unpacker.tell()])
        elif key == "v":
            version = unpacker.unpack()
        else:
            unpacker.skip()
    if version != VERSION or found is None:
        raise CodecError(f"stored segment has an unknown codec version {version}")
    return found


def pack_batch(blobs: list[tuple[int, bytes]]) -> bytes:
    packer = msgpack.Packer(use_bin_type=True)
    parts = [packer.pack_map_header(2), packer.pack("v"), packer.pack(VERSION), packer.pack("segments"),
             packer.pack_array_header(len(blobs))]
    for segment_id, blob in blobs:
        count, items = events_bytes(blob)
        parts += [packer.pack_map_header(2), packer.pack("id"), packer.pack(segment_id), packer.pack("events"),
                  packer.pack_array_header(count), items]
    return b"".join(parts)


def encode(body: bytes, accept_encoding: str) -> tuple[bytes, str | None]:
    accepted = {part.split(";")[0].strip().lower() for part in accept_encoding.split(",")}
    if "br" in accepted:
        return brotli.compress(body, quality=BROTLI_QUALITY), "br"
    if "gzip" in accepted:
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
        return compressor.compress(body) + compressor.flush(), "gzip"
    return body, None


def _range(request: web.Request) -> list[int]:
    try:
        first = int(request.query["from"])
        last = int(request.query.get("to", first))
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(text="from and to must be segment ids") from None
    if first < 0 or last < first or last - first >= MAX_SEGMENTS:
        raise web.HTTPBadRequest(text=f"from..to must be a range of at most {MAX_SEGMENTS} segment ids")
    return list(range(first, last + 1))


async def segments_pack(request: web.Request) -> web.Response:
    from replayd.server.auth import require_auth

    from .views import find_replay

    await require_auth(request)
    segment_ids = _range(request)
    pid, replay = await find_replay(request, request.match_info["replay_id"])
    blobs = await read_blobs(request.app, pid, replay.replay_id, segment_ids)

    def build() -> tuple[bytes, str | None]:
        return encode(pack_batch(blobs), request.headers.get("Accept-Encoding", ""))

    body, encoding = await asyncio.to_thread(build)
    # short: a range may end in segments of a replay still being recorded
    headers = {"Cache-Control": "private, max-age=60", "Vary": "Accept-Encoding"}
    if encoding:
        headers["Content-Encoding"] = encoding
    return web.Response(body=body, content_type=CONTENT_TYPE, headers=headers)


def setup_segments(app: web.Application) -> None:
    from .views import json_errors

    app.router.add_get("/projects/{pid}/replays/{replay_id}/segments.pack", json_errors(segments_pack))
