"""The index in PostgreSQL, through asyncpg's connection pool: one database several nodes share.

Every write is one transaction on a pooled connection. Writes that touch a replay's rows (its
replay row, segments, scrubber state, error links) first take a transaction advisory lock on the
replay, so writers on any node apply the merge rules one after the other: a row lock (SELECT ...
FOR UPDATE) cannot lock a replay row that does not exist yet, and links may arrive before it. The
scrubber state is still compared and bumped (``StateConflict``) as the protocol says.

``replay_writer`` holds the same key as a *session* lock on one connection for the whole of a
segment's scrub, blob write and commit (the commit runs on that connection), so no node can scrub a
replay's segment while another one's is under way; ``leader`` holds a job's key (another name, so
never a replay's) as a session lock for its block. A session lock ends with its connection: a node
that dies lets go of both.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from ..search import Cond
from .click_values import click_values
from .migrations_postgres import MIGRATIONS
from .protocol import IndexBusy, ReplayBusy, StateConflict
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

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")  # a record type of records.py
log = logging.getLogger("replayd.index")


def advisory_key(name: str) -> int:
    """A bigint advisory lock key named by ``name``, the same in every process (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


MIGRATION_LOCK = advisory_key("replayd.index.migrations")
META_SNAPSHOT_WAIT = 30.0
# Sessions (other than this one) whose transaction began before transaction $1 (a txid_current()):
# a snapshot of theirs may see what $1 deleted, and while one runs, every new snapshot — VACUUM
# FULL's own too — is taken with an xmin no newer than theirs (a snapshot's xmin is the oldest xid
# running anywhere on the server, whatever the database). $1's low 32 bits are its xid.
OLDER_SNAPSHOTS = ("SELECT COUNT(*) FROM pg_stat_activity, "
                   "(SELECT ($1::bigint % 4294967296)::text::xid AS xid) deleted WHERE pid <> pg_backend_pid() "
                   "AND (age(backend_xmin) >= age(deleted.xid) OR age(backend_xid) >= age(deleted.xid))")


def replay_lock(project_id: int, replay_id: str) -> int:
    return advisory_key(f"replayd.index.replay:{project_id}:{replay_id}")


def leader_lock(name: str) -> int:
    return advisory_key(f"replayd.leader:{name}")


# --- values in and out: PostgreSQL's text holds no NUL and only valid UTF-8, jsonb no NaN -------

def clean_text(text: str) -> str:
    """``text`` as PostgreSQL can keep it: NUL and lone surrogates become U+FFFD (SQLite keeps them)."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or Infinity; jsonb refuses Python's extension
    return value


def _jsonb_text(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        if "\\u0000" not in text:
            text.encode()
            return text
    except (ValueError, UnicodeEncodeError):
        pass
    return json.dumps(_clean_json(value), ensure_ascii=False, separators=(",", ":"))


def _encode_jsonb(value: Any) -> bytes:
    return b"\x01" + _jsonb_text(value).encode()  # jsonb's binary format: version 1, then the text


def _decode_jsonb(data: bytes) -> Any:
    return json.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", schema="pg_catalog", encoder=_encode_jsonb, decoder=_decode_jsonb,
                              format="binary")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A connection goes back to the pool as it is (an open transaction is still rolled back): this
    code leaves no session state (session locks, SET, LISTEN, cursors), and asyncpg's default reset
    query would cost a round trip on every use."""


def param(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


# --- columns, named as the records' fields --------------------------------------------------

def _names(cls: type, *leave_out: str) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in leave_out)


def _select(names: tuple[str, ...], table: str = "") -> str:
    return ", ".join(f'{table}"{name}"' for name in names)


REPLAY_FIELDS = _names(Replay)
REPLAY_COLUMNS = _select(REPLAY_FIELDS)
# What a write sets: error_count is the links' (``_link``), user_label derives from user.
REPLAY_WRITTEN = (*_names(Replay, "error_count"), "user_label")
REPLAY_KEPT = ("project_id", "replay_id", "created_at")  # an update leaves these as they are
SEGMENT_FIELDS = _names(SegmentRecord)
SEGMENT_COLUMNS = _select(SEGMENT_FIELDS)
SEGMENT_ROW_COLUMNS = _select(_names(SegmentRow))
ERROR_ROW_COLUMNS = _select(_names(ErrorRow), "e.")
ERROR_COLUMNS = _select(_names(ErrorDetail, "replay_id", "replay_offset", "replay_available"), "e.")
ISSUE_COLUMNS = _select(_names(IssueRow, "replay_count", "latest_event_id"), "i.")
DIALECT = Dialect(like="ILIKE", errors="error_count", negate_with_exists=True, text_fence=" OFFSET 0",
                  user_fields={name: f"({{t}}\"user\"->>'{name}')" for name in ("id", "email", "username")})
CLICK_FIELDS = ("project_id", "replay_id", "segment_id", "seq", "timestamp", "node_id", "tag", "elem_id", "classes",
                "role", "label", "testid", "alt", "title", "text", "selector", "is_dead", "is_rage")


def _placeholders(first: int, count: int) -> str:
    return ", ".join(f"${n}" for n in range(first, first + count))


def _upsert_replay(first: int) -> str:
    """Insert or update a replay row from REPLAY_WRITTEN's values at $first...; a new row counts the
    links made before it ($1 and $2 must be its project and replay id)."""
    return (f"INSERT INTO replays ({_select(REPLAY_WRITTEN)}, error_count) "
            f"VALUES ({_placeholders(first, len(REPLAY_WRITTEN))}, "
            "(SELECT COUNT(*) FROM replay_errors WHERE project_id = $1 AND replay_id = $2)) "
            "ON CONFLICT (project_id, replay_id) DO UPDATE SET "
            + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in REPLAY_WRITTEN if c not in REPLAY_KEPT))


def _upsert_segment(first: int) -> str:
    """Insert or replace a segment row from SEGMENT_FIELDS' values and created_at at $first..."""
    return (f"INSERT INTO segments ({SEGMENT_COLUMNS}, created_at) "
            f"VALUES ({_placeholders(first, len(SEGMENT_FIELDS) + 1)}) "
            "ON CONFLICT (project_id, replay_id, segment_id) DO UPDATE SET "
            + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in (*SEGMENT_FIELDS[3:], "created_at")))


