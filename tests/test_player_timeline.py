"""player/timeline.py: the segment table, what to load for a moment, breadcrumbs and markers."""

from __future__ import annotations

import copy

import pytest

from replayd.player import timeline

T0 = 1_795_650_000.0  # seconds


def replay(segments, started_at=T0, ended_at=None):
    return {
        "started_at": started_at,
        "ended_at": ended_at if ended_at is not None else max(s[2] for s in segments) + T0,
        "segments": [
            {"segment_id": sid, "started_at": T0 + a, "ended_at": T0 + b, "has_full_snapshot": full,
             "event_count": 10, "stored_bytes": 100}
            for sid, a, b, full in [(s[0], s[1], s[2], s[3]) for s in segments]
        ],
    }


# 60 s in 5 s segments, full snapshots in segments 0 and 6
SIXTY = replay([(i, i * 5.0, i * 5.0 + 4.9, i in (0, 6)) for i in range(12)])


def test_segment_table_is_in_ms_from_the_origin():
    table = timeline.segment_table(SIXTY)
    assert [row["id"] for row in table] == list(range(12))
    assert table[0] == {"id": 0, "start": 0, "end": 4900, "full": True, "events": 10, "bytes": 100}
    assert table[6]["start"] == 30000 and table[6]["full"]


def test_origin_is_the_earliest_of_replay_start_and_segments():
    r = replay([(0, 2.0, 4.0, True)], started_at=T0 + 1.0)
    assert timeline.origin_ms(r) == (T0 + 1.0) * 1000
    r = replay([(0, 0.5, 4.0, True)], started_at=T0 + 1.0)
    assert timeline.origin_ms(r) == (T0 + 0.5) * 1000


@pytest.mark.parametrize("t, index", [(-5, 0), (0, 0), (4999, 0), (5000, 1), (29999, 5), (30000, 6),
                                      (59000, 11), (10**9, 11)])
def test_segment_at(t, index):
    assert timeline.segment_at(timeline.segment_table(SIXTY), t) == index


def test_plan_goes_back_to_the_last_full_snapshot():
    table = timeline.segment_table(SIXTY)
    assert timeline.plan(table, 0) == [0]
    assert timeline.plan(table, 12_000) == [0, 1, 2]
    assert timeline.plan(table, 30_000) == [6]
    assert timeline.plan(table, 59_000) == [6, 7, 8, 9, 10, 11]


def test_plan_without_any_full_snapshot_starts_at_the_first_segment():
    table = timeline.segment_table(replay([(i, i * 5.0, i * 5.0 + 4, False) for i in range(3)]))
    assert timeline.plan(table, 12_000) == [0, 1, 2]


def test_plan_of_an_empty_table_is_an_error():
    with pytest.raises(ValueError):
        timeline.plan([], 0)


def test_segment_gaps_are_inactive_stretches():
    r = replay([(0, 0, 5, True), (1, 5, 10, False), (2, 40, 45, False)])
    assert timeline.segment_gaps(timeline.segment_table(r)) == [(10000, 40000)]


def test_inactive_stretches():
    assert timeline.inactive_stretches([1000, 2000, 30000], 45000) == [[2000, 30000], [30000, 45000]]
    assert timeline.inactive_stretches([], 5000) == []
    assert timeline.inactive_stretches([], 15000) == [[0, 15000]]


def ms(seconds):
    return (T0 + seconds) * 1000


