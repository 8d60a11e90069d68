"""How a segment is stored. Encode and decode live here.

Three stored forms, all read forever (``server/strings_apart.py``):

- v3 (written since 2026-12-01): ``rpd\x03`` then three brotli streams, the segment's msgpack with its
  string values and node ids taken out, the ids (as differences), and the strings;
- v2 (written on 2026-12-01 before v3): ``rpd\x02`` then two, the msgpack without its strings, and the strings;
- v1: brotli(msgpack({"v": 1, "events": [...]})) — what v3 cannot hold is still written so.

Every reader works on a segment's decompressed bytes in v1's form (``unpack_blob``, ``decode_chunk``):
msgpack({"v": 1, "events": [...]}), which a v3 or v2 blob decodes to byte for byte. The player's batches
splice them, the API answers them, the browser decodes only them.

msgpack cannot nest deeper than 511 levels (rrweb documents can be thousands of levels deep) nor
hold integers past 64 bits (JSON can); such an event is stored as msgpack extension type 1 holding
its JSON text. The player's decoder (static/player) registers the same extension type.

Reading decodes one event at a time (``iter_events``), so reading a segment costs its decompressed
bytes and its largest event, not every event at once.
"""

from __future__ import annotations

import contextlib
import gc
import io
import itertools
import re
from collections.abc import Iterator
from typing import Any

import brotli
import msgpack

from . import strings_apart
from .jsontext import dumps, loads

CODEC = "msgpack-br-v1"  # the form readers get (the API's X-Replayd-Codec), whatever is stored
STORED_CODECS = {strings_apart.MARK: "msgpack-br-v3", strings_apart.MARK_V2: "msgpack-br-v2"}  # else CODEC
VERSION = 1
EXT_JSON = 1
CONTENT_TYPE = "application/vnd.replayd.segment+msgpack"


class CodecError(ValueError):
    pass


def _pack_events(events: list[Any]) -> bytes:
    try:
        return msgpack.packb({"v": VERSION, "events": events}, use_bin_type=True)
    except (ValueError, OverflowError):
        pass  # too deep or too big for msgpack: pack event by event, those ones as JSON text
    packer = msgpack.Packer(use_bin_type=True)
    parts = [packer.pack_map_header(2), packer.pack("v"), packer.pack(VERSION), packer.pack("events"),
             packer.pack_array_header(len(events))]
    for event in events:
        try:
            parts.append(packer.pack(event))
        except (ValueError, OverflowError):
            parts.append(packer.pack(msgpack.ExtType(EXT_JSON, dumps(event).encode())))
    return b"".join(parts)


def encode_segment(events: list[Any], quality: int, limit: int | None = None) -> bytes:
    """The stored blob: v3, or v1 for events v3 cannot hold. Without the C walk (``strings_apart.split``)
    the events' strings and ids are taken out in place (ingest is done with the events by then). A CodecError
    if it would decompress past ``limit`` (``limits.max_decoded_bytes``: a reader would refuse it)."""
    try:
        structure, ids, strings = strings_apart.split([{"v": VERSION, "events": events}])
    except strings_apart.CannotHold:  # the events are as they were
        packed = _pack_events(events)
        _check_limit(len(packed), limit)
        return brotli.compress(packed, quality=quality, mode=brotli.MODE_GENERIC)
    _check_limit(strings_apart.decoded_at_most(structure, ids, strings), limit)
    return strings_apart.compress(structure, ids, strings, quality)


def _check_limit(size: int, limit: int | None) -> None:
    if limit is not None and size > limit:
        raise CodecError(f"decodes to {size} bytes, over limits.max_decoded_bytes ({limit})")


def browser_readable(blob: bytes) -> bool:
    """The blob is brotli of v1's form (v1): a browser given it with ``Content-Encoding: br`` reads it."""
    return not strings_apart.is_apart(blob)


def stored_codec(blob: bytes) -> str:
    """A segment row's codec: what its blob (or chunk) holds."""
    return STORED_CODECS.get(blob[:len(strings_apart.MARK)], CODEC)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_JSON:
        return loads(data)
    raise CodecError(f"unknown extension type {code} in a stored segment")


def events_span(packed: bytes) -> tuple[int, int, int]:
    """A decompressed segment's number of events and the byte range of its events array's items."""
    unpacker = msgpack.Unpacker(io.BytesIO(packed), raw=False, strict_map_key=False, max_buffer_size=len(packed))
    version = None
    found: tuple[int, int, int] | None = None
    for _ in range(unpacker.read_map_header()):
        key = unpacker.unpack()
        if key == "events":
            count = unpacker.read_array_header()
            start = unpacker.tell()
            for _ in range(count):
                unpacker.skip()
            found = (count, start, unpacker.tell())
        elif key == "v":
            version = unpacker.unpack()
        else:
            unpacker.skip()
    if version != VERSION or found is None:
        raise CodecError(f"stored segment has an unknown codec version {version}")
    return found