PUT_REPLAY = _upsert_replay(1)
# What record_segment reads (the row a re-sent segment replaces, the replay) and writes, in one
# statement each: the scrubber state compared and bumped ($1 project, $2 replay, $3 state, $4 the
# version it was scrubbed with), the segment, the replay; the answer says whether the state matched.
READ_FOR_SEGMENT = (
    "SELECT (SELECT s FROM segments s WHERE project_id = $1 AND replay_id = $2 AND segment_id = $3) AS segment, "
    "(SELECT r FROM replays r WHERE project_id = $1 AND replay_id = $2) AS replay")
# What a replay writer reads once it holds the lock: the state too. (Its own statement, after the
# lock's: a statement's snapshot is taken when it starts, so one that waited for the lock would
# read what was committed before the wait.)
READ_FOR_WRITER = READ_FOR_SEGMENT.replace(
    "SELECT ", "SELECT (SELECT st FROM replay_state st WHERE project_id = $1 AND replay_id = $2) AS state, ", 1)
_STORE_SEGMENT = (f"WITH state AS ({{}}), segment AS ({_upsert_segment(5)}) "
                  f"{_upsert_replay(5 + len(SEGMENT_FIELDS) + 1)} RETURNING (SELECT COUNT(*) FROM state)")
STORE_SEGMENT = {
    "first": _STORE_SEGMENT.format("INSERT INTO replay_state (project_id, replay_id, state, version) "
                                   "VALUES ($1, $2, $3, $4 + 1) ON CONFLICT DO NOTHING RETURNING 1"),
    "next": _STORE_SEGMENT.format("UPDATE replay_state SET state = $3, version = version + 1 "
                                  "WHERE project_id = $1 AND replay_id = $2 AND version = $4 RETURNING 1"),
}
assert REPLAY_WRITTEN[:2] == SEGMENT_FIELDS[:2] == ("project_id", "replay_id")


def _record(cls: type[R], row: asyncpg.Record, **extra: Any) -> R:
    return cls(**dict(row.items()), **extra)


def _from_row(cls: type[R], row: asyncpg.Record) -> R:
    """A record from a whole table row (``SELECT t``), which may have columns it has no field for."""
    return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls)})


def _count(status: str) -> int:
    """The row count of a command's status ("INSERT 0 3", "UPDATE 1", "DELETE 0")."""
    return int(status.rpartition(" ")[2])


def list_statements(project_id: int, query: ReplayQuery, offset: int, limit: int,
                    total_cap: int | None = None) -> tuple[tuple[str, list[Any]], tuple[str, list[Any]]]:
    """The replay list's two statements and their arguments: how many match (up to the cap), and the page."""
    args: list[Any] = [project_id]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["project_id = $1", "segment_count > 0"]
    if query.has_errors is not None:
        where.append("error_count > 0" if query.has_errors else "error_count = 0")
    if query.url:
        where.append(f"urls::text ILIKE {arg(like_pattern(param(query.url)))}")
    if query.user:
        pattern = arg(like_pattern(param(query.user)))
        where.append(f'(user_label ILIKE {pattern} OR "user"::text ILIKE {pattern})')
    for value, condition in (
        (query.min_duration, "(ended_at - started_at) >= {}"),
        (query.max_duration, "(ended_at - started_at) <= {}"),
        (query.started_after, "started_at >= {}"),
        (query.started_before, "started_at < {}"),
    ):
        if value is not None:
            where.append(condition.format(arg(value)))
    if query.search is not None:
        where.append(compile_search(query.search, DIALECT, lambda v: arg(param(v)), "$1"))
    # SQLite's order, where NULL is smaller than any value
    direction = "DESC NULLS LAST" if query.descending else "ASC NULLS FIRST"
    order = f"{sort_expression(query.order, DIALECT)} {direction}, replay_id {direction.split()[0]}"
    sql_where = " AND ".join(where)
    page = f"LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
    counted = f"LIMIT {count_cap(offset, limit, total_cap) + 1}"  # an integer: the plan is the same for every page
    # The page's ids first, then its rows: the search and its sort carry narrow rows (an index-only scan
    # of replays_listed or replays_live where the terms allow), not every matching replay's JSON columns through a hash
    # join or a sort (click.textContent:*checkout* in 0.45 of main's time, docs/benchmarks.md#search).
    return ((f"SELECT COUNT(*) FROM (SELECT 1 FROM replays WHERE {sql_where} {counted}) matched", args),
            (f"SELECT {REPLAY_COLUMNS} FROM replays WHERE project_id = $1 AND replay_id IN "
             f"(SELECT replay_id FROM replays WHERE {sql_where} ORDER BY {order} {page}) ORDER BY {order}",
             [*args, limit, offset]))


@contextlib.asynccontextmanager
async def _in_transaction(conn: PoolConnectionProxy, *replays: tuple[int, str]) -> AsyncIterator[None]:
    """One transaction on ``conn`` holding the transaction advisory lock of each replay named (a
    session holding a replay's session lock takes it again at once)."""
    locks = "".join(f"; SELECT pg_advisory_xact_lock({replay_lock(*key)})" for key in sorted(set(replays)))
    await conn.execute("BEGIN" + locks)
    try:
        yield
    except BaseException:
        # if the connection broke, the pool's release rolls back or drops it
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def _record_segment(conn: PoolConnectionProxy, segment: SegmentRecord, state: bytes, state_version: int,
                          clicks: list[ClickRecord] | None, dead_earlier: list[tuple[int, int, bool]] | None,
                          events: list[ReplayEventRecord] | None) -> SegmentRecord | None:
    key = (segment.project_id, segment.replay_id)
    events = of_replay(events, key)
    async with _in_transaction(conn, key):
        stored = await conn.fetchrow(READ_FOR_SEGMENT, *key, segment.segment_id)
        assert stored is not None  # a SELECT of two subqueries and no FROM: one row, always
        old = _from_row(SegmentRecord, stored["segment"]) if stored["segment"] is not None else None
        replay = _from_row(Replay, stored["replay"]) if stored["replay"] is not None else None
        await _store_segment(conn, segment, state, state_version, old, replay, events)
        for event in events:
            await PostgresIndex._link(conn, *key, event.error_ids)
        if clicks is not None:
            await _put_clicks(conn, key, segment.segment_id, clicks, dead_earlier or [])
    return old


