"""The index in one SQLite file, used from one worker thread so the event loop never blocks on it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from ..search import Cond
from .click_values import click_values
from .local_locks import ReplayLocks, file_leader
from .migrations import MIGRATIONS
from .protocol import StateConflict
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
    error_in_replay,
    of_replay,
)
from .schema import pending_migrations
from .search_sql import Dialect, click_condition, compile_search, sort_expression
from .sql import ISSUE_TOTALS, like_pattern

T = TypeVar("T")
R = TypeVar("R")


def _columns(cls: type, *leave_out: str, table: str = "") -> str:
    """The columns named as the record's fields (less ``leave_out``), for a SELECT."""
    return ", ".join(table + f.name for f in dataclasses.fields(cls) if f.name not in leave_out)


# Columns are named as the records' fields, so a row becomes a record by name (``_record``).
# replays also has user_label: derived from user, kept as a column for the list's user filter.
REPLAY_STORED = tuple(f.name for f in dataclasses.fields(Replay) if f.name != "error_count")
REPLAY_COLUMNS = ", ".join([
    *REPLAY_STORED,
    "(SELECT COUNT(*) FROM replay_errors e WHERE e.project_id = replays.project_id "
    "AND e.replay_id = replays.replay_id) AS error_count",
])
SEGMENT_FIELDS = tuple(f.name for f in dataclasses.fields(SegmentRecord))
SEGMENT_COLUMNS = ", ".join(SEGMENT_FIELDS)
SEGMENT_ROW_COLUMNS = _columns(SegmentRow)
ERROR_ROW_COLUMNS = _columns(ErrorRow, table="e.")
ERROR_COLUMNS = _columns(ErrorDetail, "replay_id", "replay_offset", "replay_available", table="e.")
ISSUE_COLUMNS = _columns(IssueRow, "replay_count", "latest_event_id", table="i.")
JSON_COLUMNS = frozenset({"urls", "user", "scrub_report", "data"})
BOOL_COLUMNS = frozenset({"has_full_snapshot"})
DIALECT = Dialect(like="LIKE", errors="error_count", user_fields={
    name: f"json_extract({{t}}user, '$.{name}')" for name in ("id", "email", "username")})
CLICK_FIELDS = ("project_id", "replay_id", "segment_id", "seq", "timestamp", "node_id", "tag", "elem_id", "classes",
                "role", "label", "testid", "alt", "title", "text", "selector", "is_dead", "is_rage")


def _record(cls: type[R], row: sqlite3.Row, **extra: Any) -> R:
    """A record from a row whose columns are named as its fields; JSON and 0/1 columns decoded."""
    values: dict[str, Any] = {}
    for name, value in zip(row.keys(), row, strict=True):  # iterating a Row gives its values only
        if name in JSON_COLUMNS:
            value = json.loads(value)
        elif name in BOOL_COLUMNS:
            value = bool(value)
        values[name] = value
    return cls(**values, **extra)


def _column(record: Any, name: str) -> Any:
    value = getattr(record, name)
    if name in JSON_COLUMNS:
        return json.dumps(value)
    if name in BOOL_COLUMNS:
        return int(value)
    return value