def _packed_events(packed: bytes, **options: Any) -> Iterator[Any]:
    count, start, _ = events_span(packed)
    stream = io.BytesIO(packed)
    stream.seek(start)
    # An event cannot be bigger than the segment: msgpack's limits (lengths of strings, arrays,
    # maps) follow from max_buffer_size.
    unpacker = msgpack.Unpacker(stream, raw=False, strict_map_key=False, max_buffer_size=len(packed), **options)
    for _ in range(count):
        yield unpacker.unpack()


def iter_events(blob: bytes, limit: int | None = None) -> Iterator[Any]:
    """A stored segment's events, decoded one at a time."""
    return _packed_events(unpack_blob(blob, limit), ext_hook=_ext_hook)


def segment_json(blob: bytes, limit: int | None = None) -> bytes:
    """The stored segment as a JSON array, without re-parsing events kept as JSON text."""
    return packed_segment_json(unpack_blob(blob, limit))


_NOT_FINITE = re.compile(rb"NaN|Infinity")


def packed_segment_json(packed: bytes) -> bytes:
    """A decompressed segment (``unpack_blob``, or a slice of a compacted chunk) as a JSON array."""
    parts = []
    for event in _packed_events(packed):
        if isinstance(event, msgpack.ExtType):
            if event.code != EXT_JSON:
                raise CodecError(f"unknown extension type {event.code} in a stored segment")
            # written by ``dumps``, which wrote NaN and Infinity before it wrote null for them
            parts.append(dumps(loads(event.data)).encode() if _NOT_FINITE.search(event.data) else event.data)
        else:
            parts.append(dumps(event).encode())
    return b"[" + b",".join(parts) + b"]"


# --- compacted replays (server/compaction.py) ---------------------------------------------------
#
# A compacted replay is one object of a few chunks; a chunk is the segments' decompressed bytes
# (``unpack_blob``) one after the other, stored as v3 (window COMPACTED_LGWIN) or, when v3 cannot
# hold them, as one brotli stream of those bytes (v1). Decoded, a segment is bytes
# offset..offset+length of its chunk: the same bytes its own blob decodes to.

COMPACTED_LGWIN = 24  # brotli's largest standard window, 16 MiB: a page's CSS and markup repeat from far back
CHUNK_READ_PIECE = 64 * 1024


def unpack_blob(blob: bytes, limit: int | None = None) -> bytes:
    """A stored segment's decompressed bytes: msgpack({"v": 1, "events": [...]}), of every version alike;
    a CodecError past ``limit`` bytes (``limits.max_decoded_bytes``: a zip bomb)."""
    if not strings_apart.is_apart(blob):
        return _decompress(blob, limit)
    packed = _apart_packed(blob, None, limit)
    unpacker = msgpack.Unpacker(None, max_buffer_size=max(len(packed), 1))
    unpacker.feed(packed)
    try:
        unpacker.skip()
    except (ValueError, msgpack.exceptions.UnpackException) as exc:  # malformed, or cut short (OutOfData)
        raise CodecError(f"stored segment does not decode: {exc!r}") from None
    if unpacker.tell() != len(packed):
        raise CodecError("stored segment holds more than one document")
    return packed


def _decompress(data: bytes, limit: int | None) -> bytes:
    try:
        return strings_apart.decompress(data, limit)
    except strings_apart.TooLarge as exc:
        raise CodecError(f"stored segment {exc} (limits.max_decoded_bytes)") from None
    except brotli.error as exc:  # corrupt or cut short
        raise CodecError(f"stored segment does not decompress: {exc}") from None


def _apart_packed(blob: bytes, needed: int | None = None, limit: int | None = None) -> bytes:
    try:
        return strings_apart.decode(blob, needed, limit)
    except strings_apart.TooLarge as exc:
        raise CodecError(f"stored segment {exc} (limits.max_decoded_bytes)") from None
    except strings_apart.Malformed as exc:
        raise CodecError(f"stored segment does not decode: {exc}") from None


def _chunk_parts(segments: list[bytes]) -> Iterator[tuple[bytes, bytes, bytes]]:
    """Each segment's v3 structure, ids and strings: a v3 or v2 blob's as stored (no walk), a
    decompressed segment's split. CannotHold for a segment whose bytes would not come back the same
    (v1 blobs written by another msgpack) or that v3 cannot hold."""
    for segment in segments:
        if strings_apart.is_apart(segment):
            try:
                parts = strings_apart.streams(segment)
            except strings_apart.Malformed as exc:
                raise CodecError(f"stored segment does not decode: {exc}") from None
            if segment[:len(strings_apart.MARK)] == strings_apart.MARK or strings_apart.ID_PLACEHOLDER not in parts[0]:
                yield parts
                continue
            segment = unpack_blob(segment)  # a v2 structure with an id placeholder's bytes in a number: split
        document = msgpack.unpackb(segment, raw=False, strict_map_key=False)  # extension types stay ExtType
        if msgpack.packb(document, use_bin_type=True) != segment:
            raise strings_apart.CannotHold
        yield strings_apart.split([document])


