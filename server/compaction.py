"""Compaction: a finished replay's segments rewritten as one object of a few chunks, at about half the bytes.

Ingest stores one object per segment, each compressed alone. Most of a replay's bytes repeat across
its segments (each page load's full snapshot repeats the page's CSS and markup); one brotli stream
with a 16 MiB window finds them. When a replay is finished (``compaction.idle_seconds`` without a
write, or ``compaction.max_duration_seconds`` long), a round of this job, for each such replay:

1. **reads** its segments in id order (loose blobs, or chunks of an earlier compaction) and cuts them
   into chunks: a chunk ends before a segment with a full snapshot once it holds ``chunk_bytes`` of
   decompressed segments, or before any segment that would take it past ``max_chunk_bytes``. Each
   chunk is one brotli stream (``compaction.quality``, window 2**24) of the segments' decompressed
   bytes, compressed in the worker pool;
2. **writes** the chunks, one after the other, as one object under a new key (``compacted_key``, one
   generation past the replay's current one and named by the object's digest, so that a key never
   holds other bytes), kept on the garbage list until step 4;
3. **verifies**: reads the object back and checks that every segment decodes to the same bytes;
4. **switches** the index in one transaction (``Index.switch_to_compacted``): each segment row points
   at its bytes in the new object, if no row changed since step 1; the objects replaced are kept as
   garbage in the same transaction;
5. **deletes** the garbage: an object only while no row points at it, under the replay's segment lock
   (``Index.replay_writer``, across nodes).

A crash, an outage or an error at any step loses nothing. Before step 4 the index points at the old
objects, which are untouched; the new object is deleted, or overwritten by the re-run (which picks
the same generation). After step 4 the garbage list survives, and the next round deletes it. A
segment that arrives after compaction is stored as a loose segment (its row replaces the compacted
one: a re-send wins) and played; the replay is compacted again once it is finished again.

One node at a time runs it (``Index.leader("compaction")``). ``replayd compact`` runs one round now.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .codec import decode_chunk, encode_chunk, is_apart, stored_codec
from .config import CompactionConfig, Config
from .garbage import delete_unreferenced
from .index import Index, ReplayBusy, SegmentRecord
from .metrics import Metrics
from .segment_reader import SegmentReader
from .storage import (
    BlobNotFound,
    BlobStore,
    StoreUnavailable,
    compacted_generation,
    compacted_key,
    object_digest,
)

log = logging.getLogger("replayd.compaction")

RunCpu = Callable[..., Awaitable[Any]]
RETRY_AFTER = 3600.0  # seconds before a replay that failed is tried again


class CompactionError(Exception):
    """The replay could not be compacted this time (nothing lost; it stays as it was)."""


@dataclass
class Totals:
    """What one round did."""

    replays: int = 0
    segments: int = 0
    bytes_before: int = 0  # stored bytes of the segments compacted, as they were
    bytes_after: int = 0  # bytes of the objects written for them
    failed: int = 0
    skipped: int = 0  # changed while being compacted (a late segment): left for a later round
    deleted: int = 0  # replaced objects deleted (or found gone already)

    def add(self, other: Totals) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class Chunk:
    rows: list[SegmentRecord]
    sizes: list[int]
    digests: list[bytes]
    data: bytes = b""


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def starts_chunk(size: int, segment_bytes: int, full_snapshot: bool, config: CompactionConfig) -> bool:
    """Whether a segment of ``segment_bytes`` (decompressed) starts a new chunk after one of ``size``
    bytes: at a full snapshot once the chunk has ``chunk_bytes``, or when it would pass ``max_chunk_bytes``."""
    return size > 0 and ((full_snapshot and size >= config.chunk_bytes)
                         or size + segment_bytes > config.max_chunk_bytes)


def _shares(total: int, sizes: list[int]) -> list[int]:
    """``total`` split in proportion to ``sizes``, adding up exactly."""
    whole = sum(sizes) or 1
    shares = [total * s // whole for s in sizes]
    if shares:
        shares[-1] += total - sum(shares)
    return shares


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


class Compactor:
    """``run_once`` compacts the replays finished by now; ``run_cpu`` runs the compression (the worker
    pool's ``run`` in the server, a thread in ``replayd compact``); ``lock_timeout`` is how long it waits
    for a replay's segment lock (``Index.replay_writer``, the one ingest holds across nodes) to delete;
    ``decoded_limit`` what a blob or chunk read may decompress to (``limits.max_decoded_bytes``)."""

    def __init__(self, config: CompactionConfig, index: Index, blobs: BlobStore, *, run_cpu: RunCpu = _in_thread,
                 metrics: Metrics | None = None, lock_timeout: float = 10.0, decoded_limit: int | None = None):
        self.config = config
        self.decoded_limit = decoded_limit
        self.index = index
        self.blobs = blobs
        self.run_cpu = run_cpu
        self.metrics = metrics
        self.lock_timeout = lock_timeout
        self.backlog = 0  # finished replays left to compact after the last round
        self._retry_at: dict[tuple[int, str], float] = {}

    # --- a round ---------------------------------------------------------------------------

    async def run_once(self, now: float | None = None, older_than: float | None = None) -> Totals:
        """Delete pending garbage, then compact every replay finished by ``now`` (or, with
        ``older_than``, every replay not written for that many seconds), at most ``batch`` of them."""
        now = time.time() if now is None else now
        totals = Totals()
        totals.deleted += await self.collect_garbage()
        if older_than is not None:
            idle_before = long_idle_before = now - older_than
        else:
            idle_before, long_idle_before = now - self.config.idle_seconds, now - self.config.settle_seconds
        offset, tried = 0, 0
        while tried < self.config.batch:
            candidates = await self.index.replays_to_compact(idle_before, self.config.max_duration_seconds,
                                                             long_idle_before, offset=offset,
                                                             limit=self.config.batch)
            due = [key for key in candidates if self._retry_at.get(key, 0.0) <= now][:self.config.batch - tried]
            compacted = 0
            for project_id, replay_id in due:
                done = await self.compact_replay(project_id, replay_id)
                compacted += done.replays
                totals.add(done)
            tried += len(due)
            if len(candidates) < self.config.batch:
                break
            # the replays compacted no longer match; those waiting to be retried (or left) still do
            offset += len(candidates) - compacted
        self.backlog = len(await self.index.replays_to_compact(idle_before, self.config.max_duration_seconds,
                                                               long_idle_before, limit=10_000))
        return totals

    async def compact_replay(self, project_id: int, replay_id: str) -> Totals:
        """Compact one replay (steps 1-5); an outage or error leaves it as it was, to retry later."""
        key = (project_id, replay_id)
        try:
            totals = await self._compact(project_id, replay_id)
        except Exception as exc:  # an outage, a segment missing or unreadable, a bug: this replay only
            self._retry_at[key] = time.time() + min(RETRY_AFTER, self.config.interval_seconds * 10)
            expected = isinstance(exc, (StoreUnavailable, OSError, CompactionError, BlobNotFound))
            log.warning("compaction of replay %s failed, retried later: %s: %s", replay_id, type(exc).__name__, exc,
                        exc_info=not expected)
            self._count("replayd_compaction_failures_total")
            return Totals(failed=1)
        self._retry_at.pop(key, None)
        return totals

    async def _compact(self, project_id: int, replay_id: str) -> Totals:
        state_version = (await self.index.get_state(project_id, replay_id)).version  # before the rows
        rows = await self.index.replay_segments(project_id, replay_id)
        if not rows or any(row.location != "store" for row in rows):
            return Totals(skipped=1)  # a spooled segment is compacted once it is uploaded
        generation = 1 + max((g for row in rows if (g := compacted_generation(row.blob_key)) is not None), default=0)
        chunks = await self.read_chunks(rows)
        key = compacted_key(project_id, replay_id, generation, object_digest([chunk.data for chunk in chunks]))
        # garbage until the switch: an object a crash leaves unswitched is deleted by a later round
        await self.index.keep_garbage(project_id, replay_id, [key])
        data = await self.write(key, chunks)
        after = self._placed(key, chunks)
        replaced = sorted({row.blob_key for row in rows} - {key})
        try:
            await self.verify(key, chunks)
            switched = await self.switch(project_id, replay_id, state_version, rows, after, replaced)
        except Exception:
            await self._discard(project_id, replay_id, key)
            raise
        if not switched:
            # a segment came, went or changed meanwhile: leave the replay to a later round
            await self._discard(project_id, replay_id, key)
            return Totals(skipped=1)
        await self.index.forget_garbage(project_id, replay_id, key)  # named by the rows now
        before = sum(row.stored_bytes for row in rows)
        totals = Totals(replays=1, segments=len(rows), bytes_before=before, bytes_after=len(data))
        self._count("replayd_compaction_replays_total")
        self._count("replayd_compaction_segments_total", len(rows))
        self._count("replayd_compaction_bytes_before_total", before)
        self._count("replayd_compaction_bytes_after_total", len(data))
        log.info("replay compacted", extra={"fields": {
            "project": project_id, "replay": replay_id, "segments": len(rows), "chunks": len(chunks),
            "bytes_before": before, "bytes_after": len(data)}})
        try:
            totals.deleted += await self.delete_replaced(project_id, replay_id, replaced)
        except (OSError, ReplayBusy) as exc:  # switched already: the garbage list keeps them for the next round
            log.warning("deleting replaced objects of replay %s failed, retried later: %s", replay_id, exc)
        return totals

    # --- the steps (each a method: the tests interrupt them one by one) ---------------------

    async def read_chunks(self, rows: list[SegmentRecord]) -> list[Chunk]:
        """Step 1: the segments' decompressed bytes, cut into chunks, each compressed in the pool (a
        segment stored as v3 or v2 is handed over as its blob: its streams go into the chunk's as they are)."""
        reader = SegmentReader(self.blobs, self._read_loose, limit=self.decoded_limit)
        try:
            chunks: list[Chunk] = []
            start = 0
            pending: list[bytes] = []
            sizes: list[int] = []
            digests: list[bytes] = []
            for i, row in enumerate(rows):
                found = await reader.fetch(row)
                if found is None:
                    raise CompactionError(f"segment {row.segment_id}'s blob is missing")
                packed = await found.packed()
                if starts_chunk(sum(sizes), len(packed), row.has_full_snapshot, self.config):
                    chunks.append(await self._encode(rows[start:i], pending, sizes, digests))
                    start, pending, sizes, digests = i, [], [], []
                pending.append(found.data if found.loose and is_apart(found.data) else packed)
                sizes.append(len(packed))
                digests.append(_digest(packed))
            chunks.append(await self._encode(rows[start:], pending, sizes, digests))
        finally:
            reader.close()
        return chunks

    async def _encode(self, rows: list[SegmentRecord], segments: list[bytes], sizes: list[int],
                      digests: list[bytes]) -> Chunk:
        data = await self.run_cpu(encode_chunk, segments, self.config.quality)
        return Chunk(rows=rows, sizes=sizes, digests=digests, data=data)

    async def write(self, key: str, chunks: list[Chunk]) -> bytes:
        """Step 2: the chunks as one object."""
        data = b"".join(chunk.data for chunk in chunks)
        await self.blobs.put(key, data)
        return data

    async def verify(self, key: str, chunks: list[Chunk]) -> None:
        """Step 3: the object as stored decodes to the same bytes, segment by segment."""
        stored = await self.blobs.get(key)
        start = 0
        for chunk in chunks:
            end = start + len(chunk.data)
            decoded = await self.run_cpu(decode_chunk, stored[start:end], None, self.decoded_limit)
            offset = 0
            for row, size, digest in zip(chunk.rows, chunk.sizes, chunk.digests, strict=True):
                if _digest(decoded[offset:offset + size]) != digest:
                    raise CompactionError(f"{key} does not decode to segment {row.segment_id} as read")
                offset += size
            if offset != len(decoded):
                raise CompactionError(f"{key} holds more than its segments")
            start = end
        if start != len(stored):
            raise CompactionError(f"{key} is not the object written")

    async def switch(self, project_id: int, replay_id: str, state_version: int, before: list[SegmentRecord],
                     after: list[SegmentRecord], replaced: list[str]) -> bool:
        """Step 4: the index points at the new object, in one transaction, if nothing changed."""
        return await self.index.switch_to_compacted(project_id, replay_id, state_version, before, after, replaced)

    async def delete_replaced(self, project_id: int, replay_id: str, keys: list[str]) -> int:
        """Step 5: the objects replaced, each only while no row points at it (a late segment's may),
        under the replay's segment lock (``Index.replay_writer``: held by ingest on any node from before
        it writes a blob until its row is committed; a re-sent segment with the same bytes has the same
        key). ReplayBusy (nothing deleted) while the replay is being written: its garbage waits."""
        deleted = await delete_unreferenced(self.index, self.blobs, project_id, replay_id, keys, self.lock_timeout)
        self._count("replayd_compaction_objects_deleted_total", deleted)
        return deleted

    async def collect_garbage(self) -> int:
        """Step 5 of earlier rounds that did not get to finish it (a crash, an outage, a busy replay),
        and the objects ingest and the spool's uploader left on the garbage list (server/garbage.py)."""
        deleted = 0
        busy: set[tuple[int, str]] = set()
        while batch := await self.index.garbage():
            by_replay: dict[tuple[int, str], list[str]] = {}
            for project_id, replay_id, key in batch:
                if (project_id, replay_id) not in busy:
                    by_replay.setdefault((project_id, replay_id), []).append(key)
            if not by_replay:  # only replays being written are left: the next round
                return deleted
            for (project_id, replay_id), keys in by_replay.items():
                try:
                    deleted += await self.delete_replaced(project_id, replay_id, keys)
                except ReplayBusy:
                    busy.add((project_id, replay_id))
                except OSError as exc:
                    log.warning("deleting replaced objects of replay %s failed, retried later: %s", replay_id, exc)
                    return deleted
        return deleted

    # --- helpers ---------------------------------------------------------------------------

    def _placed(self, key: str, chunks: list[Chunk]) -> list[SegmentRecord]:
        """The rows as they are once the object is in place: each segment's bytes in its chunk, and a
        share of the chunk's compressed bytes as its stored bytes (so the replay's total is the object's)."""
        rows: list[SegmentRecord] = []
        start = 0
        for chunk in chunks:
            end = start + len(chunk.data)
            offset = 0
            codec = stored_codec(chunk.data)  # what the chunk holds, whatever each segment's blob held
            for row, size, share in zip(chunk.rows, chunk.sizes, _shares(len(chunk.data), chunk.sizes), strict=True):
                rows.append(dataclasses.replace(row, blob_key=key, codec=codec, stored_bytes=share, chunk_start=start,
                                                chunk_end=end, chunk_offset=offset, chunk_length=size))
                offset += size
            start = end
        return rows

    async def _discard(self, project_id: int, replay_id: str, key: str) -> None:
        """A new object the index did not switch to: delete it, unless a row points at it after all."""
        with contextlib.suppress(OSError):  # else left on the garbage list for a later round
            if not await self.index.blob_referenced(project_id, replay_id, key):
                await self.blobs.delete(key)
            await self.index.forget_garbage(project_id, replay_id, key)

    async def _read_loose(self, row: SegmentRecord) -> bytes | None:
        try:
            return await self.blobs.get(row.blob_key)
        except BlobNotFound:
            return None

    def _count(self, name: str, value: float = 1.0) -> None:
        if self.metrics is not None and value:
            self.metrics.inc(name, value)


# --- in the server: a round every interval_seconds, on the leader --------------------------

compactor_key = web.AppKey("compactor", Compactor)


async def compaction_loop(compactor: Compactor, index: Index, interval: float,
                          last_round: list[float]) -> None:
    while True:
        try:
            async with index.leader("compaction") as leading:
                if leading:
                    totals = await compactor.run_once()
                    last_round[0] = time.time()
                    if totals.replays or totals.failed:
                        log.info("compaction: %d replays (%d segments) %d -> %d bytes, %d failed, %d objects deleted",
                                 totals.replays, totals.segments, totals.bytes_before, totals.bytes_after,
                                 totals.failed, totals.deleted)
        except Exception:
            log.exception("compaction round failed; retrying in %.0f s", interval)
        await asyncio.sleep(interval)


async def compaction_ctx(app: web.Application) -> AsyncIterator[None]:
    """The background job for the life of the app."""
    from .keys import blobs_key, config_key, index_key, pool_key
    from .metrics import metrics_key
    from .resources import running

    config = app[config_key].compaction
    if not config.enabled:
        yield
        return
    metrics = app[metrics_key]
    compactor = Compactor(config, app[index_key], app[blobs_key], run_cpu=app[pool_key].run, metrics=metrics,
                          lock_timeout=app[config_key].index.replay_lock_timeout,
                          decoded_limit=app[config_key].limits.max_decoded_bytes)
    last_round = [0.0]
    metrics.gauge("replayd_compaction_backlog_replays", lambda: compactor.backlog)
    metrics.gauge("replayd_compaction_last_round_timestamp_seconds", lambda: last_round[0])
    app[compactor_key] = compactor
    async with running(compaction_loop(compactor, app[index_key], config.interval_seconds, last_round)):
        yield


async def compact_now(config: Config, older_than: float | None) -> Totals:
    """``replayd compact``: one round in this process, on the leader only (else nothing is done)."""
    from .index import open_index
    from .storage.backends import open_blob_store

    index = await open_index(config.index)
    try:
        blobs = await open_blob_store(config.storage)
        try:
            async with index.leader("compaction") as leading:
                if not leading:
                    raise CompactionError("another node is compacting now; try again later")
                return await Compactor(config.compaction, index, blobs, lock_timeout=config.index.replay_lock_timeout,
                                       decoded_limit=config.limits.max_decoded_bytes).run_once(older_than=older_than)
        finally:
            await blobs.close()
    finally:
        await index.close()
