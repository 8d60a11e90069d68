"""Payload strings that are not JSON: secrets written into text by name (``"key": value`` pairs,
``Authorization: ...`` lines), form bodies and query strings.

Console output, messages and bodies that are not (or no longer) valid JSON carry these; the
JSON walk (``payloads``) and the Sentry events (``sentry_events``) call in here for them.
"""

from __future__ import annotations

import json
import re

from .compiled import Compiled
from .report import ScrubReport

# "key": value pairs in text that is not (or no longer) valid JSON: truncated bodies, console
# lines such as 'login {"password":"x"}'.  A secret name's value is redacted.
_JSON_KV = re.compile(r'"([^"\\\n]{1,64})"[ \t]*:[ \t]*("(?:[^"\\\n]|\\.)*+"?|-?\d[\d.eE+-]*+)')
_FORM = re.compile(r"[^\s=&]++=[^\s&]*+(?:&[^\s&]*+)*+")  # possessive: linear time


def secrets_in_text(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    """Secrets written into text by name: ``"key": value`` pairs and ``Authorization: ...``
    header lines (console output, messages, bodies that are not valid JSON)."""
    if ":" in s:
        if '":' in s:
            s = _json_keys_in_text(c, s, location, report)
        s = _secret_headers_in_text(c, s, location, report)
    return s


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


def form_text(c: Compiled, s: str, location: str, report: ScrubReport) -> str:
    """A body string: ``a=1&password=x`` is a form, scrubbed as parameters; other text as text."""
    if "=" in s and s[:1] not in "?&#" and _FORM.fullmatch(s):
        return params_text(c, s, "?", location, report)
    return c.text.scrub(s, location, report)


def params_text(c: Compiled, s: str, lead: str, location: str, report: ScrubReport) -> str:
    """A query string, fragment or form body, with or without its ``lead`` (``?``, ``#``):
    scrubbed with the lead so that its first parameter is named too (the parameter rule looks
    for ``?``/``&``/``#`` before a name)."""
    if s.startswith(lead):
        return c.text.scrub(s, location, report)
    new = c.text.scrub(lead + s, location, report)
    return new[1:] if new.startswith(lead) else new
