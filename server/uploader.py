"""Moves spooled segments into the blob store once it answers again, oldest first, with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .garbage import delete_unreferenced
from .index import Index, ReplayBusy, SegmentRecord
from .metrics import Metrics
from .spool import Spool, SpoolEntry
from .storage import BlobStore

log = logging.getLogger("replayd.uploader")

IDLE_POLL = 5.0


class Uploader:
    def __init__(self, spool: Spool, blobs: BlobStore, index: Index, metrics: Metrics,
                 put_timeout: float, max_backoff: float, lock_timeout: float = 10.0):
        self.spool = spool
        self.blobs = blobs
        self.index = index
        self.metrics = metrics
        self.put_timeout = put_timeout
        self.max_backoff = max_backoff
        self.lock_timeout = lock_timeout  # for the replay's segment lock, to delete a replaced blob
        # Entries being written by a request right now: their index row may not exist yet.
        self.writing: set[str] = set()
        # False after a failed write: requests then spool at once instead of waiting on a dead
        # store, until this task has written to the store again.
        self.store_healthy = True
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def store_failed(self) -> None:
        self.store_healthy = False
        self.metrics.inc("replayd_upload_failures_total")
        self.wake()

    async def _probe(self) -> bool:
        try:
            await asyncio.wait_for(self.blobs.check(), self.put_timeout)
        except Exception:
            return False
        return True

    async def drain_once(self) -> bool:
        """Upload what the spool holds; False if the blob store failed."""
        for entry in self.spool.entries():
            if entry.path.name in self.writing:
                continue
            try:
                record, blob, _ = await self.spool.read(entry.path)
            except FileNotFoundError:
                continue
            except (ValueError, KeyError, TypeError):
                self._set_aside(entry, "unreadable")
                continue
            row = await self.index.get_segment(record.project_id, record.replay_id, record.segment_id)
            if row is None or row.blob_key != record.blob_key:
                # Never acknowledged (a crash before its row), its replay deleted since, or the
                # segment stored again since (the row names other bytes, maybe on another node). An
                # earlier attempt may have stored it all the same (a put that timed out but landed,
                # a crash before its row was marked): not to be left behind in the store.
                await self._drop(entry, record)
                continue
            try:
                await asyncio.wait_for(self.blobs.put(record.blob_key, blob), self.put_timeout)
            except OSError as exc:  # an outage (StoreUnavailable, a timeout): the whole spool waits
                self.store_failed()
                log.warning("spool upload failed, will retry: %s", type(exc).__name__)
                return False
            except Exception as exc:  # this entry cannot be stored (a malformed key): the others still can
                self._set_aside(entry, f"refused by the blob store ({type(exc).__name__})")
                continue
            self.store_healthy = True
            if not await self.index.segment_moved_to_store(record.project_id, record.replay_id, record.segment_id,
                                                           record.blob_key):
                # replaced or deleted while it was uploading: no row names what was just written
                await self._drop(entry, record)
                continue
            self.spool.remove(entry.path)
            log.info("spooled segment uploaded", extra={"fields": {
                "replay": record.replay_id, "segment": record.segment_id}})
        if not self.store_healthy and not self.spool.entries():
            self.store_healthy = await self._probe()
        return self.store_healthy

    async def _drop(self, entry: SpoolEntry, record: SegmentRecord) -> None:
        """An entry no row names: its blob noted as garbage before the entry goes, then deleted from
        the store if no row names it by now (under the replay's lock: a re-send with the same bytes
        writes this very key). What is not deleted now a compaction round deletes later."""
        await self.index.keep_garbage(record.project_id, record.replay_id, [record.blob_key])
        self.spool.remove(entry.path)
        try:
            await delete_unreferenced(self.index, self.blobs, record.project_id, record.replay_id, [record.blob_key],
                                      self.lock_timeout)
        except (OSError, ReplayBusy) as exc:
            log.info("a replaced spooled segment's blob is left to the garbage collection: %s", type(exc).__name__)

    @staticmethod
    def _set_aside(entry: SpoolEntry, why: str) -> None:
        """Keep the bytes for a person to look at, out of the upload queue."""
        log.error("spool entry %s is %s; moved aside", entry.path.name, why)
        entry.path.rename(entry.path.with_suffix(".corrupt"))

    async def run(self) -> None:
        backoff = 1.0
        while True:
            try:
                ok = await self.drain_once()
            except Exception:
                log.exception("spool upload round failed")
                ok = False
            if ok:
                backoff = 1.0
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL)
            else:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
