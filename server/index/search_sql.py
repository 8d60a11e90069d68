"""A parsed search (``server/search.py``) as a WHERE condition on ``replays``, for either backend.

Text terms are LIKE (SQLite, ASCII case-insensitive) or ILIKE (PostgreSQL) patterns: ``*`` becomes
``%``, the value's own ``%``, ``_`` and ``\\`` are literal. Click terms are
``replays.replay_id IN (SELECT replay_id FROM clicks WHERE project_id = ... AND ...)``: each term a
click of its own (``click.tag:button click.textContent:Pay`` finds replays with a button click and
a click on "Pay"; ``click.selector:button[aria-label="Pay"]`` tests one click). A negated term is
``NOT (...)``: ``!click.tag:button`` finds replays with no click on a button.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..search import BoolNode, Cond, SearchNode

Arg = Callable[[Any], str]  # adds a parameter, gives its placeholder


@dataclass(frozen=True, slots=True)
class Dialect:
    like: str  # LIKE or ILIKE
    errors: str  # the replay's error count
    user_fields: dict[str, str]  # user.id/email/username, {t} the table's qualifier


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
        return (f"replays.replay_id IN (SELECT u.replay_id FROM replays u WHERE u.project_id = {project} AND "
                f"{column.format(t='u.')} IN ({', '.join(arg(f) for f in forms)}))")
    if spec.kind == "click" and spec.column == "text":
        # from the project's distinct texts (few) to the clicks with them, by a covering index
        # (CROSS JOIN: SQLite keeps this order whatever its statistics say)
        return (f"replays.replay_id IN (SELECT c.replay_id FROM click_texts t CROSS JOIN clicks c WHERE "
                f"t.project_id = {project} AND {_like(dialect, 't.text', pattern(cond.text), arg)} AND "
                "c.project_id = t.project_id AND c.text = t.text)")
    return (f"replays.replay_id IN (SELECT c.replay_id FROM clicks c WHERE c.project_id = {project} AND "
            + _click_conditions(cond, dialect, arg, project) + ")")


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
