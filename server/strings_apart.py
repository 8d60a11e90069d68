"""Stored format v2, "strings apart": the segments' msgpack with every string value taken out, and the
strings after it, as two brotli streams. Brotli models the two far better apart than interleaved
(docs/benchmarks.md: on six recordings 0.65× zlib-6 where v1 stored 0.76×, both at quality 5).

    b"rpd\\x02" | len(structure) as 4 bytes big-endian | structure | strings
    structure = brotli(the segments' v1 msgpack, ``{"v": 1, "events": [...]}`` one after the other,
                       each string value replaced by msgpack extension type 2, empty)
    strings   = brotli(every string value in msgpack's order, as UTF-8, each ended by a NUL)

Map keys stay in the structure (few, repeated). A blob of one segment (ingest) and a compacted chunk
of many are the same format; both decode to their segments' v1 msgpack, byte for byte what v1
stores, so every reader downstream of ``codec.unpack_blob`` / ``decode_chunk`` reads one form.
What v2 cannot hold — a NUL in a string, nesting deeper than msgpack's 511 levels, integers past 64
bits, text that is not UTF-8, a placeholder's 3 bytes inside another value (a number's bytes, a key)
— is stored as v1 (``split`` raises CannotHold).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import brotli
import msgpack

MARK = b"rpd\x02"  # a v1 blob is a bare brotli stream, whose first byte is never "r" (0x72): lgwin >= 18
EXT_STRING = 2
STRING = msgpack.ExtType(EXT_STRING, b"")
PLACEHOLDER = msgpack.packb(STRING)  # b"\xc7\x00\x02": ext 8, length 0, type 2
MAX_DEPTH = 500  # msgpack's packer refuses 512 levels; the events list sits 2 deep
_LENGTH = 4


class CannotHold(Exception):
    """An event set v2 cannot store: the caller stores v1."""


class Malformed(ValueError):
    """A v2 blob that does not decode (corrupt or truncated)."""


class TooLarge(Malformed):
    """A brotli stream that decompresses past the limit it was read with."""


def decompress(data: bytes, limit: int | None = None) -> bytes:
    """``brotli.decompress``, which with ``limit`` produces at most about twice that before raising
    TooLarge (brotli.error when the data does not decompress)."""
    if limit is None:
        return brotli.decompress(data)
    decompressor = brotli.Decompressor()
    out = decompressor.process(data, output_buffer_limit=limit + 1)
    if len(out) > limit:
        raise TooLarge(f"decompresses past {limit} bytes")
    if not decompressor.is_finished():
        raise brotli.error("truncated")
    return out


def _take(node: Any, add: Any, depth: int) -> None:
    # Recursion keeps msgpack's order: the strings in the order their placeholders come in the packed bytes.
    # A loop for maps and one for arrays: this runs for every value of every segment.
    if depth > MAX_DEPTH:
        raise CannotHold
    if type(node) is dict:
        for key, value in node.items():
            kind = type(value)
            if kind is str:
                add(value)
                node[key] = STRING
            elif kind is dict or kind is list:
                _take(value, add, depth + 1)
    else:
        for i, value in enumerate(node):
            kind = type(value)
            if kind is str:
                add(value)
                node[i] = STRING
            elif kind is dict or kind is list:
                _take(value, add, depth + 1)


def _put_back(node: Any, strings: Iterator[str], depth: int) -> None:
    """``_take`` undone, in the same order, as deep as it went (only when v2 cannot hold the documents)."""
    if depth > MAX_DEPTH:
        return
    items = node.items() if type(node) is dict else enumerate(node)
    for key, value in items:
        if value is STRING:
            node[key] = next(strings)
        elif type(value) is dict or type(value) is list:
            _put_back(value, strings, depth + 1)


def split(documents: list[Any]) -> tuple[bytes, bytes]:
    """Each document's msgpack with its strings taken out, and the strings: CannotHold when v2 cannot
    store them (the documents are then as they were). Replaces the documents' strings in place."""
    strings: list[str] = []
    try:
        for document in documents:
            _take(document, strings.append, 0)
        packer = msgpack.Packer(use_bin_type=True)
        structure = b"".join(map(packer.pack, documents))
        if structure.count(PLACEHOLDER) != len(strings):  # a placeholder's bytes inside another value
            raise CannotHold
        text = "\0".join([*strings, ""])  # each string ended by a NUL
        if text.count("\0") != len(strings):  # a string holds a NUL
            raise CannotHold
        data = text.encode()
    except (CannotHold, ValueError, OverflowError):  # deep, big integers, lone surrogates (UnicodeError)
        restore = iter(strings)
        for document in documents:
            _put_back(document, restore, 0)
        raise CannotHold from None
    return structure, data


