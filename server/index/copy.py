"""``replayd copy-index``: copy a SQLite index, every table and row (``meta`` too), into PostgreSQL.

The source is first brought to this replayd's schema (as ``replayd serve`` would), then read in one
read transaction (a consistent snapshot, even while a replayd still writes to it); the target is
migrated and written in one transaction with COPY, all or nothing. The target must be empty: a
replayd that already started on it has generated its own keys, and two sets cannot be merged.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from asyncpg.pool import PoolConnectionProxy

from .postgres import PostgresIndex, param
from .sqlite import SQLiteIndex

# In an order where what a row refers to is there before it (no foreign keys today; kept for them).
TABLES = ("meta", "issues", "errors", "replays", "segments", "replay_state", "replay_errors", "clicks", "click_texts",
          "click_values", "audit", "blob_garbage")
JSON_COLUMNS = frozenset({"urls", "user", "scrub_report", "data", "detail"})
BOOL_COLUMNS = frozenset({"has_full_snapshot", "is_dead", "is_rage"})
BATCH = 5000
GENERATED_COLUMNS = frozenset({"activity"})  # the target computes them


class TargetNotEmpty(Exception):
    pass


def _value(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in JSON_COLUMNS:
        return json.loads(value)
    if column in BOOL_COLUMNS:
        return bool(value)
    return param(value)


@contextlib.contextmanager
def _snapshot(path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        db.execute("BEGIN")  # one read transaction: every table as of the same moment
        yield db
    finally:
        db.close()


async def _copy_table(db: sqlite3.Connection, conn: PoolConnectionProxy, table: str) -> int:
    names = [r[1] for r in db.execute(f"PRAGMA table_xinfo({table})") if r[1] not in GENERATED_COLUMNS]
    cursor = db.execute("SELECT " + ", ".join(f'"{n}"' for n in names) + f" FROM {table}")
    columns = [d[0] for d in cursor.description]
    copied = 0
    while rows := cursor.fetchmany(BATCH):
        await conn.copy_records_to_table(table, records=[tuple(map(_value, columns, row)) for row in rows],
                                         columns=columns)
        copied += len(rows)
    return copied


async def copy_sqlite_to_postgres(source: Path, target_url: str) -> dict[str, int]:
    """Copy every row of the SQLite index at ``source`` into the PostgreSQL database at ``target_url``;
    rows copied per table. Raises TargetNotEmpty (nothing written) if the target holds any row."""
    if not source.is_file():  # noqa: ASYNC240 -- a command's one stat before it connects: no server to stall
        raise FileNotFoundError(f"{source}: no such SQLite index")
    await (await SQLiteIndex.open(source)).close()  # its schema brought to this version
    target = await PostgresIndex.open(target_url, min_size=0, max_size=1)
    try:
        with _snapshot(source) as db:
            async with target.pool.acquire() as conn, conn.transaction():
                await conn.execute(f"LOCK TABLE {', '.join(TABLES)} IN EXCLUSIVE MODE")
                for table in TABLES:
                    if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
                        raise TargetNotEmpty(f"the target's {table} table has rows: copy into a database no "
                                             "replayd has started on")
                counts = {table: await _copy_table(db, conn, table) for table in TABLES}
                # SQLite counts a replay's error links when it reads; PostgreSQL keeps the count in the row
                await conn.execute("UPDATE replays r SET error_count = (SELECT COUNT(*) FROM replay_errors l "
                                   "WHERE l.project_id = r.project_id AND l.replay_id = r.replay_id)")
                for table in ("issues", "audit"):
                    await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                       f"COALESCE(MAX(id), 0) + 1, false) FROM {table}")
        return counts
    finally:
        await target.close()
