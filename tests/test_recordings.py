"""tests/recordings.py: the recordings the benchmarks read, and their rewrites (text permuted, shape kept)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.envelopes import segment_texts
from tests.harness import load_recording
from tests.recordings import RECORDINGS, STRUCTURAL_KEYS, Rewriter, rewrite_text


def shape(value: Any, key: str | None = None) -> Any:
    """The value with every string that a rewrite may change replaced by its length."""
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v, key) for v in value]
    if isinstance(value, str) and key not in STRUCTURAL_KEYS:
        return len(value)
    return value


def strings(value: Any, found: set[str]) -> set[str]:
    if isinstance(value, dict):
        for v in value.values():
            strings(v, found)
    elif isinstance(value, list):
        for v in value:
            strings(v, found)
    elif isinstance(value, str) and any(c.isalnum() for c in value) and not value.isalpha():
        found.add(value)  # text with letters and digits or punctuation (tag names and types are left as they are)
    return found


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name)
def test_a_rewrite_keeps_the_shape_and_changes_the_text(path):
    segments = segment_texts(load_recording(path))[:3]
    for segment in segments:
        rewriter = Rewriter(segment)
        first, second = rewriter.rewrite(1), rewriter.rewrite(2)
        assert len(first) == len(second) == len(segment)
        original, one, two = json.loads(segment), json.loads(first), json.loads(second)
        assert shape(one) == shape(two) == shape(original)  # keys, numbers, tag names, lengths
        assert rewriter.rewrite(1) == first  # a seed is one permutation
        texts = strings(original, set())
        shared = texts & strings(one, set())
        assert len(shared) <= len(texts) // 20, sorted(shared)[:20]


def test_a_rewritten_url_keeps_its_scheme_and_escapes():
    url = "https://shop.example/search?q=caf%C3%A9&page=2"
    out = rewrite_text(url, 7)
    assert out.startswith("https://") and "%C3%A9" in out and len(out) == len(url) and out != url