SDK_EVENTS = [
    {"type": 4, "timestamp": ms(0), "data": {"href": "https://shop.test/cart", "width": 1280, "height": 800}},
    {"type": 4, "timestamp": ms(0.1), "data": {"href": "about:blank", "width": 0, "height": 0}},
    {"type": 5, "timestamp": T0 + 0.05, "data": {"tag": "performanceSpan", "payload": {
        "op": "navigation.navigate", "description": "https://shop.test/cart", "startTimestamp": T0 + 0.05,
        "endTimestamp": T0 + 0.2, "data": {}}}},
    {"type": 3, "timestamp": ms(1), "data": {"source": 1, "positions": [{"x": 1, "y": 1, "id": 5, "timeOffset": 0}]}},
    {"type": 3, "timestamp": ms(2), "data": {"source": 2, "type": 2, "id": 23, "x": 1, "y": 1}},
    {"type": 5, "timestamp": ms(2.001), "data": {"tag": "breadcrumb", "payload": {
        "timestamp": T0 + 2.001, "category": "ui.click", "message": "body > button#pay",
        "data": {"node": {"id": 23, "tagName": "button", "textContent": "Pay"}}}}},
    {"type": 3, "timestamp": ms(2.3), "data": {"source": 2, "type": 2, "id": 23, "x": 1, "y": 1}},
    {"type": 3, "timestamp": ms(2.6), "data": {"source": 2, "type": 2, "id": 23, "x": 1, "y": 1}},
    {"type": 5, "timestamp": ms(3), "data": {"tag": "breadcrumb", "payload": {
        "category": "console", "level": "warn", "message": "cart total is <b>NaN</b>"}}},
    {"type": 6, "timestamp": ms(3.5), "data": {"plugin": "rrweb/console@1", "payload": {
        "level": "error", "payload": ["\"boom\"", "42"], "trace": []}}},
    {"type": 5, "timestamp": T0 + 4, "data": {"tag": "performanceSpan", "payload": {
        "op": "resource.fetch", "description": "https://api.shop.test/total", "startTimestamp": T0 + 4,
        "endTimestamp": T0 + 4.2, "data": {"method": "POST", "statusCode": 500}}}},
    {"type": 5, "timestamp": T0 + 4.5, "data": {"tag": "performanceSpan", "payload": {
        "op": "resource.script", "description": "https://shop.test/app.js", "startTimestamp": T0 + 4.5,
        "data": {"statusCode": 200}}}},
    {"type": 5, "timestamp": T0 + 4.6, "data": {"tag": "performanceSpan", "payload": {
        "op": "memory", "description": "memory", "startTimestamp": T0 + 4.6, "data": {}}}},
    {"type": 5, "timestamp": ms(5), "data": {"tag": "snippet.custom", "payload": {"message": "checkout started"}}},
    # our snippet's breadcrumbs (static/replayd/breadcrumbs.js) and error mark
    {"type": 3, "timestamp": ms(5.5), "data": {"source": 2, "type": 2, "id": 41, "x": 1, "y": 1}},
    {"type": 5, "timestamp": ms(5.5), "data": {"tag": "breadcrumb", "payload": {
        "timestamp": T0 + 5.5, "type": "default", "category": "ui.click", "data": {"nodeId": 41, "node": {
            "id": 40, "tagName": "A", "attributes": {"id": "next", "class": "btn  big"},
            "texts": [[41, "Next"], [42, "page"]]}}}}},
    {"type": 5, "timestamp": ms(6), "data": {"tag": "breadcrumb", "payload": {
        "timestamp": T0 + 6, "type": "http", "category": "xhr", "level": "error",
        "data": {"method": "GET", "url": "https://api.shop.test/stock", "status_code": 503, "duration": 40}}}},
    {"type": 5, "timestamp": ms(6.5), "data": {"tag": "breadcrumb", "payload": {
        "timestamp": T0 + 6.5, "type": "navigation", "category": "navigation",
        "data": {"from": "https://shop.test/cart", "to": "https://shop.test/pay"}}}},
    {"type": 5, "timestamp": ms(7), "data": {"tag": "error", "payload": {"eventId": "a" * 32}}},
]


def test_extract_and_finish_build_breadcrumbs_and_markers():
    origin = ms(0)
    extracted = timeline.extract(SDK_EVENTS, origin)
    errors = [{"event_id": "e" * 32, "timestamp": T0 + 4.8, "type": "TypeError", "value": "x is undefined",
               "message": ""}]
    assert not any(c["kind"] == "rage" for c in extracted.breadcrumbs)  # the index decides rage clicks
    result = timeline.finish(extracted, 20000, errors, origin, [(T0 + 2, "button#pay")])
    kinds = [(c["t"], c["kind"]) for c in result["breadcrumbs"]]
    # one navigation (Meta and span de-duplicated; about:blank's empty viewport ignored)
    assert [c for c in result["breadcrumbs"] if c["kind"] == "navigation"] == [
        {"t": 0, "kind": "navigation", "label": "https://shop.test/cart"},
        {"t": 6500, "kind": "navigation", "label": "https://shop.test/cart → https://shop.test/pay"}]
    clicks = [c for c in result["breadcrumbs"] if c["kind"] == "click"]
    # the SDK's labelled click replaces rrweb's own at 2 s; the other two stay
    assert clicks[0]["label"] == "body > button#pay “Pay”"
    assert [c["t"] for c in clicks] == [2001, 2300, 2600, 5500]
    assert clicks[3]["label"] == "a#next.btn.big “Next page”"  # the snippet's: no message, texts apart
    assert {"t": 2000, "kind": "rage", "label": "rage click on button#pay"} in result["breadcrumbs"]
    consoles = [c for c in result["breadcrumbs"] if c["kind"] == "console"]
    assert consoles[0] == {"t": 3000, "kind": "console", "label": "cart total is <b>NaN</b>", "level": "warn"}
    assert consoles[1]["label"] == '"boom" 42' and consoles[1]["level"] == "error"
    network = [c for c in result["breadcrumbs"] if c["kind"] == "network"]
    assert [c["label"] for c in network] == ["POST https://api.shop.test/total → 500",
                                             "GET https://api.shop.test/stock → 503"]
    assert all(c["failed"] for c in network)
    # an error the recording marks but the index does not know is kept from the recording
    assert {"t": 7000, "kind": "error", "label": "error", "event_id": "a" * 32} in result["breadcrumbs"]
    assert (4800, "error") in kinds
    assert [c["label"] for c in result["breadcrumbs"] if c["kind"] == "custom"] == ["snippet.custom: checkout started"]
    assert {m["kind"] for m in result["markers"]} == {"navigation", "click", "rage", "error"}
    assert result["inactive"] == [[5500, 20000]]  # snippet breadcrumbs are not user input
    assert result["breadcrumbs"] == sorted(result["breadcrumbs"], key=lambda c: c["t"])


