"""Sentry's own items: error events and replay events, field by field.

Each known field is scrubbed by what it holds (messages as text, frames' files and request URLs
with the URL rules, cookies replaced, headers and bodies by name); every other field, and a
known field of an unexpected shape, is scrubbed as a generic payload, so that nothing an SDK
adds reaches storage unscrubbed.
"""

from __future__ import annotations

from typing import Any

from .compiled import Compiled
from .payload_text import params_text, secrets_in_text
from .payloads import scrub_body, scrub_fields, scrub_json
from .report import ScrubReport
from .urls import scrub_url
from .user import scrub_user

# Fields of events that hold identifiers, times and SDK facts, never personal data: left alone.
_EVENT_IDS = frozenset((
    "event_id", "timestamp", "start_timestamp", "received", "platform", "level", "type", "sdk",
    "replay_id", "segment_id", "error_ids", "trace_ids", "replay_start_timestamp", "replay_type",
))
_ERROR_DONE = _EVENT_IDS | {
    "exception", "threads", "message", "logentry", "breadcrumbs", "request", "extra", "contexts", "tags", "user",
}
_REPLAY_DONE = _EVENT_IDS | {"urls", "request", "tags", "user"}
# The shapes the handlers below read; anything else in those fields is scrubbed generically.
_SHAPES: dict[str, Any] = {
    "exception": (dict, list), "threads": (dict, list), "message": (str, dict), "logentry": (str, dict),
    "breadcrumbs": (dict, list), "request": dict, "extra": (dict, list), "contexts": (dict, list),
    "tags": (dict, list), "user": dict, "urls": list,
}


def scrub_error_event(c: Compiled, ev: dict[str, Any], report: ScrubReport) -> dict[str, Any]:
    """A Sentry error event: exception values and frames, message, breadcrumbs, request, extra,
    user (policy), tags, logentry, and every other field but identifiers."""
    for key in ("exception", "threads"):
        if isinstance(ev.get(key), (dict, list)):
            _scrub_exceptions(c, ev[key], report)
    for key in ("message", "logentry"):
        m = ev.get(key)
        if isinstance(m, str):
            ev[key] = _message_text(c, m, "error.message", report)
        elif isinstance(m, dict):
            scrub_json(c, m, "error.message", report)
    if isinstance(ev.get("request"), dict):
        _scrub_request(c, ev["request"], "error.request", report)
    for key, location in (("breadcrumbs", "error.breadcrumb"), ("extra", "error.extra"),
                          ("contexts", "error.contexts"), ("tags", "error.tags")):
        if isinstance(ev.get(key), (dict, list)):
            scrub_json(c, ev[key], location, report)
    scrub_user(c, ev, report, "user")
    _scrub_rest(c, ev, _ERROR_DONE, "error.other", report)
    return ev


def scrub_replay_event(c: Compiled, ev: dict[str, Any], report: ScrubReport) -> dict[str, Any]:
    """A Sentry replay_event: urls, request, user, tags, and every other field but identifiers."""
    urls = ev.get("urls")
    if isinstance(urls, list):
        for i, u in enumerate(urls):
            if isinstance(u, str):
                urls[i] = scrub_url(c.text, u, "replay.urls", report, c.param_redactor.label)
            elif isinstance(u, (dict, list)):
                urls[i] = scrub_json(c, u, "replay.urls", report)
    if isinstance(ev.get("request"), dict):
        _scrub_request(c, ev["request"], "replay.request", report)
    if isinstance(ev.get("tags"), (dict, list)):
        scrub_json(c, ev["tags"], "replay.tags", report)
    scrub_user(c, ev, report, "user")
    _scrub_rest(c, ev, _REPLAY_DONE, "replay.other", report)
    return ev


