"""Every index backend passes this suite: the ``Index`` protocol used directly, records in, typed
records out. A backend joins by adding its name to ``BACKENDS`` and a URL to ``index_config``."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import sqlite3
import time

import pytest

from replayd.server.cli import main
from replayd.server.config import ConfigError, IndexConfig, load_config
from replayd.server.index import (
    ErrorDetail,
    ErrorRecord,
    ErrorRow,
    IndexBusy,
    IssueRow,
    Replay,
    ReplayBusy,
    ReplayDetail,
    ReplayEventRecord,
    ReplayQuery,
    ScrubberState,
    SegmentRecord,
    SegmentRow,
    StateConflict,
    open_index,
    user_label,
)
from replayd.server.index.migrations_postgres import MIGRATIONS as POSTGRES_MIGRATIONS
from replayd.server.index.postgres import PostgresIndex, leader_lock
from replayd.server.index.records import SORT_KEYS
from replayd.server.search import parse as parse_search

BACKENDS = ["sqlite", "postgres"]
P = 1
T0 = 1_790_000_000.0


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def index_config(backend, request, tmp_path) -> IndexConfig:
    """An empty index: a new SQLite file, or the test run's PostgreSQL database with empty tables."""
    if backend == "sqlite":
        return IndexConfig(url=f"sqlite:///{tmp_path / 'index.sqlite3'}")
    return IndexConfig(url=request.getfixturevalue("postgres_url"))


@pytest.fixture
def new_index_config(backend, request, tmp_path) -> IndexConfig:
    """A database no replayd has opened yet: no schema at all."""
    if backend == "sqlite":
        return IndexConfig(url=f"sqlite:///{tmp_path / 'new.sqlite3'}")
    return IndexConfig(url=request.getfixturevalue("new_postgres_url"))


@pytest.fixture
async def open_node(index_config):
    """Opens an index on the suite's database (or on ``config``), as another node (or process) would."""
    opened = []

    async def open_one(config: IndexConfig = index_config):
        opened.append(await open_index(config))
        return opened[-1]

    yield open_one
    for index in opened:
        await index.close()


@pytest.fixture
async def index(open_node):
    return await open_node()


def rid(n: int) -> str:
    return f"{n:032x}"


def report(**by_rule: int) -> dict:
    return {"total": sum(by_rule.values()), "by_rule": by_rule, "by_location": {"dom.text": sum(by_rule.values())}}


def segment(replay_id: str, segment_id: int, start: float = 0.0, length: float = 5.0, **fields) -> SegmentRecord:
    values = dict(
        project_id=P, replay_id=replay_id, segment_id=segment_id, blob_key=f"{P}/{replay_id}/{segment_id:06d}",
        codec="msgpack+br", started_at=T0 + start, ended_at=T0 + start + length, event_count=10, raw_bytes=1000,
        stored_bytes=300, has_full_snapshot=segment_id == 0, click_count=2, rage_click_count=0,
        scrub_report=report(**{"@email": 1}),
    )
    return SegmentRecord(**{**values, **fields})


def replay_event(replay_id: str, segment_id: int, **fields) -> ReplayEventRecord:
    times = {"started_at": fields.pop("started_at", None), "timestamp": fields.pop("timestamp", None)}
    return ReplayEventRecord(project_id=P, replay_id=replay_id, segment_id=segment_id, **times, **fields)


def error(event_id: str, timestamp: float = T0 + 2, **fields) -> ErrorRecord:
    values = dict(project_id=P, event_id=event_id, timestamp=timestamp, level="error", fingerprint="fp-type-error",
                  title="TypeError: x is undefined", type="TypeError", value="x is undefined")
    return ErrorRecord(**{**values, **fields})


async def store(index, record: SegmentRecord, state: bytes = b"state") -> None:
    """What ingest does per segment: read the scrubber state's version, write with it."""
    current = await index.get_state(record.project_id, record.replay_id)
    await index.record_segment(record, state, current.version)


def without_times(replay: Replay) -> dict:
    return {k: v for k, v in replay.as_dict().items() if k not in ("created_at", "updated_at")}


# --- ingest records ---------------------------------------------------------------------------

async def test_a_stored_segment_reads_back_as_typed_records(index):
    seg = segment(rid(1), 0)
    await store(index, seg)
    assert await index.get_segment(P, rid(1), 0) == seg  # the record in is the record out
    replay = await index.get_replay(P, rid(1))
    assert isinstance(replay, ReplayDetail)
    assert (replay.segment_count, replay.raw_bytes, replay.stored_bytes, replay.click_count) == (1, 1000, 300, 2)
    assert (replay.started_at, replay.ended_at, replay.duration) == (T0, T0 + 5, 5.0)
    assert replay.segments == [SegmentRow(0, T0, T0 + 5, 10, 1000, 300, True)]
    assert replay.segments[0].has_full_snapshot is True
    assert replay.scrub_report == {"total": 1, "by_rule": {"@email": 1}, "by_location": {"dom.text": 1}}
    listed, total = await index.list_replays(P, ReplayQuery())
    assert total == 1 and [type(r) for r in listed] == [Replay]
    assert without_times(listed[0]) == {k: v for k, v in without_times(replay).items()
                                        if k not in ("error_ids", "segments")}
    answer = json.loads(json.dumps(replay.as_dict()))  # what the API sends
    assert answer["duration"] == 5.0 and answer["segments"][0]["has_full_snapshot"] is True
    assert await index.get_replay(P, rid(2)) is None and await index.get_segment(P, rid(1), 1) is None


async def test_a_replay_known_only_from_its_replay_event_has_every_field(index):
    await index.record_replay_event(replay_event(rid(1), 0, timestamp=T0))
    replay = await index.get_replay(P, rid(1))
    assert (replay.segment_count, replay.segments, replay.duration) == (0, [], 0.0)
    assert replay.scrub_report == {"total": 0, "by_rule": {}, "by_location": {}}
    assert await index.list_replays(P, ReplayQuery()) == ([], 0)  # listed once it has a segment


async def test_a_resent_segment_replaces_itself_without_double_counting(index):
    await store(index, segment(rid(1), 0, scrub_report=report(**{"@email": 2})))
    await store(index, segment(rid(1), 1, start=5, scrub_report=report(**{"@email": 1, "@card": 1})))
    resent = segment(rid(1), 1, start=5, raw_bytes=700, stored_bytes=200, click_count=5, rage_click_count=1,
                     event_count=7, scrub_report=report(**{"@ip": 3}))
    await store(index, resent)
    replay = await index.get_replay(P, rid(1))
    assert (replay.segment_count, replay.raw_bytes, replay.stored_bytes) == (2, 1700, 500)
    assert (replay.click_count, replay.rage_click_count) == (7, 1)
    assert replay.scrub_report == {"total": 5, "by_rule": {"@email": 2, "@ip": 3}, "by_location": {"dom.text": 5}}
    assert [s.event_count for s in replay.segments] == [10, 7]
    assert await index.get_segment(P, rid(1), 1) == resent


async def test_replay_events_and_segments_add_up_the_same_in_any_order(index):
    first = replay_event(rid(0), 0, started_at=T0 - 1, timestamp=T0, urls=["https://a.test/", "https://b.test/"],
                         replay_type="buffer", user={"id": "7", "email": "ann@example.com"}, browser="Firefox 120",
                         os="Linux", environment="prod", sdk="sentry.javascript.browser/8.0.0", error_ids=[rid(90)])
    later = replay_event(rid(0), 3, timestamp=T0 + 18, urls=["https://b.test/", "https://c.test/"],
                         replay_type="session", release="1.2.3")
    pieces = [first, later, segment(rid(0), 0), segment(rid(0), 3, start=15)]
    results = []
    for n, order in enumerate(itertools.permutations(pieces), start=1):
        for piece in order:
            piece = dataclasses.replace(piece, replay_id=rid(n))
            if isinstance(piece, SegmentRecord):
                await store(index, dataclasses.replace(piece, blob_key=f"1/{rid(n)}/{piece.segment_id:06d}"))
            else:
                await index.record_replay_event(piece)
        replay = await index.get_replay(P, rid(n))
        results.append({**without_times(replay), "replay_id": None, "urls": sorted(replay.urls),
                        "segments": None})
    assert len(results) == 24 and all(r == results[0] for r in results)
    folded = results[0]
    assert (folded["started_at"], folded["ended_at"], folded["segment_count"]) == (T0 - 1, T0 + 20, 2)
    assert folded["urls"] == ["https://a.test/", "https://b.test/", "https://c.test/"]
    assert folded["replay_type"] == "buffer"  # segment 0's event decides
    assert (folded["user"], folded["browser"], folded["release"]) == (first.user, "Firefox 120", "1.2.3")
    assert (folded["error_ids"], folded["error_count"]) == ([rid(90)], 1)


