"""Segments as earlier versions of replayd stored them, for tests that they stay readable: v1 (brotli of
the msgpack) and v2 (strings apart, ids left in the structure; written on 2026-12-01 before v3)."""

from __future__ import annotations

from typing import Any

import brotli
import msgpack

from replayd.server import strings_apart


def v1_blob(packed: bytes, quality: int = 5) -> bytes:
    """A segment's v1 bytes (``codec.unpack_blob``) as v1 stored them."""
    return brotli.compress(packed, quality=quality)


def v2_blob(packed: bytes, quality: int = 5) -> bytes:
    """A segment's v1 bytes as v2 stored them: ``rpd\\x02`` | length | structure | strings."""
    structure, strings = v2_streams(packed)
    return v2_frame(brotli.compress(structure, quality=quality), brotli.compress(strings, quality=quality))


def v2_streams(packed: bytes) -> tuple[bytes, bytes]:
    """A segment's v2 structure (every string value a placeholder, nothing else taken out) and strings."""
    strings: list[str] = []

    def take(node: Any) -> Any:
        if type(node) is str:
            strings.append(node)
            return strings_apart.STRING
        if type(node) is dict:
            return {key: take(value) for key, value in node.items()}
        if type(node) is list:
            return [take(value) for value in node]
        return node

    structure = msgpack.packb(take(msgpack.unpackb(packed, raw=False, strict_map_key=False)), use_bin_type=True)
    assert structure.count(strings_apart.PLACEHOLDER) == len(strings)
    return structure, "".join(s + "\0" for s in strings).encode()


def v2_frame(structure: bytes, strings: bytes) -> bytes:
    """Two compressed streams as a v2 blob."""
    return strings_apart.MARK_V2 + len(structure).to_bytes(4, "big") + structure + strings
