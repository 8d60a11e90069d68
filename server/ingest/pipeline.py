"""The event-loop half of ingest: route items to workers, then write blobs before index rows.

Order per segment: scrub in a worker → write the blob (or spool it) → record the segment row and
the scrubber's replay state in one transaction. A crash between steps leaves at most an
unreferenced blob (overwritten when the SDK re-sends), never a row pointing at a missing blob.
Segments of one replay are handled one at a time so each is scrubbed with the node tree left by the
previous ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from ..codec import CODEC
from ..config import Config
from ..index import Index, SegmentRecord, StateConflict
from ..metrics import Metrics
from ..spool import Spool, SpoolFull
from ..storage import BlobStore, segment_key
from ..uploader import Uploader
from ..workers import WorkerPool
from .envelope import Envelope, EnvelopeError, EnvelopeTooLarge, split_recording
from .items import checked_id, error_record, hex_id, replay_event_record
from .jobs import SegmentJob, process_item, process_segment
from .refused import IngestRefused

log = logging.getLogger("replayd.ingest")

MAX_LOCKS = 10_000
SPOOL_RETRY_AFTER = 30


class Unavailable(Exception):
    """Cannot keep the segment safe right now (store down and spool full): 503 with Retry-After."""

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class ReplayLocks:
    """One asyncio lock per replay, forgetting idle ones beyond MAX_LOCKS."""

    def __init__(self) -> None:
        self._locks: OrderedDict[tuple[int, str], asyncio.Lock] = OrderedDict()

    def get(self, key: tuple[int, str]) -> asyncio.Lock:
        lock = self._locks.pop(key, None) or asyncio.Lock()
        self._locks[key] = lock
        while len(self._locks) > MAX_LOCKS:
            oldest_key, oldest = next(iter(self._locks.items()))
            if oldest.locked():
                break
            del self._locks[oldest_key]
        return lock


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
        self._locks = ReplayLocks()

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
        """Store one segment; returns the scrubbed replay_event items that rode along in its job."""
        assert replay_id is not None  # ingest() refuses recordings without one
        limits = self.config.limits
        async with self._locks.get((project_id, replay_id)):
            stored_state = await self.index.get_state(project_id, replay_id)
            job = SegmentJob(
                payload=body,
                quality=self.config.storage.compression_quality,
                max_recording_bytes=limits.max_recording_bytes,
                max_events=limits.max_events_per_segment,
                state=stored_state.data,
                segment_id=segment_id,
                replay_events=replay_events,
            )
            result = await self._in_pool(process_segment, job)
            for data in result.replay_events:  # before the segment is kept: its metadata must be usable too
                _replay_event_id(data)
            record = SegmentRecord(
                project_id=project_id,
                replay_id=replay_id,
                segment_id=segment_id,
                blob_key=segment_key(project_id, replay_id, segment_id),
                codec=CODEC,
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
            try:
                record = await self._store_blob(record, result.blob, result.state, stored_state.version)
            except StateConflict:  # the replay was deleted (or written by another process) meanwhile
                raise Unavailable("the replay changed while this segment was scrubbed; retry", 1) from None
            # after the segment's row: a crash between leaves a segment without its clicks, which the
            # re-sent segment writes
            await self.index.record_clicks(project_id, replay_id, segment_id, result.clicks.clicks,
                                           result.clicks.dead_earlier)
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
        return result.replay_events

    async def _store_blob(self, record: SegmentRecord, blob: bytes, state: bytes, state_version: int) -> SegmentRecord:
        """Blob store first, else the durable spool; the index row only after the bytes are safe.
        Returns the record as stored (its location).

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
            name = self.spool.entry_name(record.project_id, record.replay_id, record.segment_id)
            self.uploader.writing.add(name)
            try:
                await self.spool.put(record, blob, state)
                self.metrics.inc("replayd_spooled_total")
                await self.index.record_segment(record, state, state_version)
            except SpoolFull as full:
                raise Unavailable(f"blob store unavailable and {full}; retry later", SPOOL_RETRY_AFTER) from None
            finally:
                self.uploader.writing.discard(name)
            self.uploader.wake()
            return record
        await self.index.record_segment(record, state, state_version)
        return record


def _replay_event_id(data: dict[str, Any]) -> str | None:
    return checked_id(data.get("replay_id"), "replay_event replay_id")
