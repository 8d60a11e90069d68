"""Parsing Sentry envelopes: a header line, then items of (header line, payload).

An item header with ``length`` is followed by exactly that many bytes (which may contain newlines);
without it the payload runs to the next newline or the end of the body.

Header lines (the envelope's, each item's, a recording's segment line) are capped at
``limits.max_header_line_bytes`` before they are parsed: they are JSON parsed on the event loop, and
the envelope header is parsed before the sender's key is known.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_SEGMENT_ID = 2**31 - 1
MAX_HEADER_LINE = 64 * 1024  # the default of limits.max_header_line_bytes


class EnvelopeError(ValueError):
    """The body is not a well-formed envelope; the message names the problem."""


class EnvelopeTooLarge(EnvelopeError):
    """Well-formed so far, but over a limit."""


@dataclass(slots=True)
class Item:
    type: str
    headers: dict[str, Any]
    payload: bytes


@dataclass(slots=True)
class Envelope:
    headers: dict[str, Any]
    items: list[Item]


def _json_line(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise EnvelopeError(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise EnvelopeError(f"{what} must be a JSON object")
    return value


def line_end(data: bytes, start: int, max_line: int, what: str) -> int:
    """Where the line starting at ``start`` ends (its newline, or the end of ``data``), looking no
    further than ``max_line`` bytes; EnvelopeTooLarge if it runs longer."""
    end = data.find(b"\n", start, start + max_line + 1)
    if end < 0:
        if len(data) - start > max_line:
            raise EnvelopeTooLarge(f"{what} line is over limits.max_header_line_bytes ({max_line} bytes)")
        end = len(data)
    return end


def _header_line(line: bytes) -> dict[str, Any]:
    if not line.strip():
        raise EnvelopeError("empty envelope header")
    return _json_line(line, "envelope header")


def envelope_header(data: bytes, max_line: int = MAX_HEADER_LINE) -> dict[str, Any]:
    """The envelope header from the start of a body (the rest of the body need not be there)."""
    return _header_line(data[:line_end(data, 0, max_line, "envelope header")])


def parse_envelope(body: bytes, max_items: int = 1000, max_header_line: int = MAX_HEADER_LINE) -> Envelope:
    end = line_end(body, 0, max_header_line, "envelope header")
    headers = _header_line(body[:end])
    pos = end + 1
    items: list[Item] = []
    n = len(body)
    while pos < n:
        number = len(items) + 1
        end = line_end(body, pos, max_header_line, f"item {number} header")
        line = body[pos:end]
        pos = end + 1
        if not line.strip():
            continue  # blank lines between items (and a trailing newline) are tolerated
        item_headers = _json_line(line, f"item {number} header")
        item_type = item_headers.get("type")
        if not isinstance(item_type, str) or not item_type:
            raise EnvelopeError(f"item {number} header has no type")
        length = item_headers.get("length")
        if length is not None:
            if not isinstance(length, int) or isinstance(length, bool) or length < 0:
                raise EnvelopeError(f"item {number} ({item_type}) has an invalid length")
            if pos + length > n:
                raise EnvelopeError(
                    f"item {number} ({item_type}) declares {length} bytes but only {max(0, n - pos)} follow"
                )
            payload = body[pos:pos + length]
            pos += length
            # The newline after a payload of known length is optional.
            if pos < n and body[pos:pos + 1] == b"\n":
                pos += 1
        else:
            end = body.find(b"\n", pos)
            end = n if end < 0 else end
            payload = body[pos:end]
            pos = end + 1
        items.append(Item(item_type, item_headers, payload))
        if len(items) > max_items:
            raise EnvelopeTooLarge(f"envelope has more than limits.max_items_per_envelope ({max_items}) items")
    return Envelope(headers, items)


def split_recording(payload: bytes, max_header_line: int = MAX_HEADER_LINE) -> tuple[int, bytes]:
    """A replay_recording payload is ``{"segment_id": N}\\n`` then the (maybe zlib) events."""
    end = line_end(payload, 0, max_header_line, "replay_recording segment header")
    if end == len(payload):
        raise EnvelopeError("replay_recording item has no segment header line")
    header = _json_line(payload[:end], "replay_recording segment header")
    segment_id = header.get("segment_id")
    if not isinstance(segment_id, int) or isinstance(segment_id, bool) or not 0 <= segment_id <= MAX_SEGMENT_ID:
        raise EnvelopeError(f"replay_recording segment header needs an integer segment_id from 0 to {MAX_SEGMENT_ID}")
    return segment_id, payload[end + 1:]