def compress(structure: bytes, strings: bytes, quality: int) -> bytes:
    return frame(brotli.compress(structure, quality=quality), brotli.compress(strings, quality=quality))


def frame(structure: bytes, strings: bytes) -> bytes:
    """Two compressed streams as one v2 blob."""
    return b"".join([MARK, len(structure).to_bytes(_LENGTH, "big"), structure, strings])


def is_v2(blob: bytes) -> bool:
    return blob[:len(MARK)] == MARK


def streams(blob: bytes, limit: int | None = None) -> tuple[bytes, bytes]:
    """A v2 blob's structure and strings, decompressed (each at most ``limit`` bytes, else TooLarge):
    what ``split`` gave for its documents."""
    try:
        size = int.from_bytes(blob[len(MARK):len(MARK) + _LENGTH], "big")
        start = len(MARK) + _LENGTH
        if len(blob) < start + size:
            raise Malformed("v2 blob shorter than its structure")
        return decompress(blob[start:start + size], limit), decompress(blob[start + size:], limit)
    except brotli.error as exc:
        raise Malformed(f"v2 blob does not decompress: {exc}") from None


def _long_header(size: int) -> bytes:
    return b"\xda" + size.to_bytes(2, "big") if size < 1 << 16 else b"\xdb" + size.to_bytes(4, "big")


# msgpack's header of a str of n bytes, n < 256 (fixstr, then str 8: what msgpack-python writes).
_HEADERS = [bytes([0xA0 | n]) if n < 32 else b"\xd9" + bytes([n]) for n in range(256)]


BATCH = 1 << 16  # bytes of the structure spliced at a time (a third as many strings at most): what decoding
# holds besides its input and output


def decode(blob: bytes, needed: int | None = None, limit: int | None = None) -> bytes:
    """A v2 blob's documents as their v1 msgpack, one after the other; with ``needed``, at least that
    many bytes of them (less work for a segment near a chunk's start). Malformed if it does not decode
    (TooLarge if a stream decompresses past ``limit``).

    No msgpack parse: each placeholder's bytes in the structure become the next string's msgpack
    (``split`` made sure no other bytes there look like one), which gives v1's bytes exactly. Spliced
    a BATCH of the structure at a time: splitting it all at once held two objects a string (a blob of
    tiny streams that expand to millions of empty strings held 70 times its decoded size)."""
    structure, text = streams(blob, limit)
    places, ends = structure.count(PLACEHOLDER), text.count(b"\0")
    if places != ends:
        raise Malformed(f"v2 blob has {ends} strings for {places} places")
    if text[-1:] not in (b"", b"\0"):
        raise Malformed("v2 strings not ended by a NUL")
    headers = _HEADERS
    out: list[bytes] = []
    got = at = taken = 0
    while at < len(structure) and (needed is None or got < needed):
        end = structure.find(PLACEHOLDER, at + BATCH)
        end = len(structure) if end < 0 else end + len(PLACEHOLDER)
        pieces = structure[at:end].split(PLACEHOLDER)
        strings = _next_strings(text, taken, len(pieces) - 1)
        taken += sum(map(len, strings)) + len(strings)
        heads = [headers[n] if n < 256 else _long_header(n) for n in map(len, strings)]
        spliced = b"".join(itertools.chain(itertools.chain.from_iterable(zip(pieces, heads, strings, strict=False)),
                                           pieces[-1:]))
        out.append(spliced)
        got += len(spliced)
        at = end
    return b"".join(out)


def _next_strings(text: bytes, start: int, count: int) -> list[bytes]:
    """The ``count`` NUL-ended strings from ``start`` (there are: ``decode`` counted them), copying
    about as much of ``text`` as they take."""
    if count == 0:
        return []
    size = max(64, 16 * count)
    while True:
        strings = text[start:start + size].split(b"\0", count)
        if len(strings) > count:
            return strings[:count]
        size *= 4
