"""Benchmark: the replay search on 100,000 replays with 2,000,000 recorded clicks, on SQLite and on
PostgreSQL, with the indexes the migrations create.

    .venv/bin/python bench/bench_search.py [--postgres URL] [--replays N] [--clicks-per-replay K]
                                           [--repeat R] [--only sqlite|postgres]

The rows are generated inside the database (a recursive CTE on SQLite, generate_series on
PostgreSQL) after the schema is migrated, so every index and trigger of the migrations is in place:
20 clicks a replay, 1 in 97 of them on "Proceed to checkout" (its aria-label and data-testid say so
too), half on buttons and half on links (class nav-link, role link), 1 in 11 with class btn-primary,
1 in 1,000 with role menuitem, 1 replay in 33 with a rage click (on button#buy), 1 in 40 with a dead
click, 1 in 50 on a /pay URL, 10,000 users (their email as the default policy stores it, hashed; an
id and a username). Each replay's clicked values (click_values) are filled from the clicks as the
migration does. Then each search runs as the API calls it — ``list_replays``: the page of 50 and the
total — median of ``--repeat`` runs after one warm-up, printed as it is measured. Target: each
<= 200 ms. See docs/benchmarks.md.

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
from replayd.server.index.click_values import POSTGRES_FROM_CLICKS, SQLITE_FROM_CLICKS
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
    # every other click field, broad (most replays) and narrow
    ("tag, broad", "click.tag:button"),
    ("tag, none", "click.tag:select"),
    ("id", "click.id:buy"),
    ("class", "click.class:btn-primary"),
    ("class, wildcard", "click.class:nav-*"),
    ("selector", "click.selector:button#buy.btn"),
    ("selector, attribute", 'click.selector:"[data-testid=checkout]"'),
    ("testid", "click.testid:checkout"),
    ("role", "click.role:menuitem"),
    ("label", "click.label:*checkout*"),
    ("rage-click selector", "rage.selector:button#buy"),
    ("user id", "user.id:u4242"),
    ("username", "user.username:jane4242"),
    # combined
    ("click and user", "click.textContent:*checkout* user.email:jane@example.com"),
    ("click or dead, url", "(click.testid:checkout OR dead.selector:button#dead) url:*pay*"),
    ("rage and tag", "count_rage_clicks:>0 click.tag:button"),
    ("not a link", "!click.tag:a"),
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
          ('{{"id": "u' || (i % 10000) || '", "email": "[hash:' || (1000000000 + i % 10000) || ']", '
              || '"username": "jane' || (i % 10000) || '"}}'){json},
          'u' || (i % 10000), 'Chrome 126', 'Mac OS X 10.15', 'desktop', 'session', 'production', '1.0', 'bench',
          20, CASE WHEN i % 33 = 0 THEN 1 ELSE 0 END, '{{}}', {T0}, {T0},
          CASE WHEN i % 40 = 0 THEN 1 ELSE 0 END, 0, 2
        FROM {series}"""


REPLAY_COLUMNS = ("project_id, replay_id, started_at, ended_at, segment_count, raw_bytes, stored_bytes, urls, "
                  '"user", user_label, browser, os, device, replay_type, environment, release, sdk, click_count, '
                  "rage_click_count, scrub_report, created_at, updated_at, dead_click_count, console_error_count, "
                  "url_count")
CLICK_COLUMNS = ("project_id, replay_id, segment_id, seq, timestamp, node_id, tag, elem_id, classes, text, selector, "
                 "is_dead, is_rage, role, label, testid")


DISTINCT_TEXTS = "INSERT INTO click_texts (project_id, text) SELECT DISTINCT project_id, text FROM clicks"


def click_select(hex_id: str, series: str, k: int, true: str, false: str) -> str:
    n = f"(i * {k} + j)"
    dead = "(j = 1 AND i % 40 = 0)"
    rage = "(j = 0 AND i % 33 = 0)"
    return f"""
        SELECT 1, {hex_id}, j / 5, j % 5, {T0} + i * 10 + j, j,
          CASE WHEN {dead} OR {rage} OR {n} % 2 = 0 THEN 'button' ELSE 'a' END,
          CASE WHEN {dead} THEN 'dead' WHEN {rage} THEN 'buy' ELSE '' END,
          CASE WHEN {n} % 11 = 0 THEN 'btn btn-primary' WHEN {n} % 2 = 1 THEN 'btn nav-link' ELSE 'btn' END,
          {TEXT.format(n=n)},
          CASE WHEN {dead} THEN 'button#dead.btn' WHEN {rage} THEN 'button#buy.btn' ELSE 'a.btn' END,
          CASE WHEN {dead} THEN {true} ELSE {false} END, CASE WHEN {rage} THEN {true} ELSE {false} END,
          CASE WHEN {n} % 1000 = 0 THEN 'menuitem' WHEN {n} % 2 = 1 THEN 'link' ELSE '' END,
          CASE WHEN {n} % 97 = 0 THEN 'Proceed to checkout' WHEN {n} % 13 = 0 THEN 'Close dialog' ELSE '' END,
          CASE WHEN {n} % 97 = 0 THEN 'checkout' WHEN {n} % 5 = 0 THEN 'item-' || ({n} % 200) ELSE '' END
        FROM {series}
        ORDER BY j / 5, i, j"""  # as ingest writes them: a segment's clicks together, replays' segments interleaved


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
        db.executescript(SQLITE_FROM_CLICKS)  # what ingest writes beside the clicks (as the migration does)
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
        await conn.execute(POSTGRES_FROM_CLICKS)
        for table in ("replays", "clicks", "click_texts", "click_values"):
            await conn.execute(f"VACUUM ANALYZE {table}")


async def time_searches(index: Index, repeat: int, backend: str, fill_s: float) -> None:
    """Each search's median time, printed as it is measured."""
    print(f"{backend}: generated in {fill_s:.1f} s; {load()}", flush=True)
    # the user's email as the default policy stores it: the search hashes the address given
    forms = lambda field, value: [value, f"[hash:{1000000000 + USER}]"]  # noqa: E731
    for label, text in SEARCHES:
        query = ReplayQuery(search=parse(text, forms), sort="activity" if "activity" in text else "started_at")
        await index.list_replays(1, query, limit=50)  # warm-up
        times = []
        total = 0
        for _ in range(repeat):
            start = time.perf_counter()
            _, total = await index.list_replays(1, query, limit=50)
            times.append(time.perf_counter() - start)
        ms = statistics.median(times) * 1000
        verdict = "ok" if ms <= 200 else "OVER 200 ms"
        print(f"  {label:22} {text:62} {ms:8.1f} ms  {total:7d} replays  {verdict}", flush=True)
    print(f"  ({load()})", flush=True)


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
                await time_searches(index, args.repeat, "sqlite", time.perf_counter() - start)
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
                await time_searches(pg, args.repeat, "postgres", time.perf_counter() - start)
            finally:
                await pg.close()
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.close()


def run(coro: Any) -> None:
    asyncio.run(coro)


if __name__ == "__main__":
    run(main())
