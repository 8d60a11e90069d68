"""JSON payloads: Sentry breadcrumbs and spans, plugin payloads, network data, error events,
replay events.  Every walk is iterative and edits containers in place."""

from __future__ import annotations

import json
import re
from typing import Any

from .compiled import Compiled
from .redaction import hash_token
from .report import ScrubReport
from .text import param_key
from .urls import scrub_auto, scrub_url

_BODY_KEYS = frozenset(("body", "request_body", "response_body", "requestbody", "responsebody"))
_SKIP_KEYS = frozenset(("base64", "rr_dataURL", "rr_dataurl"))
_MAX_JSON_BODY = 1 << 20


_HEADER_LINE = re.compile(r"^([ \t]*+)([!#$%&'*+.^_`|~0-9A-Za-z-]++)([ \t]*+:[ \t]*+)([^\n]*+)", re.M)


def _header_value(c: Compiled, name: Any, v: Any, location: str, report: ScrubReport) -> Any:
    """One header's value: the label for always-redacted names, else scrubbed (any shape)."""
    if isinstance(name, str) and (name.strip().lower() in c.redact_headers or c.sensitive(name.strip().lower().replace("-", "_"))):
        if v in (None, "", [], {}, c.header_label):
            return v
        report.add("@header", location)
        return c.header_label
    if isinstance(v, str):
        return scrub_auto(c.text, v, location, report, c.param_redactor.label) if v else v
    if isinstance(v, (dict, list)):
        return scrub_json(c, v, location, report)
    return v


def _header_text(c: Compiled, text: str, location: str, report: ScrubReport) -> str:
    """Raw header text ("Name: value" lines, as XHR's getAllResponseHeaders gives)."""
    if ":" not in text:
        return c.text.scrub(text, location, report)

    def line(m: re.Match) -> str:
        raw = m.group(4)
        value = raw.rstrip(" \t\r")
        tail = raw[len(value):]
        value = _header_value(c, m.group(2), value, location, report)
        return f"{m.group(1)}{m.group(2)}{m.group(3)}{value}{tail}"

    return _HEADER_LINE.sub(line, text)


def redact_headers(c: Compiled, headers: Any, location: str, report: ScrubReport) -> Any:
    """Always-redacted headers get the label; other header values are scrubbed as text/URLs.
    Headers come as a map, as ``[name, value]`` pairs, as HAR-style ``{name, value}`` objects,
    or as raw ``Name: value`` text; returns the (possibly replaced) headers."""
    if isinstance(headers, dict):
        for k in list(headers):
            headers[k] = _header_value(c, k, headers[k], location, report)
    elif isinstance(headers, list):  # Sentry also allows [[name, value], ...]
        for i, pair in enumerate(headers):
            if isinstance(pair, list) and len(pair) == 2:
                pair[1] = _header_value(c, pair[0], pair[1], location, report)
            elif isinstance(pair, dict) and "value" in pair:
                name = pair.get("name", pair.get("key"))
                pair["value"] = _header_value(c, name, pair["value"], location, report)
                for k in list(pair):
                    if k not in ("name", "key", "value"):
                        pair[k] = scrub_json(c, pair[k], location, report)
            elif isinstance(pair, (str, dict, list)):
                headers[i] = _header_text(c, pair, location, report) if isinstance(pair, str) else scrub_json(c, pair, location, report)
    elif isinstance(headers, str) and headers:
        return _header_text(c, headers, location, report)
    return headers


def _json_body(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    """A body string holding JSON is parsed, scrubbed by key and value, and re-serialised."""
    if len(s) <= _MAX_JSON_BODY and s[:1] in "{[":
        try:
            obj = json.loads(s)
        except (ValueError, RecursionError):  # "[[[[..." deeper than the parser goes
            obj = None
        if isinstance(obj, (dict, list)):
            before = report.total
            scrub_json(c, obj, location, report)
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) if report.total != before else s
    out = _form_text(c, s, location, report)
    return _json_keys_in_text(c, out, location, report) if '":' in out else out


