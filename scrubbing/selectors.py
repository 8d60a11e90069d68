"""A small CSS selector language: parse, print, match.  No recursion anywhere.

Supported: type selectors (``input``, ``*``), ``#id``, ``.class``, attribute selectors
``[a]``, ``[a=v]``, ``[a~=v]``, ``[a|=v]``, ``[a^=v]``, ``[a$=v]``, ``[a*=v]`` (values quoted or
bare, optional `` i`` flag), the descendant (whitespace) and child (``>``) combinators, and
comma-separated selector lists.  Tag and attribute names match case-insensitively (HTML).
Anything else (pseudo-classes, ``+``, ``~``, namespaces) is a :class:`SelectorError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class SelectorError(ValueError):
    """A selector that cannot be parsed; ``str(err)`` says where and why."""


@dataclass(frozen=True)
class AttrTest:
    name: str
    op: str | None = None  # None: presence; "=", "~=", "|=", "^=", "$=", "*="
    value: str = ""
    ignore_case: bool = False

    def matches(self, attrs: dict[str, Any]) -> bool:
        v = attrs.get(self.name)
        if v is None or v is False:
            return False
        if self.op is None:
            return True
        if not isinstance(v, str):
            v = str(v)
        want = self.value
        if self.ignore_case:
            v, want = v.lower(), want.lower()
        op = self.op
        if op == "=":
            return v == want
        if op == "^=":
            return bool(want) and v.startswith(want)
        if op == "$=":
            return bool(want) and v.endswith(want)
        if op == "*=":
            return bool(want) and want in v
        if op == "~=":
            return want in v.split()
        if op == "|=":
            return v == want or v.startswith(want + "-")
        return False

    def __str__(self) -> str:
        if self.op is None:
            return f"[{self.name}]"
        flag = " i" if self.ignore_case else ""
        return f'[{self.name}{self.op}"{self.value}"{flag}]'


@dataclass(frozen=True)
class Compound:
    """``tag#id.class[attr]...`` — every test must hold on one element."""

    tag: str | None = None  # None = any
    tests: tuple[AttrTest, ...] = ()

    def matches(self, tag: str, attrs: dict[str, Any]) -> bool:
        if self.tag is not None and self.tag != tag:
            return False
        return all(t.matches(attrs) for t in self.tests)

    @property
    def attr_names(self) -> frozenset[str]:
        return frozenset(t.name for t in self.tests)

    def __str__(self) -> str:
        out = self.tag or ("*" if not self.tests else "")
        for t in self.tests:
            if t.name == "id" and t.op == "=":
                out += f"#{t.value}"
            elif t.name == "class" and t.op == "~=":
                out += f".{t.value}"
            else:
                out += str(t)
        return out


@dataclass(frozen=True)
class Complex:
    """``c0 comb1 c1 ... cn``; ``combinators[k]`` joins ``compounds[k]`` to ``compounds[k+1]``
    and is ``" "`` (descendant) or ``">"`` (child)."""

    compounds: tuple[Compound, ...]
    combinators: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        out = str(self.compounds[0])
        for comb, comp in zip(self.combinators, self.compounds[1:], strict=True):
            out += (" > " if comb == ">" else " ") + str(comp)
        return out

    @property
    def subject(self) -> Compound:
        return self.compounds[-1]


@dataclass(frozen=True)
class SelectorList:
    selectors: tuple[Complex, ...]

    def __str__(self) -> str:
        return ", ".join(str(s) for s in self.selectors)


_IDENT = r"-?(?:[A-Za-z_]|\\.|[^\x00-\x7f])(?:[A-Za-z0-9_-]|\\.|[^\x00-\x7f])*"
_TOKEN = re.compile(
    rf"""
    (?P<ws>\s+)
  | (?P<comma>,)
  | (?P<gt>>)
  | (?P<star>\*)
  | (?P<hash>\#(?P<hname>(?:[A-Za-z0-9_-]|\\.|[^\x00-\x7f])+))
  | (?P<cls>\.(?P<cname>{_IDENT}))
  | (?P<attr>\[\s*(?P<aname>[A-Za-z_:][-A-Za-z0-9_:.]*)\s*
        (?:(?P<op>[~|^$*]?=)\s*(?:"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>(?:[^'\\]|\\.)*)'|(?P<bare>{_IDENT}|\d[\w-]*))\s*
           (?P<flag>[iIsS])?\s*)?\])
  | (?P<tag>{_IDENT})
    """,
    re.VERBOSE,
)
_UNESCAPE = re.compile(r"\\(.)")


def _unescape(s: str) -> str:
    return _UNESCAPE.sub(r"\1", s)


def parse_selector(text: str) -> SelectorList:
    """Parse a selector list; raises :class:`SelectorError` naming the offending position."""
    if not text.strip():
        raise SelectorError("empty selector")
    selectors: list[Complex] = []
    compounds: list[Compound] = []
    combs: list[str] = []
    tag: str | None = None
    tests: list[AttrTest] = []
    have = False  # current compound has content
    pending: str | None = None  # combinator waiting for its right-hand compound
    pos = 0
    text_len = len(text)

    def close_compound() -> None:
        nonlocal tag, tests, have, pending
        if not have:
            return
        if compounds:
            combs.append(pending or " ")
        compounds.append(Compound(tag, tuple(tests)))
        tag, tests, have, pending = None, [], False, None

    while pos < text_len:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SelectorError(f"unexpected {text[pos]!r} at {pos} in {text!r}")
        kind = m.lastgroup
        # lastgroup is the last *closed* group; map inner groups back to their token.
        if m.group("ws") is not None:
            close_compound()
            if pending is None and compounds:
                pending = " "
        elif m.group("comma") is not None:
            close_compound()
            if not compounds or pending not in (None, " "):
                raise SelectorError(f"empty selector before ',' at {pos} in {text!r}")
            selectors.append(Complex(tuple(compounds), tuple(combs)))
            compounds, combs, pending = [], [], None
        elif m.group("gt") is not None:
            close_compound()
            if not compounds or pending == ">":
                raise SelectorError(f"'>' without a left-hand selector at {pos} in {text!r}")
            pending = ">"
        elif m.group("star") is not None:
            if have:
                raise SelectorError(f"'*' inside a compound selector at {pos} in {text!r}")
            have = True
        elif m.group("hash") is not None:
            tests.append(AttrTest("id", "=", _unescape(m.group("hname"))))
            have = True
        elif m.group("cls") is not None:
            tests.append(AttrTest("class", "~=", _unescape(m.group("cname"))))
            have = True
        elif m.group("attr") is not None:
            op = m.group("op")
            value = next((g for g in (m.group("dq"), m.group("sq"), m.group("bare")) if g is not None), "")
            flag = (m.group("flag") or "").lower()
            tests.append(AttrTest(m.group("aname").lower(), op, _unescape(value), flag == "i"))
            have = True
        elif m.group("tag") is not None:
            if have:
                raise SelectorError(f"type selector {m.group('tag')!r} must come first at {pos} in {text!r}")
            tag = m.group("tag").lower()
            have = True
        else:  # pragma: no cover - every alternative is handled above
            raise SelectorError(f"unexpected token {kind} at {pos}")
        pos = m.end()
    close_compound()
    if pending == ">" or not compounds:
        raise SelectorError(f"selector ends without a compound in {text!r}")
    selectors.append(Complex(tuple(compounds), tuple(combs)))
    return SelectorList(tuple(selectors))
