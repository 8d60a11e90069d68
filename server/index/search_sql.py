"""A parsed search (``server/search.py``) as a WHERE condition on ``replays``, for either backend.

Text terms are LIKE (SQLite, ASCII case-insensitive) or ILIKE (PostgreSQL) patterns: ``*`` becomes
``%``, the value's own ``%``, ``_`` and ``\\`` are literal. Click terms are
``replays.replay_id IN (SELECT replay_id FROM click_values WHERE ...)`` (SQLite) or ``EXISTS (...)``
(PostgreSQL), on the replays' clicked values (``click_values.py``) or their clicks: each term a
click of its own (``click.tag:button click.textContent:Pay`` finds replays with a button click and
a click on "Pay"; ``click.selector:button[aria-label="Pay"]`` tests one click). A negated term is
``NOT (...)``: ``!click.tag:button`` finds replays with no click on a button.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..search import BoolNode, Cond, SearchNode
from .click_values import FIELDS as VALUE_FIELDS
from .click_values import ascii_lower

Arg = Callable[[Any], str]  # adds a parameter, gives its placeholder


@dataclass(frozen=True, slots=True)
class Dialect:
    like: str  # LIKE or ILIKE
    errors: str  # the replay's error count
    user_fields: dict[str, str]  # user.id/email/username, {t} the table's qualifier
    # a negated subquery term as NOT EXISTS, correlated: PostgreSQL plans that as an anti-join, but
    # NOT IN over a list larger than work_mem it scans again for each replay (over nine minutes for
    # !click.tag:a on 2,000,000 clicks). SQLite builds an IN list once. (A positive term stays IN:
    # PostgreSQL's plan for the click text search as EXISTS took 1.4 s, as IN 80 ms.)
    negate_with_exists: bool = False
    # ends the click text subquery: PostgreSQL's " OFFSET 0" plans it apart (texts, then their clicks by
    # index, hashed once). Merged into the outer query, with statistics on click_texts it guessed 1 in
    # 8 clicks match and probed each replay's clicks in turn: 1.3-3.1 s, now 0.16 s (benchmarks.md)
    text_fence: str = ""


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def pattern(value: str) -> str:
    """A search value as a LIKE pattern: ``*`` matches any run of characters, the rest is literal."""
    return "%".join(escape_like(part) for part in value.split("*"))


def numbers(dialect: Dialect) -> dict[str, str]:
    """The numeric fields and sort keys as SQL expressions on ``replays``."""
    return {
        "started_at": "started_at",
        "duration": "COALESCE(ended_at - started_at, 0)",
        "error_count": dialect.errors,
        "count_errors": dialect.errors,
        "segment_count": "segment_count",
        "count_clicks": "click_count",
        "count_dead_clicks": "dead_click_count",
        "count_rage_clicks": "rage_click_count",
        "count_urls": "url_count",
        "count_console_errors": "console_error_count",
        "activity": "activity",  # a column both backends keep (their migrations)
    }


def sort_expression(key: str, dialect: Dialect) -> str:
    return numbers(dialect).get(key, "started_at")


def compile_search(node: SearchNode, dialect: Dialect, arg: Arg, project: str) -> str:
    """``node`` as a condition; ``project`` is the placeholder of the project id already given."""
    if isinstance(node, BoolNode):
        joiner = f" {node.op} "
        # groups before terms: SQLite's parser keeps a state per open parenthesis and per operator
        # still waiting for its right side (100 at most: "parser stack overflow"); a group written
        # first is closed before its siblings open, so nesting costs one state a level, not three
        children = sorted(node.children, key=lambda c: not isinstance(c, BoolNode))
        return "(" + joiner.join(compile_search(c, dialect, arg, project) for c in children) + ")"
    sql = _condition(node, dialect, arg, project)
    return f"NOT ({sql})" if node.negated else sql


def _like(dialect: Dialect, column: str, value_pattern: str, arg: Arg) -> str:
    return f"{column} {dialect.like} {arg(value_pattern)} ESCAPE '\\'"


def _replays_with(dialect: Dialect, cond: Cond, alias: str, rows: str) -> str:
    """The replays that have a row of ``rows`` (``FROM ... WHERE ...``, whose replay is ``alias.replay_id``)."""
    if cond.negated and dialect.negate_with_exists:
        rows = rows.removesuffix(dialect.text_fence) if dialect.text_fence else rows
        return f"EXISTS (SELECT 1 {rows} AND {alias}.replay_id = replays.replay_id)"
    return f"replays.replay_id IN (SELECT {alias}.replay_id {rows})"


def _value_matches(dialect: Dialect, arg: Arg, project: str, field: str, value: str | None, wildcards: bool) -> str:
    """A row ``v`` of click_values: a replay with a click whose ``field`` is ``value`` (``*`` any run
    of characters when ``wildcards``; None: has one). The values are kept with ASCII letters in
    lower case (click_values.py), so an exact value or a literal start is read from the index."""
    rows = f"v.project_id = {project} AND v.field = '{field}'"
    if value is None:
        return rows
    if not wildcards or "*" not in value:
        return f"{rows} AND v.value = {arg(ascii_lower(value))}"
    start = ascii_lower(value.split("*", 1)[0])
    if start:
        rows += f" AND v.value >= {arg(start)} AND v.value < {arg(start + chr(0x10FFFF))}"
    return f"{rows} AND {_like(dialect, 'v.value', pattern(value), arg)}"


# click.selector reads the replays with its most telling part's value first: a tag is on most clicks
SELECTOR_ORDER = ("elem_id", "testid", "label", "role", "alt", "title", "classes", "tag")


def _condition(cond: Cond, dialect: Dialect, arg: Arg, project: str) -> str:
    spec = cond.spec
    kind = spec.kind
    if kind == "number":
        op = {":": "=", ">": ">", "<": "<"}[cond.op]
        # written into the SQL (a parsed, bounded number): a planner can match it to a partial index
        # (a whole number as an integer: compared with a float, an integer column is cast and its index unused)
        whole = spec.unit == "count" or (spec.unit == "score" and float(cond.number).is_integer())
        value = str(int(cond.number)) if whole else repr(cond.number)
        return f"{numbers(dialect)[spec.column]} {op} {value}"
    if kind == "text":
        p = pattern(cond.text)
        if spec.scope == "family":  # "Chrome" finds "Chrome 126": the family, with or without a version
            return f"({_like(dialect, spec.column, p, arg)} OR {_like(dialect, spec.column, p + ' %', arg)})"
        return _like(dialect, spec.column, p, arg)
    if kind == "url":
        return _like(dialect, "(urls)" if dialect.like == "LIKE" else "(urls::text)", '%"' + pattern(cond.text) + '"%',
                     arg)
    if kind == "user":
        column = dialect.user_fields[spec.column]
        if "*" in cond.text:
            return _like(dialect, column.format(t=""), pattern(cond.text), arg)
        # exact, so the expression index answers; an id may be stored as a JSON number
        forms: list[Any] = list(cond.alternatives)
        forms += [int(f) for f in cond.alternatives if f.isdigit() and len(f) < 19 and dialect.like == "LIKE"]
        # a subquery of its own, so the user's expression index answers it whatever else is asked
        return _replays_with(dialect, cond, "u", f"FROM replays u WHERE u.project_id = {project} AND "
                             f"{column.format(t='u.')} IN ({', '.join(arg(f) for f in forms)})")
    if spec.kind == "click" and spec.column == "text":
        # from the project's distinct texts (few) to the clicks with them, by a covering index
        # (CROSS JOIN: SQLite keeps this order whatever its statistics say)
        return _replays_with(dialect, cond, "c", f"FROM click_texts t CROSS JOIN clicks c WHERE t.project_id = "
                             f"{project} AND {_like(dialect, 't.text', pattern(cond.text), arg)} AND "
                             "c.project_id = t.project_id AND c.text = t.text" + dialect.text_fence)
    if spec.kind == "click" and spec.column in VALUE_FIELDS:
        return _replays_with(dialect, cond, "v", "FROM click_values v WHERE "
                             + _value_matches(dialect, arg, project, spec.column, cond.text, wildcards=True))
    if spec.kind == "selector" and not spec.scope:
        # the replays with the selector's most telling part, then their clicks for all parts at once (a
        # join, not a subquery in the subquery: each costs SQLite's parser states, see compile_search)
        field, wanted = min(cond.selector, key=lambda part: (part[1] is None, SELECTOR_ORDER.index(part[0])))
        candidates = _value_matches(dialect, arg, project, field, wanted, wildcards=False)
        if len(cond.selector) == 1:  # one part (#pay, .btn, [data-testid=go]): the values answer alone
            return _replays_with(dialect, cond, "v", f"FROM click_values v WHERE {candidates}")
        return _replays_with(dialect, cond, "c", f"FROM click_values v CROSS JOIN clicks c WHERE {candidates} AND "
                             "c.project_id = v.project_id AND c.replay_id = v.replay_id AND "
                             + _click_conditions(cond, dialect, arg, project))
    # dead and rage selectors: their clicks are few, and partial indexes hold them
    return _replays_with(dialect, cond, "c", f"FROM clicks c WHERE c.project_id = {project} AND "
                         + _click_conditions(cond, dialect, arg, project))


def _click_conditions(cond: Cond, dialect: Dialect, arg: Arg, project: str = "c.project_id") -> str:
    """What one click must meet for a click term, on ``c``."""
    spec = cond.spec
    conditions = []
    if spec.kind == "selector":
        for column, wanted in cond.selector:
            if wanted is None:
                conditions.append(f"c.{column} <> ''")
            elif column == "classes":
                conditions.append(_like(dialect, "(' ' || c.classes || ' ')", "% " + escape_like(wanted) + " %", arg))
            else:
                conditions.append(_like(dialect, f"c.{column}", escape_like(wanted), arg))
    elif spec.column == "classes":
        conditions.append(_like(dialect, "(' ' || c.classes || ' ')", "% " + pattern(cond.text) + " %", arg))
    elif spec.column == "text":
        # the project's distinct texts first (few), then its clicks with one of them (by index)
        conditions.append(f"c.text IN (SELECT t.text FROM click_texts t WHERE t.project_id = {project} AND "
                          f"{_like(dialect, 't.text', pattern(cond.text), arg)})")
    else:
        conditions.append(_like(dialect, f"c.{spec.column}", pattern(cond.text), arg))
    if spec.scope == "dead":
        conditions.append("c.is_dead")
    elif spec.scope == "rage":
        conditions.append("c.is_rage")
    return " AND ".join(conditions)


def click_condition(terms: list[Cond], dialect: Dialect, arg: Arg) -> str:
    """A click (``c``) that meets any of ``terms`` (the search's click terms): where a hit opens."""
    return "(" + " OR ".join(f"({_click_conditions(t, dialect, arg)})" for t in terms) + ")"