@contextlib.contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Unpacking a chunk's segments allocates millions of containers; the collections they start cost
    4 times the unpacking (msgpack's values hold no cycles). Worker jobs run without the collector
    already (server/ingest/worker.py); ``replayd compact`` runs in a thread, where this turns it off
    for the process meanwhile (another thread that turns it back on only costs time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def encode_chunk(segments: list[bytes], quality: int, lgwin: int = COMPACTED_LGWIN) -> bytes:
    """Segments compressed together with a large window, each given as its decompressed bytes or as
    its stored v3 or v2 blob (whose streams are taken as they are: no unpacking, no walk): v3, else
    one brotli stream of the decompressed segments (v1). One segment's values in memory at a time,
    and the chunk's ids as packed differences."""
    structure = brotli.Compressor(quality=quality, lgwin=lgwin, mode=brotli.MODE_GENERIC)
    strings = brotli.Compressor(quality=quality, lgwin=lgwin, mode=brotli.MODE_GENERIC)
    body: list[bytes] = []
    text: list[bytes] = []
    ids = _ChunkIds()
    try:
        with _without_cyclic_gc():
            for part, id_part, string_part in _chunk_parts(segments):
                body.append(structure.process(part))
                ids.add(id_part)
                text.append(strings.process(string_part))
    except strings_apart.CannotHold:
        compressor = brotli.Compressor(quality=quality, lgwin=lgwin, mode=brotli.MODE_GENERIC)
        packed = (unpack_blob(s) if strings_apart.is_apart(s) else s for s in segments)
        return b"".join([*(compressor.process(p) for p in packed), compressor.finish()])
    return strings_apart.frame(b"".join([*body, structure.finish()]),
                               brotli.compress(ids.packed(), quality=quality, lgwin=lgwin),
                               b"".join([*text, strings.finish()]))


class _ChunkIds:
    """A chunk's ids stream from its segments': their differences one after the other, each segment's
    first taken from the last id of the segment before (a segment's is from 0)."""

    def __init__(self) -> None:
        self._items: list[bytes] = []
        self._count = 0
        self._last = 0

    def add(self, id_stream: bytes) -> None:
        """Only the first difference is packed again: the rest are the stream's bytes as they are (as
        a list, a stream of 1-byte differences held 34 times its decoded segment)."""
        items = msgpack.Unpacker(None, max_buffer_size=max(len(id_stream), 1))
        items.feed(id_stream)
        try:
            count = items.read_array_header()
            if count:
                first = items.unpack()
                rest = items.tell()
                last = first + sum(itertools.islice(items, count - 1))  # the segment's last id
                self._items += [msgpack.packb(first - self._last), id_stream[rest:items.tell()]]
                self._last = last
                self._count += count
        except (TypeError, ValueError, OverflowError, msgpack.exceptions.UnpackException) as exc:
            raise CodecError(f"stored segment's ids do not decode: {exc!r}") from None

    def packed(self) -> bytes:
        return msgpack.Packer().pack_array_header(self._count) + b"".join(self._items)


def is_apart(blob: bytes) -> bool:
    """A stored blob in v3 or v2 (``encode_chunk`` takes it as it is)."""
    return strings_apart.is_apart(blob)


def decode_chunk(chunk: bytes, needed: int | None = None, limit: int | None = None) -> bytes:
    """A chunk's decompressed bytes; with ``needed``, only (at least) its first ``needed`` bytes, so a
    segment near a chunk's start costs less than the whole chunk. A CodecError past ``limit``."""
    if needed is not None and limit is not None and needed > limit:
        raise CodecError(f"compacted segment ends past {limit} bytes of its chunk (limits.max_decoded_bytes)")
    if strings_apart.is_apart(chunk):
        data = _apart_packed(chunk, needed, limit)
        if needed is not None and len(data) < needed:
            raise CodecError("compacted chunk ends before the segment it should hold")
        return data
    if needed is None:
        return _decompress(chunk, limit)
    decompressor = brotli.Decompressor()
    out: list[bytes] = []
    size = 0
    for start in range(0, len(chunk), CHUNK_READ_PIECE):
        # no more than is still needed (and what brotli's buffer adds), however far a piece expands
        try:
            piece = decompressor.process(chunk[start:start + CHUNK_READ_PIECE], output_buffer_limit=needed - size + 1)
        except brotli.error as exc:
            raise CodecError(f"compacted chunk does not decompress: {exc}") from None
        out.append(piece)
        size += len(piece)
        if size >= needed:
            break
    data = b"".join(out)
    if len(data) < needed:
        raise CodecError("compacted chunk ends before the segment it should hold")
    return data


def iter_packed_events(packed: bytes) -> Iterator[Any]:
    """A decompressed segment's events, decoded one at a time (as ``iter_events`` for a blob)."""
    return _packed_events(packed, ext_hook=_ext_hook)
