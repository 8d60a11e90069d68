"""server/codec.py and server/strings_apart.py: stored segments (v3, strings and ids apart; v2 and v1
still read) and compacted chunks, on real recordings and on what v3 cannot hold."""

from __future__ import annotations

import copy
import json
import random
import tracemalloc

import brotli
import msgpack
import orjson
import pytest

from replayd.server import strings_apart
from replayd.server.codec import (
    CodecError,
    _pack_events,
    decode_chunk,
    encode_chunk,
    encode_segment,
    iter_events,
    iter_packed_events,
    segment_json,
    stored_codec,
    unpack_blob,
)
from replayd.server.jsontext import dumps
from tests.envelopes import cut_segments, mouse_move, page_events
from tests.harness import load_recording
from tests.recordings import RECORDINGS
from tests.stored_formats import v2_blob, v2_frame, v2_streams

T = 1_795_650_000_000


def traced_peak(work):
    """``work()``'s result and the peak of memory traced while it ran."""
    tracemalloc.start()
    try:
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def v1_blob(events: list, quality: int = 5) -> bytes:
    """A segment as replayd stored it before v2."""
    return brotli.compress(_pack_events(events), quality=quality)


def id_values(blob: bytes) -> list[int]:
    """A v3 blob's ids as stored: differences."""
    return msgpack.unpackb(strings_apart.streams(blob)[1])


def deep(levels: int) -> dict:
    node: dict = {"type": 3, "textContent": "bottom", "id": 1}
    for i in range(levels):
        node = {"type": 2, "tagName": "div", "attributes": {"class": "x"}, "childNodes": [node], "id": i + 2}
    return {"type": 3, "timestamp": T, "data": {"source": 0, "adds": [{"parentId": 1, "node": node}]}}


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name.split(".")[0])
def test_recordings_round_trip_in_fewer_bytes(path):
    """Every segment of every recording decodes to its events, and to the very bytes v1 readers get;
    stored and compacted, v3 takes fewer bytes than v2, and v2 than v1, at the same quality."""
    segments = [orjson.dumps(s) for s in cut_segments(load_recording(path), 5.0)]
    blobs = [encode_segment(orjson.loads(s), 5) for s in segments]
    assert {stored_codec(b) for b in blobs} == {"msgpack-br-v3"}
    packed = []
    for text, blob in zip(segments, blobs, strict=True):
        events = orjson.loads(text)
        assert list(iter_events(blob)) == events
        packed.append(unpack_blob(blob))
        assert packed[-1] == _pack_events(events)  # what every reader downstream expects
        assert json.loads(segment_json(blob)) == events
    v1 = sum(len(v1_blob(orjson.loads(s))) for s in segments)
    v2 = [v2_blob(p) for p in packed]
    assert [unpack_blob(b) for b in v2] == packed
    assert sum(map(len, blobs)) < 0.95 * sum(map(len, v2)) < 0.95 ** 2 * v1
    chunk = encode_chunk(packed, 5)
    assert stored_codec(chunk) == "msgpack-br-v3"
    assert decode_chunk(chunk) == b"".join(packed)
    assert decode_chunk(chunk, len(packed[0]))[:len(packed[0])] == packed[0]
    v2_chunk = v2_frame(*(brotli.compress(b"".join(s), quality=5, lgwin=24)
                          for s in zip(*map(v2_streams, packed), strict=True)))
    assert decode_chunk(v2_chunk) == b"".join(packed)  # as compaction wrote chunks before v3
    assert len(chunk) < 0.95 * len(v2_chunk) < 0.95 ** 2 * len(brotli.compress(b"".join(packed), quality=5, lgwin=24))


@pytest.mark.parametrize("events", [
    [mouse_move(T, 1, 2), {"type": 5, "timestamp": T, "data": {"payload": "nul \x00 inside"}}],
    [mouse_move(T, 1, 2), deep(600)],  # deeper than msgpack's 511 levels
    [{"type": 5, "timestamp": T, "data": {"big": 2**70, "text": "around"}}],  # an integer past 64 bits
    # packs as ce 00 c7 00 02: a placeholder's bytes
    [{"type": 3, "timestamp": T, "data": {"x": 0xC70002, "text": "x", "id": 1}}],
    [{"type": 3, "timestamp": T, "data": {"x": 0xC70003, "text": "x", "id": 1}}],  # an id placeholder's
    [{"type": 3, "timestamp": T, "data": {"id": 0xC7000300, "text": "x"}}],  # an id past 2**31 stays in place
    # ids whose bytes make a string's placeholder, c7 00 02, with what follows them once put back
    [{"type": 5, "timestamp": T, "data": {"k": [{"id": 0xC7}, 0, 2], "text": "x"}}],  # cc c7, then 00 02
    [{"type": 5, "timestamp": T, "data": {"k": [{"id": 0xC700}, 2], "text": "x"}}],  # cd c7 00, then 02
    [{"type": 5, "timestamp": T, "data": {"id": 0xC70002, "text": "x"}}],  # ce 00 c7 00 02
], ids=["nul", "deep", "bigint", "placeholder-bytes", "id-placeholder-bytes", "big-id", "id-then-0-2", "id-then-2",
        "id-c70002"])
