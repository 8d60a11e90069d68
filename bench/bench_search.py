"""Benchmark: the replay search on 100,000 replays with 2,000,000 recorded clicks, on SQLite and on
PostgreSQL, with the indexes the migrations create.

    .venv/bin/python bench/bench_search.py [--postgres URL] [--replays N] [--clicks-per-replay K]
                                           [--repeat R] [--only sqlite|postgres]

The rows are generated inside the database (a recursive CTE on SQLite, generate_series on
PostgreSQL) after the schema is migrated, so every index and trigger of the migrations is in place:
20 clicks a replay, 1 in 97 of them on "Proceed to checkout", 1 replay in 33 with a rage click, 1 in
50 on a /pay URL, 10,000 users (their email as the default policy stores it, hashed). Then each
search runs as the API calls it — ``list_replays``: the page of 50 and the total — median of
``--repeat`` runs after one warm-up. Target: each <= 200 ms. See docs/benchmarks.md.

PostgreSQL: the server at ``--postgres`` (default $REPLAYD_TEST_POSTGRES_URL, else
postgresql://postgres@127.0.0.1:5432/postgres); the benchmark makes a database of its own and drops
it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replayd.server.index import Index, ReplayQuery
from replayd.server.index.postgres import PostgresIndex
from replayd.server.index.sqlite import SQLiteIndex
from replayd.server.search import parse

DEFAULT_POSTGRES = os.environ.get("REPLAYD_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = 1_790_000_000.0
USER = 4242  # the user searched for
SEARCHES = [
    ("click search", "click.textContent:*checkout*"),
    ("frustration search", "count_rage_clicks:>0 url:*pay*"),
    ("user search", "user.email:jane@example.com"),
    ("dead-click selector", "dead.selector:button#dead"),
    ("activity, sorted", "activity:>1"),
]

# One expression per column, in SQL both databases read; {i} the replay's number, {n} the click's.
TEXT = ("CASE WHEN {n} % 97 = 0 THEN 'Proceed to checkout' WHEN {n} % 7 = 0 THEN 'Add to basket' "
        "WHEN {n} % 7 = 1 THEN 'Next page' WHEN {n} % 7 = 2 THEN 'Show more' WHEN {n} % 7 = 3 THEN 'Close' "
        "WHEN {n} % 7 = 4 THEN 'Menu' WHEN {n} % 7 = 5 THEN 'Search the shop' ELSE 'Sign in' END")


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cores)"


def replay_select(hex_id: str, series: str, json: str = "") -> str:
    return f"""
        SELECT 1, {hex_id}, {T0} + i * 10, {T0} + i * 10 + 60 + i % 600, 3, 100000, 30000,
          ('["https://shop.example/cart", "https://shop.example/' ||
              CASE WHEN i % 50 = 0 THEN 'pay' ELSE 'page' || (i % 100) END || '"]'){json},
          ('{{"id": "u' || (i % 10000) || '", "email": "[hash:' || (1000000000 + i % 10000) || ']"}}'){json},
          'u' || (i % 10000), 'Chrome 126', 'Mac OS X 10.15', 'desktop', 'session', 'production', '1.0', 'bench',
          20, CASE WHEN i % 33 = 0 THEN 1 ELSE 0 END, '{{}}', {T0}, {T0},
          CASE WHEN i % 40 = 0 THEN 1 ELSE 0 END, 0, 2
        FROM {series}"""


REPLAY_COLUMNS = ("project_id, replay_id, started_at, ended_at, segment_count, raw_bytes, stored_bytes, urls, "
                  '"user", user_label, browser, os, device, replay_type, environment, release, sdk, click_count, '
                  "rage_click_count, scrub_report, created_at, updated_at, dead_click_count, console_error_count, "
                  "url_count")
CLICK_COLUMNS = ("project_id, replay_id, segment_id, seq, timestamp, node_id, tag, elem_id, classes, text, selector, "
                 "is_dead, is_rage")


DISTINCT_TEXTS = "INSERT INTO click_texts (project_id, text) SELECT DISTINCT project_id, text FROM clicks"


def click_select(hex_id: str, series: str, k: int, true: str, false: str) -> str:
    n = f"(i * {k} + j)"
    dead = "(j = 1 AND i % 40 = 0)"
    rage = "(j = 0 AND i % 33 = 0)"
    return f"""
        SELECT 1, {hex_id}, j / 5, j % 5, {T0} + i * 10 + j, j,
          CASE WHEN {dead} OR {rage} OR {n} % 2 = 0 THEN 'button' ELSE 'a' END,
          CASE WHEN {dead} THEN 'dead' WHEN {rage} THEN 'buy' ELSE '' END, 'btn',
          {TEXT.format(n=n)},
          CASE WHEN {dead} THEN 'button#dead.btn' WHEN {rage} THEN 'button#buy.btn' ELSE 'a.btn' END,
          CASE WHEN {dead} THEN {true} ELSE {false} END, CASE WHEN {rage} THEN {true} ELSE {false} END
        FROM {series}"""


async def fill_sqlite(index: SQLiteIndex, replays: int, k: int) -> None:
    def run() -> None:
        db = index.db
        hex_id = "printf('%032x', i)"
        numbers = f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {replays - 1}) "
        db.execute("BEGIN")
        db.execute(f"{numbers} INSERT INTO replays ({REPLAY_COLUMNS}) {replay_select(hex_id, 'n')}")
        clicks = (f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {replays - 1}), "
                  f"m(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM m WHERE j < {k - 1}) ")
        db.execute(f"{clicks} INSERT INTO clicks ({CLICK_COLUMNS}) {click_select(hex_id, 'n, m', k, '1', '0')}")
        db.execute(DISTINCT_TEXTS)
        db.execute("COMMIT")
        # no ANALYZE: the plans a new index gets without statistics

    await index._run(run)


async def fill_postgres(index: PostgresIndex, replays: int, k: int) -> None:
    hex_id = "lpad(to_hex(i), 32, '0')"
    async with index.pool.acquire() as conn:
        await conn.execute(f"INSERT INTO replays ({REPLAY_COLUMNS}) "
                           + replay_select(hex_id, f"generate_series(0, {replays - 1}) i", "::jsonb"))
        await conn.execute(f"INSERT INTO clicks ({CLICK_COLUMNS}) "
                           + click_select(hex_id, f"generate_series(0, {replays - 1}) i, generate_series(0, {k - 1}) j",
                                          k, "true", "false"))
        await conn.execute(DISTINCT_TEXTS)
        await conn.execute("VACUUM ANALYZE replays")
        await conn.execute("VACUUM ANALYZE clicks")


async def time_searches(index: Index, repeat: int) -> dict[str, tuple[float, int]]:
    # the user's email as the default policy stores it: the search hashes the address given
    forms = lambda field, value: [value, f"[hash:{1000000000 + USER}]"]  # noqa: E731
    results = {}
    for label, text in SEARCHES:
        query = ReplayQuery(search=parse(text, forms), sort="activity" if "activity" in text else "started_at")
        await index.list_replays(1, query, limit=50)  # warm-up
        times = []
        total = 0
        for _ in range(repeat):
            start = time.perf_counter()
            _, total = await index.list_replays(1, query, limit=50)
            times.append(time.perf_counter() - start)
        results[label] = (statistics.median(times) * 1000, total)
    return results


def report(backend: str, fill_s: float, results: dict[str, tuple[float, int]]) -> None:
    print(f"{backend}: generated in {fill_s:.1f} s; {load()}")
    for (label, text), (ms, total) in zip(SEARCHES, results.values(), strict=True):
        verdict = "ok" if ms <= 200 else "OVER 200 ms"
        print(f"  {label:22} {text:40} {ms:8.1f} ms  {total:7d} replays  {verdict}")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--postgres", default=DEFAULT_POSTGRES)
    ap.add_argument("--replays", type=int, default=100_000)
    ap.add_argument("--clicks-per-replay", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", choices=("sqlite", "postgres"))
    args = ap.parse_args()
    k = args.clicks_per_replay
    print(f"{args.replays} replays, {args.replays * k} clicks")
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            index = await SQLiteIndex.open(Path(tmp) / "index.sqlite3")
            try:
                start = time.perf_counter()
                await fill_sqlite(index, args.replays, k)
                report("sqlite", time.perf_counter() - start, await time_searches(index, args.repeat))
            finally:
                await index.close()
    if args.only in (None, "postgres"):
        name = f"replayd_bench_search_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(args.postgres)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = urlunsplit(urlsplit(args.postgres)._replace(path="/" + name))
            pg = await PostgresIndex.open(url)
            try:
                start = time.perf_counter()
                await fill_postgres(pg, args.replays, k)
                report("postgres", time.perf_counter() - start, await time_searches(pg, args.repeat))
            finally:
                await pg.close()
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.close()


def run(coro: Any) -> None:
    asyncio.run(coro)


if __name__ == "__main__":
    run(main())