async def _put_clicks(conn: PoolConnectionProxy, key: tuple[int, str], segment_id: int, clicks: list[ClickRecord],
                      dead_earlier: list[tuple[int, int, bool]]) -> tuple[int, int] | None:
    """``record_clicks``' statements, inside the caller's transaction; the replay's dead and rage
    clicks now (None without a replay row)."""
    await conn.execute("DELETE FROM clicks WHERE project_id = $1 AND replay_id = $2 AND segment_id = $3",
                       *key, segment_id)
    if clicks:
        await conn.copy_records_to_table("clicks", columns=CLICK_FIELDS, records=[
            (*key, segment_id, c.seq, c.timestamp, c.node_id,
             *map(clean_text, (c.tag, c.elem_id, c.classes, c.role, c.label, c.testid, c.alt, c.title, c.text,
                               c.selector)), c.is_dead, c.is_rage) for c in clicks])
        await conn.execute("INSERT INTO click_texts (project_id, text) SELECT $1, unnest($2::text[]) "
                           "ON CONFLICT DO NOTHING", key[0], sorted({clean_text(c.text) for c in clicks}))
        values = sorted({(field, clean_text(value)) for field, value in click_values(clicks)})
        await conn.execute("INSERT INTO click_values (project_id, replay_id, field, value) "
                           "SELECT $1, $2, unnest($3::text[]), unnest($4::text[]) ON CONFLICT DO NOTHING",
                           *key, [f for f, _ in values], [v for _, v in values])
    if dead_earlier:
        await conn.execute(
            "UPDATE clicks c SET is_dead = true, is_rage = d.rage FROM unnest($3::int[], $4::int[], $5::boolean[]) "
            "AS d (segment_id, seq, rage) WHERE c.project_id = $1 AND c.replay_id = $2 "
            "AND c.segment_id = d.segment_id AND c.seq = d.seq",
            *key, [d[0] for d in dead_earlier], [d[1] for d in dead_earlier], [d[2] for d in dead_earlier])
    # rage clicks are decided with dead ones (a later segment may): both counts from the clicks
    counts = await conn.fetchrow(
        "UPDATE replays SET (dead_click_count, rage_click_count) = (SELECT COUNT(*) FILTER (WHERE is_dead), "
        "COUNT(*) FILTER (WHERE is_rage) FROM clicks WHERE project_id = $1 AND replay_id = $2) "
        "WHERE project_id = $1 AND replay_id = $2 RETURNING dead_click_count, rage_click_count", *key)
    return None if counts is None else (counts[0], counts[1])


async def _store_segment(conn: PoolConnectionProxy, segment: SegmentRecord, state: bytes, state_version: int,
                         old: SegmentRecord | None, replay: Replay | None, events: list[ReplayEventRecord]) -> Replay:
    """One statement: the state compared and bumped, the segment, the replay with the segment
    and then ``events`` folded in (``old`` and ``replay`` as read under the replay's lock);
    StateConflict (nothing written) if the state is no longer ``state_version``. The replay as
    written (the events' error links are the caller's)."""
    key = (segment.project_id, segment.replay_id)
    now = time.time()
    merged = (replay or Replay(project_id=key[0], replay_id=key[1], created_at=now)).with_segment(segment, old)
    for event in events:
        merged = merged.with_event(event)
    matched = await conn.fetchval(
        STORE_SEGMENT["next" if state_version else "first"], *key, state, state_version,
        *(param(getattr(segment, c)) for c in SEGMENT_FIELDS), now, *PostgresIndex.replay_values(merged, now))
    if not matched:  # the statement (or its transaction) is rolled back: nothing written
        raise StateConflict(f"the scrubber state of replay {key[1]} is no longer version {state_version}")
    return merged


async def _keep_garbage(conn: PoolConnectionProxy, project_id: int, replay_id: str, keys: list[str]) -> None:
    await conn.execute("INSERT INTO blob_garbage (project_id, replay_id, blob_key, created_at) "
                       "SELECT $1, $2, unnest($3::text[]), $4 ON CONFLICT DO NOTHING",
                       project_id, replay_id, keys, time.time())


async def _blob_referenced(conn: PoolConnectionProxy, project_id: int, replay_id: str, key: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM segments WHERE project_id = $1 AND replay_id = $2 AND blob_key = $3)",
        project_id, replay_id, key))


async def _forget_garbage(conn: PoolConnectionProxy, project_id: int, replay_id: str, key: str) -> None:
    await conn.execute("DELETE FROM blob_garbage WHERE project_id = $1 AND replay_id = $2 AND blob_key = $3",
                       project_id, replay_id, key)


@contextlib.asynccontextmanager
async def _holding(conn: Any, key: int, wait: float | None) -> AsyncIterator[bool]:
    """Whether ``conn``'s session holds the advisory lock ``key`` for the block (tried at once when
    ``wait`` is None, else waited for up to ``wait`` seconds); let go at its end. A connection whose
    lock or unlock did not surely run to its end is closed (its session's end lets go)."""
    try:
        if wait is None:
            held = await conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
        else:
            try:
                await conn.execute(f"SELECT pg_advisory_lock({key})", timeout=wait)
                held = True
            except TimeoutError:  # asyncpg cancelled the wait; it may have been granted meanwhile
                _close(conn)
                held = False
    except BaseException:  # cancelled or broken mid-way: the lock may have been granted
        _close(conn)
        raise
    if not held:
        yield False
        return
    try:
        yield True
    finally:
        try:
            await conn.execute(f"SELECT pg_advisory_unlock({key})")
        except asyncio.CancelledError:
            _close(conn)
            raise
        except Exception:  # the connection broke: its session, and with it the lock, is gone
            _close(conn)


# What a connection whose session has ended raises (closed, terminated by an administrator, broken).
LOST_SESSION = (asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError, asyncpg.InterfaceError, OSError)