# "key": value pairs in text that is not (or no longer) valid JSON: truncated bodies, console
# lines such as 'login {"password":"x"}'.  A sensitive key's value becomes the label.
_JSON_KV = re.compile(r'"([^"\\\n]{1,64})"[ \t]*:[ \t]*("(?:[^"\\\n]|\\.)*+"?|-?\d[\d.eE+-]*+)')


def _json_keys_in_text(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    pieces: list[str] = []
    last = 0
    for m in _JSON_KV.finditer(s):
        if not c.sensitive(m.group(1).lower().replace("-", "_")):
            continue
        value = m.group(2)
        if value in (f'"{c.header_label}"', '""'):
            continue
        pieces.append(s[last : m.start(2)])
        pieces.append(f'"{c.header_label}"')
        last = m.end(2)
        report.add("@sensitive_key", location)
    if not pieces:
        return s
    pieces.append(s[last:])
    return "".join(pieces)


def _payload_string(c: Compiled, v: str, location: str, report: ScrubReport) -> str:
    """A string inside a payload: JSON text (console plugins stringify objects) is scrubbed by
    key and value; other text as a URL or text, then by ``"key": value`` pairs."""
    if v[:1] in "{[":
        return _json_body(c, v, location, report)
    out = scrub_auto(c.text, v, location, report, c.param_redactor.label)
    if ":" in out:
        if '":' in out:
            out = _json_keys_in_text(c, out, location, report)
        out = _secret_headers_in_text(c, out, location, report)
    return out


def _message_text(c: Compiled, v: str, location: str, report: ScrubReport) -> str:
    """An exception value or message: text, with JSON-ish secrets and secret headers in it."""
    out = c.text.scrub(v, location, report)
    if ":" in out:
        if '":' in out:
            out = _json_keys_in_text(c, out, location, report)
        out = _secret_headers_in_text(c, out, location, report)
    return out


# "Authorization: ..." / "Cookie: ..." inside console output and other payload text.
_SECRET_HEADER = re.compile(
    r"(?i)(?<![\w-])(proxy-authorization|authorization|set-cookie|cookie|x-api-key)([ \t]*:[ \t]*)([^\r\n\"']+)"
)


def _secret_headers_in_text(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    def sub(m: re.Match) -> str:
        if m.group(3).strip() in ("", c.header_label):
            return m.group(0)
        report.add("@header", location)
        return f"{m.group(1)}{m.group(2)}{c.header_label}"

    return _SECRET_HEADER.sub(sub, s)


_FORM = re.compile(r"[^\s=&]++=[^\s&]*+(?:&[^\s&]*+)*+")  # possessive: linear time


def _form_text(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    """A body or query string: ``a=1&password=x`` has its first parameter named too (the
    parameter rule looks for ``?``/``&`` before a name)."""
    if "=" in s and s[:1] not in "?&#" and _FORM.fullmatch(s):
        new = c.text.scrub("?" + s, location, report)
        return new[1:] if new.startswith("?") else new
    return c.text.scrub(s, location, report)


def _redact_leaves(root: Any, label: str, location: str, report: ScrubReport) -> None:
    """Everything under a sensitive key: every scalar leaf becomes the label."""
    stack = [root]
    while stack:
        o = stack.pop()
        items = list(o.items()) if isinstance(o, dict) else list(enumerate(o))
        for k, v in items:
            if isinstance(v, (dict, list)):
                stack.append(v)
            elif isinstance(v, (str, int, float)) and not isinstance(v, bool) and v != "" and v != label:
                o[k] = label
                report.add("@sensitive_key", location)


def scrub_json(c: Compiled, root: Any, location: str, report: ScrubReport) -> Any:
    """Scrub every string in a JSON-like tree (in place where it is a container; returns the
    possibly replaced root).  Values under sensitive keys are replaced, ``headers`` maps go
    through :func:`redact_headers`, URL-looking strings through the URL rules."""
    if isinstance(root, str):
        return _payload_string(c, root, location, report) if root else root
    payload_string = _payload_string
    text = c.text
    min_len = text.min_len
    sensitive = c.sensitive
    stack: list[Any] = [root]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            for k in list(obj):
                v = obj[k]
                if k.__class__ is str and len(k) >= min_len:  # maps keyed by address, phone...
                    nk = text.scrub(k, location, report)
                    if nk is not k and nk != k:
                        base, n = nk, 1
                        while nk in obj:  # two addresses redact to the same "[email]"
                            n += 1
                            nk = f"{base} ({n})"
                        del obj[k]
                        obj[nk] = v
                        k = nk
                if v is None or v is True or v is False:
                    continue
                lk = k.lower().replace("-", "_") if isinstance(k, str) else ""
                if sensitive(lk):
                    if isinstance(v, (str, int, float)):
                        if v != "" and v != c.header_label:
                            obj[k] = c.header_label
                            report.add("@sensitive_key", location)
                        continue
                    if isinstance(v, (dict, list)):
                        _redact_leaves(v, c.header_label, location, report)
                        continue
                if lk in _SKIP_KEYS:
                    continue
                if lk.endswith("headers"):  # headers, requestHeaders, responseHeaders
                    obj[k] = redact_headers(c, v, location, report)
                    continue
                if lk in _BODY_KEYS:
                    if not c.keep_bodies:
                        if v not in (None, ""):
                            obj[k] = None
                            report.add("@body", location)
                        continue
                    if isinstance(v, str):
                        obj[k] = _json_body(c, v, location, report)
                        continue
                if isinstance(v, str):
                    if v:
                        obj[k] = payload_string(c, v, location, report)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                if isinstance(v, str):
                    if v:
                        obj[i] = payload_string(c, v, location, report)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
    return root


def scrub_user(c: Compiled, holder: dict, report: ScrubReport, location: str = "user") -> None:
    user = holder.get("user")
    if not isinstance(user, dict) or c.user_policy == "keep":
        return
    policy = c.user_policy
    if policy == "remove":
        del holder["user"]
        report.add("@user", location)
        return
    for k in list(user):
        if k in c.user_keep:
            continue
        v = user[k]
        if policy == "id_only":
            del user[k]
            report.add("@user", location)
        elif policy == "hash":
            if isinstance(v, (str, int, float)) and not isinstance(v, bool) and v not in ("", "{{auto}}"):
                user[k] = hash_token(c.secret, str(v))
                report.add("@user", location)
            elif isinstance(v, (dict, list)):
                scrub_json(c, v, location, report)
        else:  # scrub
            user[k] = scrub_json(c, v, location, report)


def _scrub_breadcrumbs(c: Compiled, crumbs: Any, report: ScrubReport, location: str) -> None:
    if isinstance(crumbs, dict):
        crumbs = crumbs.get("values")
    if isinstance(crumbs, list):
        scrub_json(c, crumbs, location, report)


def scrub_error_event(c: Compiled, ev: dict, report: ScrubReport) -> dict:
    """A Sentry error event: exception values and frames, message, breadcrumbs, request, extra,
    user (policy), tags values, logentry."""
    exc = ev.get("exception")
    values = exc.get("values") if isinstance(exc, dict) else exc if isinstance(exc, list) else None
    for x in values if isinstance(values, list) else ():
        if not isinstance(x, dict):
            continue
        if isinstance(x.get("value"), str):
            x["value"] = _message_text(c, x["value"], "error.exception", report)
        _scrub_frames(c, x.get("stacktrace"), report)
        for k in x:  # type, module, mechanism, ...: every other string too
            if k not in ("value", "stacktrace"):
                x[k] = scrub_json(c, x[k], "error.exception", report)
    threads = ev.get("threads")
    for t in (threads.get("values") if isinstance(threads, dict) else threads if isinstance(threads, list) else None) or ():
        if isinstance(t, dict):
            _scrub_frames(c, t.get("stacktrace"), report)
            for k in t:
                if k != "stacktrace":
                    t[k] = scrub_json(c, t[k], "error.exception", report)
    for key in ("message", "logentry"):
        m = ev.get(key)
        if isinstance(m, str):
            ev[key] = _message_text(c, m, "error.message", report)
        elif isinstance(m, dict):
            scrub_json(c, m, "error.message", report)
    _scrub_breadcrumbs(c, ev.get("breadcrumbs"), report, "error.breadcrumb")
    req = ev.get("request")
    if isinstance(req, dict):
        if isinstance(req.get("url"), str):
            req["url"] = scrub_url(c.text, req["url"], "error.request", report, c.param_redactor.label)
        if "headers" in req:
            req["headers"] = redact_headers(c, req["headers"], "error.request", report)
        if req.get("cookies") not in (None, "", {}, [], c.header_label):
            req["cookies"] = c.header_label
            report.add("@header", "error.request")
        _scrub_query(c, req, "error.request", report)
        if "data" in req:
            if isinstance(req["data"], str):
                req["data"] = _json_body(c, req["data"], "error.request", report)
            else:
                scrub_json(c, req["data"], "error.request", report)
        for k in req:
            if k not in ("url", "headers", "cookies", "query_string", "fragment", "data"):
                req[k] = scrub_json(c, req[k], "error.request", report)
    for key in ("extra", "contexts"):
        if isinstance(ev.get(key), (dict, list)):
            scrub_json(c, ev[key], f"error.{key}", report)
    _scrub_tags(c, ev, report, "error.tags")
    scrub_user(c, ev, report, "user")
    _scrub_rest(c, ev, _ERROR_DONE, "error.other", report)
    return ev


# Fields of events that hold identifiers, times and SDK facts, never personal data: left alone.
_EVENT_IDS = frozenset((
    "event_id", "timestamp", "start_timestamp", "received", "platform", "level", "type", "sdk",
    "replay_id", "segment_id", "error_ids", "trace_ids", "replay_start_timestamp", "replay_type",
))
_ERROR_DONE = _EVENT_IDS | {
    "exception", "threads", "message", "logentry", "breadcrumbs", "request", "extra", "contexts", "tags", "user",
}
_REPLAY_DONE = _EVENT_IDS | {"urls", "request", "tags", "user"}
# The shapes the handlers above read; anything else in those fields is scrubbed generically.
_SHAPES: dict[str, Any] = {
    "exception": (dict, list), "threads": (dict, list), "message": (str, dict), "logentry": (str, dict),
    "breadcrumbs": (dict, list), "request": dict, "extra": (dict, list), "contexts": (dict, list),
    "tags": (dict, list), "user": dict, "urls": list,
}


def _scrub_rest(c: Compiled, ev: dict, done: frozenset, location: str, report: ScrubReport) -> None:
    """Every field not handled above (culprit, transaction, server_name, spans, fingerprint,
    modules, contexts of replay events, ...) is scrubbed as a generic payload: what an SDK or a
    future SDK puts in an event must not reach storage unscrubbed."""
    for k in list(ev):
        v = ev[k]
        if k in done:
            want = _SHAPES.get(k)
            if want is None or v is None or isinstance(v, want):
                continue
            # a handled field of the wrong shape was skipped above: scrub it generically
        if isinstance(v, str) and v:
            ev[k] = scrub_auto(c.text, v, location, report, c.param_redactor.label)
        elif isinstance(v, (dict, list)):
            if isinstance(v, dict):
                _scrub_map_keys(c, v, location, report)
            scrub_json(c, v, location, report)


def _scrub_map_keys(c: Compiled, obj: dict, location: str, report: ScrubReport) -> None:
    """Keys of a top-level map (``modules``) may be text too: scrub them as well."""
    for k in list(obj):
        if isinstance(k, str):
            new = c.text.scrub(k, location, report)
            if new != k:
                obj[new] = obj.pop(k)


def _scrub_frames(c: Compiled, st: Any, report: ScrubReport) -> None:
    """Stack frames: file names and URLs with the URL rules; source lines (``context_line``,
    ``pre_context``, ``post_context``), ``vars``, function and module names as payloads."""
    frames = st.get("frames") if isinstance(st, dict) else None
    for fr in frames if isinstance(frames, list) else ():
        if isinstance(fr, dict):
            for key in ("filename", "abs_path"):
                if isinstance(fr.get(key), str):
                    fr[key] = scrub_url(c.text, fr[key], "error.exception", report, c.param_redactor.label)
            for k in fr:
                if k not in ("filename", "abs_path"):
                    fr[k] = scrub_json(c, fr[k], "error.exception", report)


def _scrub_query(c: Compiled, req: dict, location: str, report: ScrubReport) -> None:
    """``request.query_string`` (a string or pairs) and ``request.fragment``."""
    for key, lead in (("query_string", "?"), ("fragment", "#")):
        qs = req.get(key)
        if isinstance(qs, str) and qs:
            new = c.text.scrub(lead + qs.lstrip(lead), location, report)
            req[key] = new[1:] if new.startswith(lead) and not qs.startswith(lead) else new
        elif isinstance(qs, (dict, list)):
            _scrub_query_pairs(c, qs, report, location)


def _scrub_query_pairs(c: Compiled, qs: Any, report: ScrubReport, location: str = "error.request") -> None:
    items = qs.items() if isinstance(qs, dict) else [(p[0], p[1]) for p in qs if isinstance(p, list) and len(p) == 2]
    for i, (k, v) in enumerate(list(items)):
        if not isinstance(v, str):
            continue
        if isinstance(k, str) and (k.lower() in c.text._params or param_key(k.lower()) in c.text._params):
            new = c.param_redactor(v)
            if new != v:
                report.add("@url_param", location)
        else:
            new = c.text.scrub(v, location, report)
        if isinstance(qs, dict):
            qs[k] = new
        else:
            qs[i][1] = new


def _scrub_tags(c: Compiled, ev: dict, report: ScrubReport, location: str) -> None:
    tags = ev.get("tags")
    if isinstance(tags, dict):
        for k, v in tags.items():
            if isinstance(v, str):
                tags[k] = scrub_auto(c.text, v, location, report, c.param_redactor.label)
    elif isinstance(tags, list):
        for pair in tags:
            if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str):
                pair[1] = scrub_auto(c.text, pair[1], location, report, c.param_redactor.label)


def scrub_replay_event(c: Compiled, ev: dict, report: ScrubReport) -> dict:
    """A Sentry replay_event: urls, request (url, headers), user, tags."""
    label = c.param_redactor.label
    urls = ev.get("urls")
    if isinstance(urls, list):
        for i, u in enumerate(urls):
            if isinstance(u, str):
                urls[i] = scrub_url(c.text, u, "replay.urls", report, label)
            elif isinstance(u, (dict, list)):
                urls[i] = scrub_json(c, u, "replay.urls", report)
    req = ev.get("request")
    if isinstance(req, dict):
        if isinstance(req.get("url"), str):
            req["url"] = scrub_url(c.text, req["url"], "replay.request", report, label)
        if "headers" in req:
            req["headers"] = redact_headers(c, req["headers"], "replay.request", report)
        if req.get("cookies") not in (None, "", {}, [], c.header_label):
            req["cookies"] = c.header_label
            report.add("@header", "replay.request")
        _scrub_query(c, req, "replay.request", report)
        for k in req:
            if k not in ("url", "headers", "cookies", "query_string", "fragment"):
                req[k] = scrub_json(c, req[k], "replay.request", report)
    _scrub_tags(c, ev, report, "replay.tags")
    scrub_user(c, ev, report, "user")
    _scrub_rest(c, ev, _REPLAY_DONE, "replay.other", report)
    return ev
