"""The index: replays, segments, errors and issues, in SQLite (PostgreSQL later).

Records passed in are plain dataclasses (``records``); rows come back as dicts ready for JSON.
"""

from .records import ErrorRecord, ReplayEventRecord, SegmentRecord
from .sqlite import SQLiteIndex

__all__ = ["ErrorRecord", "ReplayEventRecord", "SegmentRecord", "SQLiteIndex"]