def _close(conn: PoolConnectionProxy | asyncpg.Connection) -> None:
    """Close the connection at once (ending its session and its locks); the pool opens another."""
    with contextlib.suppress(asyncpg.InterfaceError):  # already closed and detached from the pool
        conn.terminate()


class _ReplayWriter:
    """What ``PostgresIndex.replay_writer`` yields: holds the replay's session lock on ``conn`` and
    what was read under it, so a commit is one statement (no transaction around it: every other
    writer of the replay's rows waits for the lock, and the statement is atomic on its own) — or,
    when the segment's clicks change anything, that statement and the clicks' in one transaction."""

    def __init__(self, conn: PoolConnectionProxy, key: tuple[int, str], segment_id: int, read: asyncpg.Record):
        self._conn = conn
        self._key = key
        self._segment_id = segment_id
        self._old = _from_row(SegmentRecord, read["segment"]) if read["segment"] is not None else None
        self._replay = _from_row(Replay, read["replay"]) if read["replay"] is not None else None
        stored = read["state"]
        self.state = ScrubberState(bytes(stored["state"]), stored["version"]) if stored is not None else ScrubberState()

    async def record_segment(self, segment: SegmentRecord, state: bytes, clicks: list[ClickRecord] | None = None,
                             dead_earlier: list[tuple[int, int, bool]] | None = None,
                             events: list[ReplayEventRecord] | None = None) -> SegmentRecord | None:
        if segment.segment_id != self._segment_id:
            raise ValueError(f"this writer was opened for segment {self._segment_id}, not {segment.segment_id}")
        old = self._old
        key = (segment.project_id, segment.replay_id)
        events = of_replay(events, key)
        links = [e.error_ids for e in events if e.error_ids]
        try:
            # A segment stored for the first time that brings no clicks and decides none, nor links an
            # error, changes no click row nor the dead count: the one statement does.
            if not links and (clicks is None or (not clicks and not dead_earlier and old is None)):
                self._replay = await _store_segment(self._conn, segment, state, self.state.version, old,
                                                    self._replay, events)
            else:
                async with _in_transaction(self._conn, key):  # this session holds the lock: taken at once
                    replay = await _store_segment(self._conn, segment, state, self.state.version, old, self._replay,
                                                  events)
                    for error_ids in links:
                        await PostgresIndex._link(self._conn, *key, error_ids)
                    counts = (await _put_clicks(self._conn, key, segment.segment_id, clicks, dead_earlier or [])
                              if clicks is not None else (replay.dead_click_count, replay.rage_click_count))
                dead, rage = counts or (0, 0)
                self._replay = dataclasses.replace(replay, dead_click_count=dead, rage_click_count=rage)
        except LOST_SESSION as exc:  # and with it the lock: whether the write went through is unknown
            raise StateConflict(f"the session holding replay {segment.replay_id}'s lock ended ({exc!r:.100})") from exc
        self.state = ScrubberState(state, self.state.version + 1)
        self._old = segment
        return old

    async def blob_referenced(self, key: str) -> bool:
        return await _blob_referenced(self._conn, *self._key, key)

    async def keep_garbage(self, keys: list[str]) -> None:
        await _keep_garbage(self._conn, *self._key, keys)

    async def forget_garbage(self, key: str) -> None:
        await _forget_garbage(self._conn, *self._key, key)


class _AlreadyStored(Exception):
    """Raised to roll a ``record_error`` back when another writer stored the same event meanwhile."""


class TimedPool:
    """asyncpg's pool, each connection waited for at most ``acquire_timeout`` seconds: past it,
    IndexBusy (a 503 with Retry-After), never a wait without end. Nothing in this backend takes a
    second connection while holding one (a replay writer and a leader do their work on their own),
    so a full pool only ever waits for work that ends."""

    def __init__(self, pool: asyncpg.Pool, acquire_timeout: float):
        self._pool = pool
        self.acquire_timeout = acquire_timeout

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[PoolConnectionProxy]:
        try:
            conn = await self._pool.acquire(timeout=self.acquire_timeout)
        except TimeoutError:
            raise IndexBusy(f"every connection to the index stayed in use for {self.acquire_timeout:g} s "
                            "(index.pool_max_size, index.pool_acquire_timeout); retry") from None
        try:
            yield conn
        finally:
            await self._pool.release(conn)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            return list(await conn.fetch(query, *args))

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        async with self.acquire() as conn:
            return str(await conn.execute(query, *args))

    def get_size(self) -> int:
        return int(self._pool.get_size())

    def get_idle_size(self) -> int:
        return int(self._pool.get_idle_size())

    def get_max_size(self) -> int:
        return int(self._pool.get_max_size())

    async def close(self) -> None:
        await self._pool.close()


SERVER_SETTINGS = {
    "application_name": "replayd",
    # a search's best plan depends on its patterns and numbers: never a generic plan for a prepared statement
    "plan_cache_mode": "force_custom_plan",
}


