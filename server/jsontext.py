"""JSON text the service parses or writes, bounded and independent of the interpreter's recursion limit.

``check_bounds`` refuses, before any parsing, a document whose parse would cost too much memory or
nest too deep. It looks at the bytes at C speed (``bytes.translate`` and ``bytes.count``): parsed
JSON costs far more than its text (an empty list is two bytes of text and 64 of Python objects), so
a byte limit alone does not bound a parse; the number of values does.

``loads`` parses with orjson (the fastest parser here: a fifth to a third less CPU than ``json.loads``
on rrweb segments) and gives what orjson refuses to ``json.loads``, so that the same documents are
accepted as before and nothing well-formed is dropped: orjson stops at a fixed depth of 1,024, and
refuses some text ``json`` takes (lone surrogate escapes, ``NaN``, UTF-16), and it reads integers past
64 bits as floats, so text with a run of 19 digits or more (found at C speed, ~1 ms per MB) goes to
``json`` too.
``loads`` and ``dumps`` also handle documents nested deeper than the C parser and encoder of ``json``
go: since Python 3.12 they stop at a fixed depth (about 1,500 on 3.12 and 10,000 on 3.13) whatever
``sys.setrecursionlimit`` says, while rrweb documents can nest deeper. Such documents fall back to
the loops below, which keep their own stack instead of recursing.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import math
import re
from itertools import accumulate
from typing import Any

import orjson

_OPEN_OR_COMMA = b"[{,"
_BRACKET_OR_QUOTE = b'[]{}"'
_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_ALL_BUT_OPEN_OR_COMMA = bytes(b for b in range(256) if b not in _OPEN_OR_COMMA)
_ALL_BUT_BRACKET_OR_QUOTE = bytes(b for b in range(256) if b not in _BRACKET_OR_QUOTE)
_DEPTH_STEP = tuple(1 if b == ord("[") else -1 if b == ord("]") else 0 for b in range(256))
_ESCAPED_QUOTE_OR_BACKSLASH = re.compile(rb'\\[\\"]')  # from the left: a quote after an escaped backslash stays
_WINDOW = 1 << 20  # bytes of text looked at at once when looking for the structure
_ROOMY = 64  # with this much room below the limit, jump a stretch as long as the room
_FINE_STRETCH = 4096  # else count this many brackets, walking them one by one if they could cross it


class JsonTooLarge(ValueError):
    """A document over a bound; ``limit`` names the setting (``max_json_values`` or ``max_nesting_depth``)."""

    def __init__(self, limit: str, detail: str):
        super().__init__(detail)
        self.limit = limit


def check_bounds(data: bytes, max_values: int, max_depth: int) -> None:
    """Refuse ``data`` if it could hold more than ``max_values`` JSON values or nest deeper than ``max_depth``.

    Every value but the first follows a ``,`` or opens a container, so ``[``, ``{`` and ``,`` bound
    the count. Those inside strings are counted too: an over-count for ordinary text, but it also
    covers JSON that the scrubber parses out of strings (request bodies).
    """
    marks = data.translate(_BRACES_AS_BRACKETS, _ALL_BUT_OPEN_OR_COMMA)
    if len(marks) + 1 > max_values:
        raise JsonTooLarge("max_json_values", f"has more than limits.max_json_values ({max_values}) JSON values")
    # Fewer containers than the limit cannot nest past it; only bigger documents are walked.
    if marks.count(b"[") > max_depth and _deeper_than(_structure(data), max_depth):
        raise JsonTooLarge("max_nesting_depth", f"nests deeper than limits.max_nesting_depth ({max_depth})")


def _structure(data: bytes) -> bytes:
    """The brackets of ``data`` that are outside strings, braces written as brackets (valid JSON assumed:
    anything else is refused by the parser after this). A window of the text at a time, so that the
    copies made on the way stay small."""
    pieces = []
    in_string = False
    start = 0
    while start < len(data):
        stop = min(len(data), start + _WINDOW)
        while stop < len(data) and data[stop - 1] == ord("\\"):  # an escape stays in one window
            stop += 1
        window = data[start:stop]
        if b'\\"' in window:  # escaped quotes (and the escaped backslashes before them) do not end a string
            window = _ESCAPED_QUOTE_OR_BACKSLASH.sub(b"", window)
        marks = (b'"' if in_string else b"") + window.translate(_BRACES_AS_BRACKETS, _ALL_BUT_BRACKET_OR_QUOTE)
        in_string = marks.count(b'"') % 2 == 1
        if in_string:  # the string goes on in the next window: close it here, open it again there
            marks += b'"'
        # Quotes now alternate open, close. Removing two adjacent ones either drops a string with no
        # bracket inside or joins two strings with no bracket between them: the brackets outside
        # strings stay the same. What remains are the few strings that hold brackets.
        marks = marks.replace(b'""', b"")
        pieces.append(b"".join(marks.split(b'"')[::2]) if b'"' in marks else marks)
        start = stop
    return b"".join(pieces)


def _deeper_than(brackets: bytes, limit: int) -> bool:
    """Whether ``[`` / ``]`` nest deeper than ``limit``: a stretch no longer than the room left below
    the limit cannot cross it, so only its count of opening brackets is needed."""
    depth, start, end = 0, 0, len(brackets)
    while start < end:
        room = limit - depth
        stop = min(end, start + (room if room >= _ROOMY else _FINE_STRETCH))
        opens = brackets.count(b"[", start, stop)
        if room < stop - start and depth + opens > limit:  # close to the limit: walk this stretch
            levels = list(accumulate(map(_DEPTH_STEP.__getitem__, brackets[start:stop]), initial=depth))
            if max(levels) > limit:
                return True
            depth = levels[-1]
        else:
            depth += 2 * opens - (stop - start)
        start = stop
    return False


# --- deep documents ----------------------------------------------------------------------------

_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19  # -9223372036854775809 is the shortest integer orjson would turn into a float
_DIGITS = re.compile(rb"0+")
_BEFORE_A_VALUE = frozenset(b"[,:")  # what a number follows (past a minus sign and whitespace)
_AFTER_DIGITS = frozenset(b",]} \t\r\n.eE")  # what follows a number's integer digits
# Bounds on the look (past either, the run counts as a number, and json decides): crafted text must not
# make this cost more than json's parse would.
_RUNS_LOOKED_AT = 1_000
_WHITESPACE_LOOKED_AT = 64


def _may_hold_long_integer(data: bytes) -> bool:
    """Whether ``data`` may hold an integer of 19 digits or more, which orjson turns into a float and json
    does not. A run of 19 digits inside a string (an id, a number in a code sample) mostly sits between
    characters no JSON number can: a quote or a letter before or after it."""
    digits = data.translate(_DIGITS_AS_ZERO)
    start = digits.find(_LONG_NUMBER)  # the first 19 digits of a run (bytes.find: a regex would try every digit)
    for _ in range(_RUNS_LOOKED_AT):
        if start < 0:
            return False
        end = _DIGITS.match(digits, start).end()  # type: ignore[union-attr]  # it starts with digits
        if end == len(data) or data[end] in _AFTER_DIGITS:
            before = start - 1
            if before >= 0 and data[before] == 0x2D:  # "-"
                before -= 1
            stop = max(-1, before - _WHITESPACE_LOOKED_AT)
            while before > stop and data[before] in b" \t\r\n":
                before -= 1
            if before == stop or data[before] in _BEFORE_A_VALUE:  # the start, or past the bound
                return True
        start = digits.find(_LONG_NUMBER, end)
    return start >= 0


def loads(data: bytes | str) -> Any:
    """``json.loads`` at orjson's speed, also for documents deeper than either C parser goes."""
    if isinstance(data, bytes) and not _may_hold_long_integer(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # deeper than 1,024 levels, or text only json takes (see above); json decides, and words the error
    try:
        value = json.loads(data)
    except RecursionError:
        text = data if isinstance(data, str) else data.decode(json.detect_encoding(data), "surrogatepass")
        value = _loads_with_own_stack(text)
    return _without_lone_surrogates(value) if _may_hold_surrogates(data) else value


# --- lone surrogates ---------------------------------------------------------------------------
# JSON may escape half of a surrogate pair alone (``"\ud800"``: a browser's JSON.stringify writes one
# for a string cut inside an emoji), and json then gives a str that UTF-8 cannot encode: msgpack,
# SQLite and the browser's TextDecoder all refuse or replace it. It becomes U+FFFD here, as the
# browser would show it, so that such a document is stored instead of failing the request.

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # a pair is joined by json; a lone half is not
_SURROGATE_IN_UTF8 = re.compile(rb"\xed[\xa0-\xbf]")  # raw, which json decodes with "surrogatepass"
_SURROGATE_ESCAPE_TEXT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _may_hold_surrogates(data: bytes | str) -> bool:
    """Whether json's value of ``data`` could hold a surrogate: only such text pays for the walk below."""
    if isinstance(data, str):
        return _SURROGATE_ESCAPE_TEXT.search(data) is not None
    if json.detect_encoding(data) != "utf-8":
        return True
    return _SURROGATE_ESCAPE.search(data) is not None or _SURROGATE_IN_UTF8.search(data) is not None


def _fixed(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text) if not text.isascii() else text


def _without_lone_surrogates(value: Any) -> Any:
    """``value`` with U+FFFD for every surrogate in its strings and keys (json has joined the valid pairs
    already); containers are changed in place, on a list of work instead of the call stack."""
    if isinstance(value, str):
        return _fixed(value)
    work = [value]
    while work:
        container = work.pop()
        if isinstance(container, list):
            for n, item in enumerate(container):
                if isinstance(item, str):
                    container[n] = _fixed(item)
                elif isinstance(item, (list, dict)):
                    work.append(item)
        elif isinstance(container, dict):
            if any(isinstance(key, str) and _fixed(key) is not key for key in container):
                items = [(_fixed(key), item) for key, item in container.items()]
                container.clear()
                container.update(items)
            for key, item in container.items():
                if isinstance(item, str):
                    container[key] = _fixed(item)
                elif isinstance(item, (list, dict)):
                    work.append(item)
    return value


# json.decoder's own whitespace pattern and string scanner (the C one when built), which the C parser
# uses too; typeshed's json.decoder stub declares neither.
_whitespace = json.decoder.WHITESPACE.match  # type: ignore[attr-defined]  # not in typeshed's stub
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]  # not in typeshed's stub
_OPEN_HERE = object()


def _loads_with_own_stack(s: str) -> Any:
    """Containers are opened and closed on a list instead of the call stack; strings, numbers and
    constants go to the C scanner."""
    # typeshed types make_scanner's argument as the scanner class itself; at run time it takes a decoder.
    scan_once = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # stub is wrong
    stack: list[list[Any]] = []  # [container, key awaiting its value (objects only)]

    def key_at(i: int) -> tuple[str, int]:
        if s[i:i + 1] != '"':
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", s, i)
        key, i = _scanstring(s, i + 1)
        i = _whitespace(s, i).end()
        if s[i:i + 1] != ":":
            raise json.JSONDecodeError("Expecting ':' delimiter", s, i)
        return key, _whitespace(s, i + 1).end()

    i = _whitespace(s, 0).end()
    while True:
        char = s[i:i + 1]
        value: Any = _OPEN_HERE
        # The top-level value was too deep for the C scanner (that is why we are here); try it on the
        # top level's elements, and open containers below them here.
        if char not in ("[", "{") or len(stack) == 1:
            try:
                value, i = scan_once(s, i)
            except StopIteration as stop:
                raise json.JSONDecodeError("Expecting value", s, stop.value) from None
            except RecursionError:
                pass
        if value is _OPEN_HERE:
            j = _whitespace(s, i + 1).end()
            if s[j:j + 1] == ("]" if char == "[" else "}"):
                value, i = ([] if char == "[" else {}), j + 1
            elif char == "[":
                stack.append([[], None])
                i = j
                continue
            else:
                key, i = key_at(j)
                stack.append([{}, key])
                continue
        while True:  # hand the value to its container; close the containers that end here
            if not stack:
                end = _whitespace(s, i).end()
                if end != len(s):
                    raise json.JSONDecodeError("Extra data", s, end)
                return value
            top = stack[-1]
            container = top[0]
            if isinstance(container, list):
                container.append(value)
            else:
                container[top[1]] = value
            i = _whitespace(s, i).end()
            char = s[i:i + 1]
            if char == ",":
                i = _whitespace(s, i + 1).end()
                if isinstance(container, dict):
                    top[1], i = key_at(i)
                break
            if char != ("]" if isinstance(container, list) else "}"):
                raise json.JSONDecodeError("Expecting ',' delimiter", s, i)
            stack.pop()
            value, i = container, i + 1


def dumps(value: Any) -> str:
    """Compact ``json.dumps`` (``ensure_ascii=False``), also for values deeper than the C encoder goes.

    An infinite or NaN number (``loads`` reads ``NaN``, ``Infinity`` and ``1e400``) is written as
    ``null``: JSON has no such numbers and a browser's ``JSON.parse`` refuses them."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (RecursionError, ValueError):
        return _dumps_with_own_stack(value)


def _dumps_with_own_stack(value: Any) -> str:
    """The same text as ``dumps``: containers are expanded on a list of work instead of the call stack;
    each work item is either text to write as is (``True, text``) or a value to encode (``False, value``)."""
    encode_string = json.encoder.encode_basestring
    parts: list[str] = []
    work: list[tuple[bool, Any]] = [(False, value)]
    while work:
        is_text, item = work.pop()
        if is_text:
            parts.append(item)
        elif isinstance(item, dict) and item:
            parts.append("{")
            work.append((True, "}"))
            entries = list(item.items())
            for n in range(len(entries) - 1, -1, -1):
                key, child = entries[n]
                name = key if isinstance(key, str) else json.dumps(key)  # as json.dumps writes non-string keys
                work.append((False, child))
                work.append((True, ("," if n else "") + encode_string(name) + ":"))
        elif isinstance(item, (list, tuple)) and item:
            parts.append("[")
            work.append((True, "]"))
            for n in range(len(item) - 1, -1, -1):
                work.append((False, item[n]))
                if n:
                    work.append((True, ","))
        elif isinstance(item, str):
            parts.append(encode_string(item))
        elif isinstance(item, float) and not math.isfinite(item):
            parts.append("null")
        else:
            parts.append(json.dumps(item))  # numbers, constants, empty containers
    return "".join(parts)
