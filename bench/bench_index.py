"""Benchmark: the index's capacity — segment commits per second with many concurrent writers, on
PostgreSQL and on SQLite — and the replay list on 1,000,000 replays on PostgreSQL.

    .venv/bin/python bench/bench_index.py [--postgres URL] [--writers N] [--seconds S]
                                          [--replays N] [--only commits|list] [--keep]
                                          [--database NAME]

commits: ``--writers`` coroutines, each writing its own replays one segment after the other, for
``--seconds`` per backend. A commit is what ingest does per segment, less the scrub and the blob
write: ``replay_writer`` (the replay's lock taken, the state read under it), then its
``record_segment`` (the segment row, the replay's totals folded in, the scrubber state compared
and bumped: one statement), the lock let go. PostgreSQL: one process's pool of
``--pool`` connections (a node's), SQLite: one index (its one thread), in a temp dir.

list: ``--replays`` rows generated in the database by one INSERT ... SELECT FROM generate_series
(secondary indexes dropped for the load and built again after, as the migration defines them),
then ``list_replays`` timed as the API calls it (the page of 50 and the total): newest first,
with a URL filter (common and rare), with ``has_errors``; median of ``--repeat`` runs after one
warm-up, and the indexes each query's plan uses.

PostgreSQL: the server at ``--postgres`` (default $REPLAYD_TEST_POSTGRES_URL, else
postgresql://postgres@127.0.0.1:5432/postgres); the benchmark makes a database of its own and drops
it at the end (``--keep`` keeps it and prints its name).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from replayd.server.index import Index, ReplayQuery, SegmentRecord
from replayd.server.index.postgres import PostgresIndex, list_statements
from replayd.server.index.records import TOTAL_CAP
from replayd.server.index.sqlite import SQLiteIndex

DEFAULT_POSTGRES = os.environ.get("REPLAYD_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = 1_790_000_000.0
REPORT = {"total": 2, "by_rule": {"@email": 1, "@card": 1}, "by_location": {"dom.text": 2}}


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


# --- commits ---------------------------------------------------------------------------------

def segment(replay_id: str, segment_id: int) -> SegmentRecord:
    start = T0 + segment_id * 5
    return SegmentRecord(
        project_id=1, replay_id=replay_id, segment_id=segment_id, blob_key=f"1/{replay_id}/{segment_id:06d}",
        codec="msgpack+br", started_at=start, ended_at=start + 5, event_count=120, raw_bytes=180_000,
        stored_bytes=21_000, has_full_snapshot=segment_id == 0, click_count=3, rage_click_count=0,
        scrub_report=REPORT,
    )


def cpu_seconds(pids: list[int]) -> float | None:
    """CPU time the processes used so far (from /proc: a server on this machine), else None."""
    try:
        total = 0
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return None
    return total / os.sysconf("SC_CLK_TCK")


async def backend_pids(index: Index) -> list[int]:
    """The PostgreSQL processes serving the index's connections (all of the benchmark's database)."""
    if not isinstance(index, PostgresIndex):
        return []
    rows = await index.pool.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    return [r[0] for r in rows]


async def commit_rate(index: Index, writers: int, seconds: float, segments_per_replay: int,
                      state_bytes: int, transaction: bool = False) -> dict[str, Any]:
    """``transaction``: the way before replay writers, as a baseline — ``get_state``, then
    ``record_segment`` (``BEGIN`` with the replay's transaction lock, a read, the write, ``COMMIT``)."""
    state = secrets.token_bytes(state_bytes)
    latencies: list[float] = []
    deadline = 0.0

    async def writer() -> None:
        while True:
            replay_id = secrets.token_hex(16)
            for segment_id in range(segments_per_replay):
                if time.monotonic() >= deadline:
                    return
                began = time.perf_counter()
                if transaction:
                    current = await index.get_state(1, replay_id)
                    await index.record_segment(segment(replay_id, segment_id), state, current.version)
                else:
                    async with index.replay_writer(1, replay_id, segment_id, 30) as replay_writer:
                        await replay_writer.record_segment(segment(replay_id, segment_id), state)
                latencies.append(time.perf_counter() - began)

    deadline = time.monotonic() + min(2.0, seconds / 5)  # warm-up: connections, caches
    await asyncio.gather(*(writer() for _ in range(writers)))
    latencies.clear()
    pids = await backend_pids(index)
    server_before = cpu_seconds(pids)
    began, cpu = time.monotonic(), time.process_time()
    deadline = began + seconds
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed, cpu = time.monotonic() - began, time.process_time() - cpu
    server_after = cpu_seconds(pids)
    ordered = sorted(latencies)
    return {"commits": len(ordered), "seconds": elapsed, "per_second": len(ordered) / elapsed,
            "p50_ms": 1000 * ordered[len(ordered) // 2], "p99_ms": 1000 * ordered[int(len(ordered) * 0.99)],
            "client_ms": 1000 * cpu / len(ordered),
            "server_ms": None if server_before is None or server_after is None or not pids
            else 1000 * (server_after - server_before) / len(ordered)}


async def bench_commits(args: argparse.Namespace, database_url: str) -> None:
    print(f"\ncommits: {args.writers} writers, {args.seconds:g} s per backend, {args.segments} segments per "
          f"replay, {args.state_bytes}-byte scrubber state; {load()}")
    results = {}
    index: Index = await PostgresIndex.open(database_url, min_size=args.pool, max_size=args.pool)
    try:
        results["postgres"] = await commit_rate(index, args.writers, args.seconds, args.segments, args.state_bytes)
        results["pg-before"] = await commit_rate(index, args.writers, args.seconds, args.segments, args.state_bytes,
                                                 transaction=True)
    finally:
        await index.close()
    with tempfile.TemporaryDirectory() as tmp:
        index = await SQLiteIndex.open(Path(tmp) / "index.sqlite3")
        try:
            results["sqlite"] = await commit_rate(index, args.writers, args.seconds, args.segments,
                                                  args.state_bytes)
        finally:
            await index.close()
    cores = os.cpu_count() or 1
    for name, r in results.items():
        cpu = f"CPU per commit: this process {r['client_ms']:.2f} ms"
        on_idle = r["client_ms"]
        if r["server_ms"] is not None:
            cpu += f" + the server's {r['server_ms']:.2f} ms"
            on_idle += r["server_ms"]
        print(f"  {name:9} {r['per_second']:7.0f} segments/s  ({r['commits']} commits in {r['seconds']:.1f} s; "
              f"commit p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms)\n"
              f"            {cpu} -> {1000 * cores / on_idle:.0f}/s on {cores} idle cores")
    print("  (pg-before: get_state, then record_segment's transaction, as ingest did before replay writers)")
    print(f"  postgres / sqlite: {results['postgres']['per_second'] / results['sqlite']['per_second']:.2f}; "
          f"postgres / pg-before: {results['postgres']['per_second'] / results['pg-before']['per_second']:.2f}; "
          f"{load()}")


# --- the list on many replays ------------------------------------------------------------------

# Replay i: started 7.8 s after replay i - 1 (a million over 90 days), 1 to 3 URLs of a shop — every
# 10th went through checkout, every 997th looked at order i — every 20th has errors.
GENERATE = """
INSERT INTO replays (project_id, replay_id, started_at, ended_at, segment_count, raw_bytes, stored_bytes,
                     urls, "user", user_label, browser, os, device, replay_type, environment, release, sdk,
                     click_count, rage_click_count, scrub_report, created_at, updated_at, error_count)
SELECT 1, md5(i::text), $2 + i * 7.776, $2 + i * 7.776 + 5 * (1 + i % 60), 1 + i % 60, 180000 * (1 + i % 60),
       21000 * (1 + i % 60),
       jsonb_build_array('https://shop.example/', 'https://shop.example/products/' || (i * 7919 % 5000))
         || CASE WHEN i % 10 = 0 THEN jsonb_build_array('https://shop.example/checkout/step-' || (1 + i % 3))
                 ELSE '[]'::jsonb END
         || CASE WHEN i % 997 = 0 THEN jsonb_build_array('https://shop.example/account/orders/' || i)
                 ELSE '[]'::jsonb END,
       jsonb_build_object('id', 'user-' || (i % 200000), 'email', 'user' || (i % 200000) || '@example.com'),
       'user' || (i % 200000) || '@example.com',
       (ARRAY['Chrome 131', 'Firefox 133', 'Safari 18'])[1 + i % 3], 'Linux', 'Desktop', 'session',
       'production', '1.4.' || (i % 20), 'sentry.javascript.browser/8.0.0', 3 * (1 + i % 60), i % 2,
       '{"total": 2, "by_rule": {"@email": 2}, "by_location": {"dom.text": 2}}', $2 + i * 7.776,
       $2 + i * 7.776 + 5 * (1 + i % 60), CASE WHEN i % 20 = 0 THEN 1 + i % 3 ELSE 0 END
FROM generate_series(1, $1::bigint) i
"""

QUERIES = [
    ("newest first", ReplayQuery()),
    ("url 'checkout' (10 %)", ReplayQuery(url="checkout")),
    ("url 'products/42' (2 %)", ReplayQuery(url="products/42")),
    ("url 'account/orders' (0.1 %)", ReplayQuery(url="account/orders")),
    ("url 'orders/997' (5 rows)", ReplayQuery(url="orders/997")),
    ("has_errors (5 %)", ReplayQuery(has_errors=True)),
    ("has_errors + url 'checkout'", ReplayQuery(has_errors=True, url="checkout")),
    ("has_errors=false (95 %)", ReplayQuery(has_errors=False)),
]


async def generate(conn: asyncpg.Connection, count: int) -> float:
    """``count`` replays, with the secondary indexes built after the load (the same definitions)."""
    began = time.monotonic()
    await conn.execute("TRUNCATE replays, segments, replay_state")  # the commits' replays
    indexes = await conn.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'replays' "
                               "AND indexname <> 'replays_pkey'")
    for row in indexes:
        await conn.execute(f"DROP INDEX {row['indexname']}")
    await conn.execute(GENERATE, count, T0 - 90 * 86400)
    await conn.execute("SET maintenance_work_mem = '256MB'")
    for row in indexes:
        await conn.execute(row["indexdef"])
    await conn.execute("VACUUM ANALYZE replays")
    return time.monotonic() - began


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, Any]:
    result = await fn()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times), result


