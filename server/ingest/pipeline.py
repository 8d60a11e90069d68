"""The event-loop half of ingest: route items to workers, then write blobs before index rows.

Order per segment, all inside the replay's lock (``Index.replay_writer``, held in the database so
it covers every node): read the scrubber state → scrub in a worker → write the blob (or spool it)
under a key named by its bytes' digest → record the segment row, its clicks and the new state in
one transaction that also checks the state's version. So segments of one replay are scrubbed one at a time, each
with the state the previous one left, whichever node gets them. A crash between steps leaves at most
an unreferenced blob (written again, same key, when the SDK re-sends), never a row pointing at a
missing blob. docs/architecture.md ("Several nodes") gives the whole protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from ..codec import stored_codec
from ..config import Config
from ..index import Index, ReplayBusy, ReplayEventRecord, ReplayWriter, SegmentRecord, StateConflict
from ..metrics import Metrics
from ..spool import Spool, SpoolFull
from ..storage import BlobStore, segment_key
from ..uploader import Uploader
from ..workers import WorkerPool
from .clicks import SegmentClicks
from .envelope import Envelope, EnvelopeError, EnvelopeTooLarge, split_recording
from .items import checked_id, error_record, hex_id, replay_event_record
from .jobs import SegmentJob, process_item, process_segment
from .refused import IngestRefused

log = logging.getLogger("replayd.ingest")

SPOOL_RETRY_AFTER = 30
# Scrubs of one segment when its state turns out stale at commit (the replay's lock was lost: its
# database session ended while this node still ran). Each retry starts over with the current state.
MAX_STATE_ATTEMPTS = 3


class Unavailable(Exception):
    """Cannot keep the segment safe right now (store down and spool full): 503 with Retry-After."""

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class Ingestor:
    def __init__(self, config: Config, index: Index, blobs: BlobStore, pool: WorkerPool, spool: Spool,
                 uploader: Uploader, metrics: Metrics):
        self.config = config
        self.index = index
        self.blobs = blobs
        self.spool = spool
        self.uploader = uploader
        self.metrics = metrics
        self._pool = pool

    async def _in_pool(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self._pool.run(fn, *args)

    async def ingest(self, project_id: int, envelope: Envelope) -> None:
        # The SDK sends a replay's envelopes with event_id = replay_id (trace.replay_id also names
        # it); then the replay_event rides along with the first recording's job.
        replay_id = self._header_replay_id(envelope)
        replay_payloads: list[bytes] = []
        recordings: list[tuple[int, bytes]] = []
        errors: list[dict[str, Any]] = []
        # Parse and scrub every JSON item before anything is stored, so a malformed item refuses
        # the whole envelope.
        for item in envelope.items:
            if item.type == "replay_event":
                replay_payloads.append(item.payload)
            elif item.type == "replay_recording":
                try:
                    recordings.append(split_recording(item.payload, self.config.limits.max_header_line_bytes))
                except EnvelopeError as exc:
                    raise IngestRefused(413 if isinstance(exc, EnvelopeTooLarge) else 400, str(exc)) from None
            elif item.type == "event":
                data, _ = await self._in_pool(process_item, "event", item.payload)
                checked_id(data.get("event_id"), "event item event_id")
                errors.append(data)
            # Every other item type (sessions, transactions, client reports...) is accepted and ignored.

        replay_events: list[dict[str, Any]] = []
        if not (recordings and replay_id):
            for payload in replay_payloads:
                data, _ = await self._in_pool(process_item, "replay_event", payload)
                replay_events.append(data)
            named = [rid for rid in map(_replay_event_id, replay_events) if rid]  # all checked before storing
            replay_id = named[0] if named else replay_id
            replay_payloads = []
        if recordings and replay_id is None:
            raise IngestRefused(400, "replay_recording without a replay id (no replay_event item and no event_id "
                                      "or trace.replay_id in the envelope header)")
        # Recordings first: one that cannot be ingested refuses the envelope before its metadata is kept.
        # The replay_events of the segment's own replay that ride in its job are kept in its commit.
        for segment_id, body in recordings:
            replay_events += await self._ingest_segment(project_id, replay_id, segment_id, body, replay_payloads)
            replay_payloads = []
        for data in replay_events:
            rid = _replay_event_id(data) or replay_id
            if rid is None:
                raise IngestRefused(400, "replay_event has no replay_id")
            await self.index.record_replay_event(replay_event_record(project_id, data, rid))
        for data in errors:
            if await self.index.record_error(error_record(project_id, data, envelope.headers)):
                self.metrics.inc("replayd_errors_ingested_total")

    @staticmethod
    def _header_replay_id(envelope: Envelope) -> str | None:
        """The replay the envelope header names; a malformed id there refuses the envelope."""
        trace = envelope.headers.get("trace")
        traced = trace.get("replay_id") if isinstance(trace, dict) else None
        traced = checked_id(traced, "envelope header trace.replay_id")
        event_id = checked_id(envelope.headers.get("event_id"), "envelope header event_id")
        return traced or event_id

    async def _ingest_segment(self, project_id: int, replay_id: str | None, segment_id: int, body: bytes,
                              replay_events: list[bytes]) -> list[dict[str, Any]]:
        """Store one segment, with the scrubbed replay_event items of its replay that rode along in
        its job; returns those of another replay (kept apart by the caller)."""
        assert replay_id is not None  # ingest() refuses recordings without one
        for attempt in range(1, MAX_STATE_ATTEMPTS + 1):
            written: list[SegmentRecord] = []  # the blob about to be written, if it got that far
            try:
                async with self.index.replay_writer(project_id, replay_id, segment_id,
                                                    self.config.index.replay_lock_timeout) as writer:
                    record, result = await self._scrub_and_store(writer, project_id, replay_id, segment_id, body,
                                                                 replay_events, written)
                break
            except ReplayBusy as exc:
                raise Unavailable(f"{exc}; retry", 1) from None
            except Exception as exc:
                # No row was committed for this blob (a refused commit, a lost connection, a full
                # spool) unless the commit went through unanswered: _discard reads the row to know.
                # Here, after the writer's block, its connection is back in the pool for that read.
                for unrecorded in written:
                    with contextlib.suppress(Exception):
                        await self._discard(unrecorded)
                if not isinstance(exc, StateConflict):
                    raise
                # the replay was deleted, or the lock lost, meanwhile: scrub again with the current state
                log.warning("segment %d of replay %s: scrubber state changed before its commit; scrubbing again "
                            "(attempt %d)", segment_id, replay_id, attempt)
                if attempt == MAX_STATE_ATTEMPTS:
                    raise Unavailable("the replay changed while this segment was scrubbed; retry", 1) from None
        if marked := [e for e in map(hex_id, result.error_ids) if e]:
            await self.index.link_errors(project_id, replay_id, marked)
        m = self.metrics
        m.inc("replayd_segments_ingested_total")
        m.inc("replayd_segment_raw_bytes_total", result.raw_bytes)
        m.inc("replayd_segment_stored_bytes_total", len(result.blob))
        for rule, count in result.report.get("by_rule", {}).items():
            m.inc("replayd_scrub_matches_total", count, rule=rule)
        log.info("segment stored", extra={"fields": {
            "project": project_id, "replay": replay_id, "segment": segment_id, "location": record.location,
            "raw_bytes": result.raw_bytes, "stored_bytes": len(result.blob), "events": result.event_count,
        }})
        return [data for data in result.replay_events if (_replay_event_id(data) or replay_id) != replay_id]

    async def _scrub_and_store(self, writer: ReplayWriter, project_id: int, replay_id: str, segment_id: int,
                               body: bytes, replay_events: list[bytes],
                               written: list[SegmentRecord]) -> tuple[SegmentRecord, Any]:
        """Scrub with the writer's state, keep the blob (noted in ``written`` first), record it; the
        record as stored and the worker's result. The caller holds the replay's lock. Nothing here
        takes a second database connection (the writer holds one; a full pool must not stop it)."""
        limits = self.config.limits
        job = SegmentJob(
            payload=body,
            quality=self.config.storage.compression_quality,
            max_recording_bytes=limits.max_recording_bytes,
            max_events=limits.max_events_per_segment,
            state=writer.state.data,
            segment_id=segment_id,
            replay_events=replay_events,
        )
        result = await self._in_pool(process_segment, job)
        events = []
        for data in result.replay_events:  # before the segment is kept: its metadata must be usable too
            if (_replay_event_id(data) or replay_id) == replay_id:
                events.append(replay_event_record(project_id, data, replay_id))
        record = SegmentRecord(
            project_id=project_id,
            replay_id=replay_id,
            segment_id=segment_id,
            blob_key=segment_key(project_id, replay_id, segment_id, result.blob),
            codec=stored_codec(result.blob),
            started_at=result.started_at,
            ended_at=result.ended_at,
            event_count=result.event_count,
            raw_bytes=result.raw_bytes,
            stored_bytes=len(result.blob),
            has_full_snapshot=result.has_full_snapshot,
            click_count=result.click_count,
            rage_click_count=result.rage_click_count,
            scrub_report=result.report,
            console_error_count=result.clicks.console_error_count,
        )
        written.append(record)
        record, replaced = await self._store_blob(writer, record, result.blob, result.state, result.clicks, events)
        if (replaced is not None and replaced.blob_key != record.blob_key
                # a compacted object holds the replay's other segments too: only once none is left in it
                # (asked on the writer's connection: a full pool cannot stop a writer)
                and (not replaced.compacted or not await writer.blob_referenced(replaced.blob_key))
                # no row names it now (the new row is committed, under the lock): deleted, else garbage
                and not await self._delete_blob(replaced)):
            await writer.keep_garbage([replaced.blob_key])
        return record, result

    async def _discard(self, record: SegmentRecord) -> None:
        """Delete a blob whose commit failed, unless the segment's row names it after all (the commit
        went through unanswered, or the same bytes were stored again)."""
        current = await self.index.get_segment(record.project_id, record.replay_id, record.segment_id)
        if (current is None or current.blob_key != record.blob_key) and not await self._delete_blob(record):
            await self.index.keep_garbage(record.project_id, record.replay_id, [record.blob_key])

    async def _delete_blob(self, record: SegmentRecord) -> bool:
        """From this node's spool and the blob store, wherever it got to (an entry in another
        node's spool is dropped by that node's uploader: no row names it); False when the store
        could not be asked (failing): the caller then keeps the key on the garbage list, which a
        compaction round works off (the spool's uploader may have stored it meanwhile)."""
        self.spool.remove(self.spool.path / self.spool.entry_name(record))
        if not self.uploader.store_healthy:  # no waiting on a store that is down, under the replay's lock
            return False
        try:
            await asyncio.wait_for(self.blobs.delete(record.blob_key), self.config.storage.put_timeout)
        except (OSError, ValueError) as exc:
            log.warning("could not delete the unreferenced blob %s, left to the garbage collection: %s",
                        record.blob_key, exc)
            return False
        return True

    async def _store_blob(self, writer: ReplayWriter, record: SegmentRecord, blob: bytes, state: bytes,
                          clicks: SegmentClicks,
                          events: list[ReplayEventRecord]) -> tuple[SegmentRecord, SegmentRecord | None]:
        """Blob store first, else the durable spool; the index row — with the segment's clicks and
        its replay's ``events``, in the same commit — only after the bytes are safe. Returns the
        record as stored (its location) and the row it replaced.

        Only an outage (an OSError: StoreUnavailable, a timeout, a disk error) sends the segment to the
        spool; anything else is a bug that must not make every later segment look like an outage.
        """
        try:
            if not self.uploader.store_healthy:
                raise ConnectionError("blob store marked failing")
            await asyncio.wait_for(self.blobs.put(record.blob_key, blob), self.config.storage.put_timeout)
        except OSError as exc:  # slow or failing store: keep our word through the spool
            if self.uploader.store_healthy:
                log.warning("blob store write failed (%s); spooling until it recovers", type(exc).__name__)
                self.uploader.store_failed()
            record = dataclasses.replace(record, location="spool")
            name = self.spool.entry_name(record)
            self.uploader.writing.add(name)
            try:
                await self.spool.put(record, blob, state)
                self.metrics.inc("replayd_spooled_total")
                replaced = await writer.record_segment(record, state, clicks.clicks, clicks.dead_earlier, events)
            except SpoolFull as full:
                raise Unavailable(f"blob store unavailable and {full}; retry later", SPOOL_RETRY_AFTER) from None
            finally:
                self.uploader.writing.discard(name)
            self.uploader.wake()
            return record, replaced
        return record, await writer.record_segment(record, state, clicks.clicks, clicks.dead_earlier, events)


def _replay_event_id(data: dict[str, Any]) -> str | None:
    return checked_id(data.get("replay_id"), "replay_event replay_id")
