"""Timeline assembly for the player: the segment table, what to load for a moment, and markers.

Pure functions, no I/O. Times in the player are milliseconds from the replay's origin (its
``started_at``); stored segments carry seconds. ``static/player/timeline.js`` mirrors ``plan``.

rrweb's numbers and event times are ``replayd.scrubbing.events``'s. Rage clicks are the index's
(decided at ingest by ``server/ingest/clicks.py`` under the rule ``scrubbing.events`` states):
``finish`` marks them, so the timeline shows the ones a ``count_rage_clicks`` search counts.
"""

from __future__ import annotations

import bisect
import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from replayd.scrubbing.events import (
    CUSTOM,
    INCREMENTAL_SNAPSHOT,
    META,
    PLUGIN,
    IncrementalSource,
    event_ms,
    is_click,
    timestamp_ms,
)
from replayd.server.codec import decode_chunk, iter_events, iter_packed_events
from replayd.server.timestamps import displayable

# Sources a person causes (mouse move, interaction, scroll, resize, input, touch, drag): not mutations.
USER_SOURCES = frozenset(s.value for s in (
    IncrementalSource.MOUSE_MOVE, IncrementalSource.MOUSE_INTERACTION, IncrementalSource.SCROLL,
    IncrementalSource.VIEWPORT_RESIZE, IncrementalSource.INPUT, IncrementalSource.TOUCH_MOVE, IncrementalSource.DRAG,
))
INACTIVE_MS = 10_000  # also the Replayer's inactivePeriodThreshold
MAX_BREADCRUMBS = 5000
TEXT_LIMIT = 300
NETWORK_OPS = ("resource.fetch", "resource.xhr")
PAUSED = "replayd.paused"  # the snippet's mark of a mutation storm's gap


def _index_ms(seconds: float | None) -> float | None:
    """A time from the index in ms; None when missing or unusable (rows kept before ingest checked times)."""
    seconds = displayable(seconds)
    return None if seconds is None else seconds * 1000


def origin_ms(replay: dict[str, Any]) -> float:
    """Time zero of the player: the replay's start, or its first segment's."""
    starts = [s.get("started_at") for s in replay.get("segments", [])] + [replay.get("started_at")]
    known = [t for t in map(_index_ms, starts) if t is not None]
    return min(known) if known else 0.0


