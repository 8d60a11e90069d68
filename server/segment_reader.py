"""Reading a stored segment's bytes from its index row, whether it has a blob of its own or is part of
a compacted replay (server/compaction.py): the API, the player's batches and compaction read here.

A loose segment is its own blob (``brotli(msgpack(...))``); a compacted one is bytes
``chunk_offset..+chunk_length`` of the decompressed chunk at bytes ``chunk_start..chunk_end`` of its
replay's compacted object, fetched by range. Either way a reader gets the segment's decompressed
bytes (``codec.unpack_blob``'s), identical for the same segment before and after compaction.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web

from .codec import CodecError, decode_chunk, unpack_blob
from .index import SegmentRecord
from .keys import config_key
from .storage import BlobNotFound, BlobStore

T = TypeVar("T")
ChunkKey = tuple[str, int, int]  # blob key, chunk_start, chunk_end
ReadRow = Callable[[SegmentRecord], Awaitable[SegmentRecord | None]]
# Times a read that found nothing reads its row again before giving up: each re-read that finds the
# row changed means compaction switched it (or a re-send replaced it) since; one is the usual case.
REREADS = 3
MOVING_RETRY_AFTER = 1


class SegmentMoving(Exception):
    """A segment's row changed under each of its reads (compaction switched it, a re-send replaced
    it, REREADS times in a row): 503, read again in ``MOVING_RETRY_AFTER`` seconds."""

    retry_after = MOVING_RETRY_AFTER

    def __init__(self, row: SegmentRecord):
        super().__init__(f"segment {row.segment_id} of replay {row.replay_id} is being moved (compacted or "
                         "stored again) while it is read; retry")


async def read_current(row: SegmentRecord, read: Callable[[SegmentRecord], Awaitable[T | None]],
                       read_row: ReadRow | None) -> T | None:
    """``read(row)``; when it finds nothing there (compaction switched the row and deleted the blob it
    named, or a re-send replaced it), the row read again with ``read_row`` and read where it points now.
    None when the row is gone (its replay deleted) or unchanged (its blob is lost); SegmentMoving when
    it changed under every read."""
    for _ in range(REREADS + 1):
        data = await read(row)
        if data is not None or read_row is None:
            return data
        again = await read_row(row)
        if again is None or again == row:
            return None
        row = again
    raise SegmentMoving(row)


def chunk_of(row: SegmentRecord) -> ChunkKey | None:
    return (row.blob_key, row.chunk_start, row.chunk_end) if row.chunk_start is not None else None


async def read_chunk(blobs: BlobStore, chunk: ChunkKey) -> bytes | None:
    """A compacted chunk's compressed bytes (one ranged read), None if its object is gone."""
    key, start, end = chunk
    try:
        data = await blobs.get_range(key, start, end)
    except BlobNotFound:
        return None
    if len(data) != end - start:
        raise CodecError(f"compacted object {key} is shorter than its index rows say")
    return data


class ChunkCache:
    """Decompressed chunks shared by every reader of the process, the most recently used kept up to
    ``max_bytes`` in all: the player's batches for one seek (several requests at once) and the next
    seek into the same chunk decompress it once. A chunk is read under its key only once the index
    points at it, and an object the index pointed at is never written again, so a kept chunk never
    goes stale; a chunk larger than ``max_bytes`` is not kept."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.used = 0
        self._kept: collections.OrderedDict[ChunkKey, bytes] = collections.OrderedDict()
        self._loading: dict[ChunkKey, asyncio.Future[bytes | None]] = {}

    def peek(self, chunk: ChunkKey) -> bytes | None:
        """The chunk if kept, without loading it."""
        return self._kept.get(chunk)

    async def get(self, chunk: ChunkKey, load: Callable[[], Awaitable[bytes | None]]) -> bytes | None:
        if (data := self._kept.get(chunk)) is not None:
            self._kept.move_to_end(chunk)
            return data
        if (loading := self._loading.get(chunk)) is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._loading[chunk] = future
        try:
            data = await load()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: a reader that gave up must not leave it unobserved
            raise
        finally:
            self._loading.pop(chunk, None)
        future.set_result(data)
        if data is not None and len(data) <= self.max_bytes:
            self._kept[chunk] = data
            self.used += len(data)
            while self.used > self.max_bytes:
                self.used -= len(self._kept.popitem(last=False)[1])
        return data


chunk_cache_key = web.AppKey("chunk_cache", ChunkCache)


def setup_segment_reading(app: web.Application) -> None:
    app[chunk_cache_key] = ChunkCache(app[config_key].compaction.read_cache_bytes)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A segment as read: a loose segment's stored blob, or a compacted one's decompressed bytes."""

    data: bytes
    loose: bool
    limit: int | None = None  # limits.max_decoded_bytes

    async def packed(self) -> bytes:
        """The decompressed bytes (decoding a v2 blob peaks at about 3 times them and costs 6-10 ms
        of CPU per MB of JSON: done when the segment is used, not when it is read ahead)."""
        return await asyncio.to_thread(unpack_blob, self.data, self.limit) if self.loose else self.data


