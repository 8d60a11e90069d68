"""TextScrubber: every detector and custom pattern over one string, compiled once.

The built-in detectors are joined into one alternation per family ("num": needs a digit or
"@"; "word": secrets with literal prefixes), each run only when a C-speed gate finds its
trigger in the string.  Each alternative carries an empty marker group ``(?P<name__i>)`` right
after its one-character lead, so ``match.lastgroup`` names the detector while the engine's
branch dispatch still rejects a position on the lead alone.
Results are cached per distinct string (recordings repeat the same texts in every snapshot);
the cache is per instance, bounded, and only ever holds what the rules would compute anyway.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import cast
from urllib.parse import quote_plus, unquote_plus

from .patterns import SKIP_DATA_URI, Pattern, Validator
from .redaction import Redactor
from .report import ScrubReport

_CACHE_MAX = 50_000  # entries
_CACHE_CHARS = 32_000_000  # total characters of the cached keys (bounds memory)
_MIN_LEN = 6  # shortest thing any built-in detector matches: "a@b.cd"

# A string can only hold a built-in detection if it has a digit or "@", or one of the literal
# prefixes of the secret formats that may be all letters.  Two C-speed scans decide that;
# tests/test_scrubbing_detectors.py checks that the ungated detectors find nothing they skip.
# (A tighter numeric gate, e.g. "@", digit + "." or two adjacent digits, spares ~20 % of the
# family's scans on cold text, but the short ones: no gain above noise, see docs/benchmarks.md.)
_GATE_CHARS = re.compile(r"[0-9@]").search
_GATE_WORDS = re.compile(
    r"-----|eyJ|A(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|PKA|ROA|SCA)|k_live_|k_test_|whsec_"
    r"|gh[pousr]_|github_pat_|xox[abposr]-|hooks\.slack|AIza|earer|asic[ \t]"
).search
# "?name=value", "&name=value", ";name=value", "#name=value" anywhere in a string.  A value
# stops at whitespace, quotes, "<", ">" and ")" (the end of a CSS url(...)).
# A ";name=value" path parameter (";jsessionid=...") ends at "?" and "/" too.
_PARAM = re.compile(r"(?:([?#&])|;)([^\s=&#;\"'<>?]{1,100})=((?(1)[^\s&#;\"'<>)]*|[^\s&#;\"'<>)?/]*))")

Cached = tuple[str, tuple[str, ...]] | None  # (scrubbed, rule ids), or None when nothing matches
# What ``cache.get(s, NOT_CACHED)`` answers for a string not in a cache: typed as a cached value, so
# that the hot loops' one dict.get type-checks, and told apart by identity (``is``).
NOT_CACHED = cast(Cached, object())


def _may_hold_params(s: str) -> bool:
    """``s`` could hold a ``?name=value`` / ``#name=value`` / ``;name=value`` parameter."""
    return "=" in s and ("?" in s or "#" in s or (";" in s and " " not in s))


Hit = tuple[int, int, str, Redactor]  # start, end, rule id, redactor


def _redact(s: str, hits: list[Hit], rules: list[str]) -> str:
    """``s`` with each hit replaced by its redaction; the hits' rule ids go to ``rules``."""
    if not hits:
        return s
    pieces: list[str] = []
    last = 0
    for a, b, rule, redactor in hits:
        pieces.append(s[last:a])
        pieces.append(redactor(s[a:b]))
        rules.append(rule)
        last = b
    pieces.append(s[last:])
    return "".join(pieces)


def _merge(a: list[Hit], b: list[Hit]) -> list[Hit]:
    """Non-overlapping union: the earlier start wins, then the longer match."""
    merged: list[Hit] = []
    last = 0
    for h in sorted(a + b, key=lambda h: (h[0], -h[1])):
        if h[0] >= last:
            merged.append(h)
            last = h[1]
    return merged