async def test_a_replays_urls_are_a_union_in_first_seen_order_up_to_500(index):
    await index.record_replay_event(replay_event(rid(1), 0, urls=[f"/p{i}" for i in range(400)]))
    await index.record_replay_event(replay_event(rid(1), 1, urls=[f"/p{i}" for i in range(300, 700)]))
    assert (await index.get_replay(P, rid(1))).urls == [f"/p{i}" for i in range(500)]


async def test_a_later_non_empty_value_wins_and_an_empty_one_keeps_the_stored(index):
    await index.record_replay_event(replay_event(rid(1), 0, user={"id": "1"}, browser="Chrome 120", os="macOS"))
    await index.record_replay_event(replay_event(rid(1), 1, user={"id": "2"}, browser="", os="Windows"))
    replay = await index.get_replay(P, rid(1))
    assert (replay.user, replay.browser, replay.os) == ({"id": "2"}, "Chrome 120", "Windows")


def test_one_user_label_username_then_email_then_id_then_address_then_name():
    assert user_label({"id": "7", "email": "ann@example.com", "username": "ann"}) == "ann"
    assert user_label({"id": "7", "email": "ann@example.com"}) == "ann@example.com"
    assert user_label({"id": 7, "ip_address": "192.0.2.1"}) == "7"
    assert user_label({"ip_address": "192.0.2.1", "name": "Ann"}) == "192.0.2.1"
    assert user_label({"name": "Ann"}) == "Ann" and user_label({}) == ""


async def test_the_user_filter_finds_the_label_and_any_user_field(index):
    await index.record_replay_event(replay_event(rid(1), 0, user={"id": "42", "email": "Ann@Example.com"}))
    await store(index, segment(rid(1), 0))
    assert (await index.get_replay(P, rid(1))).user_label == "Ann@Example.com"
    for needle, found in (("ann@example", True), ("42", True), ("bob", False)):
        assert (await index.list_replays(P, ReplayQuery(user=needle)))[1] == found, needle


async def test_the_url_and_user_filters_ignore_case(index):
    await index.record_replay_event(replay_event(rid(1), 0, urls=["https://Shop.Test/Checkout?Step=2"],
                                                 user={"email": "Ann.Lee@Example.COM", "id": "U-7"}))
    await store(index, segment(rid(1), 0))
    await add_replay(index, 2, start=10, length=5, url="https://blog.test/")
    for query in (ReplayQuery(url="shop.test/checkout?step"), ReplayQuery(url="SHOP.TEST/CHECKOUT"),
                  ReplayQuery(url="sHoP.tEsT"), ReplayQuery(user="ann.lee@example.com"),
                  ReplayQuery(user="ANN.LEE@EXAMPLE"), ReplayQuery(user="u-7")):
        rows, total = await index.list_replays(P, query)
        assert ([r.replay_id for r in rows], total) == ([rid(1)], 1), query


# --- errors and issues ------------------------------------------------------------------------

async def test_errors_and_replays_link_whichever_arrives_first(index):
    r = rid(1)
    await index.record_error(error(rid(10), timestamp=T0 + 3, replay_id=r))  # the error names its replay first
    # the replay_event names an error not stored yet
    await index.record_replay_event(replay_event(r, 0, started_at=T0, error_ids=[rid(11)]))
    await store(index, segment(r, 0))
    await index.link_errors(P, r, [rid(12), rid(10)])  # marks in the recording
    assert await index.record_error(error(rid(11), timestamp=T0 + 1))  # no replay of its own
    replay = await index.get_replay(P, r)
    assert (replay.error_ids, replay.error_count) == ([rid(10), rid(11), rid(12)], 3)
    linked = await index.replay_errors(P, r)
    assert [type(e) for e in linked] == [ErrorRow, ErrorRow]
    assert [e.event_id for e in linked] == [rid(11), rid(10)]  # stored ones only, oldest first
    found = await index.get_error(P, rid(11))
    assert isinstance(found, ErrorDetail)
    assert (found.replay_id, found.replay_offset, found.replay_available) == (r, 1.0, True)
    assert found.data == {} and found.issue_id == linked[0].issue_id
    listed, _ = await index.list_replays(P, ReplayQuery(has_errors=True))
    assert [x.replay_id for x in listed] == [r]


async def test_a_segments_replay_events_are_folded_in_its_own_commit(index):
    """Ingest hands the envelope's replay_event to the segment's commit: the replay's metadata and error
    links arrive with the segment (with or without a writer), as record_replay_event would leave them."""
    r = rid(1)
    first = replay_event(r, 0, started_at=T0, urls=["https://shop.test/a"], error_ids=[rid(10)], browser="Firefox")
    await index.record_segment(segment(r, 0), b"after 0", 0, events=[first])
    async with index.replay_writer(P, r, 1, 5) as writer:
        await writer.record_segment(segment(r, 1, start=5), b"after 1", [], [],
                                    [replay_event(r, 1, urls=["https://shop.test/b"], error_ids=[rid(11), rid(10)])])
        with pytest.raises(ValueError, match="another replay"):  # never folded into the wrong replay
            await writer.record_segment(segment(r, 1, start=5), b"x", events=[replay_event(rid(2), 1)])
    replay = await index.get_replay(P, r)
    assert replay is not None and (replay.segment_count, replay.browser) == (2, "Firefox")
    assert replay.urls == ["https://shop.test/a", "https://shop.test/b"] and replay.started_at == T0
    assert (replay.error_ids, replay.error_count) == ([rid(10), rid(11)], 2)
    assert (await index.get_state(P, r)).data == b"after 1"


async def test_an_error_sent_to_several_nodes_at_once_is_stored_and_counted_once(index, open_node):
    nodes = [index, await open_node(), await open_node()]
    stored = await asyncio.gather(*(node.record_error(error(rid(10), replay_id=rid(1))) for node in nodes * 2))
    assert sorted(stored) == [False] * 5 + [True]
    issues, _ = await index.list_issues(P)
    assert [(i.count, i.replay_count) for i in issues] == [(1, 1)]
    await index.record_replay_event(replay_event(rid(1), 0))
    assert (await index.get_replay(P, rid(1))).error_count == 1


async def test_an_error_without_a_replay(index):
    assert await index.record_error(error(rid(10), data={"tags": {"a": "b"}}))
    found = await index.get_error(P, rid(10))
    assert (found.replay_id, found.replay_offset, found.replay_available) == (None, None, False)
    assert found.data == {"tags": {"a": "b"}}
    await index.record_error(error(rid(11), replay_id=rid(5)))  # its replay never arrives
    assert (await index.get_error(P, rid(11))).replay_available is False
    assert await index.get_error(P, rid(99)) is None


async def test_errors_group_into_issues_and_a_resent_error_counts_once(index):
    await index.record_error(error(rid(1), timestamp=T0 + 10, replay_id=rid(50), title="TypeError: old"))
    await index.record_error(error(rid(2), timestamp=T0 + 20, replay_id=rid(51), title="TypeError: new"))
    assert not await index.record_error(error(rid(2), timestamp=T0 + 30))
    await index.record_error(error(rid(3), timestamp=T0 + 5, fingerprint="fp-other", title="Other"))
    issues, total = await index.list_issues(P)
    assert total == 2 and [type(i) for i in issues] == [IssueRow, IssueRow]
    first = issues[0]
    assert (first.title, first.count, first.first_seen, first.last_seen) == ("TypeError: new", 2, T0 + 10, T0 + 20)
    assert (first.replay_count, first.latest_event_id, first.fingerprint) == (2, rid(2), "fp-type-error")
    assert issues[1].title == "Other" and issues[1].replay_count == 0
    page, total = await index.list_issues(P, offset=1, limit=1)
    assert [i.title for i in page] == ["Other"] and total == 2
    assert (await index.list_issues(2)) == ([], 0)