def segment_table(replay: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per stored segment, in order: id, start/end (ms from origin), full snapshot, size."""
    origin = origin_ms(replay)
    rows: list[dict[str, Any]] = []
    for seg in sorted(replay.get("segments", []), key=lambda s: s["segment_id"]):
        start = _index_ms(seg.get("started_at"))
        end = _index_ms(seg.get("ended_at"))
        start_ms = round(start - origin) if start is not None else (rows[-1]["end"] if rows else 0)
        end_ms = round(end - origin) if end is not None else start_ms
        rows.append({
            "id": seg["segment_id"],
            "start": start_ms,
            "end": max(end_ms, start_ms),
            "full": bool(seg.get("has_full_snapshot")),
            "events": seg.get("event_count", 0),
            "bytes": seg.get("stored_bytes", 0),
        })
    return rows


def segment_at(table: list[dict[str, Any]], t: float) -> int:
    """Index (into ``table``) of the segment holding moment ``t``: the last one starting at or before it."""
    if not table:
        raise ValueError("a replay without segments has no timeline")
    lo, hi = 0, len(table) - 1
    if t <= table[0]["start"]:
        return 0
    while lo < hi:  # last index with start <= t
        mid = (lo + hi + 1) // 2
        if table[mid]["start"] <= t:
            lo = mid
        else:
            hi = mid - 1
    return lo


def plan(table: list[dict[str, Any]], t: float) -> list[int]:
    """Indexes to load before showing moment ``t``: back from its segment to the last full snapshot."""
    target = segment_at(table, t)
    first = target
    while first > 0 and not table[first]["full"]:
        first -= 1
    return list(range(first, target + 1))


def clamp_moment(t: float, duration: float) -> float:
    """The moment to show for a requested ``t`` (ms): within [0, duration]; past the end is the end
    (its last page), before the start or not a number is the start. Mirrors static/player/timeline.js."""
    if math.isnan(t):
        return 0.0
    return min(max(0.0, float(duration)), max(0.0, t))


def segment_gaps(table: list[dict[str, Any]], threshold: float = INACTIVE_MS) -> list[tuple[float, float]]:
    """Stretches between segments with nothing recorded at all."""
    return [(a["end"], b["start"]) for a, b in itertools.pairwise(table) if b["start"] - a["end"] >= threshold]


# --- markers and breadcrumbs, from the events -------------------------------------------------

def _text(value: Any, limit: int = TEXT_LIMIT) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Extracted:
    """What the side panels and the timeline show, in player time (ms from origin).

    Its size does not grow with the replay's length: at most ``limit`` breadcrumbs and ``limit``
    stretches of user input. It crosses to a
    worker process and back once per batch of segments (player/segments.py).
    """

    breadcrumbs: list[dict[str, Any]] = field(default_factory=list)
    # Times of user input, for inactive stretches: per INACTIVE_MS-wide bucket only the first and the
    # last, which leaves inactive_stretches' answer unchanged (no gap inside a bucket is long enough).
    activity: dict[int, list[float]] = field(default_factory=dict)
    truncated: bool = False
    limit: int = MAX_BREADCRUMBS
    # Where a network request's full span is: the segment being read and how many performanceSpan
    # events came before in it (the player counts the same way to find the headers and bodies).
    segment: int | None = None
    spans: int = 0

    def add(self, t: float, kind: str, label: str, **extra: Any) -> None:
        if len(self.breadcrumbs) >= self.limit:
            self.truncated = True
            return
        self.breadcrumbs.append({"t": round(t), "kind": kind, "label": _text(label), **extra})

    def active(self, t: float) -> None:
        bucket = self.activity.get(int(t // INACTIVE_MS))
        if bucket is not None:
            bucket[0], bucket[1] = min(bucket[0], t), max(bucket[1], t)
        elif len(self.activity) < self.limit:
            self.activity[int(t // INACTIVE_MS)] = [t, t]
        else:
            self.truncated = True


def _sentry_breadcrumb(out: Extracted, t: float, payload: dict[str, Any]) -> None:
    category = _text(payload.get("category"), 100)
    message = payload.get("message")
    data = payload.get("data")
    if not isinstance(data, dict):
        data = {}
    if category == "ui.click":
        node = data.get("node")
        if not isinstance(node, dict):
            node = {}
        texts = node.get("texts")  # replayd's snippet: the element's text nodes, [[id, text], ...]
        text = _text(" ".join(x[1] for x in texts if isinstance(x, list) and len(x) == 2 and isinstance(x[1], str))
                     if isinstance(texts, list) else node.get("textContent"), 80)
        out.add(t, "click", f"{message or _element_label(node)}" + (f" “{text}”" if text else ""), source="sdk")
    elif category in ("ui.multiClick", "ui.slowClickDetected"):
        count = data.get("clickCount")
        if not isinstance(count, int):
            count = 0
        # not a rage marker of its own: the index decides rage clicks (these count) and finish marks them
        out.add(t, "click", f"{category}: {message or ''}" + (f" ({count}×)" if count > 1 else ""), source="sdk")
    elif category == "navigation":
        out.add(t, "navigation", f"{data.get('from', '')} → {data.get('to', '')}" if data else _text(message))
    elif category == "console":
        level = _text(payload.get("level") or data.get("logger") or "log", 20)
        out.add(t, "console", _text(message), level=level)
    elif category in ("fetch", "xhr"):  # a request recorded as a breadcrumb only, without a span
        _network_breadcrumb(out, t, category, payload, data)
    elif category in ("replay.mutations", "sentry.transaction", "sentry.event"):
        return
    else:
        out.add(t, "custom", f"{category}: {_text(message)}" if category else _text(message))


def _element_label(node: dict[str, Any]) -> str:
    """``tag#id.class`` of a click breadcrumb's element, for one without a ``message`` (the snippet's)."""
    tag = node.get("tagName")
    if not isinstance(tag, str) or not tag:
        return "click"
    attrs = node.get("attributes")
    attrs = attrs if isinstance(attrs, dict) else {}
    label = tag.lower()
    if isinstance(attrs.get("id"), str) and attrs["id"]:
        label += "#" + attrs["id"]
    if isinstance(attrs.get("class"), str):
        label += "".join("." + c for c in attrs["class"].split()[:3])
    return _text(label, 100)


# A network breadcrumb's data keys shown in their own fields (the rest is listed as it was stored).
_CRUMB_FIELDS = ("method", "url", "status_code", "request_body_size", "response_body_size", "duration",
                 "start_timestamp", "end_timestamp")
MAX_CRUMB_EXTRA = 20


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _network_breadcrumb(out: Extracted, t: float, category: str, payload: dict[str, Any],
                        data: dict[str, Any]) -> None:
    """A fetch/xhr breadcrumb (Sentry's shape: ``data.method``, ``url``, ``status_code``, the body sizes;
    our snippet's error events add ``duration`` in ms): the network panel's columns and, for its detail
    pane, whatever else the breadcrumb holds (as stored: scrubbed at ingest), since there is no span."""
    status = data.get("status_code")
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    method = _text(data.get("method") or "GET", 10)
    url = _text(data.get("url"))
    detail: dict[str, Any] = {"method": method, "url": url, "status": status, "op": category,
                              "via": "breadcrumb"}
    start, end = timestamp_ms(data.get("start_timestamp")), timestamp_ms(data.get("end_timestamp"))
    duration = data.get("duration")
    if start is not None and end is not None and end >= start:
        detail["dur"] = round(end - start)
    elif isinstance(duration, (int, float)) and not isinstance(duration, bool) and 0 <= duration < 1e9:
        detail["dur"] = round(duration)
    for key, name in (("req_size", "request_body_size"), ("res_size", "response_body_size")):
        if (size := _count(data.get(name))) is not None:
            detail[key] = size
    extra = {_text(k, 60): _text(v if isinstance(v, str) else _json_text(v), 200)
             for k, v in itertools.islice(((k, v) for k, v in data.items() if k not in _CRUMB_FIELDS),
                                          MAX_CRUMB_EXTRA)}
    for key in ("level", "type"):
        if isinstance(payload.get(key), str):
            extra.setdefault(key, _text(payload[key], 60))
    if extra:
        detail["data"] = extra
    out.add(t, "network", f"{method} {url} → {status or 'failed'}",
            failed=status is None or status >= 400 or status == 0, **detail)


def _json_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)[:400]
    except (TypeError, ValueError):
        return str(value)