def test_what_v3_cannot_hold_is_stored_as_v1_with_events_untouched(events):
    before = dumps(events)  # deep documents compare as text: == would recurse past Python's limit
    blob = encode_segment(events, 5)
    assert stored_codec(blob) == "msgpack-br-v1" and not strings_apart.is_apart(blob)
    assert dumps(list(iter_events(blob))) == before
    assert dumps(events) == before  # the strings taken out before v2 gave up are back in place


def test_lone_surrogates_are_refused_as_v1_refused_them_and_replacement_characters_are_v3():
    """Ingest turns a lone surrogate into U+FFFD before encoding (UTF-8 cannot hold one): the codec
    refuses one as v1 did, never writing a blob that would not decode."""
    surrogate = [{"type": 5, "timestamp": T, "data": {"text": "half \ud83d of an emoji", "more": "x"}}]
    with pytest.raises(UnicodeEncodeError):
        encode_segment(surrogate, 5)
    replaced = [{"type": 5, "timestamp": T, "data": {"text": "half \ufffd of an emoji"}}]
    blob = encode_segment(copy.deepcopy(replaced), 5)
    assert stored_codec(blob) == "msgpack-br-v3" and list(iter_events(blob)) == replaced


@pytest.mark.parametrize("events", [
    [],
    [{"type": 4, "timestamp": T, "data": {"href": "", "width": 1, "height": 2}}],  # an empty string
    [{"type": 5, "timestamp": T, "data": {"payload": "é" * 3_000_000, "k": ["", "a", None, 1.5, True]}}],
    [*page_events(T, "https://a.test/", "A"), {"type": 5, "timestamp": T, "data": {"tag": "x", "payload": {}}}],
    # under an id's key: what is not an integer in [0, 2**31) stays in the structure
    [{"type": 3, "timestamp": T, "data": {"id": v, "parentId": 2**31 - 1, "nextId": 0, "k": [{"id": 5}, {"id": 3}]}}
     for v in (-1, True, 1.5, None, 2**31, 2**40, "7", 0)],
    # ids followed by bytes that could make a placeholder with some other id's bytes (checked in full)
    [{"type": 5, "timestamp": T, "data": {"k": [{"id": 0xC8}, 0, 2, {"id": 0xC701}, 2], "id": 0xC70003, "t": "x"}}],
], ids=["empty", "empty-string", "huge-string", "page", "ids", "ids-near-placeholders"])
def test_edge_cases_round_trip_as_v3(events, monkeypatch):
    monkeypatch.setattr(strings_apart, "IDS_APART_FROM", 0)  # ids taken out, however few
    blob = encode_segment(copy.deepcopy(events), 5)
    assert stored_codec(blob) == "msgpack-br-v3"
    assert list(iter_events(blob)) == events
    assert unpack_blob(blob) == _pack_events(events)
    assert unpack_blob(v2_blob(_pack_events(events))) == _pack_events(events)


def test_ids_are_stored_as_differences(monkeypatch):
    monkeypatch.setattr(strings_apart, "IDS_APART_FROM", 0)  # however few the ids
    events = [{"type": 3, "timestamp": T, "data": {"adds": [
        {"parentId": 10, "nextId": None, "node": {"type": 2, "id": 11, "childNodes": [{"type": 3, "id": 12}]}},
        {"parentId": 11, "nextId": 12, "node": {"type": 3, "id": 13}}]}}, mouse_move(T, 1, 2)]
    blob = encode_segment(copy.deepcopy(events), 5)
    assert id_values(blob) == [10, 1, 1, -1, 1, 1, -4]  # 10 11 12 11 12 13 in msgpack's order, the mouse's 9
    assert list(iter_events(blob)) == events


