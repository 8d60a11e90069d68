"""The index's records and the rules that fold a replay together.

Records in: what the ingest path writes (already scrubbed). Records out: what reads answer. All are
frozen dataclasses, the same whichever database answers; ``as_dict()`` is a record's JSON for the
API. Times are Unix seconds.

How a replay's ``replay_event`` items and segments, arriving in any order and possibly more than
once, add up to one replay is decided here, in ``Replay.with_event`` and ``Replay.with_segment``,
so every backend applies the same rules: a backend reads the replay, applies one, and writes the
result back in the same transaction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

from replayd.scrubbing.report import ScrubReport

from ..search import SearchNode


class Row(Protocol):
    """A database row, read by column name (``sqlite3.Row``, ``asyncpg.Record``)."""

    def __getitem__(self, key: str) -> Any: ...


MAX_URLS = 500  # distinct URLs kept per replay, in the order first seen
USER_LABEL_KEYS = ("username", "email", "id", "ip_address", "name")
SORT_KEYS = ("started_at", "duration", "error_count", "segment_count", "activity", "count_errors", "count_clicks",
             "count_dead_clicks", "count_rage_clicks", "count_urls", "count_console_errors")
# The replay list counts its matches up to here by default (``limits.list_total_cap``), or to the
# end of the page asked for, if further: an exact count of a million rows costs PostgreSQL up to a
# second, a count that stops at 10,000 tens of milliseconds.
TOTAL_CAP = 10_000


def count_cap(offset: int, limit: int, total_cap: int | None = None) -> int:
    """How far ``list_replays`` counts for a page: a total above this is "more than this"."""
    return max(TOTAL_CAP if total_cap is None else total_cap, offset + limit)


def activity_score(error_count: int, url_count: int, dead_click_count: int, rage_click_count: int) -> int:
    """1 (idle) to 10 (busy): Sentry's weights (an error 25, a page 5) plus frustration (a dead
    click 10, a rage click 15), over 10. The SQL backends keep the same expression as an indexed
    ``activity`` column (their migrations) to filter and sort by it."""
    weight = error_count * 25 + url_count * 5 + dead_click_count * 10 + rage_click_count * 15
    return max(1, min(10, weight // 10))


def user_label(user: dict[str, Any]) -> str:
    """How a user is shown (and found by the list's user filter): the first of these that is set."""
    return next((str(user[k]) for k in USER_LABEL_KEYS if user.get(k)), "")


def _earliest(*times: float | None) -> float | None:
    return min((t for t in times if t is not None), default=None)


def _latest(*times: float | None) -> float | None:
    return max((t for t in times if t is not None), default=None)


def _report(data: dict[str, Any]) -> ScrubReport:
    return ScrubReport.from_dict(data)


class _Record:
    __slots__ = ()

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data, nested records included."""
        record: Any = self  # every subclass is a dataclass
        return dataclasses.asdict(record)


# --- in: what ingest records ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ReplayEventRecord(_Record):
    project_id: int
    replay_id: str
    segment_id: int  # -1 when the item named none
    started_at: float | None
    timestamp: float | None
    urls: list[str] = field(default_factory=list)
    error_ids: list[str] = field(default_factory=list)
    replay_type: str = "session"
    user: dict[str, Any] = field(default_factory=dict)
    browser: str = ""
    os: str = ""
    device: str = ""
    environment: str = ""
    release: str = ""
    sdk: str = ""


@dataclass(frozen=True, slots=True)
class SegmentRecord(_Record):
    """A stored segment; also what ``Index.get_segment`` answers."""

    project_id: int
    replay_id: str
    segment_id: int
    blob_key: str
    codec: str
    started_at: float | None
    ended_at: float | None
    event_count: int
    raw_bytes: int
    stored_bytes: int
    has_full_snapshot: bool
    click_count: int = 0
    rage_click_count: int = 0
    scrub_report: dict[str, Any] = field(default_factory=dict)
    location: str = "store"  # or "spool" until the uploader has moved it to the blob store
    console_error_count: int = 0
    # Set by compaction (server/compaction.py): the segment is bytes chunk_offset..+chunk_length of
    # the decompressed chunk at bytes chunk_start..chunk_end of blob_key. None: the blob is its own.
    chunk_start: int | None = None
    chunk_end: int = 0
    chunk_offset: int = 0
    chunk_length: int = 0

    @property
    def compacted(self) -> bool:
        return self.chunk_start is not None


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def click_selector(tag: str, elem_id: str, classes: str, role: str, label: str, testid: str, alt: str,
                   title: str) -> str:
    """A CSS selector for a clicked element, as Sentry writes one: tag#id.class[attr="value"]..."""
    out = tag or "*"
    if elem_id:
        out += "#" + elem_id
    out += "".join("." + c for c in classes.split())
    for name, value in (("role", role), ("aria-label", label), ("data-testid", testid), ("alt", alt),
                        ("title", title)):
        if value:
            out += f"[{name}={_quoted(value)}]"
    return out


@dataclass(frozen=True, slots=True)
class ClickRecord(_Record):
    """A click of a segment and the element it hit (scrubbed text and attributes, trimmed)."""

    seq: int  # its place among the segment's indexed clicks
    timestamp: float  # seconds
    node_id: int | None
    tag: str = ""
    elem_id: str = ""
    classes: str = ""  # space-separated
    role: str = ""
    label: str = ""  # aria-label
    testid: str = ""  # data-testid
    alt: str = ""
    title: str = ""
    text: str = ""  # visible text, whitespace collapsed
    is_dead: bool = False
    is_rage: bool = False

    @property
    def selector(self) -> str:
        return click_selector(self.tag, self.elem_id, self.classes, self.role, self.label, self.testid,
                              self.alt, self.title)


@dataclass(frozen=True, slots=True)
class SelectorCount(_Record):
    """A selector of a project's dead or rage clicks, how often, in how many replays."""

    selector: str
    count: int
    replay_count: int


@dataclass(frozen=True, slots=True)
class ErrorRecord(_Record):
    project_id: int
    event_id: str
    timestamp: float
    level: str
    fingerprint: str
    title: str
    culprit: str = ""
    type: str = ""
    value: str = ""
    message: str = ""
    url: str = ""
    browser: str = ""
    os: str = ""
    replay_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScrubberState:
    """The scrubber's state after a replay's latest stored segment (``scrubbing.ReplayState``,
    serialised), and its version: 0 while none is stored, one more on every segment stored."""

    data: bytes | None = None
    version: int = 0


# --- out: what reads answer -------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Replay(_Record):
    """A replay as listed: its metadata and totals over its segments."""

    project_id: int
    replay_id: str
    started_at: float | None = None
    ended_at: float | None = None
    segment_count: int = 0
    raw_bytes: int = 0
    stored_bytes: int = 0
    click_count: int = 0
    rage_click_count: int = 0
    scrub_report: dict[str, Any] = field(default_factory=lambda: ScrubReport().to_dict())
    urls: list[str] = field(default_factory=list)
    user: dict[str, Any] = field(default_factory=dict)
    browser: str = ""
    os: str = ""
    device: str = ""
    replay_type: str = "session"
    environment: str = ""
    release: str = ""
    sdk: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0
    dead_click_count: int = 0  # its clicks found dead (counted when clicks are recorded)
    console_error_count: int = 0
    url_count: int = 0  # len(urls), kept as a column to filter and sort by
    error_count: int = 0  # errors linked to it (from either side), whether stored or not

    @property
    def activity(self) -> int:
        return activity_score(self.error_count, self.url_count, self.dead_click_count, self.rage_click_count)

    @property
    def duration(self) -> float:
        if self.started_at is None or self.ended_at is None:
            return 0.0
        return round(self.ended_at - self.started_at, 3)

    @property
    def user_label(self) -> str:
        return user_label(self.user)

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "duration": self.duration, "activity": self.activity}

    # The merge rules. Neither touches created_at, updated_at or error_count: the backend keeps those.

    def with_event(self, event: ReplayEventRecord) -> Replay:
        """Fold in a replay_event: the earliest start and latest end win, URLs are a union (the
        first MAX_URLS), any other value the event sets replaces the stored one — except the replay
        type, which the event of segment 0 decides."""
        urls = list(self.urls)
        for url in event.urls:
            if len(urls) >= MAX_URLS:
                break
            if url not in urls:
                urls.append(url)
        return dataclasses.replace(
            self,
            started_at=_earliest(self.started_at, event.started_at, event.timestamp),
            ended_at=_latest(self.ended_at, event.timestamp),
            urls=urls,
            url_count=len(urls),
            user=event.user or self.user,
            browser=event.browser or self.browser,
            os=event.os or self.os,
            device=event.device or self.device,
            replay_type=event.replay_type if event.segment_id == 0 or not self.replay_type else self.replay_type,
            environment=event.environment or self.environment,
            release=event.release or self.release,
            sdk=event.sdk or self.sdk,
        )

    def with_segment(self, segment: SegmentRecord, old: SegmentRecord | None) -> Replay:
        """Fold in a stored segment; ``old`` is the row it replaces (a re-send), whose share of the
        totals comes out so nothing is counted twice. Incremental: the cost does not grow with the
        replay's length."""
        report = _report(self.scrub_report).merge(_report(segment.scrub_report))
        if old is not None:
            report.subtract(_report(old.scrub_report))
        return dataclasses.replace(
            self,
            started_at=_earliest(self.started_at, segment.started_at),
            ended_at=_latest(self.ended_at, segment.ended_at),
            segment_count=self.segment_count + (0 if old else 1),
            raw_bytes=self.raw_bytes + segment.raw_bytes - (old.raw_bytes if old else 0),
            stored_bytes=self.stored_bytes + segment.stored_bytes - (old.stored_bytes if old else 0),
            click_count=self.click_count + segment.click_count - (old.click_count if old else 0),
            rage_click_count=self.rage_click_count + segment.rage_click_count - (old.rage_click_count if old else 0),
            console_error_count=(self.console_error_count + segment.console_error_count
                                 - (old.console_error_count if old else 0)),
            scrub_report=report.to_dict(),
        )


