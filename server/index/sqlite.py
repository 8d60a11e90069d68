"""The index in one SQLite file, used from one worker thread so the event loop never blocks on it."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

from .migrations import MIGRATIONS
from .records import ErrorRecord, ReplayEventRecord, SegmentRecord

T = TypeVar("T")

REPLAY_COLUMNS = (
    "project_id, replay_id, started_at, ended_at, segment_count, raw_bytes, stored_bytes, urls, user, "
    "browser, os, device, replay_type, environment, release, sdk, click_count, rage_click_count, "
    "scrub_report, created_at, updated_at, "
    "(SELECT COUNT(*) FROM replay_errors e WHERE e.project_id = replays.project_id "
    "AND e.replay_id = replays.replay_id) AS error_count"
)
SORTABLE = {
    "started_at": "started_at",
    "duration": "(ended_at - started_at)",
    "error_count": "error_count",
    "segment_count": "segment_count",
}


def _replay_row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for name in ("urls", "user", "scrub_report"):
        out[name] = json.loads(out[name])
    start, end = out["started_at"], out["ended_at"]
    out["duration"] = round(end - start, 3) if start is not None and end is not None else 0.0
    return out


class SQLiteIndex:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index")
        self._db: sqlite3.Connection | None = None

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | Path) -> "SQLiteIndex":
        index = cls(path)
        await index._run(index._open)
        return index

    def _open(self) -> None:
        self._make_private()
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise RuntimeError(f"index schema version {version} is newer than this replayd ({len(MIGRATIONS)})")
        for number in range(version, len(MIGRATIONS)):
            db.executescript("BEGIN;" + MIGRATIONS[number] + f"; PRAGMA user_version={number + 1}; COMMIT;")
        self._db = db

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

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "index is closed"
        return self._db

    async def check(self) -> None:
        await self._run(lambda: self.db.execute("SELECT COUNT(*) FROM meta").fetchone())

    # --- meta: generated secrets and keys kept across restarts -------------------------------

    async def meta_get_or_create(self, key: str, make: Callable[[], str]) -> str:
        def run() -> str:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row:
                return row[0]
            value = make()
            self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
            return value

        return await self._run(run)

    async def meta_set(self, key: str, value: str) -> None:
        await self._run(self.db.execute, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    async def meta_replace(self, old_key: str, new_key: str, convert: Callable[[str], str]) -> bool:
        """Move ``old_key``'s value to ``new_key`` as ``convert(value)`` in one transaction, and
        overwrite the old bytes on disk (secure_delete, WAL checkpoint); False when absent."""

        def run() -> bool:
            db = self.db
            row = db.execute("SELECT value FROM meta WHERE key = ?", (old_key,)).fetchone()
            if row is None:
                return False
            new_value = convert(row[0])
            secure_delete = db.execute("PRAGMA secure_delete").fetchone()[0]  # some builds default to 1
            db.execute("PRAGMA secure_delete=1")
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute("DELETE FROM meta WHERE key = ?", (old_key,))
                    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (new_key, new_value))
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                db.execute(f"PRAGMA secure_delete={int(secure_delete)}")
            return True

        return await self._run(run)

    # --- ingest --------------------------------------------------------------------------

    def _ensure_replay(self, project_id: int, replay_id: str, now: float) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO replays (project_id, replay_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
            (project_id, replay_id, now, now),
        )

    async def record_replay_event(self, rec: ReplayEventRecord) -> None:
        def run() -> None:
            now = time.time()
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                self._ensure_replay(rec.project_id, rec.replay_id, now)
                row = db.execute(
                    "SELECT urls, started_at, ended_at FROM replays WHERE project_id = ? AND replay_id = ?",
                    (rec.project_id, rec.replay_id),
                ).fetchone()
                urls = json.loads(row["urls"])
                for url in rec.urls:
                    if url not in urls and len(urls) < 500:
                        urls.append(url)
                starts = [t for t in (row["started_at"], rec.started_at, rec.timestamp) if t is not None]
                ends = [t for t in (row["ended_at"], rec.timestamp) if t is not None]
                user_label = next(
                    (str(rec.user[k]) for k in ("username", "id", "email", "ip_address") if rec.user.get(k)), ""
                )
                db.execute(
                    """UPDATE replays SET urls = ?, started_at = ?, ended_at = ?, updated_at = ?,
                       user = CASE WHEN ? != '{}' THEN ? ELSE user END,
                       user_label = CASE WHEN ? != '' THEN ? ELSE user_label END,
                       browser = CASE WHEN ? != '' THEN ? ELSE browser END,
                       os = CASE WHEN ? != '' THEN ? ELSE os END,
                       device = CASE WHEN ? != '' THEN ? ELSE device END,
                       replay_type = CASE WHEN ? = 0 OR replay_type = '' THEN ? ELSE replay_type END,
                       environment = CASE WHEN ? != '' THEN ? ELSE environment END,
                       release = CASE WHEN ? != '' THEN ? ELSE release END,
                       sdk = CASE WHEN ? != '' THEN ? ELSE sdk END
                       WHERE project_id = ? AND replay_id = ?""",
                    (
                        json.dumps(urls), min(starts) if starts else None, max(ends) if ends else None, now,
                        json.dumps(rec.user), json.dumps(rec.user), user_label, user_label,
                        rec.browser, rec.browser, rec.os, rec.os, rec.device, rec.device,
                        rec.segment_id, rec.replay_type, rec.environment, rec.environment,
                        rec.release, rec.release, rec.sdk, rec.sdk,
                        rec.project_id, rec.replay_id,
                    ),
                )
                db.executemany(
                    "INSERT OR IGNORE INTO replay_errors (project_id, replay_id, event_id) VALUES (?, ?, ?)",
                    [(rec.project_id, rec.replay_id, event_id) for event_id in rec.error_ids],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(run)

    async def record_segment(self, rec: SegmentRecord, state: bytes | None = None) -> None:
        """Insert or replace the segment row and recompute the replay's totals from its segments;
        in the same transaction, keep the scrubber's state for the replay's next segment."""

        def run() -> None:
            now = time.time()
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                self._ensure_replay(rec.project_id, rec.replay_id, now)
                db.execute(
                    """INSERT OR REPLACE INTO segments (project_id, replay_id, segment_id, blob_key, codec,
                       started_at, ended_at, event_count, raw_bytes, stored_bytes, has_full_snapshot,
                       click_count, rage_click_count, scrub_report, created_at, location)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        rec.project_id, rec.replay_id, rec.segment_id, rec.blob_key, rec.codec,
                        rec.started_at, rec.ended_at, rec.event_count, rec.raw_bytes, rec.stored_bytes,
                        int(rec.has_full_snapshot), rec.click_count, rec.rage_click_count,
                        json.dumps(rec.scrub_report), now, rec.location,
                    ),
                )
                self._refresh_totals(rec.project_id, rec.replay_id, now)
                if state is not None:
                    db.execute(
                        "INSERT OR REPLACE INTO replay_state (project_id, replay_id, state) VALUES (?, ?, ?)",
                        (rec.project_id, rec.replay_id, state),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(run)

    def _refresh_totals(self, project_id: int, replay_id: str, now: float) -> None:
        db = self.db
        totals = db.execute(
            """SELECT COUNT(*) AS n, SUM(raw_bytes) AS raw, SUM(stored_bytes) AS stored,
               MIN(started_at) AS start, MAX(ended_at) AS end,
               SUM(click_count) AS clicks, SUM(rage_click_count) AS rage
               FROM segments WHERE project_id = ? AND replay_id = ?""",
            (project_id, replay_id),
        ).fetchone()
        report: dict[str, Any] = {}
        for (text,) in db.execute(
            "SELECT scrub_report FROM segments WHERE project_id = ? AND replay_id = ?", (project_id, replay_id)
        ):
            _merge_report(report, json.loads(text))
        db.execute(
            """UPDATE replays SET segment_count = ?, raw_bytes = ?, stored_bytes = ?,
               started_at = CASE WHEN started_at IS NULL OR ? < started_at THEN ? ELSE started_at END,
               ended_at = CASE WHEN ended_at IS NULL OR ? > ended_at THEN ? ELSE ended_at END,
               click_count = ?, rage_click_count = ?, scrub_report = ?, updated_at = ?
               WHERE project_id = ? AND replay_id = ?""",
            (
                totals["n"], totals["raw"] or 0, totals["stored"] or 0,
                totals["start"], totals["start"], totals["end"], totals["end"],
                totals["clicks"] or 0, totals["rage"] or 0, json.dumps(report), now,
                project_id, replay_id,
            ),
        )

    async def link_errors(self, project_id: int, replay_id: str, event_ids: list[str]) -> None:
        await self._run(
            self.db.executemany,
            "INSERT OR IGNORE INTO replay_errors (project_id, replay_id, event_id) VALUES (?, ?, ?)",
            [(project_id, replay_id, event_id) for event_id in event_ids],
        )

    async def get_state(self, project_id: int, replay_id: str) -> bytes | None:
        def run() -> bytes | None:
            row = self.db.execute(
                "SELECT state FROM replay_state WHERE project_id = ? AND replay_id = ?", (project_id, replay_id)
            ).fetchone()
            return bytes(row[0]) if row else None

        return await self._run(run)

    async def segment_moved_to_store(self, project_id: int, replay_id: str, segment_id: int) -> bool:
        """Mark a spooled segment as uploaded; False when its row is gone (the replay was deleted)."""

        def run() -> bool:
            return self.db.execute(
                "UPDATE segments SET location = 'store' WHERE project_id = ? AND replay_id = ? AND segment_id = ?",
                (project_id, replay_id, segment_id),
            ).rowcount > 0

        return await self._run(run)

    async def segment_exists(self, project_id: int, replay_id: str, segment_id: int) -> bool:
        def run() -> bool:
            return self.db.execute(
                "SELECT 1 FROM segments WHERE project_id = ? AND replay_id = ? AND segment_id = ?",
                (project_id, replay_id, segment_id),
            ).fetchone() is not None

        return await self._run(run)

    async def record_error(self, rec: ErrorRecord) -> bool:
        """Store an error and count it into its issue; False when this event id was already stored."""

        def run() -> bool:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                if db.execute(
                    "SELECT 1 FROM errors WHERE project_id = ? AND event_id = ?", (rec.project_id, rec.event_id)
                ).fetchone():
                    db.execute("COMMIT")
                    return False
                db.execute(
                    """INSERT INTO issues (project_id, fingerprint, title, culprit, level, first_seen, last_seen, count)
                       VALUES (?, ?, ?, ?, ?, ?, ?, 1)
                       ON CONFLICT (project_id, fingerprint) DO UPDATE SET count = count + 1,
                       first_seen = MIN(first_seen, excluded.first_seen),
                       last_seen = MAX(last_seen, excluded.last_seen),
                       title = CASE WHEN excluded.last_seen >= last_seen THEN excluded.title ELSE title END""",
                    (rec.project_id, rec.fingerprint, rec.title, rec.culprit, rec.level, rec.timestamp, rec.timestamp),
                )
                issue_id = db.execute(
                    "SELECT id FROM issues WHERE project_id = ? AND fingerprint = ?", (rec.project_id, rec.fingerprint)
                ).fetchone()[0]
                db.execute(
                    """INSERT INTO errors (project_id, event_id, issue_id, timestamp, level, type, value, message,
                       url, browser, os, replay_id, data, received_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        rec.project_id, rec.event_id, issue_id, rec.timestamp, rec.level, rec.type, rec.value,
                        rec.message, rec.url, rec.browser, rec.os, rec.replay_id, json.dumps(rec.data), time.time(),
                    ),
                )
                if rec.replay_id:
                    db.execute(
                        "INSERT OR IGNORE INTO replay_errors (project_id, replay_id, event_id) VALUES (?, ?, ?)",
                        (rec.project_id, rec.replay_id, rec.event_id),
                    )
                db.execute("COMMIT")
                return True
            except BaseException:
                db.execute("ROLLBACK")
                raise

        return await self._run(run)

    # --- read ----------------------------------------------------------------------------

    async def list_replays(
        self,
        project_id: int,
        *,
        has_errors: bool | None = None,
        url: str | None = None,
        user: str | None = None,
        min_duration: float | None = None,
        max_duration: float | None = None,
        started_after: float | None = None,
        started_before: float | None = None,
        sort: str = "started_at",
        descending: bool = True,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], int]:
        """Replays with at least one segment, filtered and sorted; also the total that matched."""
        where = ["project_id = ?", "segment_count > 0"]
        args: list[Any] = [project_id]
        if has_errors is not None:
            where.append(("" if has_errors else "NOT ") + "EXISTS (SELECT 1 FROM replay_errors e "
                         "WHERE e.project_id = replays.project_id AND e.replay_id = replays.replay_id)")
        if url:
            where.append("urls LIKE ? ESCAPE '\\'")
            args.append("%" + _like_escape(url) + "%")
        if user:
            where.append("(user_label LIKE ? ESCAPE '\\' OR user LIKE ? ESCAPE '\\')")
            args += ["%" + _like_escape(user) + "%"] * 2
        if min_duration is not None:
            where.append("(ended_at - started_at) >= ?")
            args.append(min_duration)
        if max_duration is not None:
            where.append("(ended_at - started_at) <= ?")
            args.append(max_duration)
        if started_after is not None:
            where.append("started_at >= ?")
            args.append(started_after)
        if started_before is not None:
            where.append("started_at < ?")
            args.append(started_before)
        order = SORTABLE.get(sort, "started_at")
        direction = "DESC" if descending else "ASC"
        sql_where = " AND ".join(where)

        def run() -> tuple[list[dict[str, Any]], int]:
            total = self.db.execute(f"SELECT COUNT(*) FROM replays WHERE {sql_where}", args).fetchone()[0]
            rows = self.db.execute(
                f"SELECT {REPLAY_COLUMNS} FROM replays WHERE {sql_where} "
                f"ORDER BY {order} {direction}, replay_id {direction} LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
            return [_replay_row(r) for r in rows], total

        return await self._run(run)

    async def get_replay(self, project_id: int, replay_id: str) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            row = self.db.execute(
                f"SELECT {REPLAY_COLUMNS} FROM replays WHERE project_id = ? AND replay_id = ?",
                (project_id, replay_id),
            ).fetchone()
            if row is None:
                return None
            replay = _replay_row(row)
            replay["error_ids"] = [
                r[0]
                for r in self.db.execute(
                    "SELECT event_id FROM replay_errors WHERE project_id = ? AND replay_id = ? ORDER BY event_id",
                    (project_id, replay_id),
                )
            ]
            replay["segments"] = [
                {**dict(r), "has_full_snapshot": bool(r["has_full_snapshot"])}
                for r in self.db.execute(
                    """SELECT segment_id, started_at, ended_at, event_count, raw_bytes, stored_bytes,
                       has_full_snapshot FROM segments WHERE project_id = ? AND replay_id = ?
                       ORDER BY segment_id""",
                    (project_id, replay_id),
                )
            ]
            return replay

        return await self._run(run)

    async def get_segment(self, project_id: int, replay_id: str, segment_id: int) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            row = self.db.execute(
                "SELECT * FROM segments WHERE project_id = ? AND replay_id = ? AND segment_id = ?",
                (project_id, replay_id, segment_id),
            ).fetchone()
            return dict(row) if row else None

        return await self._run(run)

    async def replay_errors(self, project_id: int, replay_id: str) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            rows = self.db.execute(
                """SELECT e.event_id, e.issue_id, e.timestamp, e.level, e.type, e.value, e.message, e.url
                   FROM replay_errors l JOIN errors e ON e.project_id = l.project_id AND e.event_id = l.event_id
                   WHERE l.project_id = ? AND l.replay_id = ? ORDER BY e.timestamp""",
                (project_id, replay_id),
            ).fetchall()
            return [dict(r) for r in rows]

        return await self._run(run)

    async def get_error(self, project_id: int, event_id: str) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            row = self.db.execute(
                "SELECT * FROM errors WHERE project_id = ? AND event_id = ?", (project_id, event_id)
            ).fetchone()
            if row is None:
                return None
            error = dict(row)
            error["data"] = json.loads(error["data"])
            replay_id = error["replay_id"]
            if not replay_id:
                link = self.db.execute(
                    "SELECT replay_id FROM replay_errors WHERE project_id = ? AND event_id = ? LIMIT 1",
                    (project_id, event_id),
                ).fetchone()
                replay_id = link[0] if link else None
            error["replay_id"] = replay_id
            error["replay_offset"] = None
            if replay_id:
                replay = self.db.execute(
                    "SELECT started_at, segment_count FROM replays WHERE project_id = ? AND replay_id = ?",
                    (project_id, replay_id),
                ).fetchone()
                if replay is not None and replay["started_at"] is not None:
                    error["replay_offset"] = round(max(0.0, error["timestamp"] - replay["started_at"]), 3)
                error["replay_available"] = bool(replay and replay["segment_count"])
            else:
                error["replay_available"] = False
            return error

        return await self._run(run)

    async def list_issues(self, project_id: int, *, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
        def run() -> tuple[list[dict], int]:
            total = self.db.execute("SELECT COUNT(*) FROM issues WHERE project_id = ?", (project_id,)).fetchone()[0]
            rows = self.db.execute(
                """SELECT i.*, (SELECT COUNT(DISTINCT l.replay_id) FROM errors e JOIN replay_errors l
                       ON l.project_id = e.project_id AND l.event_id = e.event_id
                       WHERE e.issue_id = i.id) AS replay_count,
                   (SELECT event_id FROM errors e WHERE e.issue_id = i.id ORDER BY timestamp DESC LIMIT 1)
                       AS latest_event_id
                   FROM issues i WHERE project_id = ? ORDER BY last_seen DESC LIMIT ? OFFSET ?""",
                (project_id, limit, offset),
            ).fetchall()
            return [dict(r) for r in rows], total

        return await self._run(run)

    async def issue_errors(self, project_id: int, issue_id: int, limit: int = 50) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            rows = self.db.execute(
                """SELECT event_id, timestamp, level, type, value, message, url, browser, os, replay_id
                   FROM errors WHERE project_id = ? AND issue_id = ? ORDER BY timestamp DESC LIMIT ?""",
                (project_id, issue_id, limit),
            ).fetchall()
            return [dict(r) for r in rows]

        return await self._run(run)

    # --- deletion and retention ----------------------------------------------------------

    async def delete_replay(self, project_id: int, replay_id: str) -> bool:
        def run() -> bool:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                cur = db.execute("DELETE FROM replays WHERE project_id = ? AND replay_id = ?", (project_id, replay_id))
                for table in ("segments", "replay_state", "replay_errors"):
                    db.execute(f"DELETE FROM {table} WHERE project_id = ? AND replay_id = ?", (project_id, replay_id))
                db.execute("COMMIT")
                return cur.rowcount > 0
            except BaseException:
                db.execute("ROLLBACK")
                raise

        return await self._run(run)

    async def replays_older_than(self, cutoff: float, limit: int = 500) -> list[tuple[int, str]]:
        def run() -> list[tuple[int, str]]:
            rows = self.db.execute(
                "SELECT project_id, replay_id FROM replays WHERE updated_at < ? LIMIT ?", (cutoff, limit)
            ).fetchall()
            return [(r[0], r[1]) for r in rows]

        return await self._run(run)

    async def delete_errors_older_than(self, cutoff: float) -> int:
        def run() -> int:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                n = db.execute("DELETE FROM errors WHERE received_at < ?", (cutoff,)).rowcount
                db.execute(
                    "DELETE FROM replay_errors WHERE NOT EXISTS (SELECT 1 FROM errors e WHERE "
                    "e.project_id = replay_errors.project_id AND e.event_id = replay_errors.event_id) "
                    "AND NOT EXISTS (SELECT 1 FROM replays r WHERE r.project_id = replay_errors.project_id "
                    "AND r.replay_id = replay_errors.replay_id)"
                )
                db.execute("DELETE FROM issues WHERE NOT EXISTS (SELECT 1 FROM errors e WHERE e.issue_id = issues.id)")
                db.execute("COMMIT")
                return n
            except BaseException:
                db.execute("ROLLBACK")
                raise

        return await self._run(run)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _merge_report(into: dict[str, Any], report: dict[str, Any]) -> None:
    """Add up scrub reports: numbers are summed, nested mappings merged."""
    for key, value in report.items():
        if isinstance(value, dict):
            _merge_report(into.setdefault(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            into[key] = into.get(key, 0) + value
