"""What the index keeps of (already scrubbed) ``replay_event`` and ``event`` items; issue fingerprints."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from .. import timestamps
from ..index import ErrorRecord, ReplayEventRecord
from ..useragent import parse_user_agent
from .envelope import MAX_SEGMENT_ID
from .refused import IngestRefused

_HEX_ID = re.compile(r"\b[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\b"
                     r"|\b[0-9a-fA-F]{16,}\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ID_DIGITS = re.compile(r"[0-9a-fA-F]{32}")
IN_APP_FRAMES = 5
_SURROGATE = re.compile("[\ud800-\udfff]")


def _str(value: Any, limit: int = 2000) -> str:
    """Text for an index column: cut to ``limit``; a lone surrogate (valid in JSON's \\u escapes, not
    in UTF-8, so no database can store it) becomes U+FFFD."""
    if value is None:
        return ""
    text = (value if isinstance(value, str) else str(value))[:limit]
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` when it is a JSON object; an empty one when missing or of another type."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _timestamp(value: Any) -> float | None:
    """Unix seconds from a number or an ISO 8601 string (UTC unless it says otherwise); None when
    missing, unreadable or implausible (see ``server.timestamps``), so callers fall back."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        value = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return timestamps.plausible(value)


def hex_id(value: Any) -> str | None:
    """A replay or event id in canonical form (32 lowercase hex digits; the sender's dashes removed),
    or None if ``value`` is not one."""
    if isinstance(value, str):
        digits = value.replace("-", "")
        if _ID_DIGITS.fullmatch(digits):
            return digits.lower()
    return None


def checked_id(value: Any, field: str) -> str | None:
    """``hex_id`` of a field that names what is stored: None when absent, else valid or a 400."""
    if value is None:
        return None
    canonical = hex_id(value)
    if canonical is None:
        raise IngestRefused(400, f"{field} must be 32 hex digits (dashes allowed)")
    return canonical


def _user_agent(data: dict[str, Any]) -> str:
    request = data.get("request")
    headers = request.get("headers") if isinstance(request, dict) else None
    if isinstance(headers, dict):
        for key, value in headers.items():
            if key.lower() == "user-agent":
                return _str(value)
    if isinstance(headers, list):
        for pair in headers:
            if isinstance(pair, list) and len(pair) == 2 and str(pair[0]).lower() == "user-agent":
                return _str(pair[1])
    return ""


def _client(data: dict[str, Any]) -> tuple[str, str, str]:
    browser, os_name, device = parse_user_agent(_user_agent(data))
    contexts = _object(data, "contexts")
    for name, current in (("browser", browser), ("os", os_name)):
        ctx = contexts.get(name)
        if not current and isinstance(ctx, dict) and ctx.get("name"):
            label = f"{_str(ctx.get('name'), 100)} {_str(ctx.get('version'), 50)}".strip()
            browser, os_name = (label, os_name) if name == "browser" else (browser, label)
    return browser, os_name, device


def _tags(data: dict[str, Any]) -> dict[str, str]:
    tags = data.get("tags")
    if isinstance(tags, dict):
        return {_str(k, 200): _str(v, 200) for k, v in tags.items()}
    if isinstance(tags, list):
        return {_str(p[0], 200): _str(p[1], 200) for p in tags if isinstance(p, list) and len(p) == 2}
    return {}


def _user(data: dict[str, Any]) -> dict[str, Any]:
    user = data.get("user")
    if not isinstance(user, dict):
        return {}
    return {k: user[k] for k in ("id", "email", "username", "ip_address", "name") if user.get(k) not in (None, "")}


def replay_event_record(project_id: int, data: dict[str, Any], replay_id: str) -> ReplayEventRecord:
    browser, os_name, device = _client(data)
    sdk = _object(data, "sdk")
    segment_id = data.get("segment_id")
    urls = data.get("urls")
    error_ids = data.get("error_ids")
    return ReplayEventRecord(
        project_id=project_id,
        replay_id=replay_id,
        segment_id=segment_id if isinstance(segment_id, int) and not isinstance(segment_id, bool)
        and 0 <= segment_id <= MAX_SEGMENT_ID else -1,
        started_at=_timestamp(data.get("replay_start_timestamp")),
        timestamp=_timestamp(data.get("timestamp")),
        urls=[_str(u) for u in urls if isinstance(u, str)][:100] if isinstance(urls, list) else [],
        error_ids=[e for e in (hex_id(x) for x in error_ids) if e][:1000] if isinstance(error_ids, list) else [],
        replay_type=_str(data.get("replay_type"), 20) or "session",
        user=_user(data),
        browser=browser,
        os=os_name,
        device=device,
        environment=_str(data.get("environment"), 100),
        release=_str(data.get("release"), 200),
        sdk=f"{_str(sdk.get('name'), 100)}/{_str(sdk.get('version'), 50)}" if sdk.get("name") else "",
    )


def _exceptions(data: dict[str, Any]) -> list[dict[str, Any]]:
    exc = data.get("exception")
    values = exc.get("values") if isinstance(exc, dict) else exc
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []


