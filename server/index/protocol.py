"""The index interface: every backend implements ``Index`` and passes tests/test_index.py.

A backend stores rows and answers queries; how a replay's pieces add up is decided by the records
(``Replay.with_event``, ``Replay.with_segment``), which a backend applies inside its own
transaction. Every write method is one transaction: all of it happens or none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .records import (
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
)


class StateConflict(Exception):
    """The replay's scrubber state is no longer the version the segment was scrubbed with: another
    writer stored a segment of the replay meanwhile (or deleted the replay). Nothing was written;
    the segment must be scrubbed again with the current state."""


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

    async def record_segment(self, segment: SegmentRecord, state: bytes, state_version: int) -> None:
        """Insert or replace the segment's row, fold it into its replay's totals (``Replay.with_segment``;
        a replaced row's share comes out) and keep ``state`` as the scrubber's state for the
        replay's next segment — if the stored state is still ``state_version`` (from ``get_state``),
        else raise StateConflict and write nothing."""

    async def get_state(self, project_id: int, replay_id: str) -> ScrubberState: ...

    async def link_errors(self, project_id: int, replay_id: str, event_ids: list[str]) -> None:
        """Link errors to a replay, whether the errors are stored yet or not."""

    async def record_error(self, error: ErrorRecord) -> bool:
        """Store an error, count it into its issue and link it to its replay; False (and nothing
        changed) when this event id is already stored."""

    async def segment_moved_to_store(self, project_id: int, replay_id: str, segment_id: int) -> bool:
        """Mark a spooled segment as uploaded; False when its row is gone (the replay was deleted)."""

    # --- read ------------------------------------------------------------------------------

    async def list_replays(self, project_id: int, query: ReplayQuery, *, offset: int = 0,
                           limit: int = 50) -> tuple[list[Replay], int]:
        """A page of the replays that match, and how many match in all."""

    async def get_replay(self, project_id: int, replay_id: str) -> ReplayDetail | None: ...

    async def get_segment(self, project_id: int, replay_id: str, segment_id: int) -> SegmentRecord | None: ...

    async def replay_errors(self, project_id: int, replay_id: str) -> list[ErrorRow]:
        """The stored errors linked to a replay, oldest first."""

    async def get_error(self, project_id: int, event_id: str) -> ErrorDetail | None: ...

    async def list_issues(self, project_id: int, *, offset: int = 0, limit: int = 50) -> tuple[list[IssueRow], int]:
        """A page of issues, last seen first, and how many there are."""

    # --- deletion and retention ------------------------------------------------------------

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
        """Objects compaction replaced and has not deleted yet: (project id, replay id, key)."""

    async def blob_referenced(self, project_id: int, replay_id: str, key: str) -> bool:
        """Whether a segment row of the replay points at ``key``."""

    async def forget_garbage(self, project_id: int, replay_id: str, key: str) -> None:
        """The object is deleted (or still in use): no longer garbage."""