def test_breadcrumbs_are_bounded():
    events = [{"type": 3, "timestamp": ms(i / 1000), "data": {"source": 2, "type": 2, "id": i}}
              for i in range(timeline.MAX_BREADCRUMBS + 10)]
    extracted = timeline.extract(events, ms(0))
    assert len(extracted.breadcrumbs) == timeline.MAX_BREADCRUMBS and extracted.truncated


def test_extract_ignores_malformed_events():
    events = [None, 3, {"type": 3}, {"type": 5, "timestamp": "x"}, {"type": 5, "timestamp": ms(1), "data": "x"},
              {"type": 5, "timestamp": ms(1), "data": {"tag": "breadcrumb", "payload": "just text"}}]
    result = timeline.finish(timeline.extract(events, ms(0)), 1000, [], ms(0))
    assert [c["kind"] for c in result["breadcrumbs"]] == ["custom"]


def test_summary_embeds_the_table_errors_and_duration():
    errors = [{"event_id": "f" * 32, "timestamp": T0 + 31.5, "type": "Error", "value": "boom", "message": ""}]
    s = timeline.summary(SIXTY, errors)
    assert s["origin"] == T0 * 1000
    assert s["duration"] == 59900
    assert len(s["segments"]) == 12
    assert s["errors"] == [{"t": 31500, "event_id": "f" * 32, "label": "Error: boom"}]


def test_network_breadcrumbs_name_their_segment_and_span():
    """The network panel's columns, and where the detail pane finds the whole span: the segment and
    the span's place among that segment's performanceSpan events (counted as panels.js counts them)."""
    from replayd.server.codec import encode_segment

    def span(t, op, url, **data):
        return {"type": 5, "timestamp": ms(t), "data": {"tag": "performanceSpan", "payload": {
            "op": op, "description": url, "startTimestamp": ms(t) / 1000, "endTimestamp": ms(t + 0.25) / 1000,
            "data": data}}}

    first = [span(1, "navigation.navigate", "https://a.test/"),
             {"type": 5, "timestamp": None, "data": {"tag": "performanceSpan", "payload": {}}},  # counted, unplaced
             span(2, "resource.fetch", "/api/x", method="POST", statusCode=201,
                  request={"size": 10, "headers": {}}, response={"size": 2048, "body": {"a": 1}})]
    second = [span(6, "resource.xhr", "/api/y", method="GET", statusCode=500, response={"size": True})]
    extracted = timeline.extract_from_blobs([encode_segment(copy.deepcopy(first), 3),
                                             encode_segment(copy.deepcopy(second), 1)], ms(0),
                                            timeline.Extracted(), [7, 8])
    network = [c for c in timeline.finish(extracted, 10_000, [], ms(0))["breadcrumbs"] if c["kind"] == "network"]
    assert network == [
        {"t": 2000, "kind": "network", "label": "POST /api/x → 201", "op": "resource.fetch", "failed": False,
         "method": "POST", "url": "/api/x", "status": 201, "dur": 250, "req_size": 10, "res_size": 2048,
         "seg": 7, "span": 2},
        {"t": 6000, "kind": "network", "label": "GET /api/y → 500", "op": "resource.xhr", "failed": True,
         "method": "GET", "url": "/api/y", "status": 500, "dur": 250, "seg": 8, "span": 0},
    ]
    # without segment ids (a caller that has none) the columns are there, the place is not
    alone = timeline.extract(first, ms(0))
    assert [c.get("seg") for c in alone.breadcrumbs if c["kind"] == "network"] == [None]


