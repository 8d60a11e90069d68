"""What the ingest path writes into the index (already scrubbed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class ReplayEventRecord:
    project_id: int
    replay_id: str
    segment_id: int
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


@dataclass(slots=True)
class SegmentRecord:
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


@dataclass(slots=True)
class ErrorRecord:
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