class _Scanner:
    """One combined alternation over a family of detectors (plus the skipped spans)."""

    def __init__(self, detectors: list[tuple[Pattern, Redactor]]) -> None:
        parts: list[str] = []
        self.groups: dict[str, tuple[int, str, Validator | None, Redactor | None]] = {}
        self.alts: list[re.Pattern[str]] = []
        order = 0
        if detectors:
            for lead, rest in (SKIP_DATA_URI,):
                g = f"_skip__{order}"
                parts.append(f"{lead}(?P<{g}>){rest}")
                self.groups[g] = (order, "", None, None)
                self.alts.append(re.compile(lead + rest))
                order += 1
        for pat, redactor in detectors:
            for i, (lead, rest) in enumerate(pat.alternatives):
                g = f"{pat.name}__{i}"
                parts.append(f"{lead}(?P<{g}>){rest}")
                self.groups[g] = (order, "@" + pat.name, pat.validate, redactor)
                self.alts.append(re.compile(lead + rest))
                order += 1
        self.alt_info = sorted(self.groups.values(), key=lambda t: t[0])
        self.search = re.compile("|".join(parts)).search if parts else None

    def scan(self, s: str) -> list[Hit]:
        hits: list[Hit] = []
        search = self.search
        if search is None:
            return hits
        groups = self.groups
        pos = 0
        last_end = 0
        n = len(s)
        while pos < n:
            m = search(s, pos)
            if m is None:
                break
            start = m.start()
            order, rule, validate, redactor = groups[m.lastgroup or ""]  # every alternative ends in a named group
            if redactor is None:  # a skipped span (base64 data: URI)
                pos = last_end = m.end()
                continue
            span = validate(s, start, m.end()) if validate else (start, m.end())
            if span is None:
                retried = self._retry(s, start, order)
                if retried is None:
                    pos = start + 1
                    continue
                span, rule, redactor = retried
            a, b = span
            if a < last_end:
                a = last_end
            hits.append((a, b, rule, redactor))
            pos = last_end = max(b, start + 1)
        return hits

    def _retry(self, s: str, start: int, order: int) -> tuple[tuple[int, int], str, Redactor] | None:
        """The first-choice detector rejected its candidate: try the later ones at ``start``."""
        for j in range(order + 1, len(self.alts)):
            m = self.alts[j].match(s, start)
            if m is None:
                continue
            _, rule, validate, redactor = self.alt_info[j]
            if redactor is None:
                continue
            span = validate(s, start, m.end()) if validate else (start, m.end())
            if span is not None:
                return span, rule, redactor
        return None


