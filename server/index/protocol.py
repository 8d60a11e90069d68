"""The index interface: every backend implements ``Index`` and passes tests/test_index.py.

A backend stores rows and answers queries; how a replay's pieces add up is decided by the records
(``Replay.with_event``, ``Replay.with_segment``), which a backend applies inside its own
transaction. Every write method is one transaction: all of it happens or none.
"""

from __future__ import annotations

from collections.abc import Callable
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

    # --- clicks, search, erasure -------------------------------------------------------------

    async def record_clicks(self, project_id: int, replay_id: str, segment_id: int, clicks: list[ClickRecord],
                            dead_earlier: list[tuple[int, int]]) -> None:
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
