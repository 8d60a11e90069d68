"""Stored formats v3 and v2, "strings apart": the segments' msgpack with every string value taken out,
and the strings after it, as separate brotli streams; v3 also takes rrweb's node ids out, as
differences. Brotli models each far better apart than interleaved (docs/benchmarks.md: on six
recordings v3 stores 0.45× zlib-6, v2 0.65×, v1 0.76×, all at quality 5).

    v3 (written): b"rpd\\x03" | len(structure) 4 bytes | len(ids) 4 bytes | structure | ids | strings
    v2 (read):    b"rpd\\x02" | len(structure) 4 bytes | structure | strings
    structure = brotli(the segments' v1 msgpack, ``{"v": 1, "events": [...]}`` one after the other,
                       each string value replaced by msgpack extension type 2, empty; in v3 each
                       integer in [0, 2**31) under a key of ID_KEYS by extension type 3, empty)
    ids       = brotli(msgpack array of those integers in msgpack's order, each as its difference
                       from the one before, the first from 0); empty (no stream, length 0) when
                       fewer than IDS_APART_FROM: they stay in the structure
    strings   = brotli(every string value in msgpack's order, as UTF-8, each ended by a NUL)

Why ids: rrweb numbers the nodes mostly in order; as msgpack integers (2-3 bytes, each one new) they
were half of v2's compressed structure, as differences they are mostly 1 and cost almost nothing.
Map keys stay in the structure (few, repeated). A blob of one segment (ingest) and a compacted chunk
of many are the same format; both decode to their segments' v1 msgpack, byte for byte what v1
stores, so every reader downstream of ``codec.unpack_blob`` / ``decode_chunk`` reads one form. What
v3 cannot hold — a NUL in a string, nesting deeper than msgpack's 511 levels, integers past 64 bits,
text that is not UTF-8, a placeholder's 3 bytes inside another value (a number's bytes, a key) or
made by an id's bytes and what follows it (``_ids_make_no_placeholder``) — is stored as v1 (``split``
raises CannotHold).
"""

from __future__ import annotations

import io
import itertools
import operator
import re
from collections.abc import Callable, Iterator
from typing import Any

import brotli
import msgpack

_split_in_c: Callable[[Any, frozenset[str], int, int], tuple[bytes, bytes, int, list[int]] | None] | None
try:  # the walk in C (server/_apart.c), built at install where a C compiler is; else the walk below
    from ._apart import split as _split_in_c
except ImportError:  # a build without a C compiler
    _split_in_c = None

MARK = b"rpd\x03"  # a v1 blob is a bare brotli stream, whose first byte is never "r" (0x72): lgwin >= 18
MARK_V2 = b"rpd\x02"
STRING = msgpack.ExtType(2, b"")
PLACEHOLDER = msgpack.packb(STRING)  # b"\xc7\x00\x02": ext 8, length 0, type 2
ID = msgpack.ExtType(3, b"")
ID_PLACEHOLDER = msgpack.packb(ID)  # b"\xc7\x00\x03"
ID_KEYS = frozenset({"id", "parentId", "nextId"})  # rrweb's node ids: a node's, and where a mutation puts it
MAX_ID = (1 << 31) - 1  # differences of two fit in 32 bits
IDS_APART_FROM = 128  # fewer ids (a few mouse moves and mutations, out of order) store less in place
NO_IDS = msgpack.packb([])  # a v2 blob's: it took none out
MAX_DEPTH = 500  # msgpack's packer refuses 512 levels; the events list sits 2 deep
_LENGTH = 4


class CannotHold(Exception):
    """An event set v3 cannot store: the caller stores v1."""


class Malformed(ValueError):
    """A v3 or v2 blob that does not decode (corrupt or truncated)."""


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


def _take(node: Any, add: Any, add_id: Any, depth: int) -> None:
    # Recursion keeps msgpack's order: the values in the order their placeholders come in the packed bytes.
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
                _take(value, add, add_id, depth + 1)
            elif kind is int and key in ID_KEYS and 0 <= value <= MAX_ID:
                add_id(value)
                node[key] = ID
    else:
        for i, value in enumerate(node):
            kind = type(value)
            if kind is str:
                add(value)
                node[i] = STRING
            elif kind is dict or kind is list:
                _take(value, add, add_id, depth + 1)