class TextScrubber:
    def __init__(
        self,
        detectors: list[tuple[Pattern, Redactor]],
        customs: list[tuple[str, re.Pattern[str], Redactor]],
        secret_name: Callable[[str], bool],
        param_redactor: Redactor,
        fragments: bool = True,
    ) -> None:
        self._secret_name = secret_name  # names.SecretNames: the one secret-name rule
        self._param_redactor = param_redactor
        self._fragments = fragments
        self._num = _Scanner([p for p in detectors if p[0].family == "num"])
        self._word = _Scanner([p for p in detectors if p[0].family != "num"])
        self._customs = customs
        self._min_len = _MIN_LEN if not customs else 1
        self._cache: dict[str, Cached] = {}
        self._cache_chars = 0
        self.url_cache: dict[str, Cached] = {}  # urls.scrub_url's

    # ------------------------------------------------------------------ matching
    def find(self, s: str, gated: bool = False) -> list[Hit]:
        """All redactions in ``s`` (non-overlapping, in order).  With ``gated`` each detector
        family runs only when its cheap gate finds a trigger in ``s``."""
        hits: list[Hit] = []
        if self._num.search is not None and (not gated or _GATE_CHARS(s)):
            hits = self._num.scan(s)
        if self._word.search is not None and (not gated or _GATE_WORDS(s)):
            more = self._word.scan(s)
            if more:
                hits = _merge(hits, more) if hits else more
        if self._customs:
            hits = self._add_customs(s, hits)
        return hits

    def _add_customs(self, s: str, hits: list[Hit]) -> list[Hit]:
        extra: list[Hit] = []
        for name, rx, redactor in self._customs:
            for m in rx.finditer(s):
                if m.end() > m.start():
                    extra.append((m.start(), m.end(), name, redactor))
        return _merge(hits, extra) if extra else hits

    # ------------------------------------------------------------------ scrubbing
    def scrub(self, s: str, location: str, report: ScrubReport) -> str:
        """``s`` with every detection redacted; counts go to ``report`` under ``location``."""
        if len(s) < self._min_len:
            return s
        cached = self._cache.get(s, NOT_CACHED)
        if cached is NOT_CACHED:
            cached = self.lookup(s)
        if cached is None:
            return s
        out, rules = cached
        for rule in rules:
            report.add(rule, location)
        return out

    def lookup(self, s: str) -> Cached:
        """Cached ``(scrubbed, rule ids)`` for ``s``, or None when nothing matches.  Hot loops
        read ``self.cache`` first and call this on a miss."""
        cache = self._cache
        cached = cache.get(s, NOT_CACHED)
        if cached is not NOT_CACHED:
            return cached
        n = len(s)
        if n < self._min_len:
            cached = None
        elif (
            not self._customs
            and not _GATE_CHARS(s)
            and not _GATE_WORDS(s)
            and ("=" not in s or not _may_hold_params(s))  # "=": no call for most strings
        ):
            cached = None  # the common case: nothing any rule could match
        else:
            cached = self._compute(s)
        self._cache_chars += n
        if len(cache) >= _CACHE_MAX or self._cache_chars > _CACHE_CHARS:
            cache.clear()
            self._cache_chars = n
        cache[s] = cached
        return cached

    def plain(self, s: str) -> bool:
        """Whether no rule could match anything in ``s`` (nor in any part of it): the cheap checks of
        ``lookup`` without its cache, for callers that would otherwise build a result to cache."""
        return (
            not self._customs
            and not _GATE_CHARS(s)
            and not _GATE_WORDS(s)
            and ("=" not in s or not _may_hold_params(s))
        )

    @property
    def cache(self) -> dict[str, Cached]:
        return self._cache

    @property
    def min_len(self) -> int:
        return self._min_len

    def _compute(self, s: str) -> Cached:
        if s.startswith("data:") and ";base64," in s[:200]:
            return None  # binary media; see patterns.SKIP_DATA_URI
        rules: list[str] = []
        out = _redact(s, self.find(s, gated=True), rules)
        if _may_hold_params(out):
            out = self._param_pass(out, rules)  # also ";jsessionid=..." path parameters
        if not rules:
            return None
        return out, tuple(rules)

    def _param_pass(self, s: str, rules: list[str]) -> str:
        """Redact ``?name=value`` / ``&name=value`` / ``#name=value`` values by name, and run
        the detectors over percent-decoded values (``email%40example.com``)."""
        frag = s.find("#") if not self._fragments else -1
        pieces: list[str] = []
        last = 0
        for m in _PARAM.finditer(s):
            if frag >= 0 and m.start() >= frag:
                break
            name, value = m.group(2), m.group(3)
            if not value:
                continue
            if self._secret_name(name):
                new = self._param_redactor(value)
                if new == value:
                    continue
                rules.append("@url_param")
            elif "%" in value:
                decoded = unquote_plus(value)
                inner = self.find(decoded)
                if not inner:
                    continue
                new = quote_plus(_redact(decoded, inner, rules), safe="[]*:")
            else:
                continue
            pieces.append(s[last : m.start(3)])
            pieces.append(new)
            last = m.end(3)
        if not pieces:
            return s
        pieces.append(s[last:])
        return "".join(pieces)

    def __getstate__(self) -> None:
        raise TypeError("TextScrubber is rebuilt from the rules, not pickled")