def _scrub_rest(c: Compiled, ev: dict[str, Any], done: frozenset[str], location: str, report: ScrubReport) -> None:
    """Every field not handled above (culprit, transaction, server_name, spans, fingerprint,
    modules, contexts of replay events, a handled field of the wrong shape, ...) is scrubbed as a
    generic payload: what an SDK or a future SDK puts in an event must not reach storage
    unscrubbed."""
    handled = [k for k in ev if k in done and (ev[k] is None or isinstance(ev[k], _SHAPES.get(k, object)))]
    scrub_fields(c, ev, handled, location, report)


def _scrub_exceptions(c: Compiled, container: dict[str, Any] | list[Any], report: ScrubReport) -> None:
    """``exception`` or ``threads``: a list or ``{"values": [...]}`` of objects with a message
    ``value`` and a ``stacktrace``; every other field and entry of any shape as a payload."""
    values: Any = container.get("values") if isinstance(container, dict) else container
    for i, x in enumerate(values if isinstance(values, list) else ()):
        if not isinstance(x, dict):
            values[i] = scrub_json(c, x, "error.exception", report)
            continue
        done = ["stacktrace"]
        if isinstance(x.get("value"), str):
            x["value"] = _message_text(c, x["value"], "error.exception", report)
            done.append("value")
        _scrub_stacktrace(c, x, report)
        scrub_fields(c, x, done, "error.exception", report)  # type, module, mechanism, name...
    if isinstance(container, dict):
        scrub_fields(c, container, ("values",) if isinstance(values, list) else (), "error.exception", report)


def _scrub_stacktrace(c: Compiled, holder: dict[str, Any], report: ScrubReport) -> None:
    """``holder["stacktrace"]``: frames' file names and URLs with the URL rules; source lines
    (``context_line``, ``pre_context``, ``post_context``), ``vars``, function and module names,
    and anything else as payloads."""
    st = holder.get("stacktrace")
    if not isinstance(st, dict):
        if st is not None:
            holder["stacktrace"] = scrub_json(c, st, "error.exception", report)
        return
    frames = st.get("frames")
    for fr in frames if isinstance(frames, list) else ():
        if isinstance(fr, dict):
            done = _url_fields(c, fr, ("filename", "abs_path"), "error.exception", report)
            scrub_fields(c, fr, done, "error.exception", report)
    scrub_fields(c, st, ("frames",) if isinstance(frames, list) else (), "error.exception", report)


def _scrub_request(c: Compiled, req: dict[str, Any], location: str, report: ScrubReport) -> None:
    """``request`` of an error or replay event: ``url`` with the URL rules, ``cookies`` always
    replaced, ``query_string`` / ``fragment`` / ``data`` strings as parameters and bodies, and
    every other field (headers, query pairs, env...) as a payload, by name."""
    done = _url_fields(c, req, ("url",), location, report)
    if "cookies" in req:
        label = c.param_redactor.label
        if req["cookies"] not in (None, "", {}, [], label):
            req["cookies"] = label
            report.add("@header", location)
        done.append("cookies")
    for key, lead in (("query_string", "?"), ("fragment", "#")):
        if isinstance(req.get(key), str):
            req[key] = params_text(c, req[key], lead, location, report)
            done.append(key)
    if isinstance(req.get("data"), str):
        req["data"] = scrub_body(c, req["data"], location, report)
        done.append("data")
    scrub_fields(c, req, done, location, report)


def _message_text(c: Compiled, v: str, location: str, report: ScrubReport) -> str:
    """An exception value or message: text, with secrets written in by name."""
    return secrets_in_text(c, c.text.scrub(v, location, report), location, report)


def _url_fields(
    c: Compiled, obj: dict[str, Any], keys: tuple[str, ...], location: str, report: ScrubReport
) -> list[str]:
    """String fields of ``obj`` named in ``keys`` with the URL rules; returns those done."""
    done = []
    for key in keys:
        if isinstance(obj.get(key), str):
            obj[key] = scrub_url(c.text, obj[key], location, report, c.param_redactor.label)
            done.append(key)
    return done