def _put_back(node: Any, strings: Iterator[str], ids: Iterator[int], depth: int) -> None:
    """``_take`` undone, in the same order, as deep as it went (only when v3 cannot hold the documents)."""
    if depth > MAX_DEPTH:
        return
    items = node.items() if type(node) is dict else enumerate(node)
    for key, value in items:
        if value is STRING:
            node[key] = next(strings)
        elif value is ID:
            node[key] = next(ids)
        elif type(value) is dict or type(value) is list:
            _put_back(value, strings, ids, depth + 1)


def split(documents: list[Any]) -> tuple[bytes, bytes, bytes]:
    """Each document's msgpack with its strings and ids taken out, the ids, and the strings: CannotHold
    when v3 cannot store them (the documents are then as they were). Fewer than IDS_APART_FROM ids go
    back into the structure.

    In C where it was built (``server/_apart.c``: one walk, the documents untouched, a third of the
    CPU in a worker's job); else, or for a document holding a type JSON has not, in Python (``_take`` replaces the
    documents' strings and ids in place, then msgpack packs them): the same bytes either way."""
    try:
        taken = _taken_in_c(documents)
    except OverflowError:  # past 64 bits, deeper than MAX_DEPTH, a lone surrogate, a NUL in a string
        raise CannotHold from None
    if taken is not None:
        return _streams(*taken)
    strings: list[str] = []
    ids: list[int] = []
    try:
        for document in documents:
            _take(document, strings.append, ids.append, 0)
        packer = msgpack.Packer(use_bin_type=True)
        structure = b"".join(map(packer.pack, documents))
        text = "\0".join([*strings, ""])  # each string ended by a NUL
        if text.count("\0") != len(strings):  # a string holds a NUL
            raise CannotHold
        return _streams(structure, text.encode(), len(strings), ids)
    except (CannotHold, ValueError, OverflowError):  # deep, big integers, lone surrogates (UnicodeError)
        restore, restore_ids = iter(strings), iter(ids)
        for document in documents:
            _put_back(document, restore, restore_ids, 0)
        raise CannotHold from None


def walks_in_c() -> bool:
    """Whether server/_apart.c was built (else every segment takes the Python walk)."""
    return _split_in_c is not None


def _taken_in_c(documents: list[Any]) -> tuple[bytes, bytes, int, list[int]] | None:
    """``_take``, msgpack and the strings' join in one walk in C: the structure, the strings' text, their
    number and the ids; None where the C walk is not built or meets a type JSON has not (msgpack's
    ExtType, bytes, tuples: the Python walk packs those as msgpack does)."""
    if _split_in_c is None:
        return None
    structures: list[bytes] = []
    texts: list[bytes] = []
    count = 0
    ids: list[int] = []
    for document in documents:
        taken = _split_in_c(document, ID_KEYS, MAX_DEPTH, MAX_ID)
        if taken is None:
            return None
        structures.append(taken[0])
        texts.append(taken[1])
        count += taken[2]
        ids += taken[3]
    return b"".join(structures), b"".join(texts), count, ids


def _streams(structure: bytes, text: bytes, count: int, ids: list[int]) -> tuple[bytes, bytes, bytes]:
    """The structure, the ids' stream and the strings' (``count`` of them in ``text``, each ended by a
    NUL) from what the walk took: CannotHold where a placeholder's bytes are also part of another value."""
    if structure.count(PLACEHOLDER) != count or structure.count(ID_PLACEHOLDER) != len(ids):
        raise CannotHold  # a placeholder's bytes inside another value
    packer = msgpack.Packer(use_bin_type=True)
    if len(ids) < IDS_APART_FROM:  # a few mouse moves and mutations: out of order, they store less in place
        inline = _put_ids(structure, map(packer.pack, ids))
        if ID_PLACEHOLDER not in inline and inline.count(PLACEHOLDER) == count:  # (made by an id's bytes)
            return inline, NO_IDS, text
    if not _ids_make_no_placeholder(structure, ids):
        raise CannotHold
    return structure, packer.pack(differences(ids)), text


def decoded_at_most(structure: bytes, ids: bytes, strings: bytes) -> int:
    """What ``split``'s streams decode to at most (``decode``'s limit): each string's msgpack header
    and bytes for its placeholder and NUL (more only past 64 kB: a header of 5), each id's msgpack
    (at most 5 bytes below 2**31) for its placeholder (each at least a byte of the ids stream)."""
    return len(structure) + len(strings) + len(strings) // (1 << 16) + 2 * len(ids)