def _set_wal(db: sqlite3.Connection, attempts: int = 50) -> None:
    """WAL mode. Nodes opening a new database together can find it locked while another switches it
    (SQLite answers that BUSY without waiting in its busy handler): try again for a few seconds."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)


class SQLiteIndex:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index")
        self._db: sqlite3.Connection | None = None
        self._replay_locks = ReplayLocks()

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteIndex:
        index = cls(path)
        try:
            await index._run(index._open)
        except BaseException:  # a refused schema, a failed migration: no connection left open behind it
            await index.close()
            raise
        return index

    def _open(self) -> None:
        self._make_private()
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        _set_wal(db)
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        self._db = db
        # the version is read inside the write lock, so processes starting together migrate once
        with self._transaction():
            for version, script in pending_migrations(db.execute("PRAGMA user_version").fetchone()[0], MIGRATIONS):
                for statement in _statements(script):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={version}")

    def _make_private(self) -> None:
        """The file holds the cookie key and the scrubbing secret: owner only (0600), also when an
        older replayd created it 0644. SQLite gives its -wal and -shm files the database's mode."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        for suffix in ("", "-wal", "-shm"):
            path = self.path.with_name(self.path.name + suffix)
            if path.exists():
                path.chmod(0o600)

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed when the block ends, rolled back when it raises.
        BEGIN IMMEDIATE takes the write lock first, so another process's writer waits instead of
        failing halfway."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(db)`` in one write transaction, on the index's thread."""

        def run() -> T:
            with self._transaction() as db:
                return fn(db)

        return await self._run(run)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._run(fn, self.db)

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "index is closed"
        return self._db

    async def check(self) -> None:
        await self._read(lambda db: db.execute("SELECT COUNT(*) FROM meta").fetchone())

    # --- meta: generated secrets and keys kept across restarts -------------------------------

    async def meta_get_or_create(self, key: str, make: Callable[[], str]) -> str:
        def run(db: sqlite3.Connection) -> str:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row:
                return str(row[0])
            value = make()
            db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            return value

        return await self._write(run)

    async def meta_set(self, key: str, value: str) -> None:
        await self._write(lambda db: db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                                (key, value)))

    async def meta_replace(self, old_key: str, new_key: str, convert: Callable[[str], str]) -> bool:
        """Also overwrites the old bytes on disk (secure_delete, then a WAL checkpoint)."""

        def run() -> bool:
            db = self.db
            secure_delete = db.execute("PRAGMA secure_delete").fetchone()[0]  # some builds default to 1
            db.execute("PRAGMA secure_delete=1")
            try:
                with self._transaction():
                    row = db.execute("SELECT value FROM meta WHERE key = ?", (old_key,)).fetchone()
                    if row is None:
                        return False
                    db.execute("DELETE FROM meta WHERE key = ?", (old_key,))
                    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (new_key, convert(row[0])))
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                db.execute(f"PRAGMA secure_delete={int(secure_delete)}")
            return True

        return await self._run(run)

    # --- ingest --------------------------------------------------------------------------

    @staticmethod
    def _replay(db: sqlite3.Connection, project_id: int, replay_id: str, now: float) -> Replay:
        """The stored replay (error_count left at 0: the merge rules do not use it), or a new one."""
        row = db.execute(
            f"SELECT {', '.join(REPLAY_STORED)} FROM replays WHERE project_id = ? AND replay_id = ?",
            (project_id, replay_id),
        ).fetchone()
        if row is None:
            return Replay(project_id=project_id, replay_id=replay_id, created_at=now)
        return _record(Replay, row)

    @staticmethod
    def _put_replay(db: sqlite3.Connection, replay: Replay, now: float) -> None:
        values = {c: _column(replay, c) for c in REPLAY_STORED}
        values |= {"updated_at": now, "user_label": replay.user_label}
        updated = [c for c in values if c not in ("project_id", "replay_id", "created_at")]
        db.execute(
            f"INSERT INTO replays ({', '.join(values)}) VALUES ({', '.join('?' * len(values))}) "
            f"ON CONFLICT (project_id, replay_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in updated)}",
            list(values.values()),
        )

    @staticmethod
    def _link(db: sqlite3.Connection, project_id: int, replay_id: str, event_ids: list[str]) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO replay_errors (project_id, replay_id, event_id) VALUES (?, ?, ?)",
            [(project_id, replay_id, event_id) for event_id in event_ids],
        )

    async def record_replay_event(self, event: ReplayEventRecord) -> None:
        def run(db: sqlite3.Connection) -> None:
            now = time.time()
            replay = self._replay(db, event.project_id, event.replay_id, now)
            self._put_replay(db, replay.with_event(event), now)
            self._link(db, event.project_id, event.replay_id, event.error_ids)

        await self._write(run)

    @staticmethod
    def _put_state(db: sqlite3.Connection, key: tuple[int, str], state: bytes, version: int) -> None:
        """Store the state as version + 1 if the stored one is still ``version`` (0: none yet)."""
        if version == 0:
            stored = db.execute(
                "INSERT OR IGNORE INTO replay_state (project_id, replay_id, state, version) VALUES (?, ?, ?, 1)",
                (*key, state),
            )
        else:
            stored = db.execute(
                "UPDATE replay_state SET state = ?, version = version + 1 "
                "WHERE project_id = ? AND replay_id = ? AND version = ?",
                (state, *key, version),
            )
        if stored.rowcount == 0:
            raise StateConflict(f"the scrubber state of replay {key[1]} is no longer version {version}")

    @contextlib.asynccontextmanager
    async def replay_writer(self, project_id: int, replay_id: str, segment_id: int,
                            timeout: float) -> AsyncIterator[_ReplayWriter]:
        """The lock is this process's (a SQLite index serves one process); the state version is
        still compared when the segment is recorded."""
        async with self._replay_locks.hold((project_id, replay_id), timeout):
            yield _ReplayWriter(self, (project_id, replay_id), await self.get_state(project_id, replay_id))

    @contextlib.asynccontextmanager
    async def leader(self, name: str) -> AsyncIterator[bool]:
        async with file_leader(self.path.with_name(f"{self.path.name}.leader-{name}")) as leading:
            yield leading

    async def record_segment(self, segment: SegmentRecord, state: bytes, state_version: int,
                             clicks: list[ClickRecord] | None = None,
                             dead_earlier: list[tuple[int, int, bool]] | None = None,
                             events: list[ReplayEventRecord] | None = None) -> SegmentRecord | None:
        key = (segment.project_id, segment.replay_id)
        events = of_replay(events, key)

        def run(db: sqlite3.Connection) -> SegmentRecord | None:
            now = time.time()
            self._put_state(db, key, state, state_version)
            replaced = db.execute(
                f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE project_id = ? AND replay_id = ? AND segment_id = ?",
                (*key, segment.segment_id),
            ).fetchone()
            db.execute(
                f"INSERT OR REPLACE INTO segments ({SEGMENT_COLUMNS}, created_at) "
                f"VALUES ({', '.join('?' * (len(SEGMENT_FIELDS) + 1))})",
                [*(_column(segment, c) for c in SEGMENT_FIELDS), now],
            )
            replay = self._replay(db, *key, now)
            old = _record(SegmentRecord, replaced) if replaced is not None else None
            replay = replay.with_segment(segment, old)
            for event in events:
                replay = replay.with_event(event)
            self._put_replay(db, replay, now)
            for event in events:
                self._link(db, *key, event.error_ids)
            if clicks is not None:  # after the replay row: the dead clicks are counted into it
                self._put_clicks(db, key, segment.segment_id, clicks, dead_earlier or [])
            return old

        return await self._write(run)

    async def get_state(self, project_id: int, replay_id: str) -> ScrubberState:
        def run(db: sqlite3.Connection) -> ScrubberState:
            row = db.execute(
                "SELECT state, version FROM replay_state WHERE project_id = ? AND replay_id = ?",
                (project_id, replay_id),
            ).fetchone()
            return ScrubberState(bytes(row[0]), row[1]) if row else ScrubberState()

        return await self._read(run)

    async def link_errors(self, project_id: int, replay_id: str, event_ids: list[str]) -> None:
        await self._write(lambda db: self._link(db, project_id, replay_id, event_ids))

    async def segment_moved_to_store(self, project_id: int, replay_id: str, segment_id: int,
                                     blob_key: str | None = None) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            return db.execute(
                "UPDATE segments SET location = 'store' WHERE project_id = ? AND replay_id = ? AND segment_id = ? "
                "AND (? IS NULL OR blob_key = ?)",
                (project_id, replay_id, segment_id, blob_key, blob_key),
            ).rowcount > 0

        return await self._write(run)

    async def record_error(self, error: ErrorRecord) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            if db.execute(
                "SELECT 1 FROM errors WHERE project_id = ? AND event_id = ?", (error.project_id, error.event_id)
            ).fetchone():
                return False
            # counting into the issue is the database's job: one upsert, whoever writes at once
            db.execute(
                """INSERT INTO issues (project_id, fingerprint, title, culprit, level, first_seen, last_seen, count)
                   VALUES (?, ?, ?, ?, ?, ?, ?, 1)
                   ON CONFLICT (project_id, fingerprint) DO UPDATE SET count = count + 1,
                   first_seen = MIN(first_seen, excluded.first_seen),
                   last_seen = MAX(last_seen, excluded.last_seen),
                   title = CASE WHEN excluded.last_seen >= last_seen THEN excluded.title ELSE title END""",
                (error.project_id, error.fingerprint, error.title, error.culprit, error.level,
                 error.timestamp, error.timestamp),
            )
            issue_id = db.execute(
                "SELECT id FROM issues WHERE project_id = ? AND fingerprint = ?", (error.project_id, error.fingerprint)
            ).fetchone()[0]
            db.execute(
                """INSERT INTO errors (project_id, event_id, issue_id, timestamp, level, type, value, message,
                   url, browser, os, replay_id, data, received_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    error.project_id, error.event_id, issue_id, error.timestamp, error.level, error.type,
                    error.value, error.message, error.url, error.browser, error.os, error.replay_id,
                    json.dumps(error.data), time.time(),
                ),
            )
            if error.replay_id:
                self._link(db, error.project_id, error.replay_id, [error.event_id])
            return True

        return await self._write(run)

    # --- read ----------------------------------------------------------------------------

    async def list_replays(self, project_id: int, query: ReplayQuery, *, offset: int = 0, limit: int = 50,
                           total_cap: int | None = None) -> tuple[list[Replay], int]:
        where = ["project_id = ?", "segment_count > 0"]
        args: list[Any] = [project_id]
        if query.has_errors is not None:
            where.append(("" if query.has_errors else "NOT ") + "EXISTS (SELECT 1 FROM replay_errors e "
                         "WHERE e.project_id = replays.project_id AND e.replay_id = replays.replay_id)")
        if query.url:
            where.append("urls LIKE ? ESCAPE '\\'")
            args.append(like_pattern(query.url))
        if query.user:
            where.append("(user_label LIKE ? ESCAPE '\\' OR user LIKE ? ESCAPE '\\')")
            args += [like_pattern(query.user)] * 2
        for value, condition in (
            (query.min_duration, "(ended_at - started_at) >= ?"),
            (query.max_duration, "(ended_at - started_at) <= ?"),
            (query.started_after, "started_at >= ?"),
            (query.started_before, "started_at < ?"),
        ):
            if value is not None:
                where.append(condition)
                args.append(value)
        if query.search is not None:
            def arg(value: Any) -> str:
                args.append(value)
                return "?"
            where.append(compile_search(query.search, DIALECT, arg, str(int(project_id))))
        direction = "DESC" if query.descending else "ASC"
        sql_where = " AND ".join(where)

        def run(db: sqlite3.Connection) -> tuple[list[Replay], int]:
            total = db.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM replays WHERE {sql_where} LIMIT ?)",
                               [*args, count_cap(offset, limit, total_cap) + 1]).fetchone()[0]
            rows = db.execute(
                f"SELECT {REPLAY_COLUMNS} FROM replays WHERE {sql_where} "
                f"ORDER BY {sort_expression(query.order, DIALECT)} {direction}, replay_id {direction} "
                "LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
            return [_record(Replay, r) for r in rows], total

        return await self._read(run)

    async def get_replay(self, project_id: int, replay_id: str) -> ReplayDetail | None:
        def run(db: sqlite3.Connection) -> ReplayDetail | None:
            key = (project_id, replay_id)
            row = db.execute(f"SELECT {REPLAY_COLUMNS} FROM replays WHERE project_id = ? AND replay_id = ?",
                             key).fetchone()
            if row is None:
                return None
            error_ids = [r[0] for r in db.execute(
                "SELECT event_id FROM replay_errors WHERE project_id = ? AND replay_id = ? ORDER BY event_id", key)]
            segments = [_record(SegmentRow, r) for r in db.execute(
                f"SELECT {SEGMENT_ROW_COLUMNS} FROM segments WHERE project_id = ? AND replay_id = ? "
                "ORDER BY segment_id", key)]
            return _record(ReplayDetail, row, error_ids=error_ids, segments=segments)

        return await self._read(run)

    async def get_segment(self, project_id: int, replay_id: str, segment_id: int) -> SegmentRecord | None:
        def run(db: sqlite3.Connection) -> SegmentRecord | None:
            row = db.execute(
                f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE project_id = ? AND replay_id = ? AND segment_id = ?",
                (project_id, replay_id, segment_id),
            ).fetchone()
            return _record(SegmentRecord, row) if row else None

        return await self._read(run)

    async def replay_errors(self, project_id: int, replay_id: str) -> list[ErrorRow]:
        def run(db: sqlite3.Connection) -> list[ErrorRow]:
            rows = db.execute(
                f"""SELECT {ERROR_ROW_COLUMNS}
                   FROM replay_errors l JOIN errors e ON e.project_id = l.project_id AND e.event_id = l.event_id
                   WHERE l.project_id = ? AND l.replay_id = ? ORDER BY e.timestamp""",
                (project_id, replay_id),
            ).fetchall()
            return [_record(ErrorRow, r) for r in rows]

        return await self._read(run)

    async def get_error(self, project_id: int, event_id: str) -> ErrorDetail | None:
        def run(db: sqlite3.Connection) -> ErrorDetail | None:
            row = db.execute(
                f"""SELECT {ERROR_COLUMNS},
                   COALESCE(e.replay_id, (SELECT l.replay_id FROM replay_errors l
                       WHERE l.project_id = e.project_id AND l.event_id = e.event_id LIMIT 1)) AS replay_id
                   FROM errors e WHERE e.project_id = ? AND e.event_id = ?""",
                (project_id, event_id),
            ).fetchone()
            if row is None:
                return None
            replay = db.execute(
                "SELECT started_at, segment_count FROM replays WHERE project_id = ? AND replay_id = ?",
                (project_id, row["replay_id"]),
            ).fetchone() if row["replay_id"] else None
            return _record(ErrorDetail, row, **error_in_replay(row["timestamp"], replay))

        return await self._read(run)

    async def list_issues(self, project_id: int, *, offset: int = 0, limit: int = 50) -> tuple[list[IssueRow], int]:
        def run(db: sqlite3.Connection) -> tuple[list[IssueRow], int]:
            total = db.execute("SELECT COUNT(*) FROM issues WHERE project_id = ?", (project_id,)).fetchone()[0]
            rows = db.execute(
                f"""SELECT {ISSUE_COLUMNS}, {ISSUE_TOTALS}
                   FROM issues i WHERE project_id = ? ORDER BY last_seen DESC, id DESC LIMIT ? OFFSET ?""",
                (project_id, limit, offset),
            ).fetchall()
            return [_record(IssueRow, r) for r in rows], total

        return await self._read(run)

    # --- deletion and retention ----------------------------------------------------------

    async def delete_replay(self, project_id: int, replay_id: str) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            key = (project_id, replay_id)
            texts = [r[0] for r in db.execute("SELECT DISTINCT text FROM clicks WHERE project_id = ? AND replay_id = ?",
                                              key)]
            deleted = db.execute("DELETE FROM replays WHERE project_id = ? AND replay_id = ?", key).rowcount
            for table in ("segments", "replay_state", "replay_errors", "clicks", "click_values", "blob_garbage"):
                db.execute(f"DELETE FROM {table} WHERE project_id = ? AND replay_id = ?", key)
            # its click texts no other click has go too (they may name someone): retention, DELETE, erase
            db.executemany("DELETE FROM click_texts WHERE project_id = ? AND text = ? AND NOT EXISTS "
                           "(SELECT 1 FROM clicks c WHERE c.project_id = ? AND c.text = ?)",
                           [(project_id, t, project_id, t) for t in texts])
            return deleted > 0

        return await self._write(run)

    async def replays_older_than(self, cutoff: float, limit: int = 500) -> list[tuple[int, str]]:
        def run(db: sqlite3.Connection) -> list[tuple[int, str]]:
            rows = db.execute("SELECT project_id, replay_id FROM replays WHERE updated_at < ? LIMIT ?",
                              (cutoff, limit)).fetchall()
            return [(r[0], r[1]) for r in rows]

        return await self._read(run)

    async def delete_errors_older_than(self, cutoff: float) -> int:
        def run(db: sqlite3.Connection) -> int:
            deleted = db.execute("DELETE FROM errors WHERE received_at < ?", (cutoff,)).rowcount
            db.execute(
                "DELETE FROM replay_errors WHERE NOT EXISTS (SELECT 1 FROM errors e WHERE "
                "e.project_id = replay_errors.project_id AND e.event_id = replay_errors.event_id) "
                "AND NOT EXISTS (SELECT 1 FROM replays r WHERE r.project_id = replay_errors.project_id "
                "AND r.replay_id = replay_errors.replay_id)"
            )
            db.execute("DELETE FROM issues WHERE NOT EXISTS (SELECT 1 FROM errors e WHERE e.issue_id = issues.id)")
            return deleted

        return await self._write(run)

    # --- compaction ------------------------------------------------------------------------

    async def replays_to_compact(self, idle_before: float, long_seconds: float, long_idle_before: float, *,
                                 offset: int = 0, limit: int = 100) -> list[tuple[int, str]]:
        def run(db: sqlite3.Connection) -> list[tuple[int, str]]:
            rows = db.execute(
                """SELECT project_id, replay_id FROM replays r
                   WHERE (project_id, replay_id) IN (SELECT project_id, replay_id FROM segments
                                                     WHERE chunk_start IS NULL)
                   AND (updated_at < ? OR (ended_at - started_at >= ? AND updated_at < ?))
                   AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.project_id = r.project_id
                                   AND s.replay_id = r.replay_id AND s.location = 'spool')
                   ORDER BY updated_at, project_id, replay_id LIMIT ? OFFSET ?""",
                (idle_before, long_seconds, long_idle_before, limit, offset),
            ).fetchall()
            return [(r[0], r[1]) for r in rows]

        return await self._read(run)

    @staticmethod
    def _segments(db: sqlite3.Connection, project_id: int, replay_id: str) -> list[SegmentRecord]:
        return [_record(SegmentRecord, r) for r in db.execute(
            f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE project_id = ? AND replay_id = ? ORDER BY segment_id",
            (project_id, replay_id))]

    async def replay_segments(self, project_id: int, replay_id: str) -> list[SegmentRecord]:
        return await self._read(lambda db: self._segments(db, project_id, replay_id))

    async def switch_to_compacted(self, project_id: int, replay_id: str, state_version: int,
                                  before: list[SegmentRecord], after: list[SegmentRecord],
                                  replaced_keys: list[str]) -> bool:
        key = (project_id, replay_id)

        def run(db: sqlite3.Connection) -> bool:
            version = db.execute("SELECT version FROM replay_state WHERE project_id = ? AND replay_id = ?",
                                 key).fetchone()
            if (version[0] if version else 0) != state_version or self._segments(db, *key) != before:
                return False
            now = time.time()
            for segment in after:
                db.execute(
                    f"UPDATE segments SET {', '.join(f'{c} = ?' for c in SEGMENT_FIELDS[3:])} "
                    "WHERE project_id = ? AND replay_id = ? AND segment_id = ?",
                    [*(_column(segment, c) for c in SEGMENT_FIELDS[3:]), *key, segment.segment_id],
                )
            moved = sum(s.stored_bytes for s in after) - sum(s.stored_bytes for s in before)
            db.execute("UPDATE replays SET stored_bytes = stored_bytes + ? WHERE project_id = ? AND replay_id = ?",
                       (moved, *key))
            db.executemany(
                "INSERT OR IGNORE INTO blob_garbage (project_id, replay_id, blob_key, created_at) VALUES (?, ?, ?, ?)",
                [(*key, k, now) for k in replaced_keys],
            )
            return True

        return await self._write(run)

    async def garbage(self, limit: int = 500) -> list[tuple[int, str, str]]:
        def run(db: sqlite3.Connection) -> list[tuple[int, str, str]]:
            rows = db.execute("SELECT project_id, replay_id, blob_key FROM blob_garbage ORDER BY created_at LIMIT ?",
                              (limit,)).fetchall()
            return [(r[0], r[1], r[2]) for r in rows]

        return await self._read(run)

    async def keep_garbage(self, project_id: int, replay_id: str, keys: list[str]) -> None:
        now = time.time()
        await self._write(lambda db: db.executemany(
            "INSERT OR IGNORE INTO blob_garbage (project_id, replay_id, blob_key, created_at) VALUES (?, ?, ?, ?)",
            [(project_id, replay_id, k, now) for k in keys]))

    async def blob_referenced(self, project_id: int, replay_id: str, key: str) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            return db.execute("SELECT 1 FROM segments WHERE project_id = ? AND replay_id = ? AND blob_key = ? LIMIT 1",
                              (project_id, replay_id, key)).fetchone() is not None

        return await self._read(run)

    async def forget_garbage(self, project_id: int, replay_id: str, key: str) -> None:
        await self._write(lambda db: db.execute(
            "DELETE FROM blob_garbage WHERE project_id = ? AND replay_id = ? AND blob_key = ?",
            (project_id, replay_id, key)))


    # --- clicks, search, erasure -----------------------------------------------------------

    async def record_clicks(self, project_id: int, replay_id: str, segment_id: int, clicks: list[ClickRecord],
                            dead_earlier: list[tuple[int, int, bool]]) -> None:
        await self._write(lambda db: self._put_clicks(db, (project_id, replay_id), segment_id, clicks, dead_earlier))

    @staticmethod
    def _put_clicks(db: sqlite3.Connection, key: tuple[int, str], segment_id: int, clicks: list[ClickRecord],
                    dead_earlier: list[tuple[int, int, bool]]) -> None:
        db.execute("DELETE FROM clicks WHERE project_id = ? AND replay_id = ? AND segment_id = ?", (*key, segment_id))
        db.executemany(
            f"INSERT INTO clicks ({', '.join(CLICK_FIELDS)}) VALUES ({', '.join('?' * len(CLICK_FIELDS))})",
            [(*key, segment_id, c.seq, c.timestamp, c.node_id, c.tag, c.elem_id, c.classes, c.role, c.label,
              c.testid, c.alt, c.title, c.text, c.selector, int(c.is_dead), int(c.is_rage)) for c in clicks])
        db.executemany("INSERT OR IGNORE INTO click_texts (project_id, text) VALUES (?, ?)",
                       [(key[0], t) for t in {c.text for c in clicks}])
        db.executemany("INSERT OR IGNORE INTO click_values (project_id, replay_id, field, value) VALUES (?, ?, ?, ?)",
                       [(*key, field, value) for field, value in click_values(clicks)])
        db.executemany("UPDATE clicks SET is_dead = 1, is_rage = ? WHERE project_id = ? AND replay_id = ? "
                       "AND segment_id = ? AND seq = ?",
                       [(int(rage), *key, seg, seq) for seg, seq, rage in dead_earlier])
        # rage clicks are decided with dead ones (a later segment may): both counts from the clicks
        db.execute("UPDATE replays SET (dead_click_count, rage_click_count) = (SELECT COALESCE(SUM(is_dead), 0), "
                   "COALESCE(SUM(is_rage), 0) FROM clicks WHERE project_id = ? AND replay_id = ?) "
                   "WHERE project_id = ? AND replay_id = ?", (*key, *key))

    async def click_moments(self, project_id: int, replay_ids: list[str], terms: list[Cond]) -> dict[str, float]:
        if not replay_ids or not terms:
            return {}
        args: list[Any] = [project_id, *replay_ids]

        def arg(value: Any) -> str:
            args.append(value)
            return "?"

        sql = (f"SELECT c.replay_id, MIN(c.timestamp) FROM clicks c WHERE c.project_id = ? AND c.replay_id IN "
               f"({', '.join('?' * len(replay_ids))}) AND {click_condition(terms, DIALECT, arg)} GROUP BY c.replay_id")
        return await self._read(lambda db: {r[0]: r[1] for r in db.execute(sql, args)})

    async def replay_clicks(self, project_id: int, replay_id: str) -> list[ClickRecord]:
        fields = ", ".join(CLICK_FIELDS[3:15] + CLICK_FIELDS[16:])

        def run(db: sqlite3.Connection) -> list[ClickRecord]:
            rows = db.execute(f"SELECT {fields} FROM clicks WHERE project_id = ? AND replay_id = ? "
                              "ORDER BY timestamp, segment_id, seq LIMIT 10000", (project_id, replay_id))
            names = CLICK_FIELDS[3:15] + CLICK_FIELDS[16:]
            values: list[dict[str, Any]] = [dict(zip(names, r, strict=True)) for r in rows]
            return [ClickRecord(**{**v, "is_dead": bool(v["is_dead"]), "is_rage": bool(v["is_rage"])}) for v in values]

        return await self._read(run)

    async def top_selectors(self, project_id: int, kind: str, limit: int = 20) -> list[SelectorCount]:
        flag = {"dead": "is_dead", "rage": "is_rage"}[kind]

        def run(db: sqlite3.Connection) -> list[SelectorCount]:
            rows = db.execute(
                f"SELECT selector, COUNT(*), COUNT(DISTINCT replay_id) FROM clicks WHERE project_id = ? AND {flag} "
                "GROUP BY selector ORDER BY COUNT(*) DESC, selector LIMIT ?", (project_id, limit))
            return [SelectorCount(*r) for r in rows]

        return await self._read(run)

    async def user_replays(self, project_id: int, field: str, forms: list[str]) -> list[str]:
        column = DIALECT.user_fields[field].format(t="")
        values: list[Any] = [*forms, *(int(f) for f in forms if f.isdigit() and len(f) < 19)]

        def run(db: sqlite3.Connection) -> list[str]:
            return [r[0] for r in db.execute(
                f"SELECT replay_id FROM replays WHERE project_id = ? AND {column} IN ({', '.join('?' * len(values))}) "
                "ORDER BY replay_id", (project_id, *values))]

        return await self._read(run)

    async def delete_user_errors(self, project_id: int, field: str, forms: list[str]) -> int:
        values: list[Any] = [*forms, *(int(f) for f in forms if f.isdigit() and len(f) < 19)]

        def run(db: sqlite3.Connection) -> int:
            ids = [r[0] for r in db.execute(
                f"SELECT event_id FROM errors WHERE project_id = ? AND json_extract(data, '$.user.{field}') "
                f"IN ({', '.join('?' * len(values))})", (project_id, *values))]
            for event_id in ids:
                db.execute("DELETE FROM errors WHERE project_id = ? AND event_id = ?", (project_id, event_id))
                db.execute("DELETE FROM replay_errors WHERE project_id = ? AND event_id = ?", (project_id, event_id))
            # issues left without an error go; the others count what is left
            db.execute("DELETE FROM issues WHERE project_id = ? AND NOT EXISTS "
                       "(SELECT 1 FROM errors e WHERE e.issue_id = issues.id)", (project_id,))
            db.execute("UPDATE issues SET count = (SELECT COUNT(*) FROM errors e WHERE e.issue_id = issues.id) "
                       "WHERE project_id = ?", (project_id,))
            # click texts no click has any more (they may name the user) go too
            db.execute("DELETE FROM click_texts WHERE project_id = ? AND NOT EXISTS (SELECT 1 FROM clicks c "
                       "WHERE c.project_id = click_texts.project_id AND c.text = click_texts.text)", (project_id,))
            return len(ids)

        return await self._write(run)

    async def add_audit(self, actor: str, action: str, project_id: int, detail: dict[str, Any]) -> None:
        await self._write(lambda db: db.execute(
            "INSERT INTO audit (at, actor, action, project_id, detail) VALUES (?, ?, ?, ?, ?)",
            (time.time(), actor, action, project_id, json.dumps(detail))))

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        def run(db: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = db.execute("SELECT at, actor, action, project_id, detail FROM audit ORDER BY id DESC LIMIT ?",
                              (limit,))
            return [{"at": r[0], "actor": r[1], "action": r[2], "project_id": r[3], "detail": json.loads(r[4])}
                    for r in rows]

        return await self._read(run)


def _statements(script: str) -> list[str]:
    """A migration's statements, one by one (``executescript`` would commit the open transaction)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s.strip(" ;\n")]


class _ReplayWriter:
    """What ``SQLiteIndex.replay_writer`` yields."""

    def __init__(self, index: SQLiteIndex, replay: tuple[int, str], state: ScrubberState):
        self._index = index
        self._replay = replay
        self.state = state

    async def record_segment(self, segment: SegmentRecord, state: bytes, clicks: list[ClickRecord] | None = None,
                             dead_earlier: list[tuple[int, int, bool]] | None = None,
                             events: list[ReplayEventRecord] | None = None) -> SegmentRecord | None:
        old = await self._index.record_segment(segment, state, self.state.version, clicks, dead_earlier, events)
        self.state = ScrubberState(state, self.state.version + 1)
        return old

    async def blob_referenced(self, key: str) -> bool:
        return await self._index.blob_referenced(*self._replay, key)

    async def keep_garbage(self, keys: list[str]) -> None:
        await self._index.keep_garbage(*self._replay, keys)

    async def forget_garbage(self, key: str) -> None:
        await self._index.forget_garbage(*self._replay, key)
