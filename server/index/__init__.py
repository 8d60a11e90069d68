"""The index: replays, segments, errors and issues — one interface, ``Index``, and its backends.

Everything outside this package talks to an ``Index`` (``protocol``) with the records of
``records`` in and out; only ``open_index`` knows which database answers, from ``index.url``:
SQLite (``sqlite:///PATH``, one file: the default) or PostgreSQL (``postgresql://...``, which several
nodes share). tests/test_index.py is the suite every backend passes.
"""

from __future__ import annotations

from ..config import IndexConfig, index_backend, sqlite_path
from .postgres import PostgresIndex
from .protocol import Index, IndexBusy, ReplayBusy, ReplayWriter, StateConflict
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
    SegmentRow,
    SelectorCount,
    count_cap,
    user_label,
)
from .sqlite import SQLiteIndex

__all__ = [
    "ClickRecord",
    "ErrorDetail",
    "ErrorRecord",
    "ErrorRow",
    "Index",
    "IndexBusy",
    "IssueRow",
    "Replay",
    "ReplayBusy",
    "ReplayDetail",
    "ReplayEventRecord",
    "ReplayQuery",
    "ReplayWriter",
    "ScrubberState",
    "SegmentRecord",
    "SegmentRow",
    "SelectorCount",
    "StateConflict",
    "count_cap",
    "open_index",
    "user_label",
]


async def open_index(config: IndexConfig) -> Index:
    """The backend ``config.url`` names, opened and migrated; ValueError for a URL none takes."""
    try:
        backend = index_backend(config.url)
    except ValueError as exc:
        raise ValueError(f"index.url: {exc}") from None
    if backend == "sqlite":
        return await SQLiteIndex.open(sqlite_path(config.url))
    return await PostgresIndex.open(config.url, min_size=config.pool_min_size, max_size=config.pool_max_size,
                                    acquire_timeout=config.pool_acquire_timeout)