def _ids_make_no_placeholder(structure: bytes, ids: list[int]) -> bool:
    """Decoding puts the ids back into the structure before the strings: an id's bytes must not make a
    string's placeholder with the bytes after it, c7 00 02 (an id ending in c7 before 00 02, in c7 00
    before 02, in c7 00 02). Checked in full only when the structure or the ids could (rarely)."""
    if _ID_THEN_PLACEHOLDER_END.search(structure) is None and (not ids or max(ids) < 0xC70002):
        return True
    packer = msgpack.Packer()
    return _put_ids(structure, iter(map(packer.pack, ids))).count(PLACEHOLDER) == structure.count(PLACEHOLDER)


_ID_THEN_PLACEHOLDER_END = re.compile(re.escape(ID_PLACEHOLDER) + b"\x00?" + re.escape(PLACEHOLDER[-1:]))


def differences(values: list[int]) -> list[int]:
    """Each value less the one before it (the first less 0)."""
    return list(map(operator.sub, values, [0, *values[:-1]]))


def compress(structure: bytes, ids: bytes, strings: bytes, quality: int) -> bytes:
    return frame(brotli.compress(structure, quality=quality),
                 b"" if ids == NO_IDS else brotli.compress(ids, quality=quality),  # none: no stream
                 brotli.compress(strings, quality=quality))


def frame(structure: bytes, ids: bytes, strings: bytes) -> bytes:
    """Three compressed streams as one v3 blob."""
    return b"".join([MARK, len(structure).to_bytes(_LENGTH, "big"), len(ids).to_bytes(_LENGTH, "big"),
                     structure, ids, strings])


def is_apart(blob: bytes) -> bool:
    """A v3 or v2 blob (strings apart)."""
    return blob[:len(MARK)] in (MARK, MARK_V2)


def streams(blob: bytes, limit: int | None = None) -> tuple[bytes, bytes, bytes]:
    """A v3 or v2 blob's structure, ids and strings, decompressed (each at most ``limit`` bytes, else
    TooLarge): what ``split`` gave for its documents (a v2 blob's ids: NO_IDS)."""
    v3 = blob[:len(MARK)] == MARK
    start = len(MARK) + (2 if v3 else 1) * _LENGTH
    lengths = [int.from_bytes(blob[at:at + _LENGTH], "big") for at in range(len(MARK), start, _LENGTH)]
    ends = list(itertools.accumulate(lengths, initial=start))
    if len(blob) < ends[-1]:
        raise Malformed("blob shorter than its streams' lengths")
    try:
        structure = decompress(blob[start:ends[1]], limit)
        ids = decompress(blob[ends[1]:ends[2]], limit) if v3 and ends[2] > ends[1] else NO_IDS  # empty: none
        return structure, ids, decompress(blob[ends[-1]:], limit)
    except brotli.error as exc:
        raise Malformed(f"blob does not decompress: {exc}") from None


def _long_header(size: int) -> bytes:
    return b"\xda" + size.to_bytes(2, "big") if size < 1 << 16 else b"\xdb" + size.to_bytes(4, "big")


# msgpack's header of a str of n bytes, n < 256 (fixstr, then str 8: what msgpack-python writes).
_HEADERS = [bytes([0xA0 | n]) if n < 32 else b"\xd9" + bytes([n]) for n in range(256)]


BATCH = 1 << 16  # bytes of the structure spliced at a time (a third as many strings at most): what decoding
# holds besides its input and output