# --- listing --------------------------------------------------------------------------------

async def add_replay(index, n: int, start: float, length: float, url: str = "https://shop.test/", errors=0) -> None:
    error_ids = [rid(1000 * n + i) for i in range(errors)]
    await index.record_replay_event(replay_event(rid(n), 0, urls=[url], error_ids=error_ids))
    await store(index, segment(rid(n), 0, start=start, length=length))


async def test_list_filters(index):
    await add_replay(index, 1, start=0, length=10, url="https://shop.test/Cart?id=1", errors=1)
    await add_replay(index, 2, start=100, length=60)
    await add_replay(index, 3, start=200, length=300, url="https://blog.test/100%_off")
    await index.record_replay_event(replay_event(rid(4), 0, urls=["https://shop.test/"]))  # no segment: not listed

    async def ids(**query) -> list[int]:
        rows, total = await index.list_replays(P, ReplayQuery(**query))
        assert total == len(rows)
        return sorted(int(r.replay_id, 16) for r in rows)

    assert await ids() == [1, 2, 3]
    assert await ids(has_errors=True) == [1] and await ids(has_errors=False) == [2, 3]
    assert await ids(url="shop.test/cart") == [1]  # a substring, any case
    assert await ids(url="100%_") == [3] and await ids(url="1%") == []  # % and _ are literal
    assert await ids(min_duration=60) == [2, 3] and await ids(max_duration=60) == [1, 2]
    assert await ids(started_after=T0 + 100) == [2, 3] and await ids(started_before=T0 + 100) == [1]
    assert await ids(url="shop", min_duration=30) == [2]
    assert await index.list_replays(2, ReplayQuery()) == ([], 0)


async def test_list_sorts_and_pages(index):
    await add_replay(index, 1, start=0, length=30, errors=2)
    await add_replay(index, 2, start=100, length=10)
    await add_replay(index, 3, start=200, length=20, errors=1)

    async def order(sort: str, descending: bool = True, offset: int = 0, limit: int = 50) -> list[int]:
        rows, total = await index.list_replays(P, ReplayQuery(sort=sort, descending=descending),
                                               offset=offset, limit=limit)
        assert total == 3
        return [int(r.replay_id, 16) for r in rows]

    assert await order("started_at") == [3, 2, 1] and await order("started_at", False) == [1, 2, 3]
    assert await order("duration") == [1, 3, 2] and await order("duration", False) == [2, 3, 1]
    assert await order("error_count") == [1, 3, 2]
    assert await order("unknown; DROP TABLE replays") == [3, 2, 1]  # anything else: by start
    assert await order("started_at", offset=1, limit=1) == [2]
    assert await order("started_at", offset=3) == []
    await store(index, segment(rid(2), 1, start=110))
    await store(index, segment(rid(2), 2, start=120))
    assert await order("segment_count") == [2, 3, 1]


async def test_pages_of_replays_tied_on_the_sort_list_each_once(index):
    """Replays with the same sort value (a batch of sessions of one start, of no errors) are ordered by
    their id: paging through them gives each exactly once, whatever the sort, direction and filter."""
    ids = [rid(n) for n in (7, 3, 11, 1, 9, 5, 2, 10, 4)]
    for replay_id in ids:
        await index.record_replay_event(replay_event(replay_id, 0, urls=["https://shop.test/"]))
        await store(index, segment(replay_id, 0, start=0, length=10))
    search = parse_search("url:*shop*")
    for sort, descending, query in itertools.product(SORT_KEYS, (True, False), ({}, {"url": "shop"},
                                                                               {"search": search})):
        seen: list[str] = []
        for offset in range(0, len(ids) + 2, 2):
            rows, total = await index.list_replays(P, ReplayQuery(sort=sort, descending=descending, **query),
                                                   offset=offset, limit=2)
            seen += [r.replay_id for r in rows]
            assert total == len(ids)
        assert seen == sorted(ids, reverse=descending), (sort, descending, query)


async def test_list_counts_up_to_the_cap_or_the_page_asked_for(index, monkeypatch):
    from replayd.server.index import records

    monkeypatch.setattr(records, "TOTAL_CAP", 3)  # 10,000 in production; the rule is the same
    for n in range(1, 7):
        await add_replay(index, n, start=10 * n, length=5)

    async def total(offset: int, limit: int, **query) -> int:
        return (await index.list_replays(P, ReplayQuery(**query), offset=offset, limit=limit))[1]

    assert await total(0, 2) == 4  # one more than the cap: "more than 3"
    assert await total(0, 5) == 6  # a page past the cap counts to its end and one more: "more than 5"
    assert await total(4, 2) == 6  # counted up to 7: all 6, exact
    assert await total(0, 2, url="nowhere") == 0


# --- deletion and retention -----------------------------------------------------------------

async def test_deleting_a_replay_deletes_its_rows_not_its_errors(index):
    await add_replay(index, 1, start=0, length=10)
    await add_replay(index, 2, start=0, length=10)
    await index.record_error(error(rid(10), replay_id=rid(1)))
    assert await index.delete_replay(P, rid(1))
    assert await index.get_replay(P, rid(1)) is None and await index.get_segment(P, rid(1), 0) is None
    assert await index.get_state(P, rid(1)) == ScrubberState()
    assert await index.replay_errors(P, rid(1)) == []
    assert (await index.get_error(P, rid(10))).replay_available is False
    assert not await index.delete_replay(P, rid(1))
    assert (await index.get_replay(P, rid(2))).segment_count == 1


async def test_retention_finds_old_replays_and_deletes_old_errors(index):
    for n in range(3):
        await add_replay(index, n, start=0, length=10)
    await index.record_error(error(rid(10), replay_id=rid(0)))
    await index.record_error(error(rid(11), replay_id=rid(7)))  # links to a replay that never came
    future = time.time() + 3600
    assert await index.replays_older_than(time.time() - 3600) == []
    assert sorted(await index.replays_older_than(future)) == [(P, rid(n)) for n in range(3)]
    assert len(await index.replays_older_than(future, limit=2)) == 2
    assert await index.delete_errors_older_than(time.time() - 3600) == 0
    assert await index.delete_errors_older_than(future) == 2
    assert await index.list_issues(P) == ([], 0)
    assert await index.get_error(P, rid(10)) is None
    # a link stays while its replay does (it still counts there); the orphan link goes
    assert (await index.get_replay(P, rid(0))).error_ids == [rid(10)]
    await index.record_replay_event(replay_event(rid(7), 0))
    assert (await index.get_replay(P, rid(7))).error_ids == []


# --- compaction ----------------------------------------------------------------------------

def compacted(row: SegmentRecord, key: str, offset: int, stored: int = 100) -> SegmentRecord:
    return dataclasses.replace(row, blob_key=key, stored_bytes=stored, chunk_start=0, chunk_end=300,
                               chunk_offset=offset, chunk_length=1000)


async def test_compaction_finds_finished_replays_and_switches_them_in_one_step(index):
    for segment_id in range(3):
        await store(index, segment(rid(1), segment_id, start=segment_id * 5))
    await store(index, segment(rid(2), 0))
    now = time.time()
    assert await index.replays_to_compact(now - 60, 3600, now - 60) == []  # written just now
    assert sorted(await index.replays_to_compact(now + 1, 3600, now + 1)) == [(P, rid(1)), (P, rid(2))]
    assert await index.replays_to_compact(now + 1, 3600, now + 1, limit=1, offset=1) in ([(P, rid(1))], [(P, rid(2))])
    # long enough (10 s here) and settled counts as finished too; idle alone is not reached
    assert await index.replays_to_compact(now - 60, 10, now + 1) == [(P, rid(1))]

    before = await index.replay_segments(P, rid(1))
    assert [s.segment_id for s in before] == [0, 1, 2] and not any(s.compacted for s in before)
    key = f"{P}/{rid(1)}/compacted-000001"
    after = [compacted(row, key, n * 1000) for n, row in enumerate(before)]
    old_keys = [row.blob_key for row in before]
    version = (await index.get_state(P, rid(1))).version
    assert not await index.switch_to_compacted(P, rid(1), version - 1, before, after, old_keys)  # a segment came
    assert await index.switch_to_compacted(P, rid(1), version, before, after, old_keys)
    assert await index.replay_segments(P, rid(1)) == after
    assert (await index.get_segment(P, rid(1), 1)).compacted
    replay = await index.get_replay(P, rid(1))
    assert replay.stored_bytes == 300 and replay.segment_count == 3 and replay.raw_bytes == 3000
    assert sorted(await index.garbage()) == [(P, rid(1), k) for k in old_keys]
    assert await index.blob_referenced(P, rid(1), key) and not await index.blob_referenced(P, rid(1), old_keys[0])
    await index.forget_garbage(P, rid(1), old_keys[0])
    assert len(await index.garbage()) == 2
    assert await index.replays_to_compact(now + 1, 3600, now + 1) == [(P, rid(2))]  # nothing loose left
    # the rows changed since they were read: nothing is written
    assert not await index.switch_to_compacted(P, rid(1), version, before, after, [])
    assert not await index.switch_to_compacted(P, rid(2), 1, [], [], [])
    # a segment stored again exactly as it was still counts as a change (its blob was written again)
    before = await index.replay_segments(P, rid(2))
    await store(index, segment(rid(2), 0))
    assert before == await index.replay_segments(P, rid(2))
    assert not await index.switch_to_compacted(P, rid(2), 1, before, [compacted(before[0], "k", 0)], [])


