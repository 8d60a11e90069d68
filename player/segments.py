"""Segments for the player: many in one response, spliced from the stored bytes without re-encoding.

``GET /projects/{pid}/replays/{rid}/segments.pack?from=A&to=B`` answers
``msgpack({"v": 1, "segments": [{"id": n, "events": [...]}, ...]})`` for the stored segments with
ids A..B, compressed with brotli (quality 1, ``Content-Encoding: br``) or gzip as the browser
accepts. Each stored blob is decompressed and its events array copied byte for byte (events kept
as msgpack extension type 1 stay so; static/player/codec.js decodes them), so a seek that needs
sixty segments costs one request instead of sixty. Segments of a compacted replay are cut from their
chunk, read by range and decompressed once for the segments of the batch it holds
(server/segment_reader.py): the answer is the same before and after compaction.

The answer is streamed one segment at a time (a few blobs read ahead), so its size never sits in
memory: a batch costs one decompressed segment and the compressor's window. Breadcrumbs over a whole
replay (``replay_breadcrumbs``) are built the same way, a batch of segments at a time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import zlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

import brotli
import msgpack
from aiohttp import web

from replayd.server.api import NotYetUploaded, not_yet_uploaded, read_segment_blob
from replayd.server.auth import require_auth
from replayd.server.codec import VERSION, events_span
from replayd.server.index import ReplayDetail, SegmentRecord, SegmentRow
from replayd.server.keys import blobs_key, config_key, index_key, pool_key
from replayd.server.segment_reader import (
    REREADS,
    Fetched,
    SegmentMoving,
    SegmentReader,
    chunk_cache_key,
    chunk_of,
    read_chunk,
)

from . import timeline
from .page_helpers import find_replay, json_errors

CONTENT_TYPE = "application/vnd.replayd.segments+msgpack"
MAX_SEGMENTS = 240
BROTLI_QUALITY = 1
READ_AHEAD = 4  # blobs read while the previous ones are sent


# What a worker decodes for breadcrumbs: a loose segment's blob (no slices), or a compacted chunk's
# compressed bytes with the (offset, length) of each wanted segment in it; and the segments' ids
# (timeline.extract_from_sources).
Source = tuple[bytes, list[tuple[int, int]] | None, list[int | None]]


async def read_sources(app: web.Application, pid: int, replay_id: str, segment_ids: list[int],
                       concurrency: int = READ_AHEAD) -> list[Source]:
    """The stored bytes of the segments that exist, in id order: a compacted chunk read once for all of
    its segments asked for. A group not found where its rows pointed (compaction switched them and
    deleted what they named since) is read again from its rows as they are now (SegmentMoving if they
    keep changing)."""
    index = app[index_key]
    limit = asyncio.Semaphore(concurrency)

    async def row_of(segment_id: int) -> SegmentRecord | None:
        async with limit:
            return await index.get_segment(pid, replay_id, segment_id)

    async def read(row: SegmentRecord, slices: list[tuple[int, int]] | None, ids: list[int | None]) -> Source | None:
        async with limit:
            chunk = chunk_of(row)
            data = await (read_or_none(app, row) if chunk is None else read_chunk(app[blobs_key], chunk))
            return None if data is None else (data, slices, ids)

    found: dict[int, Source] = {}  # by first segment id
    rows = [row for row in await asyncio.gather(*(row_of(s) for s in segment_ids)) if row is not None]
    for _ in range(REREADS + 1):
        groups = _groups(rows)
        sources = await asyncio.gather(*(read(row, slices, ids) for row, slices, ids, _ in groups))
        missed = [row for (*_, members), source in zip(groups, sources, strict=True) if source is None
                  for row in members]
        found.update((group[0].segment_id, source) for group, source in zip(groups, sources, strict=True)
                     if source is not None)
        again = await asyncio.gather(*(row_of(row.segment_id) for row in missed))
        # a row unchanged (its blob lost) or gone (its replay deleted) is left out, as missing
        rows = [new for old, new in zip(missed, again, strict=True) if new is not None and new != old]
        if not rows:
            return [found[first] for first in sorted(found)]
    raise SegmentMoving(rows[0])


def _groups(rows: list[SegmentRecord]) -> list[tuple[SegmentRecord, list[tuple[int, int]] | None, list[int | None],
                                                     list[SegmentRecord]]]:
    """Rows in runs to read at once: (first row, slices of a compacted chunk or None, segment ids, rows)."""
    groups: list[tuple[SegmentRecord, list[tuple[int, int]] | None, list[int | None], list[SegmentRecord]]] = []
    for row in rows:
        chunk = chunk_of(row)
        last = groups[-1] if groups else None
        if chunk is not None and last is not None and last[1] is not None and chunk_of(last[0]) == chunk:
            last[1].append((row.chunk_offset, row.chunk_length))
            last[2].append(row.segment_id)
            last[3].append(row)
        else:
            groups.append((row, [(row.chunk_offset, row.chunk_length)] if chunk is not None else None,
                           [row.segment_id], [row]))
    return groups


async def read_or_none(app: web.Application, row: SegmentRecord) -> bytes | None:
    """The blob, or None also while another node still holds it in its spool (left out, as missing)."""
    try:
        return await read_segment_blob(app, row)
    except NotYetUploaded:
        return None


def segment_reader(app: web.Application) -> SegmentReader:
    """A reader that, when a segment is not where its row said (compaction switched it and deleted the
    blob since the row was read), reads the row again and the segment where it is now."""
    index = app[index_key]
    return SegmentReader(app[blobs_key], lambda row: read_or_none(app, row), cache=app[chunk_cache_key],
                         read_row=lambda row: index.get_segment(row.project_id, row.replay_id, row.segment_id),
                         limit=app[config_key].limits.max_decoded_bytes)


async def _decoded(read: asyncio.Task[Fetched | None]) -> bytes | None:
    found = await read
    return None if found is None else await found.packed()


async def packed_in_order(app: web.Application, rows: list[SegmentRecord],
                          ahead: int = READ_AHEAD) -> AsyncGenerator[tuple[int, bytes | None], None]:
    """(segment id, decompressed bytes or None if missing) for each index row, in order, reading ``ahead``
    (their stored bytes; each is decoded when its turn comes, so one decoded segment at a time)."""
    reader = segment_reader(app)
    reads: collections.deque[tuple[int, asyncio.Task[Fetched | None]]] = collections.deque()
    try:
        for row in rows:
            reads.append((row.segment_id, asyncio.create_task(reader.fetch(row))))
            if len(reads) >= ahead:
                segment_id, read = reads.popleft()
                yield segment_id, await _decoded(read)
        while reads:
            segment_id, read = reads.popleft()
            yield segment_id, await _decoded(read)
    finally:
        for _, read in reads:
            read.cancel()
        reader.close()


def batch_header(count: int) -> bytes:
    packer = msgpack.Packer(use_bin_type=True)
    return packer.pack_map_header(2) + packer.pack("v") + packer.pack(VERSION) + packer.pack("segments") \
        + packer.pack_array_header(count)


def segment_parts(segment_id: int, packed: bytes | None) -> tuple[bytes, memoryview | bytes]:
    """One segment of a batch: its header and its events' packed bytes, as stored. A blob that has gone
    missing is sent without events (the player shows the same for a segment left out)."""
    count, items = 0, memoryview(b"")
    if packed is not None:
        count, start, end = events_span(packed)
        items = memoryview(packed)[start:end]
    packer = msgpack.Packer(use_bin_type=True)
    head = packer.pack_map_header(2) + packer.pack("id") + packer.pack(segment_id) + packer.pack("events") \
        + packer.pack_array_header(count)
    return head, items


def stream_encoder(accept_encoding: str) -> tuple[Callable[[Any], Any], Callable[[], bytes], str | None]:
    """(compress a piece, finish, Content-Encoding) for what the browser accepts."""
    accepted = {part.split(";")[0].strip().lower() for part in accept_encoding.split(",")}
    if "br" in accepted:
        compressor = brotli.Compressor(quality=BROTLI_QUALITY)
        return compressor.process, compressor.finish, "br"
    if "gzip" in accepted:
        deflate = zlib.compressobj(1, zlib.DEFLATED, 31)
        return deflate.compress, deflate.flush, "gzip"
    return (lambda piece: piece), (lambda: b""), None


def _range(request: web.Request) -> list[int]:
    try:
        first = int(request.query["from"])
        last = int(request.query.get("to", first))
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(text="from and to must be segment ids") from None
    if first < 0 or last < first or last - first >= MAX_SEGMENTS:
        raise web.HTTPBadRequest(text=f"from..to must be a range of at most {MAX_SEGMENTS} segment ids")
    return list(range(first, last + 1))


async def segments_pack(request: web.Request) -> web.StreamResponse:
    await require_auth(request)
    segment_ids = _range(request)
    pid, replay = await find_replay(request, request.match_info["replay_id"])
    index = request.app[index_key]
    rows = [row for row in [await index.get_segment(pid, replay.replay_id, s) for s in segment_ids] if row]
    for row in rows:  # before the answer starts: a segment still in another node's spool is a 503
        if row.location == "spool":
            try:
                await read_segment_blob(request.app, row)
            except NotYetUploaded:
                raise not_yet_uploaded(row) from None
    compress, finish, encoding = stream_encoder(request.headers.get("Accept-Encoding", ""))

    def encoded(segment_id: int, packed: bytes | None) -> list[Any]:
        return [compress(part) for part in segment_parts(segment_id, packed)]

    # short: a range may end in segments of a replay still being recorded
    response = web.StreamResponse(headers={"Cache-Control": "private, max-age=60", "Vary": "Accept-Encoding"})
    response.content_type = CONTENT_TYPE
    if encoding:
        response.headers["Content-Encoding"] = encoding
    async with contextlib.aclosing(packed_in_order(request.app, rows)) as segments:  # client gone: reads cancelled
        # the first segment read before the answer starts: one being moved (SegmentMoving) is still a 503
        first = await anext(segments, None)
        await response.prepare(request)
        await response.write(compress(batch_header(len(rows))))
        try:
            if first is not None:
                await _write(response, await asyncio.to_thread(encoded, *first))
            async for segment_id, packed in segments:
                await _write(response, await asyncio.to_thread(encoded, segment_id, packed))
        except SegmentMoving:
            # Too late for a 503: the connection is cut, so the player sees a failed request (and asks
            # again) rather than a whole-looking batch without that segment.
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("a segment kept moving while its batch was sent") from None
    await response.write(finish())
    await response.write_eof()
    return response


async def _write(response: web.StreamResponse, pieces: list[Any]) -> None:
    """(A function of its own, so that a segment's bytes are let go of as soon as they are sent.)"""
    for piece in pieces:
        await response.write(piece)


def _batches(segments: list[SegmentRow], max_bytes: int) -> list[list[int]]:
    """Segment ids in runs of at most ``max_bytes`` stored bytes (a bigger segment alone)."""
    batches: list[list[int]] = []
    size = 0
    for seg in segments:
        if not batches or size + seg.stored_bytes > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(seg.segment_id)
        size += seg.stored_bytes
    return batches


async def replay_breadcrumbs(app: web.Application, pid: int, replay: ReplayDetail, errors: list[dict[str, Any]],
                             origin: float, duration: float) -> dict[str, Any]:
    """Breadcrumbs, markers and inactive stretches of a whole replay. The decoding runs in the worker
    processes, ``limits.max_read_batch_bytes`` of stored segments at a time; what is extracted so far
    (bounded by ``limits.max_breadcrumbs``) goes along with each batch."""
    limits = app[config_key].limits
    pool = app[pool_key]
    extracted = timeline.Extracted(limit=limits.max_breadcrumbs)
    for segment_ids in _batches(replay.segments, limits.max_read_batch_bytes):
        sources = await read_sources(app, pid, replay.replay_id, segment_ids)
        extracted = await pool.run(timeline.extract_from_sources, sources, origin, extracted,
                                   limits.max_decoded_bytes)
    rage = [(c.timestamp, c.selector) for c in await app[index_key].replay_clicks(pid, replay.replay_id) if c.is_rage]
    return await pool.run(timeline.finish, extracted, duration, errors, origin, rage)


def setup_segments(app: web.Application) -> None:
    app.router.add_get("/projects/{pid}/replays/{replay_id}/segments.pack", json_errors(segments_pack))
