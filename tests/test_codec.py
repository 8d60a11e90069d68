"""server/codec.py and server/strings_apart.py: stored segments (v2, strings apart; v1 still read) and
compacted chunks, on real recordings and on what v2 cannot hold."""

from __future__ import annotations

import copy
import json
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

T = 1_795_650_000_000


def v1_blob(events: list, quality: int = 5) -> bytes:
    """A segment as replayd stored it before v2."""
    return brotli.compress(_pack_events(events), quality=quality)


def deep(levels: int) -> dict:
    node: dict = {"type": 3, "textContent": "bottom", "id": 1}
    for i in range(levels):
        node = {"type": 2, "tagName": "div", "attributes": {"class": "x"}, "childNodes": [node], "id": i + 2}
    return {"type": 3, "timestamp": T, "data": {"source": 0, "adds": [{"parentId": 1, "node": node}]}}


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.name.split(".")[0])
def test_recordings_round_trip_in_fewer_bytes(path):
    """Every segment of every recording decodes to its events, and to the very bytes v1 readers get;
    stored and compacted, v2 takes fewer bytes than v1 at the same quality."""
    segments = [orjson.dumps(s) for s in cut_segments(load_recording(path), 5.0)]
    blobs = [encode_segment(orjson.loads(s), 5) for s in segments]
    assert {stored_codec(b) for b in blobs} == {"msgpack-br-v2"}
    packed = []
    for text, blob in zip(segments, blobs, strict=True):
        events = orjson.loads(text)
        assert list(iter_events(blob)) == events
        packed.append(unpack_blob(blob))
        assert packed[-1] == _pack_events(events)  # what every reader downstream expects
        assert json.loads(segment_json(blob)) == events
    v1 = sum(len(v1_blob(orjson.loads(s))) for s in segments)
    assert sum(map(len, blobs)) < 0.95 * v1
    chunk = encode_chunk(packed, 5)
    assert strings_apart.is_v2(chunk)
    assert decode_chunk(chunk) == b"".join(packed)
    assert decode_chunk(chunk, len(packed[0]))[:len(packed[0])] == packed[0]
    assert len(chunk) < 0.95 * len(brotli.compress(b"".join(packed), quality=5, lgwin=24))


@pytest.mark.parametrize("events", [
    [mouse_move(T, 1, 2), {"type": 5, "timestamp": T, "data": {"payload": "nul \x00 inside"}}],
    [mouse_move(T, 1, 2), deep(600)],  # deeper than msgpack's 511 levels
    [{"type": 5, "timestamp": T, "data": {"big": 2**70, "text": "around"}}],  # an integer past 64 bits
    # packs as ce 00 c7 00 02: a placeholder's bytes
    [{"type": 3, "timestamp": T, "data": {"id": 0xC70002, "text": "x"}}],
], ids=["nul", "deep", "bigint", "placeholder-bytes"])
def test_what_v2_cannot_hold_is_stored_as_v1_with_events_untouched(events):
    before = dumps(events)  # deep documents compare as text: == would recurse past Python's limit
    blob = encode_segment(events, 5)
    assert stored_codec(blob) == "msgpack-br-v1" and not strings_apart.is_v2(blob)
    assert dumps(list(iter_events(blob))) == before
    assert dumps(events) == before  # the strings taken out before v2 gave up are back in place


def test_lone_surrogates_are_refused_as_v1_refused_them_and_replacement_characters_are_v2():
    """Ingest turns a lone surrogate into U+FFFD before encoding (UTF-8 cannot hold one): the codec
    refuses one as v1 did, never writing a blob that would not decode."""
    surrogate = [{"type": 5, "timestamp": T, "data": {"text": "half \ud83d of an emoji", "more": "x"}}]
    with pytest.raises(UnicodeEncodeError):
        encode_segment(surrogate, 5)
    replaced = [{"type": 5, "timestamp": T, "data": {"text": "half \ufffd of an emoji"}}]
    blob = encode_segment(copy.deepcopy(replaced), 5)
    assert stored_codec(blob) == "msgpack-br-v2" and list(iter_events(blob)) == replaced


@pytest.mark.parametrize("events", [
    [],
    [{"type": 4, "timestamp": T, "data": {"href": "", "width": 1, "height": 2}}],  # an empty string
    [{"type": 5, "timestamp": T, "data": {"payload": "é" * 3_000_000, "k": ["", "a", None, 1.5, True]}}],
    [*page_events(T, "https://a.test/", "A"), {"type": 5, "timestamp": T, "data": {"tag": "x", "payload": {}}}],
], ids=["empty", "empty-string", "huge-string", "page"])
def test_edge_cases_round_trip_as_v2(events):
    blob = encode_segment(copy.deepcopy(events), 5)
    assert stored_codec(blob) == "msgpack-br-v2"
    assert list(iter_events(blob)) == events
    assert unpack_blob(blob) == _pack_events(events)