def _exception(data: dict[str, Any]) -> dict[str, Any] | None:
    values = _exceptions(data)
    return values[-1] if values else None  # Sentry lists chained exceptions innermost-first


def _frames(exception: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not exception:
        return []
    stacktrace = exception.get("stacktrace")
    frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
    return [f for f in frames if isinstance(f, dict)] if isinstance(frames, list) else []


def _message(data: dict[str, Any]) -> str:
    for key in ("message", "logentry"):
        value = data.get(key)
        if isinstance(value, str):
            return _str(value)
        if isinstance(value, dict):
            return _str(value.get("formatted") or value.get("message"))
    return ""


def normalise_message(message: str) -> str:
    return _NUMBER.sub("<n>", _HEX_ID.sub("<id>", message)).strip()


def fingerprint(data: dict[str, Any]) -> str:
    """The event's own fingerprint, else type + top in-app frames, else the normalised message."""
    exception = _exception(data)
    default_parts: list[str]
    frames = _frames(exception)
    in_app = [f for f in frames if f.get("in_app") is not False] or frames
    top = list(reversed(in_app))[:IN_APP_FRAMES]  # frames run oldest first; the top is the last
    if exception and (exception.get("type") or top):
        default_parts = ["exception", _str(exception.get("type"), 200)] + [
            f"{_str(f.get('function'), 200)}@{_str(f.get('filename') or f.get('abs_path') or f.get('module'), 300)}"
            for f in top
        ]
        if not top:
            default_parts.append(normalise_message(_str(exception.get("value"))))
    else:
        default_parts = ["message", normalise_message(_message(data) or _str(exception and exception.get("value")))]
    own = data.get("fingerprint")
    if isinstance(own, list) and own and all(isinstance(p, (str, int, float)) for p in own):
        parts: list[str] = []
        for part in own:
            parts += default_parts if part == "{{ default }}" else ["custom", str(part)]
        default_parts = parts
    return hashlib.sha256("\x1f".join(default_parts).encode()).hexdigest()[:32]


def _culprit(data: dict[str, Any], exception: dict[str, Any] | None) -> str:
    if isinstance(data.get("culprit"), str):
        return _str(data["culprit"], 300)
    frames = _frames(exception)
    in_app = [f for f in frames if f.get("in_app") is not False] or frames
    if not in_app:
        return ""
    frame = in_app[-1]
    return f"{_str(frame.get('function'), 100) or '?'} ({_str(frame.get('filename') or frame.get('abs_path'), 200)})"


def error_replay_id(data: dict[str, Any], envelope_headers: dict[str, Any]) -> str | None:
    contexts = data.get("contexts")
    replay_ctx = contexts.get("replay") if isinstance(contexts, dict) else None
    trace = envelope_headers.get("trace")
    candidates = [
        replay_ctx.get("replay_id") if isinstance(replay_ctx, dict) else None,
        _tags(data).get("replayId"),
        trace.get("replay_id") if isinstance(trace, dict) else None,
    ]
    return next((rid for rid in map(hex_id, candidates) if rid), None)


def error_record(project_id: int, data: dict[str, Any], envelope_headers: dict[str, Any]) -> ErrorRecord:
    exception = _exception(data)
    event_id = hex_id(data.get("event_id")) or hex_id(envelope_headers.get("event_id"))
    event_id = event_id or uuid.uuid4().hex
    browser, os_name, device = _client(data)
    request = _object(data, "request")
    exc_type = _str(exception.get("type"), 300) if exception else ""
    exc_value = _str(exception.get("value")) if exception else ""
    message = _message(data)
    title = f"{exc_type}: {exc_value}" if exc_type and exc_value else exc_type or exc_value or message or "<no message>"
    frames = _frames(exception)
    stored = {
        "exception": {"type": exc_type, "value": exc_value, "frames": frames[-100:]},
        "exceptions": [{"type": _str(v.get("type"), 300), "value": _str(v.get("value"))} for v in _exceptions(data)],
        "message": message,
        "request": {k: request[k] for k in ("url", "method", "headers", "query_string") if k in request},
        "user": _user(data),
        "tags": _tags(data),
        "contexts": _object(data, "contexts"),
        "breadcrumbs": data.get("breadcrumbs"),
        "environment": _str(data.get("environment"), 100),
        "release": _str(data.get("release"), 200),
        "platform": _str(data.get("platform"), 50),
        "device": device,
    }
    return ErrorRecord(
        project_id=project_id,
        event_id=event_id,
        timestamp=_timestamp(data.get("timestamp")) or time.time(),
        level=_str(data.get("level"), 20) or "error",
        fingerprint=fingerprint(data),
        title=title[:500],
        culprit=_culprit(data, exception),
        type=exc_type,
        value=exc_value,
        message=message,
        url=_str(request.get("url")),
        browser=browser,
        os=os_name,
        replay_id=error_replay_id(data, envelope_headers),
        data=stored,
    )