INDEX_NAME = re.compile(r"(?:Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\w+)")


async def plan_indexes(conn: asyncpg.Connection, sql: str, args: list[Any]) -> str:
    plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
    names = list(dict.fromkeys(INDEX_NAME.findall(plan)))
    return ", ".join(names) or "no index (" + ("parallel " if "Parallel" in plan else "") + "seq scan)"


async def bench_list(args: argparse.Namespace, database_url: str) -> None:
    index = await PostgresIndex.open(database_url)
    try:
        async with index.pool.acquire() as conn:
            if args.database:
                print(f"\nlist: the {await conn.fetchval('SELECT COUNT(*) FROM replays'):,} replays of {args.database}")
            else:
                print(f"\nlist: generating {args.replays:,} replays; {load()}")
                seconds = await generate(conn, args.replays)
                print(f"  generated in {seconds:.0f} s")
            size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('replays'))")
            print(f"  the replays table with its indexes: {size}")
        print(f"  list_replays(project 1, page of 50 + total counted to {TOTAL_CAP:,}), median of {args.repeat} "
              f"in ms: the call; apart, its page, an exact total, its capped total (the indexes their plans use), "
              f"and a total counted to {args.cap:,}")
        for name, query in QUERIES:
            ms, (_, total) = await timed(partial(index.list_replays, 1, query), args.repeat)
            shown = f"{TOTAL_CAP:,}+" if total > TOTAL_CAP else f"{total:,}"
            times, plans = await split_timings(index, query, args.repeat, args.cap)
            print(f"    {name:30} {ms:6.1f}  total {shown:>7}  page {times[0]:5.1f} ({plans[0]})  "
                  f"exact {times[1]:6.1f} ({plans[1]})  capped {times[2]:6.1f} ({plans[2]})  "
                  f"to {args.cap:,} {times[3]:5.1f}")
        print(f"  {load()}")
    finally:
        await index.close()