class SegmentReader:
    """Decompressed segments from their rows. ``read_blob`` reads a loose segment's stored bytes (the
    spool or the blob store; None when missing). A compacted chunk is read and decompressed once for
    all the segments it holds (the last ``keep`` chunks are kept), so a batch of sixty segments of one
    chunk costs one ranged read. With ``read_row``, a segment not found where its row pointed is read
    again from its row as it is now (``read_current``): rows read before a compaction's switch stay good.
    ``limit``: what one blob or chunk may decompress to (``limits.max_decoded_bytes``)."""

    def __init__(self, blobs: BlobStore, read_blob: Callable[[SegmentRecord], Awaitable[bytes | None]],
                 keep: int = 1, cache: ChunkCache | None = None, read_row: ReadRow | None = None,
                 limit: int | None = None):
        self.limit = limit
        self.blobs = blobs
        self.read_blob = read_blob
        self.keep = keep
        self.cache = cache
        self.read_row = read_row
        self._chunks: collections.OrderedDict[ChunkKey, asyncio.Task[bytes | None]] = collections.OrderedDict()

    async def _load(self, chunk: ChunkKey) -> bytes | None:
        data = await read_chunk(self.blobs, chunk)
        return None if data is None else await asyncio.to_thread(decode_chunk, data, None, self.limit)

    async def _chunk(self, chunk: ChunkKey) -> bytes | None:
        if self.cache is None:
            return await self._load(chunk)
        return await self.cache.get(chunk, lambda: self._load(chunk))

    async def packed(self, row: SegmentRecord) -> bytes | None:
        """The segment's decompressed bytes, None when its blob (or object) is missing."""
        found = await self.fetch(row)
        return None if found is None else await found.packed()

    async def fetch(self, row: SegmentRecord) -> Fetched | None:
        """The segment's bytes as read, not yet decoded if loose (``Fetched.packed`` decodes them): a
        reader that reads ahead holds stored bytes, and decodes one segment at a time as it uses them."""
        return await read_current(row, self._fetch, self.read_row)

    async def _fetch(self, row: SegmentRecord) -> Fetched | None:
        chunk = chunk_of(row)
        if chunk is None:
            blob = await self.read_blob(row)
            return None if blob is None else Fetched(blob, loose=True, limit=self.limit)
        task = self._chunks.get(chunk)
        if task is None:
            task = self._chunks[chunk] = asyncio.ensure_future(self._chunk(chunk))
            while len(self._chunks) > self.keep:
                self._chunks.popitem(last=False)
        else:
            self._chunks.move_to_end(chunk)
        data = await asyncio.shield(task)
        if data is None:
            return None
        if len(data) < row.chunk_offset + row.chunk_length:
            raise CodecError(f"compacted chunk of {row.blob_key} ends before segment {row.segment_id}")
        return Fetched(data[row.chunk_offset:row.chunk_offset + row.chunk_length], loose=False)

    def close(self) -> None:
        for task in self._chunks.values():
            task.cancel()
        self._chunks.clear()


async def read_one_packed(blobs: BlobStore, row: SegmentRecord,
                          read_blob: Callable[[SegmentRecord], Awaitable[bytes | None]],
                          cache: ChunkCache | None = None, limit: int | None = None) -> bytes | None:
    """One segment's decompressed bytes; of a compacted chunk not in ``cache`` only as much is
    decompressed as it needs (a CodecError past ``limit``)."""
    chunk = chunk_of(row)
    if chunk is None:
        blob = await read_blob(row)
        return None if blob is None else await asyncio.to_thread(unpack_blob, blob, limit)
    if cache is not None and (kept := cache.peek(chunk)) is not None:
        return kept[row.chunk_offset:row.chunk_offset + row.chunk_length]
    data = await read_chunk(blobs, chunk)
    if data is None:
        return None
    end = row.chunk_offset + row.chunk_length
    decoded = await asyncio.to_thread(decode_chunk, data, end, limit)
    return decoded[row.chunk_offset:end]