def _size(part: Any) -> int | None:
    """A request's or response's body size as the SDK gives it (``{"size": n}``)."""
    size = part.get("size") if isinstance(part, dict) else None
    return size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None


def _performance_span(out: Extracted, t: float, payload: dict[str, Any], origin: float, span: int) -> None:
    op = _text(payload.get("op"), 100)
    description = _text(payload.get("description"))
    data = payload.get("data")
    if not isinstance(data, dict):
        data = {}
    start = timestamp_ms(payload.get("startTimestamp"))
    if start is not None:
        t = start - origin
    if op.startswith("navigation."):
        out.add(t, "navigation", description, op=op)
    elif op in NETWORK_OPS or (op.startswith("resource.") and isinstance(data.get("statusCode"), int)
                               and data["statusCode"] >= 400):
        method = _text(data.get("method") or ("GET" if op != "resource.xhr" else ""), 10)
        status = data.get("statusCode", "")
        end = timestamp_ms(payload.get("endTimestamp"))
        # the network panel's columns; its detail pane reads the whole span from segment ``seg``
        detail: dict[str, Any] = {"method": method, "url": description,
                                  "status": status if isinstance(status, int) else None}
        if start is not None and end is not None and end >= start:
            detail["dur"] = round(end - start)
        for key, part in (("req_size", data.get("request")), ("res_size", data.get("response"))):
            if (size := _size(part)) is not None:
                detail[key] = size
        if out.segment is not None:
            detail.update(seg=out.segment, span=span)
        # statusCode 0: no answer at all (the SDK's and our snippet's network errors)
        out.add(t, "network", f"{method} {description} → {status if status != 0 else 'failed'}".strip(), op=op,
                failed=isinstance(status, int) and (status >= 400 or status == 0), **detail)


def _custom(out: Extracted, t: float, data: dict[str, Any], origin: float) -> None:
    tag = data.get("tag")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        payload = {"message": payload}
    if tag == "breadcrumb":
        _sentry_breadcrumb(out, t, payload)
    elif tag == "performanceSpan":
        _performance_span(out, t, payload, origin, out.spans - 1)
    elif tag == "error":
        out.add(t, "error", _text(payload.get("message") or payload.get("title") or "error"),
                event_id=_text(payload.get("eventId"), 64))
    elif tag == PAUSED:
        _paused(out, t, payload, origin)
    elif tag in ("options", "replay.mutations"):
        return
    elif isinstance(tag, str):
        label = payload.get("message") or payload.get("url") or payload.get("name") or ""
        out.add(t, "custom", f"{_text(tag, 60)}: {_text(label)}")


