"""URL-valued strings: keep scheme and host, redact a userinfo password, scrub the rest."""

from __future__ import annotations

import re

from .report import ScrubReport
from .text import NOT_CACHED, TextScrubber

_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,20}://([^/?#\s]*)|//([^/?#\s]*)")
_LOOKS_LIKE_URL = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]{0,20}:)?//|/|\?|#")


def scrub_url(text: TextScrubber, url: str, location: str, report: ScrubReport, label: str) -> str:
    cache = text.url_cache
    hit = cache.get(url, NOT_CACHED)
    if hit is NOT_CACHED:
        # Most URLs hold nothing any rule matches after their scheme and host (no digit, "@",
        # secret prefix or parameter): they come back unchanged without the parse and the report.
        m = _AUTHORITY.match(url)
        if text.plain(url[m.end():] if m is not None and "@" not in m.group() else url):
            hit = None
        else:
            tmp = ScrubReport()
            out = _scrub_url(text, url, tmp, label)
            hit = (out, tuple(k for k, n in tmp.by_rule.items() for _ in range(n))) if tmp.total else None
        if len(cache) >= 20_000:
            cache.clear()
        cache[url] = hit
    if hit is None:
        return url
    for rule in hit[1]:
        report.add(rule, location)
    return hit[0]


def _scrub_url(text: TextScrubber, url: str, report: ScrubReport, label: str) -> str:
    """Scrub one URL: the host stays (it names a server, and images must still load in the
    replay); a ``user:password@`` userinfo is replaced by ``label``; path, query and fragment go
    through the detectors and the parameter-name rule."""
    location = "url"
    m = _AUTHORITY.match(url)
    if m is None:
        return text.scrub(url, location, report)
    prefix = url[: m.end()]
    auth = m.group(1) if m.group(1) is not None else m.group(2)
    if "@" in auth:
        # user:password@host: both name a person's account ("https://jane@example.com/" would
        # also store an address): the whole userinfo becomes the label, the host stays.
        userinfo, _, host = auth.rpartition("@")
        if userinfo:
            report.add("@url_param", location)
            prefix = url[: m.start(1) if m.group(1) is not None else m.start(2)] + f"{label}@{host}"
    rest = url[m.end():]
    return prefix + text.scrub(rest, location, report) if rest else prefix


def scrub_srcset(text: TextScrubber, value: str, location: str, report: ScrubReport, label: str) -> str:
    """``srcset``: comma-separated "url descriptor" candidates."""
    parts = value.split(",")
    out = []
    changed = False
    for part in parts:
        lead = len(part) - len(part.lstrip())
        body = part[lead:]
        url, sp, desc = body.partition(" ")
        new = scrub_url(text, url, location, report, label) if url else url
        if new != url:
            changed = True
        out.append(part[:lead] + new + sp + desc)
    return ",".join(out) if changed else value


def scrub_auto(text: TextScrubber, s: str, location: str, report: ScrubReport, label: str) -> str:
    """A payload string: as a URL when it starts like one, else as text."""
    if s[:1] in "/h?#w" and _LOOKS_LIKE_URL.match(s) and " " not in s:
        return scrub_url(text, s, location, report, label)
    return text.scrub(s, location, report)
