"""Which times are believed: at ingest (a sender's clock), and when showing what the index holds.

Ingest keeps a time only if it is finite and between 2000-01-01 and a day past the receiver's clock
(``plausible``); anything else is treated as missing, so error and replay metadata fall back to the
time the envelope arrived. Rows written before that rule may still hold infinities or times past
year 9999: pages and the API show those as missing (``displayable``) instead of failing on them.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
FUTURE_SLACK = 86400.0  # a sender's clock may run ahead of ours by up to a day
LAST_DISPLAYABLE = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer past a float's range
            return None
    return None


def plausible(seconds: Any, now: float | None = None) -> float | None:
    """Unix ``seconds`` as a float if a real clock could have meant it, else None."""
    value = _number(seconds)
    if value is None or not math.isfinite(value):
        return None
    latest = (time.time() if now is None else now) + FUTURE_SLACK
    return value if EARLIEST <= value <= latest else None


def displayable(seconds: Any) -> float | None:
    """Unix ``seconds`` a date can be made of (finite, 1970 to 9999), else None."""
    value = _number(seconds)
    return value if value is not None and 0 <= value <= LAST_DISPLAYABLE else None
