"""Redaction styles: how a matched value is replaced."""

from __future__ import annotations

import hashlib
import hmac
import re

STYLES = ("mask", "replace", "hash", "remove")

_NON_SPACE = re.compile(r"\S")


def mask_text(value: str) -> str:
    """One ``*`` per non-whitespace character, as rrweb masks text (layout keeps its shape)."""
    return _NON_SPACE.sub("*", value)


def mask_input(value: str) -> str:
    """One ``*`` per character, as rrweb masks input values."""
    return "*" * len(value)


class Redactor:
    """A compiled redaction: ``redactor(value) -> replacement``."""

    __slots__ = ("style", "label", "_key")

    def __init__(self, style: str, label: str, secret: bytes) -> None:
        self.style = style if style in STYLES else "replace"  # unknown future style: safest known
        self.label = label
        self._key = secret

    def __call__(self, value: str) -> str:
        style = self.style
        if style == "replace":
            return self.label
        if style == "mask":
            return mask_text(value)
        if style == "hash":
            return hash_token(self._key, value)
        return ""

    # picklable without exposing more than the constructor args
    def __reduce__(self) -> tuple[type[Redactor], tuple[str, str, bytes]]:
        return (Redactor, (self.style, self.label, self._key))


def hash_token(key: bytes, value: str) -> str:
    """Stable keyed token: the same value under the same secret gives the same token."""
    digest = hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return f"[hash:{digest[:10]}]"
