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

from replayd.server.config import IndexConfig
from replayd.server.index import (
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
    StateConflict,
    open_index,
    user_label,
)

BACKENDS = ["sqlite"]
P = 1
T0 = 1_790_000_000.0


@pytest.fixture(params=BACKENDS)
def index_config(request, tmp_path) -> IndexConfig:
    return IndexConfig(url=f"sqlite:///{tmp_path / 'index.sqlite3'}")


@pytest.fixture
async def open_node(index_config):
    """Opens an index on the suite's database, as another node (or process) would."""
    opened = []

    async def open_one():
        opened.append(await open_index(index_config))
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


async def test_nodes_starting_together_on_a_new_database(open_node):
    first, second = await asyncio.gather(open_node(), open_node())
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
