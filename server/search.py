"""The replay search language: text → tokens → a tree of conditions (``SearchNode``).

    click.textContent:*checkout* AND (count_rage_clicks:>0 OR !url:*pay*)

A term is ``[!]field:value``, ``field:>value`` or ``field:<value``; terms side by side are ANDed;
``AND``, ``OR`` (AND binds tighter) and parentheses group them. ``*`` in a text value matches any
run of characters; text matches ignore case (ASCII). Values with spaces are quoted ("..."; \\" and
\\\\ inside). Each backend turns the tree into SQL (``server/index/search_sql.py``). Anything wrong
is a ``SearchError`` naming the problem and its position (0-based, in characters), which the API
answers 400. docs/search.md lists every field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_COUNT = 1_000_000_000
MAX_DURATION = 10 * 365 * 86400.0  # seconds: ten years is already absurd for a replay


@dataclass(frozen=True, slots=True)
class SearchLimits:
    """How large a search may be; each is the config's ``limits.max_search_<name>`` (server/config.py),
    which a refusal names."""

    characters: int = 2000
    terms: int = 50
    # parentheses inside parentheses: the parser and the SQL it becomes recurse per level
    nesting: int = 20
    value_characters: int = 500  # one value: a LIKE pattern, matched against every candidate row


def limit_key(name: str) -> str:
    return f"limits.max_search_{name}"


class SearchError(ValueError):
    def __init__(self, message: str, position: int):
        super().__init__(f"{message} (at position {position})")
        self.message = message
        self.position = position


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: str  # "click", "text", "url", "user", "number", "selector"
    column: str  # the column (or for numbers the sort key) it reads
    scope: str = ""  # clicks: "" any, "dead", "rage"
    unit: str = ""  # numbers: "seconds", "count", "score"


# Sentry's names where Sentry has one.
FIELDS: dict[str, FieldSpec] = {spec.name.lower(): spec for spec in (
    FieldSpec("click.tag", "click", "tag"),
    FieldSpec("click.id", "click", "elem_id"),
    FieldSpec("click.class", "click", "classes"),
    FieldSpec("click.selector", "selector", ""),
    FieldSpec("click.textContent", "click", "text"),
    FieldSpec("click.label", "click", "label"),
    FieldSpec("click.testid", "click", "testid"),
    FieldSpec("click.role", "click", "role"),
    FieldSpec("click.alt", "click", "alt"),
    FieldSpec("click.title", "click", "title"),
    FieldSpec("dead.selector", "selector", "", scope="dead"),
    FieldSpec("rage.selector", "selector", "", scope="rage"),
    FieldSpec("url", "url", "urls"),
    FieldSpec("count_errors", "number", "count_errors", unit="count"),
    FieldSpec("count_clicks", "number", "count_clicks", unit="count"),
    FieldSpec("count_dead_clicks", "number", "count_dead_clicks", unit="count"),
    FieldSpec("count_rage_clicks", "number", "count_rage_clicks", unit="count"),
    FieldSpec("count_urls", "number", "count_urls", unit="count"),
    FieldSpec("count_console_errors", "number", "count_console_errors", unit="count"),
    FieldSpec("duration", "number", "duration", unit="seconds"),
    FieldSpec("activity", "number", "activity", unit="score"),
    FieldSpec("browser.name", "text", "browser", scope="family"),
    FieldSpec("os.name", "text", "os", scope="family"),
    FieldSpec("device.family", "text", "device"),
    FieldSpec("release", "text", "release"),
    FieldSpec("environment", "text", "environment"),
    FieldSpec("replay_type", "text", "replay_type"),
    FieldSpec("user.id", "user", "id"),
    FieldSpec("user.email", "user", "email"),
    FieldSpec("user.username", "user", "username"),
)}
CLICK_FIELDS = frozenset(name for name, spec in FIELDS.items() if spec.kind in ("click", "selector"))

# click.selector: one compound selector — tag, #id, .class and [attr] / [attr="value"] — as Sentry takes.
SELECTOR_ATTRS = {"id": "elem_id", "class": "classes", "role": "role", "aria-label": "label",
                  "data-testid": "testid", "alt": "alt", "title": "title"}
_SELECTOR_PART = re.compile(
    r"""(?P<tag>^(?:[A-Za-z][A-Za-z0-9-]*|\*))|\#(?P<id>[^\s.#\[\]:>+~,]+)|\.(?P<cls>[^\s.#\[\]:>+~,]+)"""
    r"""|\[\s*(?P<attr>[A-Za-z][A-Za-z0-9_-]*)\s*(?:=\s*(?:"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>(?:[^'\\]|\\.)*)'"""
    r"""|(?P<bare>[^\]\s]*)))?\s*\]""")