async def test_a_segment_after_compaction_replaces_the_compacted_row(index):
    for segment_id in range(2):
        await store(index, segment(rid(1), segment_id))
    before = await index.replay_segments(P, rid(1))
    key = f"{P}/{rid(1)}/compacted-000001"
    assert await index.switch_to_compacted(P, rid(1), 2, before, [compacted(r, key, 0) for r in before], [])
    await store(index, segment(rid(1), 1, stored_bytes=250))  # a re-send wins
    await store(index, segment(rid(1), 2, start=10))  # a new one
    rows = await index.replay_segments(P, rid(1))
    assert [(r.segment_id, r.compacted, r.blob_key) for r in rows] == [
        (0, True, key), (1, False, f"{P}/{rid(1)}/000001"), (2, False, f"{P}/{rid(1)}/000002")]
    replay = await index.get_replay(P, rid(1))
    assert replay.segment_count == 3 and replay.stored_bytes == 100 + 250 + 300
    assert await index.replays_to_compact(time.time() + 1, 3600, time.time() + 1) == [(P, rid(1))]


async def test_deleting_a_compacted_replay_forgets_its_garbage(index):
    await store(index, segment(rid(1), 0))
    before = await index.replay_segments(P, rid(1))
    key = f"{P}/{rid(1)}/compacted-000001"
    assert await index.switch_to_compacted(P, rid(1), 1, before, [compacted(before[0], key, 0)], [before[0].blob_key])
    assert await index.delete_replay(P, rid(1))
    assert await index.garbage() == [] and await index.replay_segments(P, rid(1)) == []


async def test_a_replay_with_a_spooled_segment_is_not_compacted_yet(index):
    await store(index, segment(rid(1), 0))
    await store(index, segment(rid(1), 1, location="spool"))
    later = time.time() + 1
    assert await index.replays_to_compact(later, 3600, later) == []
    assert await index.segment_moved_to_store(P, rid(1), 1)
    assert await index.replays_to_compact(later, 3600, later) == [(P, rid(1))]


# --- meta, scrubber state, segment location ---------------------------------------------------

async def test_meta_is_made_once_even_by_nodes_starting_together(index, open_node):
    other = await open_node()
    made = []

    def make(value):
        return lambda: made.append(value) or value

    values = await asyncio.gather(index.meta_get_or_create("auth.secret", make("a")),
                                  other.meta_get_or_create("auth.secret", make("b")))
    assert values[0] == values[1] and made == [values[0]]
    assert await index.meta_get_or_create("auth.secret", make("c")) == values[0] and len(made) == 1
    assert await index.meta_get_or_create("other", lambda: "d") == "d"


async def test_meta_set_and_replace(index):
    await index.meta_set("k", "one")
    await index.meta_set("k", "two")
    assert await index.meta_get_or_create("k", lambda: "unused") == "two"
    assert await index.meta_replace("k", "k.upper", str.upper)
    assert await index.meta_get_or_create("k.upper", lambda: "unused") == "TWO"
    assert await index.meta_get_or_create("k", lambda: "made again") == "made again"
    assert not await index.meta_replace("absent", "other", str.upper)
    assert await index.meta_get_or_create("other", lambda: "new") == "new"


async def test_nodes_starting_together_on_a_new_database(open_node, new_index_config):
    first, second, *_ = await asyncio.gather(*(open_node(new_index_config) for _ in range(4)))
    await first.record_replay_event(replay_event(rid(1), 0))
    assert (await second.get_replay(P, rid(1))).replay_id == rid(1)


async def test_the_scrubber_state_is_versioned_and_compared_on_write(index, open_node):
    assert await index.get_state(P, rid(1)) == ScrubberState(None, 0)
    await index.record_segment(segment(rid(1), 0), b"after 0", 0)
    assert await index.get_state(P, rid(1)) == ScrubberState(b"after 0", 1)
    other = await open_node()
    await other.record_segment(segment(rid(1), 1, start=5), b"after 1", 1)
    # a writer still holding version 1 (or 0) was overtaken: it writes nothing
    for stale in (0, 1):
        with pytest.raises(StateConflict):
            await index.record_segment(segment(rid(1), 2, start=10), b"stale", stale)
    assert await index.get_state(P, rid(1)) == ScrubberState(b"after 1", 2)
    assert await index.get_segment(P, rid(1), 2) is None
    assert (await index.get_replay(P, rid(1))).segment_count == 2
    await index.delete_replay(P, rid(1))  # deleted while a segment was being scrubbed
    with pytest.raises(StateConflict):
        await other.record_segment(segment(rid(1), 2, start=10), b"after 2", 2)
    assert await index.get_replay(P, rid(1)) is None


async def test_a_replays_writers_take_turns_across_nodes_each_with_the_state_the_last_left(index, open_node, backend):
    # SQLite's replay lock is its process's (one SQLite index, one process): there, one index object
    nodes = [index, await open_node()] if backend == "postgres" else [index]
    inside: list[int] = []
    seen: dict[int, ScrubberState] = {}

    async def write(n: int) -> None:
        async with nodes[n % len(nodes)].replay_writer(P, rid(1), n, timeout=30) as writer:
            inside.append(n)
            assert len(inside) == 1, f"writers {inside} inside at once"
            seen[n] = writer.state
            await asyncio.sleep(0.02)  # a scrub and a blob write
            await writer.record_segment(segment(rid(1), n, start=5 * n), f"after {n}".encode())
            inside.remove(n)

    await asyncio.gather(*(write(n) for n in range(6)))
    # whatever the order, each writer read the state as the writers before it had left it
    assert sorted(state.version for state in seen.values()) == list(range(6))
    for state in seen.values():
        if state.version:
            assert state.data in {f"after {n}".encode() for n in range(6)}
    assert (await index.get_state(P, rid(1))).version == 6
    assert (await index.get_replay(P, rid(1))).segment_count == 6


async def test_a_replay_writer_waits_for_the_lock_at_most_its_timeout(index, open_node, backend):
    other = await open_node() if backend == "postgres" else index
    async with index.replay_writer(P, rid(1), 0, timeout=5):
        with pytest.raises(ReplayBusy):
            async with other.replay_writer(P, rid(1), 1, timeout=0.2):
                pass
        async with other.replay_writer(P, rid(2), 0, timeout=0.2):  # another replay's lock is free
            pass
    async with other.replay_writer(P, rid(1), 0, timeout=0.2) as writer:
        assert writer.state == ScrubberState()


async def test_a_replay_writer_returns_the_row_it_replaced(index):
    async with index.replay_writer(P, rid(1), 0, timeout=5) as writer:
        assert await writer.record_segment(segment(rid(1), 0, blob_key=f"{P}/{rid(1)}/000000-{'a' * 16}"), b"s") is None
    async with index.replay_writer(P, rid(1), 0, timeout=5) as writer:
        replaced = await writer.record_segment(segment(rid(1), 0, blob_key=f"{P}/{rid(1)}/000000-{'b' * 16}"), b"t")
    assert replaced is not None and replaced.blob_key.endswith("a" * 16)
    # an upload of the replaced bytes no longer marks the segment as uploaded
    assert not await index.segment_moved_to_store(P, rid(1), 0, replaced.blob_key)
    assert await index.segment_moved_to_store(P, rid(1), 0, f"{P}/{rid(1)}/000000-{'b' * 16}")


