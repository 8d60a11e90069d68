"""rrweb facts (replayd.scrubbing.events): event times and the rage-click rule, one rule for the
ingest summary (server/ingest/summary.py) and the player's markers (player/timeline.py)."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from replayd.player import timeline
from replayd.scrubbing.events import RAGE_CLICKS, RAGE_WINDOW_MS, RageClicks, timestamp_ms
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


def rage_at(times: list[float], node=7) -> list[float]:
    rule = RageClicks()
    return [t for t in times if rule.click(node, t)]


def test_rage_click_rule():
    assert (RAGE_CLICKS, RAGE_WINDOW_MS) == (3, 1000)
    assert rage_at([0, 300, 600]) == [600]
    assert rage_at([0, 600, 1200]) == []  # the third click is 1200 ms after the first
    assert rage_at([0, 100, 200, 300, 400]) == [200]  # a burst counts once
    assert rage_at([0, 400, 800, 1200, 1600]) == [800, 1200, 1600]  # a steady series once per window
    rule = RageClicks()
    assert [rule.click(n, t) for n, t in [(1, 0), (2, 10), (1, 20), (2, 30), (1, 40)]] == [False] * 4 + [True]
    assert not RageClicks().click({"id": 1}, 0)  # an id that is a JSON object: no crash, no rage


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


def test_ingest_summary_and_player_markers_count_the_same_rage_clicks():
    summary = summarise(segment_with_clicks())
    clicks, rage = summary.click_count, summary.rage_click_count
    crumbs = timeline.extract(segment_with_clicks(), NOW_MS).breadcrumbs
    assert (clicks, rage) == (10, 3)
    assert sum(c["kind"] == "click" for c in crumbs) == clicks
    assert [c["t"] for c in crumbs if c["kind"] == "rage"] == [300, 5800, 6200]


def test_clicks_at_one_instant_cost_constant_memory():
    """Thousands of clicks on one node at one time: the rule remembers a few of them, not all
    (a list of every click in the window made the summary quadratic in time and linear in memory)."""
    events = [click(NOW_MS) for _ in range(5000)]
    tracemalloc.start()
    try:
        summary = summarise(events)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (summary.click_count, summary.rage_click_count) == (5000, 1)
    assert peak < 16 * 1024