def test_a_segment_of_few_ids_keeps_them_in_place():
    """A few mouse moves over the same nodes: their ids cost less among the positions they repeat
    with (and the blob has no ids stream); a snapshot's ids, numbered in order, less apart. Both read
    the same."""
    rng = random.Random(5)
    moves = [mouse_move(T + i, rng.randrange(900), rng.randrange(700), rng.choice([7, 301, 4425])) for i in range(40)]
    snapshot = [{"type": 2, "timestamp": T, "data": {"node": {"type": 0, "id": 1, "childNodes": [
        {"type": 2, "tagName": "p", "attributes": {}, "id": i,
         "childNodes": [{"type": 3, "textContent": "x", "id": i + 1}]} for i in range(2, 2000, 2)]}}}]
    for events, ids in ((moves, []), (snapshot, [1, *[1] * 1998])):
        blob = encode_segment(copy.deepcopy(events), 5)
        assert stored_codec(blob) == "msgpack-br-v3" and id_values(blob) == ids
        assert (int.from_bytes(blob[8:12], "big") == 0) == (not ids)
        assert list(iter_events(blob)) == events


def test_v1_blobs_and_chunks_stay_readable():
    events = [*page_events(T, "https://a.test/", "A"), mouse_move(T + 1, 1, 2), deep(600)]
    blob = v1_blob(events)
    assert dumps(list(iter_events(blob))) == dumps(events)
    assert unpack_blob(blob) == _pack_events(events)
    packed = [_pack_events(events[:2]), _pack_events(events[2:])]
    old_chunk = brotli.compress(b"".join(packed), quality=5, lgwin=24)  # as compaction wrote chunks before v2
    assert decode_chunk(old_chunk) == b"".join(packed)


def test_v2_blobs_and_chunks_stay_readable_whatever_their_numbers_hold():
    """v2 took only strings out: bytes of an id placeholder in a v2 structure (here an integer's) are
    the integer's, in a blob and in a chunk that takes the blob's streams (its ids are not taken out)."""
    events = [[*page_events(T, "https://a.test/", "A"), {"type": 5, "timestamp": T, "data": {"x": 0xC70003}}],
              [mouse_move(T + 1, 1, 2)]]
    packed = [_pack_events(e) for e in events]
    blobs = [v2_blob(p) for p in packed]
    assert stored_codec(blobs[0]) == "msgpack-br-v2" and strings_apart.ID_PLACEHOLDER in v2_streams(packed[0])[0]
    assert [unpack_blob(b) for b in blobs] == packed
    assert list(iter_events(blobs[0])) == events[0]
    v2_chunk = v2_frame(*(brotli.compress(b"".join(s)) for s in zip(*map(v2_streams, packed), strict=True)))
    assert decode_chunk(v2_chunk) == b"".join(packed)
    chunk = encode_chunk(blobs, 5)  # the first blob cannot go in as it is, nor split as v3: a v1 chunk
    assert stored_codec(chunk) == "msgpack-br-v1" and decode_chunk(chunk) == b"".join(packed)
    chunk = encode_chunk([blobs[1], encode_segment(page_events(T, "https://b.test/", "B"), 5)], 5)
    assert stored_codec(chunk) == "msgpack-br-v3"
    assert decode_chunk(chunk) == packed[1] + _pack_events(page_events(T, "https://b.test/", "B"))


def test_a_chunk_takes_v3_blobs_as_they_are_and_mixes_them_with_decompressed_segments(monkeypatch):
    """Compaction hands a segment stored as v3 over as its blob: the chunk is the same bytes as from
    the decompressed segments, without unpacking them (each segment's ids continue the one before's);
    a v2 blob's streams go in as they are too; a chunk that falls back to v1 decodes them."""
    events = [page_events(T, "https://a.test/", "A"), [mouse_move(T + 1, 1, 2)], page_events(T, "https://b.test/", "B")]
    packed = [_pack_events(e) for e in events]
    inline = [encode_segment(copy.deepcopy(e), 5) for e in events]  # small: the mouse move keeps its id in place
    assert decode_chunk(encode_chunk(inline, 5)) == b"".join(packed)
    assert not all(map(id_values, inline))
    monkeypatch.setattr(strings_apart, "IDS_APART_FROM", 0)
    blobs = [encode_segment(copy.deepcopy(e), 5) for e in events]
    assert all(map(id_values, blobs))
    chunk = encode_chunk(blobs, 5)
    assert chunk == encode_chunk(packed, 5) == encode_chunk([blobs[0], packed[1], blobs[2]], 5)
    assert decode_chunk(chunk) == b"".join(packed)
    mixed = encode_chunk([blobs[0], v2_blob(packed[1]), blobs[2]], 5)
    assert stored_codec(mixed) == "msgpack-br-v3" and decode_chunk(mixed) == b"".join(packed)
    odd = msgpack.packb({"v": 1, "events": []})[:-1] + b"\x91\xd1\x00\x01"  # [1] as int16: not msgpack-python's
    fallback = encode_chunk([blobs[0], odd, blobs[2]], 5)  # v1: the blobs decoded into it
    assert not strings_apart.is_apart(fallback)
    assert decode_chunk(fallback) == packed[0] + odd + packed[2]


