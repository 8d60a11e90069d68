"""The index interface: every backend implements ``Index`` and passes tests/test_index.py.

A backend stores rows and answers queries; how a replay's pieces add up is decided by the records
(``Replay.with_event``, ``Replay.with_segment``), which a backend applies inside its own
transaction. Every write method is one transaction: all of it happens or none.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from ..search import Cond
from .records import (
    ClickRecord,
    ErrorDetail,
    ErrorRecord,
    ErrorRow,
    IssueRow,
    Replay,
    ReplayDetail,
    ReplayEventRecord,
    ReplayQuery,
    ScrubberState,
    SegmentRecord,
    SelectorCount,
)


class StateConflict(Exception):
    """The replay's scrubber state is no longer the version the segment was scrubbed with: another
    writer stored a segment of the replay meanwhile (or deleted the replay). Nothing was written;
    the segment must be scrubbed again with the current state. A replay writer also raises it when
    the session holding its lock ended before its commit answered (the commit may have gone
    through: read the row again before deleting what it names)."""


class ReplayBusy(Exception):
    """Another writer (on this node or another) held the replay's lock for longer than the wait allowed."""


class IndexBusy(Exception):
    """Every connection to the index stayed in use for ``index.pool_acquire_timeout`` seconds: the
    request is answered 503 with ``Retry-After: retry_after`` rather than left to wait."""

    retry_after = 1


class ReplayWriter(Protocol):
    """The replay's only writer of segments while its ``Index.replay_writer`` block runs."""

    @property
    def state(self) -> ScrubberState:
        """The replay's scrubber state, read under the lock: current until this writer records."""

    async def record_segment(self, segment: SegmentRecord, state: bytes, clicks: list[ClickRecord] | None = None,
                             dead_earlier: list[tuple[int, int, bool]] | None = None,
                             events: list[ReplayEventRecord] | None = None) -> SegmentRecord | None:
        """``Index.record_segment`` of the writer's segment (and its clicks, and the replay's
        ``events``) with its state version (StateConflict if the lock was lost meanwhile); the row
        it replaced, if any. Afterwards ``state`` is the new one."""

    # What a holder of the lock does with the objects of the replay that a row may no longer name,
    # on the writer's own connection: a writer never needs a second one (a full pool cannot stop it).

    async def blob_referenced(self, key: str) -> bool:
        """``Index.blob_referenced`` for the writer's replay."""

    async def keep_garbage(self, keys: list[str]) -> None:
        """``Index.keep_garbage`` for the writer's replay."""

    async def forget_garbage(self, key: str) -> None:
        """``Index.forget_garbage`` for the writer's replay."""