@dataclass(frozen=True, slots=True)
class Cond:
    """One term. Text values are LIKE patterns' parts: ``parts`` alternate literal text and ``*``."""

    spec: FieldSpec
    op: str  # ":", ">", "<"
    negated: bool
    position: int
    text: str = ""  # a text value as written (wildcards included)
    number: float = 0.0
    # user fields: the stored forms the value may have (as given, hashed by the default policy)
    alternatives: tuple[str, ...] = ()
    # click.selector: (column, value or None for "has the attribute") pairs, all must hold
    selector: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class BoolNode:
    op: str  # "AND" or "OR"
    children: tuple[SearchNode, ...] = field(default_factory=tuple)


SearchNode = Cond | BoolNode


# --- tokens -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "(", ")", "AND", "OR", "TERM"
    text: str
    position: int


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()":
            tokens.append(Token(ch, ch, i))
            i += 1
            continue
        start = i
        depth = 0
        quote = False
        while i < n:
            ch = query[i]
            if quote:
                if ch == "\\" and i + 1 < n:
                    i += 2
                    continue
                if ch == '"':
                    quote = False
            elif ch == '"':
                quote = True
            elif ch == "[":
                depth += 1
            elif ch == "]":
                depth = max(0, depth - 1)
            elif depth == 0 and (ch.isspace() or ch in "()"):
                break
            i += 1
        if quote:
            raise SearchError("unterminated quoted value", start)
        word = query[start:i]
        kind = word.upper() if word.upper() in ("AND", "OR") else "TERM"
        tokens.append(Token(kind, word, start))
    return tokens


# --- parser ---------------------------------------------------------------------------------

UserHasher = Callable[[str, str], list[str]]  # (field, value) -> stored forms to look for


def parse(query: str, user_forms: UserHasher | None = None, limits: SearchLimits = SearchLimits()) -> SearchNode | None:
    """The tree of ``query``; None when it is empty. SearchError names what is wrong and where."""
    if len(query) > limits.characters:
        raise SearchError(f"the search is {len(query)} characters, over {limits.characters} "
                          f"({limit_key('characters')})", limits.characters)
    tokens = tokenize(query)
    if not tokens:
        return None
    if sum(t.kind == "TERM" for t in tokens) > limits.terms:
        raise SearchError(f"the search has more than {limits.terms} terms ({limit_key('terms')})",
                          tokens[-1].position)
    parser = _Parser(tokens, len(query), user_forms, limits)
    node = parser.expression()
    if parser.i < len(tokens):
        t = tokens[parser.i]
        raise SearchError(f"unexpected {t.text!r}" + (" (no opening parenthesis)" if t.kind == ")" else ""),
                          t.position)
    return node


class _Parser:
    def __init__(self, tokens: list[Token], end: int, user_forms: UserHasher | None, limits: SearchLimits) -> None:
        self.tokens = tokens
        self.i = 0
        self.end = end
        self.user_forms = user_forms
        self.limits = limits
        self.depth = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def expression(self) -> SearchNode:
        children = [self.conjunction()]
        while (t := self.peek()) is not None and t.kind == "OR":
            self.i += 1
            children.append(self.conjunction())
        return _group("OR", children)

    def conjunction(self) -> SearchNode:
        children = [self.primary()]
        while (t := self.peek()) is not None and t.kind in ("AND", "TERM", "("):
            if t.kind == "AND":
                self.i += 1
            children.append(self.primary())
        return _group("AND", children)

    def primary(self) -> SearchNode:
        t = self.peek()
        if t is None:
            raise SearchError("the search ends where a term was expected", self.end)
        if t.kind == "(":
            if self.depth == self.limits.nesting:
                raise SearchError(f"parentheses nest more than {self.limits.nesting} deep ({limit_key('nesting')})",
                                  t.position)
            self.i += 1
            self.depth += 1
            node = self.expression()
            self.depth -= 1
            close = self.peek()
            if close is None or close.kind != ")":
                raise SearchError("missing closing parenthesis", close.position if close else self.end)
            self.i += 1
            return node
        if t.kind != "TERM":
            raise SearchError(f"expected a term (field:value), found {t.text!r}", t.position)
        self.i += 1
        return self.term(t)

    def term(self, t: Token) -> Cond:
        text, position = t.text, t.position
        negated = text.startswith("!")
        body = text[1:] if negated else text
        name, colon, raw = body.partition(":")
        if not colon:
            raise SearchError(f"expected field:value, found {text!r}", position)
        spec = FIELDS.get(name.lower())
        if spec is None:
            raise SearchError(f"unknown field {name!r} (known: {', '.join(s.name for s in FIELDS.values())})",
                              position + negated)
        op = ":"
        if raw[:1] in (">", "<"):
            op, raw = raw[0], raw[1:]
        value_at = position + negated + len(name) + 1 + (op != ":")
        value = _unquote(raw, value_at)
        value_at += raw.startswith('"')  # positions inside the value count from after the quote
        if value == "":
            raise SearchError(f"{spec.name} needs a value", value_at)
        if len(value) > self.limits.value_characters:
            raise SearchError(f"{spec.name}'s value is over {self.limits.value_characters} characters "
                              f"({limit_key('value_characters')})", value_at)
        if spec.kind == "number":
            return Cond(spec, op, negated, position, number=_number(spec, value, value_at))
        if op != ":":
            raise SearchError(f"{spec.name} is text: it takes field:value, not :> or :<", value_at - 1)
        if spec.kind == "selector":
            return Cond(spec, op, negated, position, text=value, selector=_selector(value, value_at))
        if spec.kind == "user":
            forms = [value] if "*" in value or self.user_forms is None else self.user_forms(spec.column, value)
            return Cond(spec, op, negated, position, text=value, alternatives=tuple(dict.fromkeys(forms)))
        return Cond(spec, op, negated, position, text=value)


