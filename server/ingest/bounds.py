"""A job's input bounded before it is built, and its output kept shallow.

The bytes are bounded by ``limits.max_recording_bytes`` (and the envelope's size), the number of JSON
values and the nesting by ``limits.max_json_values`` and ``limits.max_nesting_depth``, both checked on
the text (server/jsontext.py) so a document over them is refused with a 413 without being built.
"""

from __future__ import annotations

import zlib
from typing import Any

from ..config import LimitsConfig
from ..jsontext import JsonTooLarge, check_bounds, loads
from .refused import IngestRefused

ITEM_MAX_DEPTH = 32  # error and replay events are trimmed below this depth
DEPTH_MARKER = "[max depth]"


def decompress_recording(data: bytes, limit: int) -> bytes:
    """Plain JSON, zlib or gzip; refuses to inflate past ``limit`` bytes (zip bombs)."""
    start = data.lstrip()[:1]
    if start in (b"[", b"{"):
        if len(data) > limit:
            raise IngestRefused(413, f"recording is {len(data)} bytes, over limits.max_recording_bytes ({limit})")
        return data
    inflater = zlib.decompressobj(wbits=47)  # zlib or gzip header, detected
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise IngestRefused(400, "recording is neither JSON nor valid zlib/gzip data") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise IngestRefused(413, f"recording inflates past limits.max_recording_bytes ({limit} bytes)")
    if not inflater.eof:
        raise IngestRefused(400, "recording's compressed data is truncated")
    return out


def parse_json(data: bytes, what: str, limits: LimitsConfig) -> Any:
    try:
        check_bounds(data, limits.max_json_values, limits.max_nesting_depth)
    except JsonTooLarge as over:
        raise IngestRefused(413, f"{what} {over}") from None
    try:
        return loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IngestRefused(400, f"{what} is not valid JSON: {str(exc)[:200]}") from None


def trim_depth(value: Any, max_depth: int) -> Any:
    """Replace containers nested deeper than ``max_depth`` with a marker, as Sentry normalises events.

    Keeps what crosses back to the event loop shallow enough to pickle and serialise safely.
    """
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in list(children):
            if isinstance(child, (dict, list)):
                if depth >= max_depth:
                    node[key] = DEPTH_MARKER
                else:
                    stack.append((child, depth + 1))
    return value
