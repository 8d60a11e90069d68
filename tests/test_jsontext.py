"""server/jsontext.py: JSON bounds checked on the text, and JSON deeper than the C parser goes."""

from __future__ import annotations

import json
import random

import pytest

from replayd.server import jsontext
from replayd.server.jsontext import JsonTooLarge, check_bounds, dumps, loads

TRICKY_STRINGS = ["[[[", "]]}}", '"', "\\", '\\"[', "a[b]{c}\"\\", "é😀", "", "\n\t,,,"]


def random_value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 10 or roll < 0.35:
        return rng.choice([None, True, False, 0, -1.5e10, 2**70, 3.25, *TRICKY_STRINGS])
    if roll < 0.65:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(TRICKY_STRINGS) + str(i): random_value(rng, depth + 1) for i in range(rng.randint(0, 4))}


def nesting(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (list, dict)):
            deepest = max(deepest, depth)
            stack += [(child, depth + 1) for child in (node.values() if isinstance(node, dict) else node)]
    return deepest


def values(value) -> int:
    count, stack = 0, [value]
    while stack:
        node = stack.pop()
        count += 1
        stack += node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return count


def refused(data: bytes, max_values: int = 10**9, max_depth: int = 10**6) -> str | None:
    try:
        check_bounds(data, max_values, max_depth)
    except JsonTooLarge as over:
        return over.limit
    return None


@pytest.mark.parametrize("window", [7, jsontext._WINDOW])
def test_depth_and_value_bounds_agree_with_the_parsed_document(window, monkeypatch):
    """Brackets, quotes and backslashes inside strings neither deepen nor hide the nesting, also
    where the text is cut into windows (a 7-byte window cuts strings and escapes everywhere)."""
    monkeypatch.setattr(jsontext, "_WINDOW", window)
    rng = random.Random(10)
    for _ in range(3000):
        value = random_value(rng)
        text = json.dumps(value, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1])).encode()
        depth = nesting(value)
        # max_depth 0 would always scan; the scan runs when there are more containers than the limit
        assert refused(text, max_depth=max(depth - 1, 0)) == ("max_nesting_depth" if depth else None)
        assert refused(text, max_depth=depth) is None
        assert refused(text, max_values=values(value) - 1) == "max_json_values"  # never an under-count


def test_the_depth_scan_sees_through_strings_full_of_brackets():
    inside = json.dumps(["[" * 500 + '\\"' + "{" * 500, '"]]]]', "\\"]).encode()
    deep = b"[" * 150 + inside + b"]" * 150
    assert refused(deep, max_depth=151) is None
    assert refused(deep, max_depth=150) == "max_nesting_depth"
    with pytest.raises(JsonTooLarge, match=r"nests deeper than limits.max_nesting_depth \(150\)"):
        check_bounds(deep, 10**6, 150)
    with pytest.raises(JsonTooLarge, match=r"has more than limits.max_json_values \(10\) JSON values"):
        check_bounds(b"[" + b"[]," * 10 + b"[]]", 10, 100)


def test_documents_deeper_than_the_c_parser_round_trip():
    """Python 3.12+ stops json.loads/json.dumps at a fixed depth whatever the recursion limit (3.11 at it)."""
    depth = 30_000
    text = '[{"pad":[1,2,{"x":"]"}]},' + '{"a":[' * depth + '"deep"' + "]}" * depth + ',"after"]'
    value = loads(text.encode())
    assert value[0] == {"pad": [1, 2, {"x": "]"}]} and value[2] == "after"
    assert nesting(value) == 2 * depth + 1
    assert dumps(value) == text
    with pytest.raises(json.JSONDecodeError):
        loads(text[:-1])


@pytest.mark.parametrize("depth", [1_000, 1_023, 1_024, 1_025, 1_500, 5_000])
def test_documents_around_orjsons_depth_limit_parse_as_json_does(depth):
    """orjson refuses documents deeper than 1,024 levels; loads gives them to the json path, which parses them."""
    text = '{"events":' + "[" * depth + '"x"' + "]" * depth + "}"
    value = loads(text.encode())
    assert nesting(value) == depth + 1
    assert dumps(value) == text


@pytest.mark.parametrize("text", [
    '[NaN, Infinity, -Infinity]',
    '[18446744073709551616, -9223372036854775809]',  # past 64 bits
])
def test_what_orjson_refuses_and_json_takes_still_parses(text):
    expected = json.loads(text)
    assert json.dumps(loads(text.encode())) == json.dumps(expected)
    assert json.dumps(loads(text.encode("utf-16"))) == json.dumps(expected)  # json detects UTF-16; orjson does not


