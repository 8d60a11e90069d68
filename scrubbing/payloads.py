"""JSON payloads: Sentry breadcrumbs and spans, plugin payloads, network data, error events,
replay events.  Every walk is iterative and edits containers in place."""

from __future__ import annotations

import json
import re
from typing import Any

from .compiled import Compiled
from .redaction import hash_token
from .report import ScrubReport
from .urls import scrub_auto, scrub_url

_BODY_KEYS = frozenset(("body", "request_body", "response_body", "requestbody", "responsebody"))
_SKIP_KEYS = frozenset(("base64", "rr_dataURL", "rr_dataurl"))
_MAX_JSON_BODY = 1 << 20


def _redact_scalar(c: Compiled, v: Any, rule: str, location: str, report: ScrubReport) -> Any:
    """A string or number named secret becomes its redaction (``urls.redaction``)."""
    if v.__class__ is bool or not isinstance(v, (str, int, float)) or v == "":
        return v
    new = c.param_redactor(v if isinstance(v, str) else str(v))
    if new != v:
        report.add(rule, location)
    return new


def _redact_named(c: Compiled, v: Any, rule: str, location: str, report: ScrubReport) -> Any:
    """The value of a secret name (a key, a ``[name, value]`` pair, a header): a scalar is
    redacted; an object or list keeps its shape with every scalar inside redacted (and the
    keys inside scrubbed like any map's)."""
    if not isinstance(v, (dict, list)):
        return _redact_scalar(c, v, rule, location, report)
    stack: list[Any] = [v]
    while stack:
        o = stack.pop()
        for k in list(o) if isinstance(o, dict) else range(len(o)):
            if k.__class__ is str:
                k = scrub_key(c, o, k, location, report)
            x = o[k]
            if isinstance(x, (dict, list)):
                stack.append(x)
            else:
                o[k] = _redact_scalar(c, x, rule, location, report)
    return v


def scrub_key(c: Compiled, obj: dict[str, Any], k: str, location: str, report: ScrubReport) -> str:
    """The one path for a map's keys: a key is scrubbed like any payload string (maps keyed by
    address, phone, URL...), and keys that redact alike stay apart ("[email]", "[email] (2)"),
    so no entry is lost.  Renames ``k`` in ``obj``; returns the key now used."""
    if len(k) < c.text.min_len:
        return k
    nk = _payload_string(c, k, location, report)
    if nk is k or nk == k:
        return k
    base, n = nk, 1
    while nk in obj:
        n += 1
        nk = f"{base} ({n})"
    obj[nk] = obj.pop(k)
    return nk


_HEADER_LINE = re.compile(r"^([ \t]*+)([!#$%&'*+.^_`|~0-9A-Za-z-]++)([ \t]*+:[ \t]*+)([^\n]*+)", re.M)


def _header_value(c: Compiled, name: Any, v: Any, location: str, report: ScrubReport) -> Any:
    """One header's value, by its name like any named value (the always-redacted headers are
    secret names)."""
    stack: list[Any] = []
    v = _value(c, name, v, location, report, stack, "@header")
    for o in stack:
        scrub_json(c, o, location, report)
    return v


def _header_text(c: Compiled, text: str, location: str, report: ScrubReport) -> str:
    """Raw header text ("Name: value" lines, as XHR's getAllResponseHeaders gives)."""
    if ":" not in text:
        return c.text.scrub(text, location, report)

    def line(m: re.Match[str]) -> str:
        raw = m.group(4)
        value = raw.rstrip(" \t\r")
        tail = raw[len(value):]
        value = _header_value(c, m.group(2), value, location, report)
        return f"{m.group(1)}{m.group(2)}{m.group(3)}{value}{tail}"

    return _HEADER_LINE.sub(line, text)


