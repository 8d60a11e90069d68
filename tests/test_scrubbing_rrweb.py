"""rrweb facts (replayd.scrubbing.events): event times and the rage-click rule, one rule for the
ingest summary (server/ingest/summary.py) and the player's markers (player/timeline.py)."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from replayd.player import timeline
from replayd.scrubbing.events import (
    DEAD_CLICK_MS,
    RAGE_CLICKS,
    RAGE_GAP_MS,
    is_rage_burst,
    joins_burst,
    timestamp_ms,
)
from replayd.server.ingest.summary import summarise

NOW_MS = round(time.time() * 1000)


def click(ms: float, node=7) -> dict:
    return {"type": 3, "timestamp": ms, "data": {"source": 2, "type": 2, "id": node, "x": 1, "y": 1}}


@pytest.mark.parametrize("ts, ms", [
    (1_700_000_000, 1_700_000_000_000.0),  # seconds (the Sentry SDK's custom events)
    (1_700_000_000.5, 1_700_000_000_500.0),
    (1_700_000_000_000, 1_700_000_000_000.0),  # milliseconds (rrweb)
    (True, None), ("1700000000", None), (None, None), (float("nan"), None), (float("inf"), None),
    (-(10 ** 400), None), (10 ** 400, None),  # integers past a float's range
])
def test_timestamps_in_seconds_or_ms(ts, ms):
    assert timestamp_ms(ts) == ms


def test_rage_click_rule():
    """Sentry's: bursts of clicks each within 1 s of the one before; 5 of them, the first dead."""
    assert (RAGE_CLICKS, RAGE_GAP_MS, DEAD_CLICK_MS) == (5, 1000, 7000)
    assert joins_burst(0, 1000) and not joins_burst(0, 1001) and not joins_burst(500, 0)
    assert is_rage_burst(5, True) and is_rage_burst(9, True)
    assert not is_rage_burst(4, True) and not is_rage_burst(5, False)


def segment_with_clicks() -> list[dict]:
    return [
        {"type": 4, "timestamp": NOW_MS, "data": {"href": "https://shop.test/", "width": 800, "height": 600}},
        click(NOW_MS + 100), click(NOW_MS + 200), click(NOW_MS + 300),  # rage
        click(NOW_MS + 5000, node=8), click(NOW_MS + 5400, node=8), click(NOW_MS + 5800, node=8),  # rage
        click(NOW_MS + 6200, node=8),  # rage again: 5400, 5800, 6200
        click(NOW_MS + 9000, node={"id": 1}), click(NOW_MS + 9001, node={"id": 1}),
        click(NOW_MS + 9002, node={"id": 1}),  # ids no map can hold: clicks, never rage
        {"type": 3, "timestamp": NOW_MS + 9500, "data": {"source": {"x": 1}, "type": 2, "id": 9}},
    ]


def test_ingest_summary_and_player_count_the_same_clicks():
    summary = summarise(segment_with_clicks())
    crumbs = timeline.extract(segment_with_clicks(), NOW_MS).breadcrumbs
    assert summary.click_count == 10
    assert sum(c["kind"] == "click" for c in crumbs) == summary.click_count
    assert not any(c["kind"] == "rage" for c in crumbs)  # rage clicks are the index's (timeline.finish)


def test_clicks_at_one_instant_cost_constant_memory():
    """Thousands of clicks on one node at one time: the summary keeps no click, only counts."""
    events = [click(NOW_MS) for _ in range(5000)]
    tracemalloc.start()
    try:
        summary = summarise(events)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.click_count == 5000
    assert peak < 16 * 1024