@dataclass(frozen=True, slots=True)
class SegmentRow(_Record):
    """A segment as a replay's detail lists it."""

    segment_id: int
    started_at: float | None
    ended_at: float | None
    event_count: int
    raw_bytes: int
    stored_bytes: int
    has_full_snapshot: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayDetail(Replay):
    """One replay: also the ids of its linked errors (sorted) and its segments (in order)."""

    error_ids: list[str] = field(default_factory=list)
    segments: list[SegmentRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorRow(_Record):
    """An error as a replay lists it."""

    event_id: str
    issue_id: int
    timestamp: float
    level: str
    type: str = ""
    value: str = ""
    message: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorDetail(ErrorRow):
    """One error with its stored event data, and where it is in its replay (if any)."""

    project_id: int
    browser: str = ""
    os: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    received_at: float
    replay_id: str | None = None  # its own, else the first replay that links it
    replay_offset: float | None = None  # seconds from the replay's start
    replay_available: bool = False  # the replay has a segment to play


def error_in_replay(timestamp: float, replay: Row | None) -> dict[str, Any]:
    """``ErrorDetail``'s place in its replay, from the replay's ``started_at`` and ``segment_count``
    (None: no replay row): seconds from the replay's start (never negative), and whether it plays."""
    offset = None
    if replay is not None and replay["started_at"] is not None:
        offset = round(max(0.0, timestamp - replay["started_at"]), 3)
    return {"replay_offset": offset, "replay_available": bool(replay and replay["segment_count"])}


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueRow(_Record):
    """Errors grouped by fingerprint."""

    id: int
    project_id: int
    fingerprint: str
    title: str
    culprit: str
    level: str
    first_seen: float
    last_seen: float
    count: int
    replay_count: int  # distinct replays linked to its errors
    latest_event_id: str | None


@dataclass(frozen=True, slots=True)
class ReplayQuery:
    """The replay list's filters and order. Only replays with at least one segment are listed;
    ``url`` and ``user`` are substrings (any case) of a URL, or of the user's label or fields."""

    has_errors: bool | None = None
    url: str | None = None
    user: str | None = None
    min_duration: float | None = None
    max_duration: float | None = None
    started_after: float | None = None  # inclusive
    started_before: float | None = None  # exclusive
    sort: str = "started_at"  # one of SORT_KEYS; anything else sorts by start
    descending: bool = True
    search: SearchNode | None = None  # a parsed search (server/search.py), ANDed with the rest

    @property
    def order(self) -> str:
        return self.sort if self.sort in SORT_KEYS else "started_at"


def of_replay(events: list[ReplayEventRecord] | None, key: tuple[int, str]) -> list[ReplayEventRecord]:
    """The replay events a segment's commit folds in; all of the segment's replay ``key``."""
    events = events or []
    if any((e.project_id, e.replay_id) != key for e in events):
        raise ValueError("replay events of another replay than the segment's")
    return events
