"""The real recordings in tests/data, and rewrites of them that keep their shape but not their text.

- ``RECORDINGS``: every recording the repository holds (the shared corpus and those recorded for
  this project; provenance in the READMEs beside them).
- ``Rewriter(segment_text)`` then ``.rewrite(seed)``: the same segment JSON with every letter and
  digit of its text (text nodes, attribute values, URLs, CSS, payload strings) put through a
  permutation chosen by ``seed``: the same length in bytes, the same structure, the same keys and
  numbers, the same repeats inside one session, but no string shared with another seed. A benchmark
  that sends rewrites of one recording as many sessions measures a server that has never seen their
  text (cold caches), not one that looks each string up in a cache it filled with the first copy.

Left as they are, so that the scrubber takes the same paths: object keys (attribute names among
them), the values of the keys in ``STRUCTURAL_KEYS`` (tag names, input types, custom-event tags),
JSON escapes, percent escapes, URL schemes and the ``data:...;base64,`` prefix of inline images.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from tests.harness import CORPUS, DATA

RECORDINGS: list[Path] = [CORPUS, *sorted((DATA / "recordings").glob("*.json.br"))]

STRUCTURAL_KEYS = frozenset({"tagName", "tag", "type", "plugin", "category", "op", "level", "source", "rr_src"})

# A JSON string, then ':' when it is an object's key (compact JSON: nothing between).
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"(:?)', re.S)
_KEEP_INSIDE = re.compile(
    r"\\u[0-9a-fA-F]{4}|\\.|%[0-9a-fA-F]{2}|\b[a-z][a-z0-9+.-]{1,15}://|\bdata:[^,;\"]{0,60};base64,"
)
_ALPHABETS = ("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789")


class Rewriter:
    """One segment's JSON cut once into the parts a rewrite keeps and the parts it permutes."""

    def __init__(self, segment_text: bytes) -> None:
        text = segment_text.decode()
        # The output is kept[0] + T(changed[0]) + kept[1] + ... + T(changed[-1]) + kept[-1].
        kept: list[str] = []
        changed: list[str] = []
        last = 0  # where the next kept stretch starts

        def change(start: int, end: int) -> None:
            nonlocal last
            if end > start:
                kept.append(text[last:start])
                changed.append(text[start:end])
                last = end

        previous_key: str | None = None
        previous_key_end = -1
        for m in _STRING.finditer(text):
            if m.group(2):
                previous_key, previous_key_end = m.group(1), m.end()
                continue
            if previous_key in STRUCTURAL_KEYS and m.start() == previous_key_end:
                continue
            start, end = m.span(1)
            for piece in _KEEP_INSIDE.finditer(text, start, end):
                change(start, piece.start())
                start = piece.end()
            change(start, end)
        kept.append(text[last:])
        self._kept = kept
        self._changed = changed

    def rewrite(self, seed: int) -> bytes:
        """The segment with its text permuted by ``seed`` (the same seed, the same permutation)."""
        table = permutation(seed)
        parts = []
        for kept, changed in zip(self._kept, self._changed, strict=False):
            parts.append(kept)
            parts.append(changed.translate(table))
        parts.append(self._kept[-1])
        return "".join(parts).encode()


def permutation(seed: int) -> dict[int, int]:
    """A translation table that maps each letter and digit to another of its kind, by ``seed``."""
    rng = random.Random(seed)
    table: dict[int, int] = {}
    for alphabet in _ALPHABETS:
        shuffled = list(alphabet)
        rng.shuffle(shuffled)
        table.update(zip(map(ord, alphabet), map(ord, shuffled), strict=True))
    return table


def rewrite_text(text: str, seed: int) -> str:
    """One string as ``Rewriter.rewrite`` would write it inside a segment (a replay event's URLs)."""
    table = permutation(seed)
    out, last = [], 0
    for piece in _KEEP_INSIDE.finditer(text):
        out.append(text[last:piece.start()].translate(table))
        out.append(piece.group())
        last = piece.end()
    out.append(text[last:].translate(table))
    return "".join(out)