def test_a_chunk_of_v1_segments_with_json_events_is_compacted_as_v3():
    """A replay stored by v1 (a deep event as extension type 1) compacts into v3 and reads the same."""
    packed = [_pack_events([mouse_move(T, 1, 2), deep(600)]), _pack_events(page_events(T, "https://b.test/", "B"))]
    chunk = encode_chunk(packed, 5)
    assert stored_codec(chunk) == "msgpack-br-v3"
    assert decode_chunk(chunk) == b"".join(packed)
    assert list(iter_packed_events(decode_chunk(chunk)[:len(packed[0])]))[1]["type"] == 3


def test_a_segment_whose_bytes_would_not_come_back_keeps_the_chunk_v1():
    odd = msgpack.packb({"v": 1, "events": []})[:-1] + b"\x91\xd1\x00\x01"  # [1] as int16: not how msgpack packs 1
    assert list(iter_packed_events(odd)) == [1]
    packed = [_pack_events([mouse_move(T, 1, 2)]), odd]
    chunk = encode_chunk(packed, 5)
    assert not strings_apart.is_apart(chunk)
    assert decode_chunk(chunk) == b"".join(packed)


def assert_codec_errors(bad: list[bytes], as_chunks: bool = True) -> None:
    """Every read of each is a CodecError (``as_chunks``: read as a chunk too; a chunk's reader does
    not parse its msgpack)."""
    for data in bad:
        with pytest.raises(CodecError):
            unpack_blob(data)
        with pytest.raises(CodecError):
            list(iter_events(data))
        if as_chunks:
            with pytest.raises(CodecError):
                decode_chunk(data)


