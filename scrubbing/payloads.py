"""JSON payloads: Sentry breadcrumbs and spans, plugin payloads, network data, error events,
replay events.  Every walk is iterative and edits containers in place."""

from __future__ import annotations

import json
from typing import Any

from .compiled import Compiled
from .redaction import hash_token
from .report import ScrubReport
from .urls import scrub_auto, scrub_url

_BODY_KEYS = frozenset(("body", "request_body", "response_body", "requestbody", "responsebody"))
_SKIP_KEYS = frozenset(("base64", "rr_dataURL", "rr_dataurl"))
_MAX_JSON_BODY = 1 << 20


def redact_headers(c: Compiled, headers: Any, location: str, report: ScrubReport) -> None:
    """Always-redacted headers get the label; other header values are scrubbed as text/URLs."""
    if isinstance(headers, dict):
        for k in list(headers):
            v = headers[k]
            if not isinstance(k, str):
                continue
            if k.lower() in c.redact_headers:
                if v not in (None, "", c.header_label):
                    headers[k] = c.header_label
                    report.add("@header", location)
            elif isinstance(v, str) and v:
                headers[k] = scrub_auto(c.text, v, location, report, c.param_redactor.label)
    elif isinstance(headers, list):  # Sentry also allows [[name, value], ...]
        for pair in headers:
            if isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and isinstance(pair[1], str):
                if pair[0].lower() in c.redact_headers:
                    if pair[1] not in ("", c.header_label):
                        pair[1] = c.header_label
                        report.add("@header", location)
                else:
                    pair[1] = scrub_auto(c.text, pair[1], location, report, c.param_redactor.label)


def _json_body(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    """A body string holding JSON is parsed, scrubbed by key and value, and re-serialised."""
    if len(s) <= _MAX_JSON_BODY and s[:1] in "{[":
        try:
            obj = json.loads(s)
        except ValueError:
            obj = None
        if isinstance(obj, (dict, list)):
            before = report.total
            scrub_json(c, obj, location, report)
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) if report.total != before else s
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
        return scrub_auto(c.text, root, location, report, c.param_redactor.label)
    label = c.param_redactor.label
    text = c.text
    sensitive = c.sensitive_keys
    stack: list[Any] = [root]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            for k in list(obj):
                v = obj[k]
                if v is None or v is True or v is False:
                    continue
                lk = k.lower().replace("-", "_") if isinstance(k, str) else ""
                if lk in sensitive:
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
                    redact_headers(c, v, location, report)
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
                        obj[k] = scrub_auto(text, v, location, report, label)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                if isinstance(v, str):
                    if v:
                        obj[i] = scrub_auto(text, v, location, report, label)
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
    for x in values or ():
        if not isinstance(x, dict):
            continue
        if isinstance(x.get("value"), str):
            x["value"] = c.text.scrub(x["value"], "error.exception", report)
        st = x.get("stacktrace")
        for fr in (st.get("frames") if isinstance(st, dict) else None) or ():
            if isinstance(fr, dict):
                for key in ("filename", "abs_path"):
                    if isinstance(fr.get(key), str):
                        fr[key] = scrub_url(c.text, fr[key], "error.exception", report, c.param_redactor.label)
                if isinstance(fr.get("vars"), dict):
                    scrub_json(c, fr["vars"], "error.exception", report)
    for key in ("message", "logentry"):
        m = ev.get(key)
        if isinstance(m, str):
            ev[key] = c.text.scrub(m, "error.message", report)
        elif isinstance(m, dict):
            scrub_json(c, m, "error.message", report)
    _scrub_breadcrumbs(c, ev.get("breadcrumbs"), report, "error.breadcrumb")
    req = ev.get("request")
    if isinstance(req, dict):
        if isinstance(req.get("url"), str):
            req["url"] = scrub_url(c.text, req["url"], "error.request", report, c.param_redactor.label)
        if "headers" in req:
            redact_headers(c, req["headers"], "error.request", report)
        if req.get("cookies") not in (None, "", {}, [], c.header_label):
            req["cookies"] = c.header_label
            report.add("@header", "error.request")
        qs = req.get("query_string")
        if isinstance(qs, str) and qs:
            new = c.text.scrub("?" + qs.lstrip("?"), "error.request", report)
            req["query_string"] = new[1:] if new.startswith("?") and not qs.startswith("?") else new
        elif isinstance(qs, (dict, list)):
            _scrub_query_pairs(c, qs, report)
        if "data" in req:
            if isinstance(req["data"], str):
                req["data"] = _json_body(c, req["data"], "error.request", report)
            else:
                scrub_json(c, req["data"], "error.request", report)
        if isinstance(req.get("env"), dict):
            scrub_json(c, req["env"], "error.request", report)
    for key in ("extra", "contexts"):
        if isinstance(ev.get(key), (dict, list)):
            scrub_json(c, ev[key], f"error.{key}", report)
    _scrub_tags(c, ev, report, "error.tags")
    scrub_user(c, ev, report, "user")
    return ev


def _scrub_query_pairs(c: Compiled, qs: Any, report: ScrubReport) -> None:
    items = qs.items() if isinstance(qs, dict) else [(p[0], p[1]) for p in qs if isinstance(p, list) and len(p) == 2]
    for i, (k, v) in enumerate(list(items)):
        if not isinstance(v, str):
            continue
        if isinstance(k, str) and k.lower() in c.text._params:
            new = c.param_redactor(v)
            if new != v:
                report.add("@url_param", "error.request")
        else:
            new = c.text.scrub(v, "error.request", report)
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
    req = ev.get("request")
    if isinstance(req, dict):
        if isinstance(req.get("url"), str):
            req["url"] = scrub_url(c.text, req["url"], "replay.request", report, label)
        if "headers" in req:
            redact_headers(c, req["headers"], "replay.request", report)
    _scrub_tags(c, ev, report, "replay.tags")
    scrub_user(c, ev, report, "user")
    return ev