def _paused(out: Extracted, t: float, payload: dict[str, Any], origin: float) -> None:
    """The snippet's mark of a mutation storm (docs/snippet.md): recording paused from ``from`` to ``to``."""
    start, end = timestamp_ms(payload.get("from")), timestamp_ms(payload.get("to"))
    start = t if start is None else start - origin
    end = max(start, t if end is None else end - origin)
    count = payload.get("mutations")
    count = count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None
    label = "recording paused" + (f" ({count:,} mutations)" if count is not None else "")
    out.add(start, "paused", label, end=round(end), **({} if count is None else {"mutations": count}))


def _plugin(out: Extracted, t: float, data: dict[str, Any]) -> None:
    if data.get("plugin") != "rrweb/console@1" or not isinstance(data.get("payload"), dict):
        return
    payload = data["payload"]
    args = payload.get("payload")
    text = " ".join(_text(a, 200) for a in args) if isinstance(args, list) else _text(args)
    out.add(t, "console", text, level=_text(payload.get("level") or "log", 20))


def _click(out: Extracted, t: float, node_id: Any) -> None:
    out.add(t, "click", f"click on node {node_id}", source="dom")


def extract(events: Iterable[Any], origin: float, into: Extracted | None = None) -> Extracted:
    """Breadcrumbs (navigation, click, rage, console, network, error, custom) and user activity."""
    out = into or Extracted()
    for event in events:
        if not isinstance(event, dict):
            continue
        data = event.get("data")
        if event.get("type") == CUSTOM and isinstance(data, dict) and data.get("tag") == "performanceSpan":
            out.spans += 1  # counted before any check, as static/player/panels.js counts them
        ms = event_ms(event)
        if ms is None:
            continue
        t = ms - origin
        kind, data = event.get("type"), event.get("data")
        if not isinstance(data, dict):
            continue
        if kind == META and isinstance(data.get("href"), str) and data.get("width") and data.get("height"):
            out.add(t, "navigation", data["href"], source="meta")
        elif kind == INCREMENTAL_SNAPSHOT:
            source = data.get("source")
            if isinstance(source, int) and source in USER_SOURCES:  # an object or list is no set member
                out.active(t)
            if is_click(event):
                _click(out, t, data.get("id"))
        elif kind == CUSTOM:
            _custom(out, t, data, origin)
        elif kind == PLUGIN:
            _plugin(out, t, data)
    return out