def test_v1_blobs_and_chunks_stay_readable():
    events = [*page_events(T, "https://a.test/", "A"), mouse_move(T + 1, 1, 2), deep(600)]
    blob = v1_blob(events)
    assert dumps(list(iter_events(blob))) == dumps(events)
    assert unpack_blob(blob) == _pack_events(events)
    packed = [_pack_events(events[:2]), _pack_events(events[2:])]
    old_chunk = brotli.compress(b"".join(packed), quality=5, lgwin=24)  # as compaction wrote chunks before v2
    assert decode_chunk(old_chunk) == b"".join(packed)


def test_a_chunk_takes_v2_blobs_as_they_are_and_mixes_them_with_decompressed_segments():
    """Compaction hands a segment stored as v2 over as its blob: the chunk is the same bytes as from
    the decompressed segments, without unpacking them; a chunk that falls back to v1 decodes them."""
    events = [page_events(T, "https://a.test/", "A"), [mouse_move(T + 1, 1, 2)], page_events(T, "https://b.test/", "B")]
    blobs = [encode_segment(copy.deepcopy(e), 5) for e in events]
    packed = [_pack_events(e) for e in events]
    chunk = encode_chunk(blobs, 5)
    assert chunk == encode_chunk(packed, 5) == encode_chunk([blobs[0], packed[1], blobs[2]], 5)
    assert decode_chunk(chunk) == b"".join(packed)
    odd = msgpack.packb({"v": 1, "events": []})[:-1] + b"\x91\xd1\x00\x01"  # [1] as int16: not msgpack-python's
    fallback = encode_chunk([blobs[0], odd, blobs[2]], 5)  # v1: the blobs decoded into it
    assert not strings_apart.is_v2(fallback)
    assert decode_chunk(fallback) == packed[0] + odd + packed[2]


def test_a_chunk_of_v1_segments_with_json_events_is_compacted_as_v2():
    """A replay stored by v1 (a deep event as extension type 1) compacts into v2 and reads the same."""
    packed = [_pack_events([mouse_move(T, 1, 2), deep(600)]), _pack_events(page_events(T, "https://b.test/", "B"))]
    chunk = encode_chunk(packed, 5)
    assert strings_apart.is_v2(chunk)
    assert decode_chunk(chunk) == b"".join(packed)
    assert list(iter_packed_events(decode_chunk(chunk)[:len(packed[0])]))[1]["type"] == 3


def test_a_segment_whose_bytes_would_not_come_back_keeps_the_chunk_v1():
    odd = msgpack.packb({"v": 1, "events": []})[:-1] + b"\x91\xd1\x00\x01"  # [1] as int16: not how msgpack packs 1
    assert list(iter_packed_events(odd)) == [1]
    packed = [_pack_events([mouse_move(T, 1, 2)]), odd]
    chunk = encode_chunk(packed, 5)
    assert not strings_apart.is_v2(chunk)
    assert decode_chunk(chunk) == b"".join(packed)


def test_corrupted_v2_blobs_are_codec_errors():
    blob = encode_segment([*page_events(T, "https://a.test/", "A"), mouse_move(T + 1, 1, 2)], 5)
    size = int.from_bytes(blob[4:8], "big")
    structure, strings = blob[8:8 + size], blob[8 + size:]
    text = brotli.decompress(strings)
    bad = [
        blob[:6],  # cut inside the length
        blob[:8 + size // 2],  # cut inside the structure
        blob[:-3],  # cut inside the strings
        blob[:4] + (size + 1000).to_bytes(4, "big") + blob[8:],  # a length past the end
        strings_apart.frame(structure, brotli.compress(text + b"extra\x00")),  # a string too many
        strings_apart.frame(structure, brotli.compress(text[:text.index(b"\x00") + 1])),  # strings missing
        strings_apart.frame(structure, brotli.compress(text[:-1])),  # the last string not ended
        strings_apart.frame(structure, brotli.compress(b"\xff\xfe\x00")),  # not UTF-8
        strings_apart.frame(brotli.compress(brotli.decompress(structure)[:-2]), strings),  # the structure cut
        strings_apart.frame(brotli.compress(b"\xc1"), strings),  # not msgpack
        strings_apart.frame(brotli.compress(brotli.decompress(structure) * 2), strings),  # two segments in one blob
    ]
    for data in bad:
        with pytest.raises(CodecError):
            unpack_blob(data)
        with pytest.raises(CodecError):
            list(iter_events(data))
    with pytest.raises(CodecError):
        decode_chunk(bad[4])


def test_decoding_holds_a_few_times_the_streams_whatever_their_number_of_strings():
    """A blob of 64 bytes whose streams expand to a million empty strings (a buggy node's, or one put
    in the store) decodes holding a few times its streams: splitting them all at once held 290 times
    its output (a blob of 328 bytes whose streams expand to 200 MB took 13.6 GB)."""
    strings = 1_000_000
    structure = msgpack.packb({"v": 1, "events": [strings_apart.STRING] * strings})
    blob = strings_apart.frame(brotli.compress(structure), brotli.compress(b"\0" * strings))
    assert len(blob) < 100
    tracemalloc.start()
    try:
        packed = unpack_blob(blob)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert packed == msgpack.packb({"v": 1, "events": [""] * strings})
    assert peak < 4 * (len(structure) + strings)


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