def redact_headers(c: Compiled, headers: Any, location: str, report: ScrubReport) -> Any:
    """Headers of a secret name (the always-redacted ones among them) are redacted; other
    header values are scrubbed as text/URLs.  Headers come as a map, as ``[name, value]``
    pairs, as HAR-style ``{name, value}`` objects, or as raw ``Name: value`` text; returns the
    (possibly replaced) headers."""
    if isinstance(headers, dict):
        for k in list(headers):
            if k.__class__ is str:
                k = scrub_key(c, headers, k, location, report)
            headers[k] = _header_value(c, k, headers[k], location, report)
    elif isinstance(headers, list):  # Sentry also allows [[name, value], ...]
        for i, item in enumerate(headers):
            if isinstance(item, list) and len(item) == 2 and item[0].__class__ is str:
                if item[0]:
                    item[0] = _payload_string(c, item[0], location, report)
                item[1] = _header_value(c, item[0], item[1], location, report)
            elif isinstance(item, dict) and "value" in item:
                item["value"] = _header_value(c, item.get("name", item.get("key")), item["value"], location, report)
                _scrub_fields(c, item, ("value",), location, report)  # the name too
            elif isinstance(item, str):
                headers[i] = _header_text(c, item, location, report)
            elif isinstance(item, (dict, list)):
                headers[i] = scrub_json(c, item, location, report)
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
    return _secrets_in_text(c, _form_text(c, s, location, report), location, report)


# "key": value pairs in text that is not (or no longer) valid JSON: truncated bodies, console
# lines such as 'login {"password":"x"}'.  A secret name's value is redacted.
_JSON_KV = re.compile(r'"([^"\\\n]{1,64})"[ \t]*:[ \t]*("(?:[^"\\\n]|\\.)*+"?|-?\d[\d.eE+-]*+)')