def test_corrupted_v3_blobs_are_codec_errors(monkeypatch):
    monkeypatch.setattr(strings_apart, "IDS_APART_FROM", 0)  # an ids stream, however few the ids
    blob = encode_segment([*page_events(T, "https://a.test/", "A"), mouse_move(T + 1, 1, 2)], 5)
    size, numbers_size = int.from_bytes(blob[4:8], "big"), int.from_bytes(blob[8:12], "big")
    structure, numbers = blob[12:12 + size], blob[12 + size:12 + size + numbers_size]
    strings = blob[12 + size + numbers_size:]
    text, ids = brotli.decompress(strings), brotli.decompress(numbers)
    first = id_values(blob)

    def with_ids(ids: list) -> bytes:
        return strings_apart.frame(structure, brotli.compress(msgpack.packb(ids)), strings)

    frame = strings_apart.frame
    assert len(first) > 2
    assert_codec_errors([
        blob[:10],  # cut inside the lengths
        blob[:12 + size // 2],  # cut inside the structure
        blob[:12 + size + numbers_size // 2],  # cut inside the numbers
        blob[:-3],  # cut inside the strings
        blob[:4] + (size + 1000).to_bytes(4, "big") + blob[8:],  # a length past the end
        frame(structure, numbers, brotli.compress(text + b"extra\x00")),  # a string too many
        frame(structure, numbers, brotli.compress(text[:text.index(b"\x00") + 1])),  # strings missing
        frame(structure, numbers, brotli.compress(text[:-1])),  # the last string not ended
        frame(structure, numbers, brotli.compress(b"\xff\xfe\x00")),  # not UTF-8
        frame(structure, brotli.compress(ids + b"\x01"), strings),  # more than the arrays
        frame(structure, brotli.compress(ids[:-1]), strings),  # an array cut
        frame(structure, brotli.compress(b"\x90"), strings),  # no ids for the places
        frame(structure, b"", strings),  # no ids stream
        frame(structure, brotli.compress(b"\xc1" * 3), strings),  # not msgpack
        with_ids([*first, 1]),  # an id too many
        with_ids(first[:-1]),  # an id missing
        with_ids([[1]] * len(first)),  # arrays for ids
        with_ids(["a", "b", *first[2:]]),  # strings for ids
        with_ids([None, *first[1:]]),  # nothing for an id
        with_ids([2**64 - 1, 2**64 - 1, *first[2:]]),  # ids past 64 bits
        # an id whose bytes make a string placeholder once put back (split refuses to write one)
        strings_apart.frame(brotli.compress(msgpack.packb({"v": 1, "events": [{"id": strings_apart.ID}]})),
                            brotli.compress(msgpack.packb([0xC70002])), brotli.compress(b"")),
    ])
    assert_codec_errors([
        frame(brotli.compress(brotli.decompress(structure)[:-2]), numbers, strings),  # the structure cut
        frame(brotli.compress(b"\xc1"), numbers, strings),  # not msgpack
        frame(brotli.compress(brotli.decompress(structure) * 2),
              brotli.compress(msgpack.packb(first * 2)),
              brotli.compress(text * 2)),  # two segments in one blob
    ], as_chunks=False)
    assert unpack_blob(with_ids(first)) == unpack_blob(blob)


def test_corrupted_v1_blobs_and_chunks_are_codec_errors():
    """As v3's and v2's: a v1 blob or chunk cut short or corrupt (a v3 blob whose mark is damaged
    reads as one) was brotli.error."""
    blob = v1_blob([*page_events(T, "https://a.test/", "A"), mouse_move(T + 1, 1, 2)])
    assert_codec_errors([blob[:len(blob) // 2], blob[:1] + b"\xff" * 8 + blob[9:]])
    with pytest.raises(CodecError):
        decode_chunk(b"\xff" * 100, 10)


def test_corrupted_v2_blobs_are_codec_errors():
    blob = v2_blob(_pack_events([*page_events(T, "https://a.test/", "A"), mouse_move(T + 1, 1, 2)]))
    size = int.from_bytes(blob[4:8], "big")
    structure, strings = blob[8:8 + size], blob[8 + size:]
    text = brotli.decompress(strings)
    assert_codec_errors([
        blob[:6],  # cut inside the length
        blob[:8 + size // 2],  # cut inside the structure
        blob[:-3],  # cut inside the strings
        blob[:4] + (size + 1000).to_bytes(4, "big") + blob[8:],  # a length past the end
        v2_frame(structure, brotli.compress(text + b"extra\x00")),  # a string too many
        v2_frame(structure, brotli.compress(text[:text.index(b"\x00") + 1])),  # strings missing
        v2_frame(structure, brotli.compress(text[:-1])),  # the last string not ended
        v2_frame(structure, brotli.compress(b"\xff\xfe\x00")),  # not UTF-8
    ])
    assert_codec_errors([
        v2_frame(brotli.compress(brotli.decompress(structure)[:-2]), strings),  # the structure cut
        v2_frame(brotli.compress(b"\xc1"), strings),  # not msgpack
        v2_frame(brotli.compress(brotli.decompress(structure) * 2), brotli.compress(text * 2)),  # two segments
    ], as_chunks=False)


@pytest.mark.parametrize("version", [2, 3])
def test_decoding_holds_a_few_times_the_streams_whatever_their_number_of_strings(version):
    """A blob of 64 bytes whose streams expand to a million empty strings (a buggy node's, or one put
    in the store) decodes holding a few times its streams: splitting them all at once held 290 times
    its output (a blob of 328 bytes whose streams expand to 200 MB took 13.6 GB)."""
    strings = 1_000_000
    structure = msgpack.packb({"v": 1, "events": [strings_apart.STRING] * strings})
    blob = (v2_frame(brotli.compress(structure), brotli.compress(b"\0" * strings)) if version == 2 else
            strings_apart.frame(brotli.compress(structure), brotli.compress(strings_apart.NO_IDS),
                                brotli.compress(b"\0" * strings)))
    assert len(blob) < 100
    packed, peak = traced_peak(lambda: unpack_blob(blob))
    assert packed == msgpack.packb({"v": 1, "events": [""] * strings})
    assert peak < 4 * (len(structure) + strings)


def test_decoding_holds_a_few_times_the_streams_whatever_their_number_of_ids():
    """The same for a million ids: they are decoded as they are spliced, a batch at a time."""
    ids = 1_000_000
    structure = msgpack.packb({"v": 1, "events": [{"id": strings_apart.ID}] * ids})
    numbers = msgpack.packb([1] * ids)
    blob = strings_apart.frame(*map(brotli.compress, (structure, numbers, b"")))
    assert len(blob) < 200
    packed, peak = traced_peak(lambda: unpack_blob(blob))
    assert packed == msgpack.packb({"v": 1, "events": [{"id": i} for i in range(1, ids + 1)]})
    assert peak < 4 * (len(structure) + len(numbers) + len(packed))


def test_a_blob_whose_ids_decode_past_the_limit_is_refused_holding_a_few_times_it():
    """Each stream within limits.max_decoded_bytes is not enough: an id's placeholder (3 bytes, one of
    the ids stream) decodes to up to 9, so a blob of 74 bytes decoded to 3 times the limit, holding
    7.7 times it. Decoding stops once its output passes the limit."""
    limit = 4 << 20
    places = (limit - 10) // 3
    structure = b"\xdd" + places.to_bytes(4, "big") + strings_apart.ID_PLACEHOLDER * places
    ids = b"\xdd" + places.to_bytes(4, "big") + msgpack.packb(2**64 - 1) + b"\x00" * (places - 1)
    blob = strings_apart.frame(*map(brotli.compress, (structure, ids, b"")))
    assert max(len(structure), len(ids)) <= limit and len(blob) < 100
    def refused() -> None:
        with pytest.raises(CodecError, match="past"):
            unpack_blob(blob, limit)
        with pytest.raises(CodecError, match="past"):
            decode_chunk(blob, None, limit)

    _, peak = traced_peak(refused)
    assert peak < 5 * limit  # the streams, the output and a batch's


def test_compacting_a_blob_of_a_million_ids_holds_a_few_times_its_streams():
    """A chunk takes a v3 blob's ids stream as it is, but the first difference: unpacked as a list and
    packed again, a stream of 1-byte differences (a buggy node's blob, or one put in the store) held 34
    times the blob's structure stream."""
    places = 1_000_000
    structure = msgpack.packb({"v": 1, "events": [strings_apart.ID] * places})
    blob = strings_apart.frame(*map(brotli.compress, (structure, msgpack.packb([1] + [0] * (places - 1)), b"")))
    packed = unpack_blob(blob)
    chunk, peak = traced_peak(lambda: encode_chunk([blob, blob], 5))
    assert decode_chunk(chunk) == packed * 2
    assert peak < 4 * len(structure)


@pytest.mark.parametrize("ids_apart", [False, True])
def test_ingest_refuses_what_reads_would_refuse(ids_apart, monkeypatch):
    """A segment whose streams each fit limits.max_decoded_bytes but whose documents decode past it is
    refused when written (a read would refuse it); one that is written reads back within the limit."""
    monkeypatch.setattr(strings_apart, "IDS_APART_FROM", 0 if ids_apart else strings_apart.IDS_APART_FROM)
    events = [{"type": 5, "timestamp": T, "data": {"payload": "x" * 600_000, "k": [1.5] * 66_000, "id": 7}}]
    size = len(_pack_events(events))
    for limit in (size - 1, size, size + 1, 2 * size):
        try:
            blob = encode_segment(copy.deepcopy(events), 5, limit)
        except CodecError:
            assert limit < size + 32  # refused only near the limit: what the bound adds
            continue
        assert stored_codec(blob) == "msgpack-br-v3" and unpack_blob(blob, limit) == _pack_events(events)
    with pytest.raises(CodecError):
        encode_segment(copy.deepcopy(events), 5, size - 1)


def test_a_chunk_decodes_the_same_batch_by_batch_and_to_any_segments_end(monkeypatch):
    """Decoding splices a batch of the structure at a time; a batch boundary anywhere (every few
    bytes here), and a segment wanted anywhere in the chunk, the last one included, give v1's bytes."""
    events = [page_events(T, "https://a.test/", "A"), [mouse_move(T + 1, 1, 2)], page_events(T, "https://b.test/", "B"),
              [{"type": 5, "timestamp": T, "data": {"payload": "é" * 70_000, "k": ["", "a" * 300]}}]]
    packed = [_pack_events(e) for e in events]
    chunk = encode_chunk([encode_segment(copy.deepcopy(e), 5) for e in events], 5)
    whole = b"".join(packed)
    for batch in (1, 7, 64, strings_apart.BATCH):
        monkeypatch.setattr(strings_apart, "BATCH", batch)
        assert decode_chunk(chunk) == whole
        end = 0
        for segment in packed:
            end += len(segment)
            assert decode_chunk(chunk, end)[end - len(segment):end] == segment


@pytest.mark.parametrize("apart_from", [0, strings_apart.IDS_APART_FROM])
def test_random_documents_near_the_placeholders_bytes_round_trip(apart_from, monkeypatch):
    """Ids and other values whose bytes come near a placeholder's (c7 00 02, c7 00 03), in random
    documents: every one reads back as v1 bytes, stored as v3 or, when it cannot hold them, v1 (ids
    taken out however few, and as by default)."""
    monkeypatch.setattr(strings_apart, "IDS_APART_FROM", apart_from)
    rng = random.Random(13)
    scalars = [0, 2, 3, 0xC7, 0xC700, 0xC701, 0xC70002, 0xC70003, 0x1C7, 2**31 - 1, 2**31, -1, 1.5, None, True,
               "", "a", "\x02", "\x03", "é" * 40]

    def value(depth: int) -> object:
        roll = rng.random()
        if depth > 3 or roll < 0.5:
            return rng.choice(scalars)
        if roll < 0.75:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {rng.choice(["id", "parentId", "nextId", "x", "k"]): value(depth + 1) for _ in range(rng.randrange(4))}

    kinds = set()
    for _ in range(400):
        events = [{"type": 3, "timestamp": T, "data": value(0)} for _ in range(rng.randrange(1, 4))]
        blob = encode_segment(copy.deepcopy(events), 5)
        kinds.add(stored_codec(blob))
        assert unpack_blob(blob) == _pack_events(events)
        assert list(iter_events(blob)) == events
    assert kinds == {"msgpack-br-v1", "msgpack-br-v3"}


def test_the_c_walk_is_built_and_gives_the_python_walks_bytes(monkeypatch):
    """make test builds server/_apart.c (scripts/ensure-compiler.sh): without it ingest walks in Python at
    several times the CPU. On recordings' segments and on random documents of every JSON type and size
    class of msgpack (fixed, 8-, 16-, 32-bit lengths and numbers; ids in and out of range; keys that are
    not strings; what v3 cannot hold), both walks give the same streams or both refuse."""
    assert strings_apart._split_in_c is not None, "server/_apart.c was not built: see scripts/ensure-compiler.sh"
    in_c = strings_apart._split_in_c
    walked_in_c = []

    def counted(*args):
        taken = in_c(*args)
        walked_in_c.append(taken is not None)
        return taken

    def both(documents, json: bool = True) -> bool:  # each walk gets the documents anew: Python's changes them
        """Whether both walks stored the documents (as the same streams) rather than both refused them."""
        results = []
        for walk in (counted, None):
            walked_in_c.clear()
            monkeypatch.setattr(strings_apart, "_split_in_c", walk)
            try:
                results.append(strings_apart.split(documents()))
            except strings_apart.CannotHold:
                results.append(None)
            if walk is counted:  # the C walk took every JSON document (or refused one), and none other
                assert all(walked_in_c) if json else not any(walked_in_c)
        assert results[0] == results[1]
        return results[0] is not None

    for path in RECORDINGS[:2]:
        for segment in cut_segments(load_recording(path), 5.0):
            text = orjson.dumps(segment)
            assert both(lambda text=text: [{"v": 1, "events": orjson.loads(text)}])
    numbers = [0, 1, 31, 127, 128, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63,
               2**64 - 1, -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63,
               0.0, -0.0, 1.5, 1e300, float("inf"), True, False, None]
    strings = ["", "a", "é", "\U0001F600", "x" * 31, "x" * 32, "x" * 255, "x" * 256, "x" * 65536]
    keys = ["id", "parentId", "nextId", "x", "", "é" * 20, "k" * 300, 7, -2**63, None, 1.5, True]
    cannot_hold = [2**64, -2**63 - 1, "\0", "\ud83d"]

    large = [list(range(65535)), list(range(65536)), {f"k{i}": i for i in range(65535)},
             {f"k{i}": i for i in range(65536)}]

    def documents(seed: int) -> list:
        rng = random.Random(seed)

        def value(depth: int) -> object:
            roll = rng.random()
            if depth > 3 or roll < 0.5:
                return rng.choice(numbers if rng.random() < 0.6 else strings)
            if rng.random() < 0.01:  # 16- and 32-bit lengths (of numbers: neither walk changes them)
                return rng.choice(large)
            size = rng.choice([0, 1, 2, 15, 16, 17])
            if roll < 0.75:
                return [value(depth + 1) for _ in range(size)]
            return {(rng.choice(keys) if rng.random() < 0.3 else f"k{i}"): value(depth + 1) for i in range(size)}

        events = [value(0) for _ in range(rng.randrange(1, 4))]
        if rng.random() < 0.1:
            events.append([rng.choice(cannot_hold)])
        return [{"v": 1, "events": events}, {"v": 1, "events": [value(0)]}][:rng.randrange(1, 3)]

    held = sum(both(lambda seed=seed: documents(seed)) for seed in range(300))
    assert 200 < held < 300  # both walks stored most as v3, and refused some
    def nested(levels: int) -> list:  # "events" and lists in it, the innermost ``levels`` below the document
        inner: list = ["x"]
        for _ in range(levels - 1):
            inner = [inner, 1]
        return [{"v": 1, "events": inner}]

    assert both(lambda: nested(strings_apart.MAX_DEPTH))  # v3 holds 500 levels
    assert not both(lambda: nested(strings_apart.MAX_DEPTH + 1))  # not 501
    for value in [*cannot_hold, {"\ud83d": 1}, {2**64: 1}]:
        assert not both(lambda value=value: [{"v": 1, "events": [{"type": 5, "data": [value]}]}])
    both(lambda: [{"x": (1, "a"), "y": b"\xc7\x00\x02", "z": msgpack.ExtType(1, b"")}], json=False)  # Python's


@pytest.mark.parametrize("seed", range(4))
def test_odd_documents_read_back_as_v1_stored_alone_and_compacted(seed):
    """Random documents of odd values — ids as bools, floats, negative, past 2**31, strings; keys of an
    id at any depth, next to other keys; NUL in strings and keys; bin and extension payloads holding a
    placeholder's bytes; nesting near msgpack's limit; many ids, so they go apart — are stored as v3
    or v1 but always read back as v1's bytes, alone and in a chunk with their decompressed bytes."""
    ids = [0, 1, 127, 128, 0xC7, 0xC700, 0xC701, 0xC70002, 0xC70003, 0x1C7, 2**31 - 1, 2**31, 2**63, 2**64 - 1,
           -1, -0xC7, -2**63, True, False, 1.5, -0.0, None, "7", ""]
    scalars = [*ids, "a", "\0", "x\0y", "é", "\U0001F600", "z" * 300, b"", b"\xc7\x00\x02", b"\xc7\x00\x03",
               msgpack.ExtType(1, b"{}"), msgpack.ExtType(5, b"\xc7\x00\x02"), [], {}]
    keys = ["id", "parentId", "nextId", "x", "", "\0", 1, 0xC7]

    def documents(rng: random.Random) -> list:
        pool = scalars if rng.random() < 0.5 else [*ids[:7], *ids[9:], "a", "é", b""]  # half: no placeholder's bytes

        def value(depth: int) -> object:
            roll = rng.random()
            if depth > 6 or roll < 0.45:
                return rng.choice(pool)
            if roll < 0.7:
                return [value(depth + 1) for _ in range(rng.randrange(5))]
            return {rng.choice(keys): value(depth + 1) for _ in range(rng.randrange(5))}

        events = [{"type": 3, "timestamp": T, "data": value(0)} for _ in range(rng.randrange(1, 4))]
        if rng.random() < 0.5:  # past IDS_APART_FROM
            events.append({"type": 3, "data": [{"id": rng.choice(ids[:7]), "parentId": rng.randrange(2**31)}
                                               for _ in range(150)]})
        if rng.random() < 0.05:  # 2 levels each, near MAX_DEPTH
            node: dict = {"id": 1}
            for _ in range(rng.choice([247, 248, 249, 250, 260])):
                node = {"id": 2, "c": [node]}
            events.append(node)
        return events

    kinds = set()
    for case in range(250):
        packed = _pack_events(documents(random.Random(f"{seed}-{case}")))
        blob = encode_segment(documents(random.Random(f"{seed}-{case}")), 5)
        kinds.add(stored_codec(blob))
        assert unpack_blob(blob) == packed
        stored = blob if strings_apart.is_apart(blob) else packed  # as compaction hands them over
        assert decode_chunk(encode_chunk([stored, packed, stored], 5)) == packed * 3
    assert kinds == {"msgpack-br-v1", "msgpack-br-v3"}
