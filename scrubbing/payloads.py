"""JSON payloads: one walk over breadcrumb and span data, plugin payloads, network requests and
responses, and every field of an event no handler took.

Each value is scrubbed by its name: a secret name's value is redacted, headers and bodies by
their rules, any other string as text or a URL; map keys like any string.  Headers and bodies
live here because they are the same walk: a header's value and a body's JSON are payloads by
name again.  Every walk is iterative and edits containers in place.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .compiled import Compiled
from .payload_text import form_text, secrets_in_text
from .report import ScrubReport
from .urls import scrub_auto

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
    stack: list[Any] = [v]  # dicts and lists: a str key (scrub_key's) only ever comes from a dict
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


def scrub_headers(c: Compiled, headers: Any, location: str, report: ScrubReport) -> Any:
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
                scrub_fields(c, item, ("value",), location, report)  # the name too
            elif isinstance(item, str):
                headers[i] = _header_text(c, item, location, report)
            elif isinstance(item, (dict, list)):
                headers[i] = scrub_json(c, item, location, report)
    elif isinstance(headers, str) and headers:
        return _header_text(c, headers, location, report)
    return headers


def scrub_body(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    """A body string: JSON is parsed, scrubbed by key and value, and re-serialised; a form or
    other text is scrubbed as parameters or text, then for secrets written in by name."""
    if len(s) <= _MAX_JSON_BODY and s[:1] in "{[":
        try:
            obj = json.loads(s)
        except (ValueError, RecursionError):  # "[[[[..." deeper than the parser goes
            obj = None
        if isinstance(obj, (dict, list)):
            before = report.total
            scrub_json(c, obj, location, report)
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) if report.total != before else s
    return secrets_in_text(c, form_text(c, s, location, report), location, report)


def _payload_string(c: Compiled, v: str, location: str, report: ScrubReport) -> str:
    """A string inside a payload: JSON text (console plugins stringify objects) is scrubbed by
    key and value; other text as a URL or text, then for secrets written in by name."""
    first = v[:1]
    if first in "{[":
        return scrub_body(c, v, location, report)
    if first in "/h?#w":  # what scrub_auto may take for a URL; skipping the call saves time
        out = scrub_auto(c.text, v, location, report, c.param_redactor.label)
    else:
        out = c.text.scrub(v, location, report)
    return secrets_in_text(c, out, location, report) if ":" in out else out


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
        return scrub_headers(c, v, location, report)
    if kind == _BODY:
        if not c.keep_bodies:
            if v != "":
                report.add("@body", location)
                return None
            return v
        if isinstance(v, str):
            return scrub_body(c, v, location, report) if v else v
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


def scrub_fields(c: Compiled, obj: dict[str, Any], done: Any, location: str, report: ScrubReport) -> None:
    """The fields of ``obj`` not in ``done`` (those a handler took already) are one payload
    map: scrubbed by name, key and value like any other (a field named ``token`` is redacted)."""
    rest = {k: obj.pop(k) for k in [k for k in obj if k not in done]}
    if rest:
        obj.update(scrub_json(c, rest, location, report))