async def split_timings(index: PostgresIndex, query: ReplayQuery, repeat: int,
                        cap: int) -> tuple[list[float], list[str]]:
    """The page's and the total's statements apart, the indexes their plans use, and the total
    counted to ``cap`` at most."""
    (count_sql, count_args), (page_sql, page_args) = list_statements(1, query, 0, 50)
    where = re.fullmatch(r"SELECT COUNT\(\*\) FROM \(SELECT 1 FROM replays WHERE (.*) LIMIT \d+\) matched",
                         count_sql)
    assert where is not None, count_sql
    exact_sql = f"SELECT COUNT(*) FROM replays WHERE {where[1]}"
    capped_sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM replays WHERE {where[1]} LIMIT {cap}) capped"
    async with index.pool.acquire() as conn:
        times = [(await timed(partial(conn.fetch, sql, *args), repeat))[0]
                 for sql, args in ((page_sql, page_args), (exact_sql, count_args), (count_sql, count_args),
                                   (capped_sql, count_args))]
        plans = [await plan_indexes(conn, sql, args)
                 for sql, args in ((page_sql, page_args), (exact_sql, count_args), (count_sql, count_args))]
    return times, plans


# --- main ---------------------------------------------------------------------------------------

async def run(args: argparse.Namespace) -> None:
    admin = await asyncpg.connect(args.postgres)
    name = args.database or f"replayd_bench_{secrets.token_hex(4)}"
    if not args.database:
        await admin.execute(f'CREATE DATABASE "{name}"')
    database_url = with_database(args.postgres, name)
    version = await admin.fetchval("SHOW server_version")
    print(f"PostgreSQL {version} at {urlsplit(args.postgres).hostname}:{urlsplit(args.postgres).port or 5432}, "
          f"database {name}; Python {sys.version.split()[0]}")
    try:
        if args.only in (None, "commits") and not args.database:
            await bench_commits(args, database_url)
        if args.only in (None, "list"):
            await bench_list(args, database_url)
    finally:
        if args.keep or args.database:
            print(f"kept database {name} (--only list --database {name} lists it again)")
        else:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="a PostgreSQL server (any database on it)")
    parser.add_argument("--writers", type=int, default=64, help="concurrent writers")
    parser.add_argument("--pool", type=int, default=20, help="PostgreSQL connections (index.pool_max_size)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per backend")
    parser.add_argument("--segments", type=int, default=20, help="segments per replay")
    parser.add_argument("--state-bytes", type=int, default=256, help="size of the scrubber state")
    parser.add_argument("--replays", type=int, default=1_000_000, help="replays generated for the list")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each list query")
    parser.add_argument("--cap", type=int, default=1000, help="the capped count's limit")
    parser.add_argument("--only", choices=("commits", "list"), help="run one half")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark's database")
    parser.add_argument("--database", help="list the replays of a database a --keep run kept (no commits)")
    asyncio.run(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
