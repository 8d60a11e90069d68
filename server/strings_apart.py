"""Stored format v2, "strings apart": the segments' msgpack with every string value taken out, and the
strings after it, as two brotli streams. Brotli models the two far better apart than interleaved
(docs/benchmarks.md: 0.72× zlib-6 at quality 4 where v1 stores 0.79× at 5).

    b"rpd\\x02" | len(structure) as 4 bytes big-endian | structure | strings
    structure = brotli(the segments' v1 msgpack, ``{"v": 1, "events": [...]}`` one after the other,
                       each string value replaced by msgpack extension type 2, empty)
    strings   = brotli(every string value in msgpack's order, as UTF-8, each ended by a NUL)

Map keys stay in the structure (few, repeated). A blob of one segment (ingest) and a compacted chunk
of many are the same format; both decode to their segments' v1 msgpack, byte for byte what v1
stores, so every reader downstream of ``codec.unpack_blob`` / ``decode_chunk`` reads one form.
What v2 cannot hold — a NUL in a string, nesting deeper than msgpack's 511 levels, integers past 64
bits, text that is not UTF-8 — is stored as v1 (``split`` answers None).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import brotli
import msgpack

MARK = b"rpd\x02"  # a v1 blob is a bare brotli stream, whose first byte is never "r" (0x72): lgwin >= 18
EXT_STRING = 2
STRING = msgpack.ExtType(EXT_STRING, b"")
MAX_DEPTH = 500  # msgpack's packer refuses 512 levels; the events list sits 2 deep
_LENGTH = 4


class CannotHold(Exception):
    """An event set v2 cannot store: the caller stores v1."""


class Malformed(ValueError):
    """A v2 blob that does not decode (corrupt or truncated)."""


def _take(node: Any, add: Any, depth: int) -> None:
    # Recursion keeps msgpack's order (the order its ext_hook asks for strings back).
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


def iter_packed(blob: bytes) -> Iterator[bytes]:
    """A v2 blob's documents, each as its v1 msgpack bytes. Malformed if it does not decode."""
    try:
        size = int.from_bytes(blob[len(MARK):len(MARK) + _LENGTH], "big")
        start = len(MARK) + _LENGTH
        if len(blob) < start + size:
            raise Malformed("v2 blob shorter than its structure")
        structure = brotli.decompress(blob[start:start + size])
        strings = brotli.decompress(blob[start + size:]).decode().split("\0")
    except (brotli.error, UnicodeDecodeError) as exc:
        raise Malformed(f"v2 blob does not decompress: {exc}") from None
    if strings.pop() != "":
        raise Malformed("v2 strings not ended by a NUL")
    pending = iter(strings)

    def string(code: int, data: bytes) -> Any:
        if code != EXT_STRING:
            return msgpack.ExtType(code, data)  # v1's own extension types stay as they are
        try:
            return next(pending)
        except StopIteration:
            raise Malformed("v2 blob has fewer strings than places for them") from None

    # The structure is no bigger than its decompressed bytes; msgpack's length limits follow from it.
    unpacker = msgpack.Unpacker(None, raw=False, strict_map_key=False, ext_hook=string,
                                max_buffer_size=max(len(structure), 1))
    unpacker.feed(structure)
    packer = msgpack.Packer(use_bin_type=True)
    try:
        for document in unpacker:
            yield packer.pack(document)
    except Malformed:
        raise
    except ValueError as exc:  # msgpack's errors on malformed data are ValueErrors
        raise Malformed(f"v2 structure does not decode: {exc}") from None
    if unpacker.tell() != len(structure):
        raise Malformed("v2 structure ends inside a document")
    if next(pending, None) is not None:
        raise Malformed("v2 blob has more strings than places for them")