def test_clamp_moment():
    assert timeline.clamp_moment(5_000, 60_000) == 5_000
    assert timeline.clamp_moment(60_000.4, 60_000) == 60_000
    assert timeline.clamp_moment(float("inf"), 60_000) == 60_000
    assert timeline.clamp_moment(-1, 60_000) == 0
    assert timeline.clamp_moment(float("nan"), 60_000) == 0
    assert timeline.clamp_moment(10, 0) == 0


def test_a_storms_paused_mark_is_a_breadcrumb_and_a_band():
    """The snippet's ``replayd.paused`` mark (logged when recording resumes, after the gap it names)."""
    def paused(at, payload):
        return {"type": 5, "timestamp": ms(at), "data": {"tag": "replayd.paused", "payload": payload}}

    events = [paused(9, {"mutations": 48000, "from": ms(2), "to": ms(8.5)}),
              paused(12, {"mutations": "many", "from": "x", "to": ms(11)}),  # malformed: kept, what is usable
              paused(14, {"mutations": True, "from": ms(13), "to": ms(12)})]  # ends before it starts
    result = timeline.finish(timeline.extract(events, ms(0)), 20000, [], ms(0))
    assert result["breadcrumbs"] == [
        {"t": 2000, "kind": "paused", "label": "recording paused (48,000 mutations)", "end": 8500, "mutations": 48000},
        {"t": 12000, "kind": "paused", "label": "recording paused", "end": 12000},
        {"t": 13000, "kind": "paused", "label": "recording paused", "end": 13000}]
    assert result["markers"] == [{"t": c["t"], "end": c["end"], "kind": "paused", "label": c["label"]}
                                 for c in result["breadcrumbs"]]


def test_a_request_recorded_only_as_a_breadcrumb_gives_the_pane_what_it_holds():
    """No span (another recorder, or a breadcrumb of an error's): method, URL, status, sizes and timing come
    from the breadcrumb itself, and whatever else its data holds, as stored; a failed request (no status, or
    a span's statusCode 0) is marked failed."""
    events = [
        {"type": 5, "timestamp": ms(1), "data": {"tag": "breadcrumb", "payload": {
            "timestamp": T0 + 1, "type": "http", "category": "fetch", "level": "warning",
            "data": {"method": "PUT", "url": "https://api.shop.test/cart?id=[Filtered]", "status_code": 409,
                     "request_body_size": 120, "response_body_size": 37, "start_timestamp": ms(0.9),
                     "end_timestamp": ms(1), "graphql": {"op": "AddItem"}, "x" * 80: "y" * 300}}}},
        {"type": 5, "timestamp": ms(2), "data": {"tag": "breadcrumb", "payload": {
            "category": "xhr", "level": "error", "data": {"method": "GET", "url": "/api/stock", "duration": 12.4}}}},
        {"type": 5, "timestamp": ms(3), "data": {"tag": "performanceSpan", "payload": {
            "op": "resource.fetch", "description": "http://127.0.0.1:1/x", "startTimestamp": T0 + 3,
            "endTimestamp": T0 + 3.01, "data": {"method": "GET", "statusCode": 0}}}},
    ]
    result = timeline.finish(timeline.extract(events, ms(0)), 5000, [], ms(0))
    put, stock, offline = [c for c in result["breadcrumbs"] if c["kind"] == "network"]
    assert put == {"t": 1000, "kind": "network", "label": "PUT https://api.shop.test/cart?id=[Filtered] → 409",
                   "failed": True, "method": "PUT", "url": "https://api.shop.test/cart?id=[Filtered]", "status": 409,
                   "op": "fetch", "via": "breadcrumb", "dur": 100, "req_size": 120, "res_size": 37,
                   "data": {"graphql": '{"op": "AddItem"}', "x" * 59 + "…": "y" * 199 + "…", "level": "warning",
                            "type": "http"}}
    assert stock["status"] is None and stock["failed"] and stock["dur"] == 12
    assert stock["label"] == "GET /api/stock → failed"
    assert offline["status"] == 0 and offline["failed"] and offline["label"] == "GET http://127.0.0.1:1/x → failed"