class Index(Protocol):
    async def check(self) -> None:
        """Raise if the database cannot be reached."""

    async def close(self) -> None: ...

    async def meta_get_or_create(self, key: str, make: Callable[[], str]) -> str:
        """The value kept under ``key``, made and kept on first use. Processes starting together
        on one database all get the same value."""

    async def meta_set(self, key: str, value: str) -> None: ...

    async def meta_replace(self, old_key: str, new_key: str, convert: Callable[[str], str]) -> bool:
        """Move ``old_key``'s value to ``new_key`` as ``convert(value)`` in one transaction, leaving
        no readable copy of the old value behind; False (nothing done) when ``old_key`` is absent."""

    # --- ingest ----------------------------------------------------------------------------

    async def record_replay_event(self, event: ReplayEventRecord) -> None:
        """Create the replay if new, fold the event in (``Replay.with_event``), link its error ids."""

    def replay_writer(self, project_id: int, replay_id: str, segment_id: int,
                      timeout: float) -> AbstractAsyncContextManager[ReplayWriter]:
        """The writer of segment ``segment_id``: hold the replay's segment lock for the block —
        one holder at a time across every process sharing the index — and read its scrubber state
        under it: what is scrubbed with that state inside the block cannot be overtaken by another
        segment of the replay. ReplayBusy when the lock is not had within ``timeout`` seconds. On
        PostgreSQL the lock is the session's: it ends with the block, or when the process dies
        (its connection closes)."""

    async def record_segment(self, segment: SegmentRecord, state: bytes, state_version: int,
                             clicks: list[ClickRecord] | None = None,
                             dead_earlier: list[tuple[int, int, bool]] | None = None,
                             events: list[ReplayEventRecord] | None = None) -> SegmentRecord | None:
        """Insert or replace the segment's row, fold it into its replay's totals (``Replay.with_segment``;
        a replaced row's share comes out) and keep ``state`` as the scrubber's state for the
        replay's next segment — if the stored state is still ``state_version`` (from ``get_state``),
        else raise StateConflict and write nothing. ``clicks`` given, ``record_clicks`` of them and
        ``dead_earlier`` in the same transaction (None leaves the segment's clicks as they are);
        ``events`` (the replay's, from the segment's envelope) are folded in after the segment as
        ``record_replay_event`` would, in the same transaction: one commit per envelope.
        Returns the row it replaced, if any."""

    async def get_state(self, project_id: int, replay_id: str) -> ScrubberState: ...

    async def link_errors(self, project_id: int, replay_id: str, event_ids: list[str]) -> None:
        """Link errors to a replay, whether the errors are stored yet or not."""

    async def record_error(self, error: ErrorRecord) -> bool:
        """Store an error, count it into its issue and link it to its replay; False (and nothing
        changed) when this event id is already stored."""

    async def segment_moved_to_store(self, project_id: int, replay_id: str, segment_id: int,
                                     blob_key: str | None = None) -> bool:
        """Mark a spooled segment as uploaded; False when its row is gone (the replay was deleted) or,
        ``blob_key`` given, names another blob now (the segment was stored again since)."""

    # --- read ------------------------------------------------------------------------------

    async def list_replays(self, project_id: int, query: ReplayQuery, *, offset: int = 0, limit: int = 50,
                           total_cap: int | None = None) -> tuple[list[Replay], int]:
        """A page of the replays that match, and how many match — counted up to one more than
        ``records.count_cap(offset, limit, total_cap)``, so a total above that means "more than it"."""

    async def get_replay(self, project_id: int, replay_id: str) -> ReplayDetail | None: ...

    async def get_segment(self, project_id: int, replay_id: str, segment_id: int) -> SegmentRecord | None: ...

    async def replay_errors(self, project_id: int, replay_id: str) -> list[ErrorRow]:
        """The stored errors linked to a replay, oldest first."""

    async def get_error(self, project_id: int, event_id: str) -> ErrorDetail | None: ...

    async def list_issues(self, project_id: int, *, offset: int = 0, limit: int = 50) -> tuple[list[IssueRow], int]:
        """A page of issues, last seen first, and how many there are."""

    # --- deletion and retention ------------------------------------------------------------

    def leader(self, name: str) -> AbstractAsyncContextManager[bool]:
        """Try to become the one process running the job ``name`` (retention, compaction) for the
        block: True if this one is, False (at once, no waiting) if another process is. Processes
        sharing the index are in the block as leader one at a time; a leader that dies lets go
        (PostgreSQL ends its session's lock), so the next try elsewhere takes over."""

    async def delete_replay(self, project_id: int, replay_id: str) -> bool:
        """Delete a replay's rows (segments, state, error links); False if there was no replay."""

    async def replays_older_than(self, cutoff: float, limit: int = 500) -> list[tuple[int, str]]:
        """(project id, replay id) of up to ``limit`` replays last written before ``cutoff``."""

    async def delete_errors_older_than(self, cutoff: float) -> int:
        """Delete errors received before ``cutoff``, then links and issues left without any; the count."""

    # --- compaction (server/compaction.py) -------------------------------------------------

    async def replays_to_compact(self, idle_before: float, long_seconds: float, long_idle_before: float, *,
                                 offset: int = 0, limit: int = 100) -> list[tuple[int, str]]:
        """(project id, replay id) of finished replays with a segment not compacted yet and none in the
        spool, least recently written first. Finished: nothing written since ``idle_before``, or at least
        ``long_seconds`` long and nothing written since ``long_idle_before``."""

    async def replay_segments(self, project_id: int, replay_id: str) -> list[SegmentRecord]:
        """Every segment row of a replay, in id order."""

    async def switch_to_compacted(self, project_id: int, replay_id: str, state_version: int,
                                  before: list[SegmentRecord], after: list[SegmentRecord],
                                  replaced_keys: list[str]) -> bool:
        """If the replay's segment rows are still exactly ``before`` and its scrubber state still
        ``state_version`` (read before them: every segment stored bumps it, even one identical to the
        row it replaces), in one transaction: write ``after``
        (the same segments, now in a compacted object), move the replay's stored bytes by the difference
        (its ``updated_at`` unchanged: retention counts from the last write received) and keep
        ``replaced_keys`` as garbage to delete. False, and nothing written, when a row changed, came or went."""

    async def garbage(self, limit: int = 500) -> list[tuple[int, str, str]]:
        """Objects replaced and not deleted yet (by compaction, a re-sent segment, a spool upload that
        lost to a re-send): (project id, replay id, key)."""

    async def keep_garbage(self, project_id: int, replay_id: str, keys: list[str]) -> None:
        """Note objects of the replay that may no longer be named by a row, to delete once none names them."""

    async def blob_referenced(self, project_id: int, replay_id: str, key: str) -> bool:
        """Whether a segment row of the replay points at ``key``."""

    async def forget_garbage(self, project_id: int, replay_id: str, key: str) -> None:
        """The object is deleted (or still in use): no longer garbage."""
    # --- clicks, search, erasure -------------------------------------------------------------

    async def record_clicks(self, project_id: int, replay_id: str, segment_id: int, clicks: list[ClickRecord],
                            dead_earlier: list[tuple[int, int, bool]]) -> None:
        """Replace a segment's clicks, mark earlier segments' clicks ``(segment id, seq)`` dead (a
        later segment decides them) and recount the replay's dead clicks, in one transaction."""

    async def click_moments(self, project_id: int, replay_ids: list[str], terms: list[Cond]) -> dict[str, float]:
        """For each replay, the time (s) of its first click that meets any of the search's click terms."""

    async def replay_clicks(self, project_id: int, replay_id: str) -> list[ClickRecord]:
        """A replay's indexed clicks in time order (at most 10,000), for the timeline."""

    async def top_selectors(self, project_id: int, kind: str, limit: int = 20) -> list[SelectorCount]:
        """The selectors of the project's ``dead`` or ``rage`` clicks, most clicked first."""

    async def user_replays(self, project_id: int, field: str, forms: list[str]) -> list[str]:
        """Ids of the replays whose user ``field`` (id, email, username) is one of ``forms``."""

    async def delete_user_errors(self, project_id: int, field: str, forms: list[str]) -> int:
        """Delete the errors whose user ``field`` is one of ``forms``, their links, and issues left
        empty (the others recounted), and the click texts no click has any more; how many errors."""

    async def add_audit(self, actor: str, action: str, project_id: int, detail: dict[str, Any]) -> None:
        """Keep who did what and when (``detail``: counts, never personal data)."""

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest audit rows, newest first."""