@pytest.mark.parametrize("text", [
    '18446744073709551616', '-9223372036854775809', '[1,18446744073709551616]', '{"a":-9223372036854775809}',
    '{"a": \t\n 18446744073709551616 }', '[\n-123456789012345678901234567890\n]', '[10000000000000000000.5e3]',
    '{"s": "a: 18446744073709551616,"}',  # looks like a number inside a string: json decides, the same value
    ' \r\n18446744073709551616\r\n', '{"a":\r-18446744073709551616\r}', '[\t18446744073709551616\t]',
    '[' + ' ' * 100 + '18446744073709551616]',  # past the whitespace looked at: json decides
    '["' + '1234567890123456789 ' * 2000 + '", 18446744073709551616]',  # past the runs looked at: json decides
])
def test_integers_past_64_bits_keep_every_digit_wherever_they_stand(text):
    assert json.dumps(loads(text.encode())) == json.dumps(json.loads(text))


def test_documents_with_long_digit_runs_parse_as_json_does():
    """Integers, floats and strings of 15-25 digits, in every place a value or a key can stand, with every
    kind of JSON whitespace around them: the same values as json's."""
    rng = random.Random(19)
    space = [" ", "\t", "\r", "\n", ""]

    def scalar() -> str:
        digits = str(rng.randrange(10 ** rng.randrange(15, 26)))
        return rng.choice([digits, "-" + digits, digits + ".5", digits + "e3", json.dumps(digits),
                           json.dumps("id " + digits + "x"), str(rng.random())])

    def value(depth: int) -> str:
        pad = rng.choice(space) * rng.randrange(3)
        if depth > 3 or rng.random() < 0.5:
            return pad + scalar() + pad
        if rng.random() < 0.5:
            return "[" + ",".join(value(depth + 1) for _ in range(rng.randrange(4))) + "]"
        members = (f"{pad}{json.dumps(scalar())}{pad}:{value(depth + 1)}" for _ in range(rng.randrange(4)))
        return "{" + ",".join(members) + "}"

    for _ in range(2000):
        text = value(0)
        assert json.dumps(loads(text.encode())) == json.dumps(json.loads(text)), text


def test_long_digit_runs_inside_strings_are_parsed_by_orjson(monkeypatch):
    """Ids, hashes and numbers in code samples (rustdoc's i64::MIN) are 19 digits and more inside strings:
    they do not send a segment to json's parser, three times slower."""
    texts = ['{"textContent":"9223372036854775808"}', '["ab18446744073709551616cd", "x 18446744073709551616"]',
             '["(-9223372036854775809)", "0.1234567890123456789012"]', '[1.00000000000000000001]']
    expected = [json.loads(text) for text in texts]
    monkeypatch.setattr(jsontext.json, "loads", None)  # not called
    assert [loads(text.encode()) for text in texts] == expected


@pytest.mark.parametrize("text", [
    '["\\ud800 lone", {"k\\udfff": ["\\udc00"]}, "\\ud83d\\ude00 pair", "\\\\ud800 no escape"]',
    '["\\ud800 lone", {"k\\udfff": ["\\udc00"]}, "\\ud83d\\ude00 pair", "\\\\ud800 no escape"]' + " " * 2000 * 1024,
])
def test_lone_surrogates_become_replacement_characters(text):
    """orjson refuses lone surrogate escapes, json keeps them as strings UTF-8 cannot encode; loads gives U+FFFD."""
    expected = ["\ufffd lone", {"k\ufffd": ["\ufffd"]}, "\U0001f600 pair", "\\ud800 no escape"]
    assert loads(text.encode()) == expected
    assert loads(text.encode("utf-16")) == expected
    assert loads(text) == expected
    assert loads(text.replace("\\ud800", "\ud800", 1).encode("utf-8", "surrogatepass")) == expected  # raw, not escaped


def test_loads_gives_json_loads_values_on_random_documents():
    rng = random.Random(13)
    for _ in range(300):
        text = json.dumps(random_value(rng), ensure_ascii=rng.random() < 0.5)
        assert loads(text.encode()) == json.loads(text)


def test_invalid_json_is_still_refused_with_jsons_message():
    with pytest.raises(json.JSONDecodeError) as ours:
        loads(b'[1, 2,]')
    with pytest.raises(json.JSONDecodeError) as jsons:  # its wording changes between Python versions
        json.loads('[1, 2,]')
    assert str(ours.value) == str(jsons.value)