async def test_one_leader_per_job_at_a_time(index, open_node):
    other = await open_node()
    async with index.leader("retention") as first:
        async with other.leader("retention") as second:
            assert (first, second) == (True, False)
        async with other.leader("compaction") as another_job:
            assert another_job
    async with other.leader("retention") as second:
        assert second


async def test_postgres_replay_writers_leave_two_connections_of_the_pool_free(postgres_url):
    index = await PostgresIndex.open(postgres_url, min_size=0, max_size=4)
    try:
        holding = asyncio.Event()
        release = asyncio.Event()

        async def write(n: int) -> None:
            async with index.replay_writer(P, rid(n), 0, timeout=30):
                holding.set()
                await release.wait()

        writers = [asyncio.create_task(write(n)) for n in range(3)]
        await holding.wait()
        await asyncio.sleep(0.2)
        assert index.pool.get_size() - index.pool.get_idle_size() == 2  # the third writer waits its turn
        await asyncio.wait_for(asyncio.gather(index.check(), index.get_replay(P, rid(1))), 5)  # reads go on
        release.set()
        await asyncio.wait_for(asyncio.gather(*writers), 10)
    finally:
        await index.close()


async def test_a_replay_writer_keeps_garbage_and_asks_about_blobs_on_its_own_connection(index):
    key, other = f"{P}/{rid(1)}/000000-{'a' * 16}", f"{P}/{rid(1)}/compacted-000001"
    async with index.replay_writer(P, rid(1), 0, timeout=5) as writer:
        await writer.record_segment(segment(rid(1), 0, blob_key=key), b"s")
        assert await writer.blob_referenced(key) and not await writer.blob_referenced(other)
        await writer.keep_garbage([other, key])
        await writer.forget_garbage(key)
    assert await index.garbage() == [(P, rid(1), other)]
    await index.keep_garbage(P, rid(2), [f"{P}/{rid(2)}/000001"])
    assert sorted(await index.garbage()) == [(P, rid(1), other), (P, rid(2), f"{P}/{rid(2)}/000001")]


async def test_a_pool_of_one_connection_never_waits_for_itself(postgres_url):
    """Each holder does its work on the one connection it holds: a replay writer asking about blobs
    and garbage (ingest replacing a compacted row, compaction deleting), a leader's job on the pool
    (its lock is on a connection of its own). With index.pool_max_size 1 each of these waited for a
    second connection that only it could give back."""
    index = await open_index(IndexConfig(url=postgres_url, pool_min_size=0, pool_max_size=1))
    try:
        async def soon(awaitable):
            return await asyncio.wait_for(awaitable, 15)

        async with index.leader("compaction") as leading:
            assert leading
            assert await soon(index.replays_to_compact(time.time(), 1, time.time())) == []
            key = f"{P}/{rid(1)}/000000-{'a' * 16}"

            async def write(n: int) -> None:
                async with index.replay_writer(P, rid(1), n, timeout=10) as writer:
                    await writer.record_segment(segment(rid(1), n, blob_key=key.replace("000000", f"{n:06d}")),
                                                b"s%d" % n)
                    assert await writer.blob_referenced(key.replace("000000", f"{n:06d}"))
                    await writer.keep_garbage([key])
                    await writer.forget_garbage(key)

            await soon(asyncio.gather(*(write(n) for n in range(4)), index.get_replay(P, rid(1))))
        assert (await index.get_replay(P, rid(1))).segment_count == 4
    finally:
        await index.close()


async def test_a_request_finding_every_connection_in_use_is_index_busy(postgres_url):
    index = await open_index(IndexConfig(url=postgres_url, pool_min_size=0, pool_max_size=1,
                                         pool_acquire_timeout=0.3))
    try:
        async with index.replay_writer(P, rid(1), 0, timeout=5):  # holds the pool's only connection
            with pytest.raises(IndexBusy, match=r"index\.pool_acquire_timeout"):
                await asyncio.wait_for(index.get_replay(P, rid(1)), 10)
            with pytest.raises(IndexBusy):  # another writer: its slot
                await asyncio.wait_for(index.replay_writer(P, rid(2), 0, timeout=5).__aenter__(), 10)
        assert await index.get_replay(P, rid(1)) is None  # free again
    finally:
        await index.close()