class PostgresIndex:
    def __init__(self, pool: TimedPool, connect: Callable[[], Awaitable[asyncpg.Connection]]):
        self.pool = pool
        self._connect = connect  # a connection outside the pool, for a leader
        # Replay writers hold a connection each while their segment is scrubbed: at most all but two
        # of the pool, so reads, health checks and the other writes always find one.
        self._writer_slots = asyncio.Semaphore(max(1, pool.get_max_size() - 2))

    # --- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def open(cls, url: str, *, min_size: int = 1, max_size: int = 10,
                   acquire_timeout: float = 10.0) -> PostgresIndex:
        pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, init=_init_connection,
                                         reset=_keep_session, server_settings=SERVER_SETTINGS)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(TimedPool(pool, acquire_timeout), lambda: asyncpg.connect(
            url, timeout=acquire_timeout, server_settings={"application_name": "replayd leader"}))

    async def close(self) -> None:
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def _transaction(self, *replays: tuple[int, str]) -> AsyncIterator[PoolConnectionProxy]:
        """A connection in one transaction, holding the advisory lock of each replay named: BEGIN
        and the locks go in one round trip (one simple query; the keys are integers)."""
        async with self.pool.acquire() as conn, _in_transaction(conn, *replays):
            yield conn

    @contextlib.asynccontextmanager
    async def _session_lock(self, key: int, wait: float | None) -> AsyncIterator[PoolConnectionProxy | None]:
        """A pooled connection holding the session advisory lock ``key`` for the block; None (no
        connection held) when another session holds it: at once when ``wait`` is None, else after
        ``wait`` seconds. A connection whose lock or unlock did not surely run to its end is closed,
        never pooled with the lock held (its session's end lets go)."""
        async with self.pool.acquire() as conn, _holding(conn, key, wait) as held:
            yield conn if held else None

    @contextlib.asynccontextmanager
    async def replay_writer(self, project_id: int, replay_id: str, segment_id: int,
                            timeout: float) -> AsyncIterator[_ReplayWriter]:
        key = (project_id, replay_id)
        try:  # a writer waits for a slot as long as for a connection: IndexBusy past it
            async with asyncio.timeout(self.pool.acquire_timeout):
                await self._writer_slots.acquire()
        except TimeoutError:
            raise IndexBusy(f"every replay writer's connection stayed in use for {self.pool.acquire_timeout:g} s "
                            "(index.pool_max_size, index.pool_acquire_timeout); retry") from None
        try:
            async with self._session_lock(replay_lock(*key), timeout) as conn:
                if conn is None:
                    raise ReplayBusy(f"replay {replay_id} was locked by another writer for {timeout:g} s")
                read = await conn.fetchrow(READ_FOR_WRITER, *key, segment_id)
                assert read is not None  # subqueries and no FROM: one row
                yield _ReplayWriter(conn, key, segment_id, read)
        finally:
            self._writer_slots.release()

    @contextlib.asynccontextmanager
    async def leader(self, name: str) -> AsyncIterator[bool]:
        """On a connection of its own, outside the pool: a job holds its lock for its whole run and
        does its work on pooled connections, which a small pool (every connection held by a leader
        waiting for one more) could never give it."""
        conn = await self._connect()
        try:
            async with _holding(conn, leader_lock(name), None) as held:
                yield held
        finally:
            try:
                await conn.close(timeout=5)  # the session ends, and any lock with it
            except BaseException:
                _close(conn)
                raise

    async def check(self) -> None:
        await self.pool.fetchval("SELECT COUNT(*) FROM meta")

    # --- meta: generated secrets and keys kept across restarts -------------------------------

    async def meta_get_or_create(self, key: str, make: Callable[[], str]) -> str:
        async with self.pool.acquire() as conn:
            value = await conn.fetchval("SELECT value FROM meta WHERE key = $1", key)
            if value is not None:
                return str(value)
            async with conn.transaction():
                # one writer at a time: ``make`` runs once, whichever node starts first
                await conn.execute("LOCK TABLE meta IN SHARE ROW EXCLUSIVE MODE")
                value = await conn.fetchval("SELECT value FROM meta WHERE key = $1", key)
                if value is None:
                    value = make()
                    await conn.execute("INSERT INTO meta (key, value) VALUES ($1, $2)", key, param(value))
                return str(value)

    async def meta_set(self, key: str, value: str) -> None:
        await self.pool.execute("INSERT INTO meta (key, value) VALUES ($1, $2) "
                                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", key, param(value))

    async def meta_replace(self, old_key: str, new_key: str, convert: Callable[[str], str]) -> bool:
        """Then rewrites the table (VACUUM FULL), so the old row's bytes are no longer in it (the
        write-ahead log and backups keep them until they are recycled). VACUUM FULL keeps a deleted
        row that a transaction still running might see — one that began before the delete, in any
        database of the server (another node's read, an ANALYZE, a pg_dump, a long load) — so it
        waits for those to end first, up to META_SNAPSHOT_WAIT seconds."""
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute("LOCK TABLE meta IN SHARE ROW EXCLUSIVE MODE")
                value = await conn.fetchval("DELETE FROM meta WHERE key = $1 RETURNING value", old_key)
                if value is None:
                    return False
                await conn.execute("INSERT INTO meta (key, value) VALUES ($1, $2) "
                                   "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                                   new_key, param(convert(value)))
                deleted_by = await conn.fetchval("SELECT txid_current()")
            deadline = time.monotonic() + META_SNAPSHOT_WAIT
            while await conn.fetchval(OLDER_SNAPSHOTS, deleted_by):
                if time.monotonic() > deadline:
                    log.warning("meta_replace: a transaction older than the old value's deletion is still running "
                                "on the database server; VACUUM FULL may keep the old row until a later rewrite")
                    break
                await asyncio.sleep(0.05)
            await conn.execute("VACUUM FULL meta")
        return True

    # --- ingest --------------------------------------------------------------------------

    @staticmethod
    async def _replay(conn: PoolConnectionProxy, project_id: int, replay_id: str, now: float) -> Replay:
        row = await conn.fetchrow(f"SELECT {REPLAY_COLUMNS} FROM replays WHERE project_id = $1 AND replay_id = $2",
                                  project_id, replay_id)
        if row is None:
            return Replay(project_id=project_id, replay_id=replay_id, created_at=now)
        return _record(Replay, row)

    @staticmethod
    def replay_values(replay: Replay, now: float) -> list[Any]:
        """The replay's values in REPLAY_WRITTEN's order, written ``now``."""
        values = {**{c: getattr(replay, c) for c in REPLAY_WRITTEN[:-1]}, "updated_at": now,
                  "user_label": replay.user_label}
        return [param(values[c]) for c in REPLAY_WRITTEN]

    @staticmethod
    async def _link(conn: PoolConnectionProxy, project_id: int, replay_id: str, event_ids: list[str]) -> None:
        """Link errors to the replay and count the new links into its row (if it has one yet).
        The caller holds the replay's lock."""
        if not event_ids:
            return
        status = await conn.execute(
            "INSERT INTO replay_errors (project_id, replay_id, event_id) SELECT $1, $2, unnest($3::text[]) "
            "ON CONFLICT DO NOTHING", project_id, replay_id, [param(e) for e in event_ids])
        if added := _count(status):
            await conn.execute("UPDATE replays SET error_count = error_count + $3 "
                               "WHERE project_id = $1 AND replay_id = $2", project_id, replay_id, added)

    async def record_replay_event(self, event: ReplayEventRecord) -> None:
        key = (event.project_id, event.replay_id)
        async with self._transaction(key) as conn:
            now = time.time()
            replay = await self._replay(conn, *key, now)
            await conn.execute(PUT_REPLAY, *self.replay_values(replay.with_event(event), now))
            await self._link(conn, *key, event.error_ids)

    async def record_segment(self, segment: SegmentRecord, state: bytes, state_version: int,
                             clicks: list[ClickRecord] | None = None,
                             dead_earlier: list[tuple[int, int, bool]] | None = None,
                             events: list[ReplayEventRecord] | None = None) -> SegmentRecord | None:
        async with self.pool.acquire() as conn:
            return await _record_segment(conn, segment, state, state_version, clicks, dead_earlier, events)

    async def get_state(self, project_id: int, replay_id: str) -> ScrubberState:
        row = await self.pool.fetchrow(
            "SELECT state, version FROM replay_state WHERE project_id = $1 AND replay_id = $2", project_id, replay_id)
        return ScrubberState(bytes(row["state"]), row["version"]) if row else ScrubberState()

    async def link_errors(self, project_id: int, replay_id: str, event_ids: list[str]) -> None:
        async with self._transaction((project_id, replay_id)) as conn:
            await self._link(conn, project_id, replay_id, event_ids)

    async def segment_moved_to_store(self, project_id: int, replay_id: str, segment_id: int,
                                     blob_key: str | None = None) -> bool:
        status = await self.pool.execute(
            "UPDATE segments SET location = 'store' WHERE project_id = $1 AND replay_id = $2 AND segment_id = $3 "
            "AND ($4::text IS NULL OR blob_key = $4)", project_id, replay_id, segment_id, blob_key)
        return _count(status) > 0

    async def record_error(self, error: ErrorRecord) -> bool:
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                if await conn.fetchval("SELECT 1 FROM errors WHERE project_id = $1 AND event_id = $2",
                                       error.project_id, error.event_id):
                    return False
                # counting into the issue is the database's job: one upsert, whoever writes at once
                issue_id = await conn.fetchval(
                    """INSERT INTO issues (project_id, fingerprint, title, culprit, level, first_seen, last_seen, count)
                       VALUES ($1, $2, $3, $4, $5, $6, $6, 1)
                       ON CONFLICT (project_id, fingerprint) DO UPDATE SET count = issues.count + 1,
                       first_seen = LEAST(issues.first_seen, EXCLUDED.first_seen),
                       last_seen = GREATEST(issues.last_seen, EXCLUDED.last_seen),
                       title = CASE WHEN EXCLUDED.last_seen >= issues.last_seen THEN EXCLUDED.title
                                    ELSE issues.title END
                       RETURNING id""",
                    *map(param, (error.project_id, error.fingerprint, error.title, error.culprit, error.level,
                                 error.timestamp)))
                stored = await conn.execute(
                    """INSERT INTO errors (project_id, event_id, issue_id, timestamp, level, type, value, message,
                       url, browser, os, replay_id, data, received_at)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING""",
                    *map(param, (error.project_id, error.event_id, issue_id, error.timestamp, error.level, error.type,
                                 error.value, error.message, error.url, error.browser, error.os, error.replay_id)),
                    error.data, time.time())
                if _count(stored) == 0:
                    raise _AlreadyStored  # stored by another writer since the check: undo the count
                if error.replay_id:
                    await conn.execute("SELECT pg_advisory_xact_lock($1)",
                                       replay_lock(error.project_id, error.replay_id))
                    await self._link(conn, error.project_id, error.replay_id, [error.event_id])
                return True
        except _AlreadyStored:
            return False

    # --- read ----------------------------------------------------------------------------

    async def list_replays(self, project_id: int, query: ReplayQuery, *, offset: int = 0, limit: int = 50,
                           total_cap: int | None = None) -> tuple[list[Replay], int]:
        (count_sql, count_args), (page_sql, page_args) = list_statements(project_id, query, offset, limit, total_cap)
        async with self.pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
            total = await conn.fetchval(count_sql, *count_args)  # the page and its total of one moment
            rows = await conn.fetch(page_sql, *page_args)
        return [_record(Replay, r) for r in rows], total

    async def get_replay(self, project_id: int, replay_id: str) -> ReplayDetail | None:
        key = (project_id, replay_id)
        async with self.pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
            row = await conn.fetchrow(f"SELECT {REPLAY_COLUMNS} FROM replays WHERE project_id = $1 AND replay_id = $2",
                                      *key)
            if row is None:
                return None
            error_ids = [r[0] for r in await conn.fetch(
                "SELECT event_id FROM replay_errors WHERE project_id = $1 AND replay_id = $2 ORDER BY event_id", *key)]
            segments = [_record(SegmentRow, r) for r in await conn.fetch(
                f"SELECT {SEGMENT_ROW_COLUMNS} FROM segments WHERE project_id = $1 AND replay_id = $2 "
                "ORDER BY segment_id", *key)]
        return _record(ReplayDetail, row, error_ids=error_ids, segments=segments)

    async def get_segment(self, project_id: int, replay_id: str, segment_id: int) -> SegmentRecord | None:
        row = await self.pool.fetchrow(
            f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE project_id = $1 AND replay_id = $2 AND segment_id = $3",
            project_id, replay_id, segment_id)
        return _record(SegmentRecord, row) if row else None

    async def replay_errors(self, project_id: int, replay_id: str) -> list[ErrorRow]:
        rows = await self.pool.fetch(
            f"""SELECT {ERROR_ROW_COLUMNS}
               FROM replay_errors l JOIN errors e ON e.project_id = l.project_id AND e.event_id = l.event_id
               WHERE l.project_id = $1 AND l.replay_id = $2 ORDER BY e.timestamp""",
            project_id, replay_id)
        return [_record(ErrorRow, r) for r in rows]

    async def get_error(self, project_id: int, event_id: str) -> ErrorDetail | None:
        async with self.pool.acquire() as conn, conn.transaction(readonly=True, isolation="repeatable_read"):
            row = await conn.fetchrow(
                f"""SELECT {ERROR_COLUMNS},
                   COALESCE(e.replay_id, (SELECT l.replay_id FROM replay_errors l
                       WHERE l.project_id = e.project_id AND l.event_id = e.event_id
                       ORDER BY l.replay_id LIMIT 1)) AS replay_id
                   FROM errors e WHERE e.project_id = $1 AND e.event_id = $2""",
                project_id, event_id)
            if row is None:
                return None
            replay = await conn.fetchrow(
                "SELECT started_at, segment_count FROM replays WHERE project_id = $1 AND replay_id = $2",
                project_id, row["replay_id"]) if row["replay_id"] else None
        return _record(ErrorDetail, row, **error_in_replay(row["timestamp"], replay))

    async def list_issues(self, project_id: int, *, offset: int = 0, limit: int = 50) -> tuple[list[IssueRow], int]:
        async with self.pool.acquire() as conn:
            total = await conn.fetchval("SELECT COUNT(*) FROM issues WHERE project_id = $1", project_id)
            rows = await conn.fetch(
                f"""SELECT {ISSUE_COLUMNS}, {ISSUE_TOTALS}
                   FROM issues i WHERE project_id = $1 ORDER BY last_seen DESC, id DESC LIMIT $2 OFFSET $3""",
                project_id, limit, offset)
        return [_record(IssueRow, r) for r in rows], total

    # --- deletion and retention ----------------------------------------------------------

    async def delete_replay(self, project_id: int, replay_id: str) -> bool:
        key = (project_id, replay_id)
        async with self._transaction(key) as conn:
            texts = [r[0] for r in await conn.fetch(
                "SELECT DISTINCT text FROM clicks WHERE project_id = $1 AND replay_id = $2", *key)]
            status = await conn.execute(
                """WITH s AS (DELETE FROM segments WHERE project_id = $1 AND replay_id = $2),
                        st AS (DELETE FROM replay_state WHERE project_id = $1 AND replay_id = $2),
                        l AS (DELETE FROM replay_errors WHERE project_id = $1 AND replay_id = $2),
                        c AS (DELETE FROM clicks WHERE project_id = $1 AND replay_id = $2),
                        v AS (DELETE FROM click_values WHERE project_id = $1 AND replay_id = $2),
                        g AS (DELETE FROM blob_garbage WHERE project_id = $1 AND replay_id = $2)
                   DELETE FROM replays WHERE project_id = $1 AND replay_id = $2""", *key)
            if texts:  # its click texts no other click has go too (they may name someone): retention, DELETE, erase
                await conn.execute("DELETE FROM click_texts t WHERE t.project_id = $1 AND t.text = ANY($2::text[]) "
                                   "AND NOT EXISTS (SELECT 1 FROM clicks c WHERE c.project_id = $1 "
                                   "AND c.text = t.text)", project_id, texts)
        return _count(status) > 0

    async def replays_older_than(self, cutoff: float, limit: int = 500) -> list[tuple[int, str]]:
        rows = await self.pool.fetch("SELECT project_id, replay_id FROM replays WHERE updated_at < $1 LIMIT $2",
                                     cutoff, limit)
        return [(r[0], r[1]) for r in rows]

    async def delete_errors_older_than(self, cutoff: float) -> int:
        # Links go only where their replay is gone too, so no replay's error_count changes here.
        async with self.pool.acquire() as conn, conn.transaction():
            deleted = _count(await conn.execute("DELETE FROM errors WHERE received_at < $1", cutoff))
            await conn.execute(
                "DELETE FROM replay_errors l WHERE NOT EXISTS (SELECT 1 FROM errors e WHERE "
                "e.project_id = l.project_id AND e.event_id = l.event_id) "
                "AND NOT EXISTS (SELECT 1 FROM replays r WHERE r.project_id = l.project_id "
                "AND r.replay_id = l.replay_id)")
            await conn.execute("DELETE FROM issues i WHERE NOT EXISTS (SELECT 1 FROM errors e WHERE e.issue_id = i.id)")
        return deleted

    # --- compaction ------------------------------------------------------------------------

    async def replays_to_compact(self, idle_before: float, long_seconds: float, long_idle_before: float, *,
                                 offset: int = 0, limit: int = 100) -> list[tuple[int, str]]:
        rows = await self.pool.fetch(
            """SELECT project_id, replay_id FROM replays r
               WHERE (project_id, replay_id) IN (SELECT project_id, replay_id FROM segments
                                                 WHERE chunk_start IS NULL)
               AND (updated_at < $1 OR (ended_at - started_at >= $2 AND updated_at < $3))
               AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.project_id = r.project_id
                               AND s.replay_id = r.replay_id AND s.location = 'spool')
               ORDER BY updated_at, project_id, replay_id LIMIT $4 OFFSET $5""",
            idle_before, long_seconds, long_idle_before, limit, offset)
        return [(r[0], r[1]) for r in rows]

    @staticmethod
    async def _segments(conn: Any, project_id: int, replay_id: str) -> list[SegmentRecord]:
        return [_record(SegmentRecord, r) for r in await conn.fetch(
            f"SELECT {SEGMENT_COLUMNS} FROM segments WHERE project_id = $1 AND replay_id = $2 ORDER BY segment_id",
            project_id, replay_id)]

    async def replay_segments(self, project_id: int, replay_id: str) -> list[SegmentRecord]:
        return await self._segments(self.pool, project_id, replay_id)

    async def switch_to_compacted(self, project_id: int, replay_id: str, state_version: int,
                                  before: list[SegmentRecord], after: list[SegmentRecord],
                                  replaced_keys: list[str]) -> bool:
        key = (project_id, replay_id)
        changed = SEGMENT_FIELDS[3:]
        async with self._transaction(key) as conn:
            version = await conn.fetchval(
                "SELECT COALESCE((SELECT version FROM replay_state WHERE project_id = $1 AND replay_id = $2), 0)", *key)
            if version != state_version or await self._segments(conn, *key) != before:
                return False
            await conn.executemany(
                f"UPDATE segments SET {', '.join(f'{_select((c,))} = ${n}' for n, c in enumerate(changed, 4))} "
                "WHERE project_id = $1 AND replay_id = $2 AND segment_id = $3",
                [(*key, s.segment_id, *(param(getattr(s, c)) for c in changed)) for s in after])
            moved = sum(s.stored_bytes for s in after) - sum(s.stored_bytes for s in before)
            await conn.execute("UPDATE replays SET stored_bytes = stored_bytes + $3 "
                               "WHERE project_id = $1 AND replay_id = $2", *key, moved)
            await _keep_garbage(conn, *key, replaced_keys)
        return True

    async def garbage(self, limit: int = 500) -> list[tuple[int, str, str]]:
        rows = await self.pool.fetch(
            "SELECT project_id, replay_id, blob_key FROM blob_garbage ORDER BY created_at LIMIT $1", limit)
        return [(r[0], r[1], r[2]) for r in rows]

    async def keep_garbage(self, project_id: int, replay_id: str, keys: list[str]) -> None:
        async with self.pool.acquire() as conn:
            await _keep_garbage(conn, project_id, replay_id, keys)

    async def blob_referenced(self, project_id: int, replay_id: str, key: str) -> bool:
        async with self.pool.acquire() as conn:
            return await _blob_referenced(conn, project_id, replay_id, key)

    async def forget_garbage(self, project_id: int, replay_id: str, key: str) -> None:
        async with self.pool.acquire() as conn:
            await _forget_garbage(conn, project_id, replay_id, key)

    # --- clicks, search, erasure -----------------------------------------------------------

    async def record_clicks(self, project_id: int, replay_id: str, segment_id: int, clicks: list[ClickRecord],
                            dead_earlier: list[tuple[int, int, bool]]) -> None:
        async with self._transaction((project_id, replay_id)) as conn:
            await _put_clicks(conn, (project_id, replay_id), segment_id, clicks, dead_earlier)

    async def click_moments(self, project_id: int, replay_ids: list[str], terms: list[Cond]) -> dict[str, float]:
        if not replay_ids or not terms:
            return {}
        args: list[Any] = [project_id, replay_ids]

        def arg(value: Any) -> str:
            args.append(param(value))
            return f"${len(args)}"

        sql = ("SELECT c.replay_id, MIN(c.timestamp) FROM clicks c WHERE c.project_id = $1 AND "
               f"c.replay_id = ANY($2::text[]) AND {click_condition(terms, DIALECT, arg)} GROUP BY c.replay_id")
        return {r[0]: r[1] for r in await self.pool.fetch(sql, *args)}

    async def replay_clicks(self, project_id: int, replay_id: str) -> list[ClickRecord]:
        fields = ", ".join(CLICK_FIELDS[3:15] + CLICK_FIELDS[16:])
        rows = await self.pool.fetch(f"SELECT {fields} FROM clicks WHERE project_id = $1 AND replay_id = $2 "
                                     "ORDER BY timestamp, segment_id, seq LIMIT 10000", project_id, replay_id)
        return [_record(ClickRecord, r) for r in rows]

    async def top_selectors(self, project_id: int, kind: str, limit: int = 20) -> list[SelectorCount]:
        flag = {"dead": "is_dead", "rage": "is_rage"}[kind]
        rows = await self.pool.fetch(
            f"SELECT selector, COUNT(*) AS count, COUNT(DISTINCT replay_id) AS replay_count FROM clicks "
            f"WHERE project_id = $1 AND {flag} GROUP BY selector ORDER BY COUNT(*) DESC, selector LIMIT $2",
            project_id, limit)
        return [_record(SelectorCount, r) for r in rows]

    async def user_replays(self, project_id: int, field: str, forms: list[str]) -> list[str]:
        rows = await self.pool.fetch(
            f"SELECT replay_id FROM replays WHERE project_id = $1 AND {DIALECT.user_fields[field].format(t='')} "
            "= ANY($2::text[]) "
            "ORDER BY replay_id", project_id, [param(f) for f in forms])
        return [r[0] for r in rows]

    async def delete_user_errors(self, project_id: int, field: str, forms: list[str]) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            # click texts no click has any more (they may name the user) go too
            await conn.execute("DELETE FROM click_texts t WHERE project_id = $1 AND NOT EXISTS (SELECT 1 FROM clicks c "
                               "WHERE c.project_id = t.project_id AND c.text = t.text)", project_id)
            ids = [r[0] for r in await conn.fetch(
                f"SELECT event_id FROM errors WHERE project_id = $1 AND data->'user'->>'{field}' = ANY($2::text[])",
                project_id, [param(f) for f in forms])]
            if not ids:
                return 0
            # the links' replays count one error less (error_count is a column here)
            await conn.execute(
                "WITH gone AS (DELETE FROM replay_errors WHERE project_id = $1 AND event_id = ANY($2::text[]) "
                "RETURNING replay_id) UPDATE replays r SET error_count = r.error_count - g.n FROM "
                "(SELECT replay_id, COUNT(*) AS n FROM gone GROUP BY replay_id) g "
                "WHERE r.project_id = $1 AND r.replay_id = g.replay_id", project_id, ids)
            await conn.execute("DELETE FROM errors WHERE project_id = $1 AND event_id = ANY($2::text[])",
                               project_id, ids)
            await conn.execute("DELETE FROM issues i WHERE project_id = $1 AND NOT EXISTS "
                               "(SELECT 1 FROM errors e WHERE e.issue_id = i.id)", project_id)
            await conn.execute("UPDATE issues i SET count = (SELECT COUNT(*) FROM errors e WHERE e.issue_id = i.id) "
                               "WHERE project_id = $1", project_id)
        return len(ids)

    async def add_audit(self, actor: str, action: str, project_id: int, detail: dict[str, Any]) -> None:
        await self.pool.execute("INSERT INTO audit (at, actor, action, project_id, detail) VALUES ($1, $2, $3, $4, $5)",
                                time.time(), param(actor), action, project_id, detail)

    async def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT at, actor, action, project_id, detail FROM audit ORDER BY id DESC LIMIT $1", limit)
        return [dict(r.items()) for r in rows]


async def migrate(conn: PoolConnectionProxy) -> None:
    """Bring the schema to this replayd's version in one transaction, under an advisory lock, so
    nodes that start together migrate once and the others find it done."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                           "(version integer PRIMARY KEY, applied_at double precision NOT NULL)")
        applied = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        for version, script in pending_migrations(applied, MIGRATIONS):
            await conn.execute(script)
            await conn.execute("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
                               version, time.time())