def decode(blob: bytes, needed: int | None = None, limit: int | None = None) -> bytes:
    """A v3 or v2 blob's documents as their v1 msgpack, one after the other; with ``needed``, at least
    that many bytes of them (less work for a segment near a chunk's start). Malformed if it does not
    decode (TooLarge if a stream decompresses, or the documents decode, past ``limit``).

    No msgpack parse: each id placeholder's bytes in the structure become the next id's msgpack, then
    each string placeholder's the next string's (``split`` made sure no other bytes there look like
    one, before and after the ids), which gives v1's bytes exactly. Spliced a BATCH of the structure
    at a time: splitting it all at once held two objects a string (a blob of tiny streams that expand
    to millions of empty strings held 70 times its decoded size)."""
    structure, id_stream, text = streams(blob, limit)
    v3 = blob[:len(MARK)] == MARK  # a v2 structure may hold c7 00 03 in a number: only v3 took ids out
    places, ends = structure.count(PLACEHOLDER), text.count(b"\0")
    if places != ends:
        raise Malformed(f"blob has {ends} strings for {places} places")
    if text[-1:] not in (b"", b"\0"):
        raise Malformed("strings not ended by a NUL")
    items = _id_items(id_stream, structure.count(ID_PLACEHOLDER) if v3 else 0)
    ids = map(msgpack.Packer().pack, itertools.accumulate(items))
    headers = _HEADERS
    out: list[bytes] = []
    got = at = taken = 0
    while at < len(structure) and (needed is None or got < needed):
        end = _batch_end(structure, at + BATCH, v3)
        batch = structure[at:end]
        pieces = (_put_ids(batch, ids) if v3 else batch).split(PLACEHOLDER)
        if v3 and len(pieces) != batch.count(PLACEHOLDER) + 1:  # ids split would have refused
            raise Malformed("blob's ids make string placeholders")
        strings = _next_strings(text, taken, len(pieces) - 1)
        taken += sum(map(len, strings)) + len(strings)
        heads = [headers[n] if n < 256 else _long_header(n) for n in map(len, strings)]
        spliced = b"".join(itertools.chain(itertools.chain.from_iterable(zip(pieces, heads, strings, strict=False)),
                                           pieces[-1:]))
        out.append(spliced)
        got += len(spliced)
        if limit is not None and got > limit:  # an id of 9 bytes for a placeholder of 3: 3 times the streams
            raise TooLarge(f"decodes past {limit} bytes")
        at = end
    if at >= len(structure) and items.tell() != len(id_stream):  # every id taken: nothing may follow them
        raise Malformed("blob's ids hold more than their array")
    return b"".join(out)


def _batch_end(structure: bytes, start: int, v3: bool) -> int:
    """Where the batch that reaches ``start`` ends: after the next placeholder (of either kind in v3)."""
    found = (_ANY_PLACEHOLDER if v3 else _STRING_PLACEHOLDER).search(structure, start)
    return found.end() if found else len(structure)


_ANY_PLACEHOLDER = re.compile(re.escape(PLACEHOLDER[:-1]) + b"[" + re.escape(PLACEHOLDER[-1:] + ID_PLACEHOLDER[-1:])
                              + b"]")
_STRING_PLACEHOLDER = re.compile(re.escape(PLACEHOLDER))


def _id_items(id_stream: bytes, places: int) -> msgpack.Unpacker:
    """The ids' differences, decoded as they are taken and read from the stream a piece at a time (a
    million ids are not a million objects at once, nor a copy of the stream; checking it whole first
    held two). ``decode`` checks that nothing follows them once it took them all."""
    size = max(len(id_stream), 1)
    items = msgpack.Unpacker(io.BytesIO(id_stream), read_size=min(size, 1 << 16), max_buffer_size=size,
                             max_str_len=0, max_bin_len=0, max_array_len=0, max_map_len=0,
                             max_ext_len=0)  # numbers, else a ValueError
    try:
        count = items.read_array_header()
    except (ValueError, msgpack.exceptions.UnpackException) as exc:  # not msgpack, cut short (OutOfData)
        raise Malformed(f"blob's ids do not decode: {exc!r}") from None
    if count != places:
        raise Malformed(f"blob has {count} ids for {places} places")
    return items


def _put_ids(structure: bytes, ids: Iterator[bytes]) -> bytes:
    """The structure with each id placeholder replaced by the next of ``ids``."""
    pieces = structure.split(ID_PLACEHOLDER)
    try:
        values = list(itertools.islice(ids, len(pieces) - 1))
    except (TypeError, ValueError, OverflowError, msgpack.exceptions.UnpackException) as exc:  # not integers
        raise Malformed(f"blob's ids do not decode: {exc!r}") from None
    if len(values) != len(pieces) - 1:
        raise Malformed("blob has fewer ids than places")
    return b"".join(itertools.chain(itertools.chain.from_iterable(zip(pieces, values, strict=False)), pieces[-1:]))


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
        if start + size >= len(text):
            raise Malformed("blob has fewer strings than places")
        size *= 4
