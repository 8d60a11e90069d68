"""Build Sentry envelopes the way @sentry/browser sends them, and post them to a running replayd.

General helpers for any test or benchmark:

- ``replay_envelope(replay_id, segment_id, events, **replay_event_fields)``: a ``replay_event`` item and a
  ``replay_recording`` item (``{"segment_id":N}\\n`` + zlib-compressed JSON, with ``length``).
- ``error_envelope(event_id, replay_id, **fields)``: an ``event`` item (an exception) linked to the
  replay through ``contexts.replay``, ``tags.replayId`` and the header's ``trace.replay_id``.
- ``post_envelope(url, body, key)``: POST to ``{url}/api/{project}/envelope/`` (``url`` may be a
  server's base URL, then project 1 is used) and return the parsed JSON answer.
- ``parse_envelope(body)`` and ``read_recording(payload)`` read what a sender (the snippet, the SDK) posted.
- ``cut_segments(events, seconds)`` cuts a recording into SDK-sized segments and ``segment_texts``
  gives them as the compact JSON the SDK compresses; ``page_events`` makes a small recorded page
  (Meta + FullSnapshot) with given text.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
import zlib
from collections.abc import Iterable
from typing import Any

from replayd.player.timeline import event_ms  # rrweb's times in ms, the SDK's custom events' in seconds

USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "HeadlessChrome/156.0.0.0 Safari/537.36")
SDK = {"name": "sentry.javascript.browser", "version": "11.12.0"}


def _line(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def new_id() -> str:
    return uuid.uuid4().hex


def replay_envelope(replay_id: str, segment_id: int, events: list[dict[str, Any]], **replay_event_fields: Any) -> bytes:
    """One upload of a replay segment, as the SDK sends it (zlib body, explicit length)."""
    timestamps = [ms / 1000 for e in events if (ms := event_ms(e)) is not None]
    now = max(timestamps) if timestamps else time.time()
    start = min(timestamps) if timestamps else now
    url = next((e["data"]["href"] for e in events if e.get("type") == 4 and "href" in e.get("data", {})), None)
    event = replay_event(replay_id, segment_id, start, now, [url] if url else []) | replay_event_fields
    return recording_envelope(event, zlib.compress(_line(events)))


def replay_event(replay_id: str, segment_id: int, start: float, timestamp: float, urls: list[str]) -> dict[str, Any]:
    """A segment's replay_event item as the SDK fills it in (times in Unix seconds)."""
    return {
        "type": "replay_event",
        "replay_id": replay_id,
        "segment_id": segment_id,
        "replay_start_timestamp": start,
        "timestamp": timestamp,
        "error_ids": [],
        "trace_ids": [],
        "urls": urls,
        "replay_type": "session",
        "request": {"url": urls[0] if urls else "", "headers": {"User-Agent": USER_AGENT}},
        "platform": "javascript",
        "environment": "production",
        "sdk": SDK,
        "event_id": replay_id,
    }


def recording_envelope(event: dict[str, Any], body: bytes) -> bytes:
    """The envelope of one segment: its replay_event item, and its replay_recording item whose ``body``
    is the segment's events as the SDK sends them (JSON deflated with zlib)."""
    recording = b'{"segment_id":' + str(event["segment_id"]).encode() + b"}\n" + body
    header = {"event_id": event["replay_id"], "sent_at": _iso(time.time()), "sdk": SDK}
    return b"\n".join([
        _line(header),
        _line({"type": "replay_event"}),
        _line(event),
        _line({"type": "replay_recording", "length": len(recording)}),
        recording,
    ])


def error_envelope(event_id: str, replay_id: str | None, **fields: Any) -> bytes:
    """An error event; ``fields`` override the event's top-level keys (``timestamp``, ``exception`` ...)."""
    exc_type = fields.pop("type", "TypeError")
    exc_value = fields.pop("value", "Cannot read properties of undefined (reading 'total')")
    url = fields.pop("url", "http://app.example.test/checkout")
    event: dict[str, Any] = {
        "event_id": event_id,
        "timestamp": time.time(),
        "level": "error",
        "platform": "javascript",
        "exception": {"values": [{
            "type": exc_type,
            "value": exc_value,
            "stacktrace": {"frames": [
                {"filename": "http://app.example.test/vendor.js", "function": "dispatch", "in_app": False,
                 "lineno": 10, "colno": 5},
                {"filename": "http://app.example.test/app.js", "function": "computeTotal", "in_app": True,
                 "lineno": 42, "colno": 17},
            ]},
            "mechanism": {"type": "onerror", "handled": False},
        }]},
        "request": {"url": url, "headers": {"User-Agent": USER_AGENT}},
        "tags": {"release_channel": "beta"},
        "environment": "production",
        "sdk": SDK,
    }
    header: dict[str, Any] = {"event_id": event_id, "sent_at": _iso(time.time()), "sdk": SDK}
    if replay_id:
        event["tags"]["replayId"] = replay_id
        event["contexts"] = {"replay": {"replay_id": replay_id}}
        header["trace"] = {"replay_id": replay_id, "trace_id": new_id()}
    event.update(fields)
    return b"\n".join([_line(header), _line({"type": "event"}), _line(event)])