def _json_keys_in_text(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    pieces: list[str] = []
    last = 0
    for m in _JSON_KV.finditer(s):
        if not c.secret_name(m.group(1)):
            continue
        value = m.group(2)
        if value[:1] == '"':  # a string, its closing quote cut off in a truncated body
            value = value[1:-1] if len(value) > 1 and value[-1] == '"' else value[1:]
        new = c.param_redactor(value) if value else value
        if new == value:
            continue
        pieces.append(s[last : m.start(2)])
        pieces.append(json.dumps(new, ensure_ascii=False))
        last = m.end(2)
        report.add("@sensitive_key", location)
    if not pieces:
        return s
    pieces.append(s[last:])
    return "".join(pieces)


def _secrets_in_text(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    """Secrets written into text by name: ``"key": value`` pairs and ``Authorization: ...``
    header lines (console output, messages, bodies that are not valid JSON)."""
    if ":" in s:
        if '":' in s:
            s = _json_keys_in_text(c, s, location, report)
        s = _secret_headers_in_text(c, s, location, report)
    return s


def _payload_string(c: Compiled, v: str, location: str, report: ScrubReport) -> str:
    """A string inside a payload: JSON text (console plugins stringify objects) is scrubbed by
    key and value; other text as a URL or text, then for secrets written in by name."""
    first = v[:1]
    if first in "{[":
        return _json_body(c, v, location, report)
    if first in "/h?#w":  # what scrub_auto may take for a URL; skipping the call saves time
        out = scrub_auto(c.text, v, location, report, c.param_redactor.label)
    else:
        out = c.text.scrub(v, location, report)
    return _secrets_in_text(c, out, location, report) if ":" in out else out


def _message_text(c: Compiled, v: str, location: str, report: ScrubReport) -> str:
    """An exception value or message: text, with secrets written in by name."""
    return _secrets_in_text(c, c.text.scrub(v, location, report), location, report)


def _secret_headers_in_text(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    """"Authorization: ..." / "Cookie: ..." (the secret header names) inside payload text."""

    def sub(m: re.Match[str]) -> str:
        value = m.group(3).strip()
        new = c.param_redactor(value) if value else value
        if new == value:
            return m.group(0)
        report.add("@header", location)
        return f"{m.group(1)}{m.group(2)}{new}"

    return c.header_in_text.sub(sub, s)


_FORM = re.compile(r"[^\s=&]++=[^\s&]*+(?:&[^\s&]*+)*+")  # possessive: linear time


def _form_text(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    """A body string: ``a=1&password=x`` is a form, scrubbed as parameters; other text as text."""
    if "=" in s and s[:1] not in "?&#" and _FORM.fullmatch(s):
        return _params_text(c, s, "?", location, report)
    return c.text.scrub(s, location, report)


def _params_text(c: Compiled, s: str, lead: str, location: str, report: ScrubReport) -> str:
    """A query string, fragment or form body, with or without its ``lead`` (``?``, ``#``):
    scrubbed with the lead so that its first parameter is named too (the parameter rule looks
    for ``?``/``&``/``#`` before a name)."""
    if s.startswith(lead):
        return c.text.scrub(s, location, report)
    new = c.text.scrub(lead + s, location, report)
    return new[1:] if new.startswith(lead) else new


def _is_pairs(items: list[Any]) -> bool:
    """``[[name, value], ...]``: how Sentry and SDKs send query strings, form bodies and
    headers.  Each value is then scrubbed by its name, as a map's value is by its key."""
    for p in items:
        if p.__class__ is not list or len(p) != 2 or p[0].__class__ is not str:
            return False
    return bool(items)


# What a key's name says about its value (see _key_kind).
_PLAIN, _SECRET, _SKIP, _HEADERS, _BODY = range(5)
_KINDS_MAX = 10_000  # distinct keys remembered per Compiled (keys come from hostile input)


def _key_kind(c: Compiled, k: str) -> int:
    """A key is a secret name, a binary field to skip, headers, a body, or plain.  Cached per
    compiled rules: the same keys come back in every payload."""
    kind = c.key_kinds.get(k)
    if kind is None:
        if c.secret_name(k):
            kind = _SECRET
        else:
            lk = k.lower().replace("-", "_")
            if lk in _SKIP_KEYS:
                kind = _SKIP
            elif lk.endswith("headers"):  # headers, requestHeaders, responseHeaders
                kind = _HEADERS
            else:
                kind = _BODY if lk in _BODY_KEYS else _PLAIN
        if len(c.key_kinds) >= _KINDS_MAX:
            c.key_kinds.clear()
        c.key_kinds[k] = kind
    return kind


def _value(c: Compiled, k: Any, v: Any, location: str, report: ScrubReport, stack: list[Any],
           rule: str = "@sensitive_key") -> Any:
    """The value of one map entry, ``[name, value]`` pair or header, by its name ``k``:
    redacted for a secret name (counted as ``rule``), headers and bodies by their rules,
    strings scrubbed; objects and lists are pushed on ``stack`` to be walked.  Returns the
    value to store."""
    if v is None or v is True or v is False:
        return v
    kind = _key_kind(c, k) if k.__class__ is str else _PLAIN
    if kind == _SECRET:
        return _redact_named(c, v, rule, location, report)
    if kind == _SKIP:
        return v
    if kind == _HEADERS:
        return redact_headers(c, v, location, report)
    if kind == _BODY:
        if not c.keep_bodies:
            if v != "":
                report.add("@body", location)
                return None
            return v
        if isinstance(v, str):
            return _json_body(c, v, location, report) if v else v
    if isinstance(v, str):
        return _payload_string(c, v, location, report) if v else v
    if isinstance(v, (dict, list)):
        stack.append(v)
    return v


def scrub_json(c: Compiled, root: Any, location: str, report: ScrubReport) -> Any:
    """Scrub every string in a JSON-like tree (in place where it is a container; returns the
    possibly replaced root).  Map keys go through :func:`scrub_key`; values of maps and of
    ``[name, value]`` pair lists are scrubbed by their name (:func:`_value`); URL-looking
    strings go through the URL rules."""
    if isinstance(root, str):
        return _payload_string(c, root, location, report) if root else root
    min_len = c.text.min_len
    kinds = c.key_kinds
    payload_string = _payload_string
    stack: list[Any] = [root]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            for k in list(obj):
                v = obj[k]
                if k.__class__ is str:
                    if len(k) >= min_len:
                        k = scrub_key(c, obj, k, location, report)
                    kind = kinds.get(k)
                    if kind is None:
                        kind = _key_kind(c, k)
                    if kind != _PLAIN:
                        new = _value(c, k, v, location, report, stack)
                        if new is not v:
                            obj[k] = new
                        continue
                # the common case inlined: a plain key (the walk's hot path)
                if isinstance(v, str):
                    if v:
                        obj[k] = payload_string(c, v, location, report)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(obj, list):
            if _is_pairs(obj):
                for pair in obj:
                    if len(pair[0]) >= min_len:
                        pair[0] = payload_string(c, pair[0], location, report)
                    v = pair[1]
                    new = _value(c, pair[0], v, location, report, stack)
                    if new is not v:
                        pair[1] = new
            else:
                for i, v in enumerate(obj):
                    if isinstance(v, str):
                        if v:
                            obj[i] = payload_string(c, v, location, report)
                    elif isinstance(v, (dict, list)):
                        stack.append(v)
    return root


def _scrub_fields(c: Compiled, obj: dict[str, Any], done: Any, location: str, report: ScrubReport) -> None:
    """The fields of ``obj`` not in ``done`` (those a handler took already) are one payload
    map: scrubbed by name, key and value like any other (a field named ``token`` is redacted)."""
    rest = {k: obj.pop(k) for k in [k for k in obj if k not in done]}
    if rest:
        obj.update(scrub_json(c, rest, location, report))


def _url_fields(c: Compiled, obj: dict[str, Any], keys: tuple[str, ...], location: str,
                report: ScrubReport) -> list[str]:
    """String fields of ``obj`` named in ``keys`` with the URL rules; returns those done."""
    done = []
    for key in keys:
        if isinstance(obj.get(key), str):
            obj[key] = scrub_url(c.text, obj[key], location, report, c.param_redactor.label)
            done.append(key)
    return done


def scrub_user(c: Compiled, holder: dict[str, Any], report: ScrubReport, location: str = "user") -> None:
    user = holder.get("user")
    if not isinstance(user, dict) or c.user_policy == "keep":
        return
    policy = c.user_policy
    if policy == "remove":
        del holder["user"]
        report.add("@user", location)
        return
    if policy == "scrub":  # every field but keep_fields, by name, key and value
        _scrub_fields(c, user, c.user_keep, location, report)
        return
    for k in list(user):
        if k in c.user_keep:
            continue
        if policy == "id_only":
            del user[k]
            report.add("@user", location)
        elif policy == "hash":
            if k.__class__ is str:
                k = scrub_key(c, user, k, location, report)
            v = user[k]
            if isinstance(v, (str, int, float)) and not isinstance(v, bool) and v not in ("", "{{auto}}"):
                user[k] = hash_token(c.secret, str(v))
                report.add("@user", location)
            elif isinstance(v, (dict, list)):
                scrub_json(c, v, location, report)


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


def _scrub_rest(c: Compiled, ev: dict[str, Any], done: frozenset[str], location: str, report: ScrubReport) -> None:
    """Every field not handled above (culprit, transaction, server_name, spans, fingerprint,
    modules, contexts of replay events, a handled field of the wrong shape, ...) is scrubbed as a
    generic payload: what an SDK or a future SDK puts in an event must not reach storage
    unscrubbed."""
    handled = [k for k in ev if k in done and (ev[k] is None or isinstance(ev[k], _SHAPES.get(k, object)))]
    _scrub_fields(c, ev, handled, location, report)


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
        _scrub_fields(c, x, done, "error.exception", report)  # type, module, mechanism, name...
    if isinstance(container, dict):
        _scrub_fields(c, container, ("values",) if isinstance(values, list) else (), "error.exception", report)


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
            _scrub_fields(c, fr, done, "error.exception", report)
    _scrub_fields(c, st, ("frames",) if isinstance(frames, list) else (), "error.exception", report)


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
            req[key] = _params_text(c, req[key], lead, location, report)
            done.append(key)
    if isinstance(req.get("data"), str):
        req["data"] = _json_body(c, req["data"], location, report)
        done.append("data")
    _scrub_fields(c, req, done, location, report)


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
