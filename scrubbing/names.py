"""The secret-name rule: whether a parameter, key or header name says its value is a secret.

One rule for every place a name stands next to a value: URL query and fragment parameters
(``text.TextScrubber``), form bodies as text, ``[name, value]`` pairs or maps, keys of JSON
payloads, ``extra``, tags and event fields, header names (``payloads``), ``"key": value`` pairs
in text (``payload_text``).  The list is one list too, gathered from every section of the rules
that names secrets (``compiled.Compiled``), so the same name is treated the same wherever it
appears.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote_plus

_CACHE_MAX = 10_000  # distinct names remembered (bounded: names come from hostile input)


def name_key(name: str) -> str:
    """A name as the rule compares it: percent-decoded, trimmed, lower-cased, ``-`` as ``_``, a
    bracketed name by its innermost part (``user[password]``, ``user[password][]`` and
    ``access-token`` are ``password``, ``password`` and ``access_token``)."""
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    name = name.strip().lower()
    if name.endswith("[]"):
        name = name[:-2]
    if name.endswith("]") and name.rfind("[") > 0:  # "[email]" is a redacted key, not a part
        name = name[name.rindex("[") + 1 : -1]
    return name.replace("-", "_")


class SecretNames:
    """``secret_names(name) -> bool``: ``name`` (any spelling :func:`name_key` folds) is one of
    ``names``, or contains one of them that is also in ``parts`` ("reset_token",
    "newPassword"); the names not in ``parts`` must be the whole name ("key" is not "keyword")."""

    __slots__ = ("names", "_part", "_cache")

    def __init__(self, names: Iterable[str], parts: frozenset[str]) -> None:
        self.names = frozenset(name_key(n) for n in names)
        inner = sorted(n for n in self.names if n in parts)
        self._part = re.compile("|".join(map(re.escape, inner))).search if inner else None
        self._cache: dict[str, bool] = {}

    def __call__(self, name: str) -> bool:
        hit = self._cache.get(name)
        if hit is None:
            key = name_key(name)
            hit = key in self.names or (self._part is not None and self._part(key) is not None)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[name] = hit
        return hit