def _group(op: str, children: list[SearchNode]) -> SearchNode:
    """``children`` joined by ``op``; a parenthesised group of the same operator joins them too
    (``a (b c)`` is ``a b c``), so the tree, and the SQL it becomes, nest only where AND and OR alternate."""
    flat: list[SearchNode] = []
    for child in children:
        flat.extend(child.children if isinstance(child, BoolNode) and child.op == op else (child,))
    return flat[0] if len(flat) == 1 else BoolNode(op, tuple(flat))


def _unquote(raw: str, position: int) -> str:
    if not raw.startswith('"'):
        return raw
    if len(raw) < 2 or not raw.endswith('"') or (raw.endswith('\\"') and not raw.endswith('\\\\"')):
        raise SearchError("a quoted value must end with a quote", position)
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def _number(spec: FieldSpec, value: str, position: int) -> float:
    if spec.unit == "seconds":
        m = _DURATION.match(value)
        if not m:
            raise SearchError(f"{spec.name} takes a duration: seconds, or a number with ms, s, m, h or d "
                              f"(found {value!r})", position)
        number = float(m.group(1)) * _UNITS[m.group(2)]
        if not math.isfinite(number) or number > MAX_DURATION:
            raise SearchError(f"{spec.name} {value!r} is over ten years", position)
        return number
    try:
        number = float(value) if spec.unit == "score" else int(value)
    except ValueError:
        raise SearchError(f"{spec.name} takes a whole number, not {value!r}", position) from None
    if not math.isfinite(number) or number < 0:
        raise SearchError(f"{spec.name} cannot be negative", position)
    if spec.unit == "score" and number > 10:
        raise SearchError(f"activity is a score from 1 to 10, not {value}", position)
    if number > MAX_COUNT:
        raise SearchError(f"{spec.name} {value} is over {MAX_COUNT}", position)
    return float(number)


def _selector(value: str, position: int) -> tuple[tuple[str, str | None], ...]:
    """A compound CSS selector as (column, value) conditions on the clicked element."""
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(value):
        m = _SELECTOR_PART.match(value, i)
        if m is None or m.end() == i or (m.group("tag") is not None and i > 0):
            what = value[i]
            if what.isspace() or what in ">+~,":
                raise SearchError("click selectors match one element: combinators (space, >, +, ~) and lists (,) "
                                  "are not supported", position + i)
            if what == ":":
                raise SearchError("click selectors take no pseudo-classes (:...)", position + i)
            raise SearchError(f"cannot read the CSS selector at {value[i:i + 20]!r}", position + i)
        if (tag := m.group("tag")) is not None:
            if tag != "*":
                out.append(("tag", tag.lower()))
        elif m.group("id") is not None:
            out.append(("elem_id", m.group("id")))
        elif m.group("cls") is not None:
            out.append(("classes", m.group("cls")))
        else:
            attr = m.group("attr").lower()
            column = SELECTOR_ATTRS.get(attr)
            if column is None:
                raise SearchError(f"click selectors test only {', '.join(SELECTOR_ATTRS)}, not [{attr}]",
                                  position + i)
            raw = next((g for g in (m.group("dq"), m.group("sq"), m.group("bare")) if g is not None), None)
            out.append((column, None if raw is None else re.sub(r"\\(.)", r"\1", raw)))
        i = m.end()
    if not out:
        out.append(("tag", None))  # "*": any recorded element
    return tuple(out)


def has_click_terms(node: SearchNode | None) -> bool:
    if node is None:
        return False
    if isinstance(node, Cond):
        return node.spec.kind in ("click", "selector") and not node.negated
    return any(has_click_terms(c) for c in node.children)


def click_terms(node: SearchNode | None) -> list[Cond]:
    """The search's positive click terms: what a hit is opened at."""
    if node is None:
        return []
    if isinstance(node, Cond):
        return [node] if node.spec.kind in ("click", "selector") and not node.negated else []
    return [c for child in node.children for c in click_terms(child)]