def post_envelope(url: str, body: bytes, key: str, project_id: int = 1, timeout: float = 60) -> Any:
    """POST an envelope; ``url`` is a server base URL or a full envelope endpoint URL."""
    endpoint = url if "/envelope/" in url else f"{url.rstrip('/')}/api/{project_id}/envelope/"
    sep = "&" if "?" in endpoint else "?"
    request = urllib.request.Request(
        f"{endpoint}{sep}sentry_version=7&sentry_key={key}&sentry_client=sentry.javascript.browser/11.12.0",
        data=body, method="POST", headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        text = response.read()
    return json.loads(text) if text.strip() else None


def parse_envelope(body: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """The tests' own reading of an envelope (not the server's parser): its header, and its items as
    (item header, payload); an item with a ``length`` is that many bytes, one without it a line."""
    first, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        if not line.strip():
            continue
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[:header["length"]], rest[header["length"]:]
            rest = rest[1:] if rest.startswith(b"\n") else rest
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return json.loads(first), items


def read_recording(payload: bytes) -> tuple[int, bytes]:
    """A replay_recording item's segment id and its JSON, inflated if the sender deflated it."""
    header, _, data = payload.partition(b"\n")
    return json.loads(header)["segment_id"], data if data.lstrip()[:1] == b"[" else zlib.decompress(data)


def cut_segments(events: Iterable[dict[str, Any]], seconds: float = 5.0) -> list[list[dict[str, Any]]]:
    """Cut a recording every ``seconds`` of event time, the way the SDK flushes: a new segment when
    an event is that long or more past the first timed event of the current one."""
    segments: list[list[dict[str, Any]]] = []
    start = None
    for event in events:
        ms = event_ms(event)
        if not segments or (ms is not None and start is not None and ms - start >= seconds * 1000):
            segments.append([])
            start = None
        if start is None:
            start = ms
        segments[-1].append(event)
    return segments


def segment_texts(events: Iterable[dict[str, Any]], seconds: float = 5.0) -> list[bytes]:
    """``cut_segments``, each segment as the compact JSON text the SDK compresses and sends."""
    return [json.dumps(group, separators=(",", ":"), ensure_ascii=False).encode()
            for group in cut_segments(events, seconds)]


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


# --- small synthetic pages -----------------------------------------------------------------

def element(node_id: int, tag: str, children: list[dict[str, Any]], **attributes: str) -> dict[str, Any]:
    return {"type": 2, "tagName": tag, "attributes": attributes, "childNodes": children, "id": node_id}


def text(node_id: int, content: str) -> dict[str, Any]:
    return {"type": 3, "textContent": content, "id": node_id}


def page_events(ts_ms: float, href: str, heading: str, paragraphs: list[str] = (), *,
                head: list[dict[str, Any]] | None = None, body_extra: list[dict[str, Any]] | None = None,
                width: int = 1280, height: int = 800) -> list[dict[str, Any]]:
    """Meta + FullSnapshot of a page with an <h1 id=title> and paragraphs; node ids from 1."""
    body_children = [element(10, "h1", [text(11, heading)], id="title")]
    next_id = 20
    for para in paragraphs:
        body_children.append(element(next_id, "p", [text(next_id + 1, para)]))
        next_id += 2
    body_children += body_extra or []
    html = element(3, "html", [
        element(4, "head", [element(5, "title", [text(6, heading)]),
                            element(7, "style", [text(8, "body{font:16px sans-serif;margin:24px}h1{color:#234}")]),
                            *(head or [])]),
        element(9, "body", body_children),
    ], lang="en")
    document = {"type": 0, "childNodes": [{"type": 1, "name": "html", "publicId": "", "systemId": "", "id": 2}, html],
                "id": 1}
    return [
        {"type": 4, "data": {"href": href, "width": width, "height": height}, "timestamp": ts_ms},
        {"type": 2, "data": {"node": document, "initialOffset": {"left": 0, "top": 0}}, "timestamp": ts_ms + 1},
    ]


def text_mutation(ts_ms: float, node_id: int, value: str) -> dict[str, Any]:
    return {"type": 3, "timestamp": ts_ms,
            "data": {"source": 0, "texts": [{"id": node_id, "value": value}], "attributes": [], "removes": [],
                     "adds": []}}


def mouse_move(ts_ms: float, x: int, y: int, node_id: int = 9) -> dict[str, Any]:
    return {"type": 3, "timestamp": ts_ms,
            "data": {"source": 1, "positions": [{"x": x, "y": y, "id": node_id, "timeOffset": 0}]}}


def click(ts_ms: float, node_id: int, x: int = 100, y: int = 100) -> dict[str, Any]:
    return {"type": 3, "timestamp": ts_ms, "data": {"source": 2, "type": 2, "id": node_id, "x": x, "y": y}}


def breadcrumb(ts_ms: float, category: str, message: str, **data: Any) -> dict[str, Any]:
    return {"type": 5, "timestamp": ts_ms, "data": {"tag": "breadcrumb", "payload": {
        "timestamp": ts_ms / 1000, "type": "default", "category": category, "message": message, "data": data}}}