def _dedupe_clicks(crumbs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The SDK writes a labelled ui.click breadcrumb next to rrweb's own click: keep the labelled one."""
    sdk_times = sorted(c["t"] for c in crumbs if c["kind"] == "click" and c.get("source") == "sdk")
    if not sdk_times:
        return crumbs
    def near_sdk(t: float) -> bool:
        i = bisect.bisect_left(sdk_times, t - 100)
        return i < len(sdk_times) and sdk_times[i] <= t + 100

    return [c for c in crumbs if not (c["kind"] == "click" and c.get("source") == "dom" and near_sdk(c["t"]))]


def _dedupe_navigations(crumbs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A page load gives a Meta event and a navigation span with the same URL: keep one."""
    out: list[dict[str, Any]] = []
    last: dict[str, float] = {}
    for c in crumbs:
        if c["kind"] == "navigation":
            if c["label"] in last and abs(c["t"] - last[c["label"]]) < 2000:
                continue
            last[c["label"]] = c["t"]
        out.append(c)
    return out


def inactive_stretches(activity: list[float], duration: float, threshold: float = INACTIVE_MS) -> list[list[float]]:
    """Stretches of at least ``threshold`` ms without user input, over [0, duration]."""
    points = sorted(activity)
    stretches: list[list[float]] = []
    previous = 0.0
    for t in [*points, duration]:
        if t - previous >= threshold:
            stretches.append([round(previous), round(t)])
        previous = max(previous, t)
    return stretches


def _placed(errors: list[dict[str, Any]]) -> list[tuple[dict[str, Any], float]]:
    """Errors with a usable time (ms), which the timeline can place."""
    return [(e, at) for e in errors if (at := _index_ms(e.get("timestamp"))) is not None]


def finish(extracted: Extracted, duration: float, errors: list[dict[str, Any]], origin: float,
           rage_clicks: Iterable[tuple[float, str]] = ()) -> dict[str, Any]:
    """Breadcrumbs sorted and de-duplicated, errors and rage clicks (time in s, selector) from the
    index merged in, markers and inactivity."""
    crumbs = [c for c in extracted.breadcrumbs if c["kind"] != "error"]
    for at, selector in rage_clicks:
        crumbs.append({"t": round(at * 1000 - origin), "kind": "rage", "label": _text(f"rage click on {selector}")})
    known = {e["event_id"] for e in errors}
    for crumb in extracted.breadcrumbs:  # errors the recording marks but the index does not hold
        if crumb["kind"] == "error" and crumb.get("event_id", "").replace("-", "") not in known:
            crumbs.append(crumb)
    for error, at in _placed(errors):
        crumbs.append({
            "t": round(at - origin),
            "kind": "error",
            "label": _text(f"{error.get('type') or 'Error'}: {error.get('value') or error.get('message') or ''}"),
            "event_id": error["event_id"],
        })
    crumbs.sort(key=lambda c: c["t"])
    crumbs = _dedupe_navigations(_dedupe_clicks(crumbs))
    for c in crumbs:
        c.pop("source", None)
    marked = ("error", "navigation", "click", "rage")
    markers = [{"t": c["t"], "kind": c["kind"]} for c in crumbs if c["kind"] in marked]
    markers += [{"t": c["t"], "end": c["end"], "kind": "paused", "label": c["label"]}  # drawn as a band
                for c in crumbs if c["kind"] == "paused"]
    return {
        "breadcrumbs": crumbs,
        "markers": markers,
        "inactive": inactive_stretches([t for bucket in extracted.activity.values() for t in bucket], duration),
        "truncated": extracted.truncated,
    }


def summary(replay: dict[str, Any], errors: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page embeds so the player can start without another request."""
    table = segment_table(replay)
    origin = origin_ms(replay)
    ended = _index_ms(replay.get("ended_at"))
    duration = round(ended - origin) if ended is not None else 0
    duration = max(duration, table[-1]["end"] if table else 0, 0)
    return {
        "origin": origin,
        "duration": duration,
        "segments": table,
        "gaps": [list(g) for g in segment_gaps(table)],
        "errors": [
            {"t": round(at - origin), "event_id": e["event_id"],
             "label": _text(f"{e.get('type') or 'Error'}: {e.get('value') or e.get('message') or ''}")}
            for e, at in _placed(errors)
        ],
    }


def extract_from_blobs(blobs: list[bytes], origin: float, extracted: Extracted,
                       segment_ids: list[int] | None = None, limit: int | None = None) -> Extracted:
    """``extract`` over stored segments, one event at a time; runs in a worker process. With their
    ids, network breadcrumbs name the segment that holds their whole span."""
    ids: list[int | None] = list(segment_ids) if segment_ids is not None else [None] * len(blobs)
    return extract_from_sources([(blob, None, [sid]) for blob, sid in zip(blobs, ids, strict=True)], origin,
                                extracted, limit)


def extract_from_sources(sources: list[tuple[bytes, list[tuple[int, int]] | None, list[int | None]]],
                         origin: float, extracted: Extracted, limit: int | None = None) -> Extracted:
    """``extract`` over stored segments: a loose segment's blob (no slices), or a compacted chunk and the
    (offset, length) of each segment wanted in it (player/segments.read_sources), with the segments'
    ids (one per slice, or one for a loose blob); runs in a worker. ``limit``: limits.max_decoded_bytes."""
    for data, slices, ids in sources:
        if slices is None:
            extracted.segment = ids[0]
            extracted.spans = 0
            extract(iter_events(data, limit), origin, extracted)
            continue
        chunk = decode_chunk(data, max(offset + length for offset, length in slices), limit)
        for (offset, length), segment_id in zip(slices, ids, strict=True):
            extracted.segment = segment_id
            extracted.spans = 0
            extract(iter_packed_events(chunk[offset:offset + length]), origin, extracted)
    extracted.segment = None
    return extracted