async def test_a_dead_leaders_job_is_taken_over(postgres_url):
    leader, other = await PostgresIndex.open(postgres_url), await PostgresIndex.open(postgres_url)
    try:
        async with leader.leader("retention") as leading:
            assert leading
            async with other.leader("retention") as taken:
                assert not taken
            # the leader's node dies: PostgreSQL ends the session that held the lock
            key = leader_lock("retention")
            killed = await other.pool.fetchval(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND classid = $1 AND objid = $2 AND objsubid = 1",
                (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)
            assert killed == 1
            for _ in range(100):
                async with other.leader("retention") as taken:
                    if taken:
                        break
                await asyncio.sleep(0.05)
            assert taken
    finally:
        await leader.close()
        await other.close()


async def test_of_writers_holding_one_state_version_exactly_one_stores(index, open_node):
    nodes = [index, await open_node(), await open_node()]
    await store(index, segment(rid(1), 0))
    results = await asyncio.gather(
        *(node.record_segment(segment(rid(1), 1, start=5, raw_bytes=100 + n), f"by {n}".encode(), 1)
          for n, node in enumerate(nodes * 3)),
        return_exceptions=True)
    stored = [n for n, result in enumerate(results) if result is None]
    assert len(stored) == 1 and all(isinstance(r, StateConflict) for r in results if r is not None), results
    assert await index.get_state(P, rid(1)) == ScrubberState(f"by {stored[0]}".encode(), 2)
    replay = await index.get_replay(P, rid(1))
    assert (replay.segment_count, replay.raw_bytes) == (2, 1000 + 100 + stored[0])


async def test_error_links_count_once_whichever_nodes_write_them_at_once(index, open_node):
    nodes = [index, await open_node(), await open_node(), await open_node()]
    r = rid(1)
    writes = []
    for n in range(40):  # the replay's row is made by whichever replay_event comes first
        node = nodes[n % len(nodes)]
        if n % 4 == 0:
            writes.append(node.record_replay_event(replay_event(r, n, error_ids=[rid(100 + n), rid(100)])))
        elif n % 4 == 1:
            writes.append(node.record_error(error(rid(200 + n), replay_id=r)))
        else:
            writes.append(node.link_errors(P, r, [rid(100 + n), rid(100)]))
    await asyncio.gather(*writes)
    await store(index, segment(r, 0))
    replay = await index.get_replay(P, r)
    assert replay.error_count == len(replay.error_ids) == 10 + 10 + 20  # rid(100) is one of the first ten
    listed, _ = await index.list_replays(P, ReplayQuery(has_errors=True))
    assert [x.error_count for x in listed] == [40]


async def test_text_and_json_any_backend_can_keep(index, backend):
    """PostgreSQL's text holds no NUL (it becomes U+FFFD there) and its JSON no NaN (null there)."""
    odd = "a\x00b"
    kept = odd if backend == "sqlite" else "a\ufffdb"
    await index.record_replay_event(replay_event(rid(1), 0, urls=[f"https://x.test/{odd}"], user={"name": odd},
                                                 browser=odd))
    await store(index, segment(rid(1), 0, blob_key=odd, scrub_report=report(**{odd: 1})))
    assert await index.record_error(error(rid(2), replay_id=rid(1), title=odd, message=odd,
                                          data={odd: [odd, float("nan")]}))
    replay = await index.get_replay(P, rid(1))
    assert (replay.urls, replay.user, replay.browser) == ([f"https://x.test/{kept}"], {"name": kept}, kept)
    assert replay.scrub_report["by_rule"] == {kept: 1}
    assert (await index.get_segment(P, rid(1), 0)).blob_key == kept
    found = await index.get_error(P, rid(2))
    assert (found.message, list(found.data)) == (kept, [kept])
    text, number = found.data[kept]
    assert text == kept and (number is None if backend == "postgres" else number != number)
    assert (await index.list_issues(P))[0][0].title == kept
    assert (await index.list_replays(P, ReplayQuery(url="x.test/a")))[1] == 1


async def test_a_spooled_segment_moves_to_the_store(index):
    await store(index, segment(rid(1), 0, location="spool"))
    assert (await index.get_segment(P, rid(1), 0)).location == "spool"
    assert await index.segment_moved_to_store(P, rid(1), 0)
    assert (await index.get_segment(P, rid(1), 0)).location == "store"
    assert not await index.segment_moved_to_store(P, rid(1), 1)


async def test_check_answers_while_open(index):
    await index.check()


# --- the factory and SQLite's own migrations ---------------------------------------------------

async def test_open_index_names_an_unsupported_database_without_its_password():
    with pytest.raises(ValueError, match="'mysql' is not a supported database") as refused:
        await open_index(IndexConfig(url="mysql://replayd:hunter2@db.internal/replayd"))
    assert "hunter2" not in str(refused.value)


async def test_sqlite_keeps_a_state_stored_before_states_had_versions(tmp_path):
    from replayd.server.index.migrations import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("".join(MIGRATIONS[:2]) + "PRAGMA user_version = 2;")
    db.execute("INSERT INTO replay_state (project_id, replay_id, state) VALUES (1, ?, x'00')", (rid(1),))
    db.commit()
    db.close()
    index = await open_index(IndexConfig(url=f"sqlite:///{path}"))
    try:
        assert await index.get_state(P, rid(1)) == ScrubberState(b"\x00", 1)
    finally:
        await index.close()


async def test_sqlite_refuses_a_schema_newer_than_itself(tmp_path):
    from replayd.server.index.migrations import MIGRATIONS

    path = tmp_path / "newer.sqlite3"
    await (await open_index(IndexConfig(url=f"sqlite:///{path}"))).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer than this replayd"):
        await open_index(IndexConfig(url=f"sqlite:///{path}"))


# --- the index URL in the config ------------------------------------------------------------

def test_the_config_takes_a_postgresql_url_and_shows_it_without_its_password(tmp_path, capsys):
    url = "postgresql://replayd:hunter2@db.internal:5432/replayd"
    config = load_config(None, environ={"REPLAYD_INDEX__URL": url, "REPLAYD_INDEX__POOL_MAX_SIZE": "20",
                                        "REPLAYD_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1/x"})
    assert (config.index.url, config.index.pool_max_size) == (url, 20)
    assert config.index.display_url == "postgresql://replayd:***@db.internal:5432/replayd"
    assert IndexConfig(url="postgres://db/r?password=hunter2").display_url == "postgres://db/r?password=***"
    path = tmp_path / "replayd.yaml"
    path.write_text(f"index:\n  url: {url}\n")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "index postgresql://replayd:***@db.internal" in out and "hunter2" not in out


@pytest.mark.parametrize("url, problem", [
    ("mysql://replayd:hunter2@db/replayd", "'mysql' is not a supported database"),
    ("replayd:hunter2@db/replayd", "not a database URL"),
    ("sqlite://var/replayd.sqlite3", "a SQLite URL has three slashes"),
])
def test_the_config_refuses_another_database_naming_it_without_a_password(url, problem):
    with pytest.raises(ConfigError) as refused:
        load_config(None, environ={"REPLAYD_INDEX__URL": url})
    [line] = refused.value.problems
    assert line.startswith(f"index.url: {problem}") and "sqlite:///PATH or postgresql://" in line
    assert "hunter2" not in line


def test_the_config_refuses_a_pool_smaller_than_its_minimum():
    with pytest.raises(ConfigError, match=r"index\.pool_min_size: larger than index\.pool_max_size"):
        load_config(None, environ={"REPLAYD_INDEX__POOL_MIN_SIZE": "5", "REPLAYD_INDEX__POOL_MAX_SIZE": "2"})


# --- PostgreSQL's own: migrations, rewriting meta, copying a SQLite index -----------------------

async def test_postgres_records_each_migration_once_when_nodes_start_together(new_postgres_url):
    nodes = await asyncio.gather(*(PostgresIndex.open(new_postgres_url, min_size=0) for _ in range(4)))
    try:
        versions = await nodes[0].pool.fetch("SELECT version FROM schema_version ORDER BY version")
        assert [v[0] for v in versions] == list(range(1, len(POSTGRES_MIGRATIONS) + 1))
        assert await nodes[1].pool.fetchval("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'")
    finally:
        await asyncio.gather(*(node.close() for node in nodes))


async def test_postgres_refuses_a_schema_newer_than_itself(new_postgres_url):
    await (await PostgresIndex.open(new_postgres_url)).close()
    index = await PostgresIndex.open(new_postgres_url)
    await index.pool.execute("INSERT INTO schema_version VALUES ($1, 0)", len(POSTGRES_MIGRATIONS) + 1)
    await index.close()
    with pytest.raises(RuntimeError, match="newer than this replayd"):
        await PostgresIndex.open(new_postgres_url)


async def test_postgres_meta_replace_leaves_no_copy_of_the_old_value_in_the_table(postgres_url):
    index = await open_index(IndexConfig(url=postgres_url))
    try:
        await index.meta_set("auth.admin_password", "clear-text-secret-0123456789")
        assert await index.meta_replace("auth.admin_password", "auth.admin_password_hash", lambda v: "hashed")
        await index.pool.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        pages = await index.pool.fetch(
            "SELECT get_raw_page('meta', n) FROM generate_series(0, pg_relation_size('meta') / 8192 - 1) n")
        assert pages and not any(b"clear-text-secret" in bytes(page[0]) for page in pages)
    finally:
        await index.close()


async def test_postgres_meta_replace_waits_for_older_snapshots_before_the_rewrite(postgres_url):
    """A session holding a snapshot from before the delete (another node's read, an autovacuum
    ANALYZE) would make VACUUM FULL keep the old row: meta_replace waits for it to end."""
    import asyncpg

    index = await open_index(IndexConfig(url=postgres_url))
    reader = await asyncpg.connect(postgres_url)
    try:
        await index.meta_set("auth.admin_password", "clear-text-secret-0123456789")
        reading = reader.transaction(isolation="repeatable_read")
        await reading.start()
        await reader.fetchval("SELECT COUNT(*) FROM meta")  # its snapshot sees the old row
        replace = asyncio.create_task(
            index.meta_replace("auth.admin_password", "auth.admin_password_hash", lambda v: "hashed"))
        await asyncio.sleep(0.5)
        assert not replace.done()  # waiting for the reader
        await reading.commit()
        assert await asyncio.wait_for(replace, 30)
        await index.pool.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        pages = await index.pool.fetch(
            "SELECT get_raw_page('meta', n) FROM generate_series(0, pg_relation_size('meta') / 8192 - 1) n")
        assert pages and not any(b"clear-text-secret" in bytes(page[0]) for page in pages)
    finally:
        await reader.close()
        await index.close()


async def add_everything(index) -> None:
    """Rows in every table: replays with and without segments, errors linked either way, issues,
    scrubber states, a spooled segment, generated keys."""
    await add_replay(index, 1, start=0, length=30, url="https://Shop.test/cart", errors=2)
    await add_replay(index, 2, start=100, length=10)
    await store(index, segment(rid(2), 1, start=110, location="spool"), b"state after 1")
    await index.record_replay_event(replay_event(rid(3), 0, urls=["https://shop.test/"]))  # no segment
    await index.record_error(error(rid(1000), replay_id=rid(1), data={"tags": {"a": "b"}}))
    await index.record_error(error(rid(20), timestamp=T0 + 50, fingerprint="fp-other", title="Other"))
    await index.link_errors(P, rid(9), [rid(21)])  # a link whose replay never came
    await index.meta_set("auth.secret_key", "the-cookie-key")


async def test_copy_index_copies_a_sqlite_index_into_postgres_once(tmp_path, new_postgres_url, capsys):
    source = tmp_path / "replayd.sqlite3"
    sqlite = await open_index(IndexConfig(url=f"sqlite:///{source}"))
    await add_everything(sqlite)
    await sqlite.close()
    command = ["copy-index", "--from", f"sqlite:///{source}", "--to", new_postgres_url]
    assert await asyncio.to_thread(main, command) == 0
    counts = "meta 1, issues 2, errors 2, replays 3, segments 3, replay_state 2, replay_errors 3"
    assert counts in capsys.readouterr().out

    sqlite, postgres = (await open_index(IndexConfig(url=f"sqlite:///{source}")),
                        await open_index(IndexConfig(url=new_postgres_url)))
    try:
        for query in (ReplayQuery(), ReplayQuery(has_errors=True), ReplayQuery(url="shop.test/CART"),
                      ReplayQuery(sort="error_count")):
            assert await postgres.list_replays(P, query) == await sqlite.list_replays(P, query)
        for n in (1, 2, 3, 9):
            assert await postgres.get_replay(P, rid(n)) == await sqlite.get_replay(P, rid(n))
            assert await postgres.get_state(P, rid(n)) == await sqlite.get_state(P, rid(n))
            assert await postgres.replay_errors(P, rid(n)) == await sqlite.replay_errors(P, rid(n))
        assert await postgres.get_segment(P, rid(2), 1) == await sqlite.get_segment(P, rid(2), 1)
        for event_id in (rid(1000), rid(20)):
            assert await postgres.get_error(P, event_id) == await sqlite.get_error(P, event_id)
        assert await postgres.list_issues(P) == await sqlite.list_issues(P)
        assert await postgres.meta_get_or_create("auth.secret_key", lambda: "new") == "the-cookie-key"
        # writes go on where the copy left off: a new issue gets a new id, the state its next version
        await postgres.record_error(error(rid(30), fingerprint="fp-new", title="New"))
        assert len({issue.id for issue in (await postgres.list_issues(P))[0]}) == 3
        await store(postgres, segment(rid(2), 2, start=120))
        assert (await postgres.get_state(P, rid(2))).version == 3
    finally:
        await sqlite.close()
        await postgres.close()

    assert await asyncio.to_thread(main, command) == 1  # a second copy is refused, nothing written
    assert "the target's meta table has rows" in capsys.readouterr().err


def test_copy_index_takes_sqlite_to_postgresql_only(tmp_path, capsys):
    assert main(["copy-index", "--from", "postgresql://db/a", "--to", "postgresql://db/b"]) == 2
    assert main(["copy-index", "--from", f"sqlite:///{tmp_path}/a", "--to", "mysql://u:hunter2@db/b"]) == 2
    err = capsys.readouterr().err
    assert "--from: not a sqlite URL" in err and "--to: 'mysql' is not a supported database" in err
    assert "hunter2" not in err
    assert main(["copy-index", "--from", f"sqlite:///{tmp_path}/absent", "--to", "postgresql://db/b"]) == 1
    assert "no such SQLite index" in capsys.readouterr().err and not (tmp_path / "absent").exists()


# --- clicks and search (#14) -------------------------------------------------------------------

from replayd.server.index import ClickRecord, SelectorCount  # noqa: E402
from replayd.server.search import SearchError, click_terms, parse  # noqa: E402


def click(seq: int, at: float, **fields) -> ClickRecord:
    return ClickRecord(seq=seq, timestamp=T0 + at, node_id=seq + 10, **fields)


async def searched(index, text: str, **query) -> list[str]:
    rows, total = await index.list_replays(P, ReplayQuery(search=parse(text, lambda f, v: [v, f"[hash:{v}]"]),
                                                          **query))
    assert total == len(rows)
    return sorted(r.replay_id for r in rows)


async def stored_click_texts(index) -> set[str]:
    """What the click_texts table holds (the backend's own connection: no protocol call reads it)."""
    if isinstance(index, PostgresIndex):
        return {r[0] for r in await index.pool.fetch("SELECT text FROM click_texts")}
    return {r[0] for r in index.db.execute("SELECT text FROM click_texts")}


async def click_fixture(index) -> None:
    """Replay 1: a dead 'Pay now' button and rage clicks on #buy; replay 2: a working checkout link;
    replay 3: nothing clicked but errors and pages."""
    for n in (1, 2, 3):
        await store(index, segment(rid(n), 0, click_count=0, rage_click_count=int(n == 1)))
    await index.record_replay_event(replay_event(rid(1), 0, urls=["https://shop/cart", "https://shop/pay"],
                                                 user={"email": "[hash:jane@example.com]", "id": 42},
                                                 browser="Chrome 126", os="Mac OS X 10.15"))
    await index.record_replay_event(replay_event(rid(2), 0, urls=["https://shop/checkout"],
                                                 user={"email": "[hash:bob@example.com]", "id": "7"},
                                                 browser="Firefox 128"))
    await index.record_replay_event(replay_event(rid(3), 0, urls=["https://a/1", "https://a/2", "https://a/3"],
                                                 environment="production"))
    await index.link_errors(P, rid(3), ["e" * 32, "f" * 32])
    await index.record_clicks(P, rid(1), 0, [
        click(0, 1, tag="button", elem_id="pay", classes="btn primary", text="Pay now", label="Pay"),
        *(click(i, 2 + i / 10, tag="button", elem_id="buy", classes="btn", text="Buy", is_rage=i == 3)
          for i in range(1, 6)),
    ], [])
    await index.record_clicks(P, rid(2), 0, [click(0, 3, tag="a", classes="link", text="Checkout", testid="go")], [])
    # the next segment of replay 1 decides its first click dead
    await store(index, segment(rid(1), 1, start=5, click_count=0))
    await index.record_clicks(P, rid(1), 1, [], [(0, 0, False)])


async def test_a_replay_writer_commits_a_segments_clicks_with_it(index):
    async def write(segment_id: int, clicks, dead_earlier=None, state_version=None, **fields):
        async with index.replay_writer(P, rid(1), segment_id, timeout=5) as writer:
            if state_version is not None:  # the lock was lost and another writer committed meanwhile
                writer.state = ScrubberState(writer.state.data, state_version)
            await writer.record_segment(segment(rid(1), segment_id, start=5 * segment_id, **fields),
                                        f"after {segment_id}".encode(), clicks, dead_earlier)

    async def clicks() -> list[tuple[int, bool]]:
        return [(c.seq, c.is_dead) for c in await index.replay_clicks(P, rid(1))]

    await write(0, [click(0, 1, tag="button", text="Pay"), click(1, 2, tag="a", text="Home")])
    assert await clicks() == [(0, False), (1, False)]
    await write(1, [], [(0, 0, False)])  # the next segment decides segment 0's first click dead
    assert (await clicks(), (await index.get_replay(P, rid(1))).dead_click_count) == ([(0, True), (1, False)], 1)
    await write(2, [])  # a segment without clicks keeps the dead count
    assert (await index.get_replay(P, rid(1))).dead_click_count == 1
    # a commit refused for a stale state writes neither the segment nor its clicks
    with pytest.raises(StateConflict):
        await write(3, [click(0, 20, tag="button", text="Lost", is_dead=True)], state_version=1)
    assert await index.get_segment(P, rid(1), 3) is None
    assert await searched(index, "click.textContent:Lost") == []
    assert (await index.get_replay(P, rid(1))).dead_click_count == 1
    # segment 0 sent again: its clicks are replaced, not added to
    await write(0, [click(0, 1, tag="button", text="Pay", is_dead=True)], raw_bytes=2000)
    assert (await clicks(), (await index.get_replay(P, rid(1))).dead_click_count) == ([(0, True)], 1)
    assert await searched(index, "click.textContent:Pay") == [rid(1)]


async def test_clicks_are_searched_by_element_text_selector_and_frustration(index):
    await click_fixture(index)
    assert await searched(index, "click.textContent:*checkout*") == [rid(2)]
    assert await searched(index, "click.textContent:checkout") == [rid(2)]  # whole text, any case
    assert await searched(index, "click.tag:button") == [rid(1)]
    assert await searched(index, "click.class:primary") == [rid(1)]
    assert await searched(index, "click.class:prim") == []
    # any case for ASCII letters, exact or from a literal start (an index range on SQLite)
    assert await searched(index, "click.tag:BUTTON") == [rid(1)]
    assert await searched(index, "click.class:PRIM*") == await searched(index, "click.class:*MAR*") == [rid(1)]
    assert await searched(index, "click.label:p*") == [rid(1)]
    assert await searched(index, "click.selector:BUTTON#PAY") == [rid(1)]
    assert await searched(index, "click.selector:.Link") == [rid(2)]
    assert await searched(index, "click.testid:go OR click.id:pay") == [rid(1), rid(2)]
    assert await searched(index, 'click.selector:button#pay.btn[aria-label="Pay"]') == [rid(1)]
    assert await searched(index, "click.selector:a.link[data-testid=go]") == [rid(2)]
    assert await searched(index, "click.selector:a.btn") == []
    assert await searched(index, "dead.selector:button#pay") == [rid(1)]
    assert await searched(index, "dead.selector:button#buy") == []
    assert await searched(index, "rage.selector:#buy") == [rid(1)]
    assert await searched(index, "!click.tag:button") == [rid(2), rid(3)]
    assert await searched(index, "count_dead_clicks:>0") == [rid(1)]
    assert await searched(index, "count_dead_clicks:1 count_rage_clicks:<1") == []
    assert await searched(index, "count_errors:2 url:*a/2*") == [rid(3)]
    assert await searched(index, "count_urls:>1 (browser.name:chrome OR environment:production)") == [rid(1), rid(3)]
    assert await searched(index, "os.name:*mac*") == [rid(1)]
    assert await searched(index, "user.email:jane@example.com") == [rid(1)]  # the hashed form matches
    assert await searched(index, "user.id:42 OR user.id:7") == [rid(1), rid(2)]
    assert await searched(index, "activity:>1") == [rid(1), rid(3)]
    replay = await index.get_replay(P, rid(1))
    assert (replay.dead_click_count, replay.url_count, replay.activity) == (1, 2, 3)


async def stored_click_values(index) -> list[tuple]:
    """What the click_values table holds, in order (the backend's own connection)."""
    sql = "SELECT project_id, replay_id, field, value FROM click_values ORDER BY 1, 2, 3, 4"
    if isinstance(index, PostgresIndex):
        return [tuple(r) for r in await index.pool.fetch(sql)]
    return index.db.execute(sql).fetchall()


async def test_click_values_are_written_with_the_clicks_rebuilt_by_the_migration_and_deleted_with_the_replay(index):
    from replayd.server.index.click_values import POSTGRES_FROM_CLICKS, SQLITE_FROM_CLICKS

    await click_fixture(index)
    written = await stored_click_values(index)
    assert [(r[1], r[2], r[3]) for r in written if r[1] == rid(2)] == [
        (rid(2), "classes", "link"), (rid(2), "tag", "a"), (rid(2), "testid", "go")]
    assert {r[3] for r in written if r[2] == "classes"} == {"btn", "primary", "link"}  # a class a row
    # the migration that adds the table fills it from the clicks already stored: the same rows
    if isinstance(index, PostgresIndex):
        await index.pool.execute("DELETE FROM click_values; " + POSTGRES_FROM_CLICKS)
    else:
        index.db.executescript("DELETE FROM click_values; " + SQLITE_FROM_CLICKS)
    assert await stored_click_values(index) == written
    await index.delete_replay(P, rid(1))  # a label or title may name someone: none is left behind
    assert {r[1] for r in await stored_click_values(index)} == {rid(2)}


async def test_search_sorts_by_counts_and_finds_where_to_open(index):
    await click_fixture(index)
    rows, _ = await index.list_replays(P, ReplayQuery(sort="count_errors"))
    assert rows[0].replay_id == rid(3)
    rows, _ = await index.list_replays(P, ReplayQuery(sort="count_clicks", descending=False,
                                                      search=parse("duration:<1h")))
    assert len(rows) == 3
    rows, _ = await index.list_replays(P, ReplayQuery(sort="activity"))
    assert rows[0].replay_id == rid(3)
    terms = click_terms(parse("click.textContent:buy OR click.testid:go"))
    moments = await index.click_moments(P, [rid(1), rid(2), rid(3)], terms)
    assert moments == {rid(1): pytest.approx(T0 + 2.1), rid(2): pytest.approx(T0 + 3)}
    assert [c.text for c in await index.replay_clicks(P, rid(2))] == ["Checkout"]


async def test_top_dead_and_rage_selectors(index):
    await click_fixture(index)
    assert await index.top_selectors(P, "dead") == [
        SelectorCount('button#pay.btn.primary[aria-label="Pay"]', 1, 1)]
    assert await index.top_selectors(P, "rage") == [SelectorCount("button#buy.btn", 1, 1)]


async def test_a_resent_segment_replaces_its_clicks(index):
    await click_fixture(index)
    await index.record_clicks(P, rid(2), 0, [click(0, 3, tag="a", text="Other")], [])
    assert await searched(index, "click.textContent:checkout") == []
    assert await searched(index, "click.textContent:other") == [rid(2)]


async def test_erasing_a_users_rows_leaves_the_others(index):
    await click_fixture(index)
    await index.record_error(error("a" * 32, replay_id=rid(1), data={"user": {"email": "[hash:jane@example.com]"}}))
    await index.record_error(error("b" * 32, replay_id=rid(2), data={"user": {"email": "[hash:bob@example.com]"}}))
    forms = ["jane@example.com", "[hash:jane@example.com]"]
    assert await index.user_replays(P, "email", forms) == [rid(1)]
    assert await index.user_replays(P, "id", ["42"]) == [rid(1)]
    await index.delete_replay(P, rid(1))
    assert await index.delete_user_errors(P, "email", forms) == 1
    assert "Pay now" not in await stored_click_texts(index)  # texts only Jane's clicks had go too
    assert "Checkout" in await stored_click_texts(index)
    assert await index.get_error(P, "a" * 32) is None and await index.get_error(P, "b" * 32) is not None
    (issue,), _ = await index.list_issues(P)
    assert issue.count == 1
    assert await searched(index, "click.tag:*") == [rid(2)]
    await index.add_audit("api-token", "erase-user", P, {"replays": 1, "errors": 1})
    (row,) = await index.audit_log()
    assert (row["actor"], row["action"], row["detail"]) == ("api-token", "erase-user", {"replays": 1, "errors": 1})


@pytest.mark.parametrize(("text", "position", "words"), [
    ("click.tag:button AND", 20, "ends where a term"),
    ("(count_errors:>1", 16, "closing parenthesis"),
    ("count_errors:>1)", 15, "unexpected ')'"),
    ("clik.tag:a", 0, "unknown field 'clik.tag'"),
    ("count_errors:lots", 13, "whole number"),
    ("count_errors:>99999999999", 14, "over"),
    ("activity:>11", 10, "1 to 10"),
    ("duration:>20y", 10, "duration"),
    ("click.tag:>a", 10, "is text"),
    ('click.selector:"div > a"', 19, "combinators"),
    ("click.selector:a:hover", 16, "pseudo"),
    ("url:\"abc", 0, "unterminated"),
    ("pay", 0, "field:value"),
    ("(" * 21 + "url:a" + ")" * 21, 20, "nest more than 20"),
])
def test_search_errors_name_the_problem_and_its_position(text, position, words):
    with pytest.raises(SearchError) as caught:
        parse(text)
    assert caught.value.position == position and words in caught.value.message, caught.value


async def test_activity_is_a_column_kept_on_write(index):
    """activity is stored (and indexed); links to errors made before the replay's row count too."""
    await index.link_errors(P, rid(4), ["a" * 32, "b" * 32])  # before its replay is stored
    await store(index, segment(rid(4), 0, click_count=0))
    await store(index, segment(rid(5), 0, click_count=0))
    assert await searched(index, "activity:>4") == [rid(4)]
    await index.link_errors(P, rid(4), ["c" * 32, "d" * 32])
    assert await searched(index, "activity:>9") == [rid(4)]
    await index.link_errors(P, rid(5), ["e" * 32])
    rows, _ = await index.list_replays(P, ReplayQuery(sort="activity"))
    assert [(r.replay_id, r.activity) for r in rows] == [(rid(4), 10), (rid(5), 2)]
    assert await searched(index, "activity:<2.5") == [rid(5)]  # a fraction compares as one
    rows, _ = await index.list_replays(P, ReplayQuery(sort="activity", descending=False))
    assert [r.replay_id for r in rows] == [rid(5), rid(4)]
    assert await searched(index, "count_errors:1") == [rid(5)]


async def test_deleting_a_replay_drops_the_click_texts_only_it_had(index):
    await click_fixture(index)
    await index.delete_replay(P, rid(1))  # what retention and the DELETE route call
    texts = await stored_click_texts(index)
    assert "Pay now" not in texts and "Buy" not in texts
    assert "Checkout" in texts
