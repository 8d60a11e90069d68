"""Each replay's distinct values of what its clicks hit, per field: the tag, id, each class, role,
aria-label, data-testid, alt and title. A ``click.*`` search reads these few rows a replay (found by
an index on field and value) instead of every click, so a term that matches half the clicks costs
what one that matches none does (docs/benchmarks.md#search). Texts have their own way
(``click_texts``); what must hold of one click (``click.selector``, dead and rage clicks) is then
checked on the clicks of the replays found here.
"""

from __future__ import annotations

from collections.abc import Iterable

from .records import ClickRecord

FIELDS = ("tag", "elem_id", "classes", "role", "label", "testid", "alt", "title")  # the clicks' columns
_UPPER, _LOWER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"


def ascii_lower(text: str) -> str:
    """``text`` with its ASCII letters in lower case: a search ignores case for ASCII letters (as
    SQLite's LIKE and lower() do), so the values are kept so, and an exact value is an index lookup."""
    return text.translate(str.maketrans(_UPPER, _LOWER))


def click_values(clicks: Iterable[ClickRecord]) -> list[tuple[str, str]]:
    """(field, value) of ``clicks``, each once, ASCII in lower case; a class is a value of its own, an
    empty one none."""
    values: set[tuple[str, str]] = set()
    for click in clicks:
        for field in FIELDS:
            text = ascii_lower(getattr(click, field))
            values.update((field, part) for part in (text.split(" ") if field == "classes" else (text,)) if part)
    return sorted(values)


# The same, from the clicks already stored: the migrations that add the table (and the search
# benchmark, which writes clicks in SQL) run it. Classes are kept space-separated (ingest/clicks.py).
_COLUMNS = [field for field in FIELDS if field != "classes"]
# SQLite's lower() changes ASCII letters only (without the ICU extension, which replayd does not load).
SQLITE_FROM_CLICKS = (
    "INSERT OR IGNORE INTO click_values (project_id, replay_id, field, value) "
    + " UNION ALL ".join(f"SELECT project_id, replay_id, '{f}', lower({f}) FROM clicks WHERE {f} <> ''"
                         for f in _COLUMNS)
    + """;
    WITH RECURSIVE split(project_id, replay_id, rest, class) AS (
        SELECT project_id, replay_id, lower(classes) || ' ', '' FROM clicks WHERE classes <> ''
        UNION ALL
        SELECT project_id, replay_id, substr(rest, instr(rest, ' ') + 1), substr(rest, 1, instr(rest, ' ') - 1)
        FROM split WHERE rest <> '')
    INSERT OR IGNORE INTO click_values (project_id, replay_id, field, value)
        SELECT project_id, replay_id, 'classes', class FROM split WHERE class <> '';
    """)
_PG_LOWER = f"translate({{}}, '{_UPPER}', '{_LOWER}')"  # ASCII only: PostgreSQL's lower() changes more
POSTGRES_FROM_CLICKS = (
    "INSERT INTO click_values (project_id, replay_id, field, value) "
    "SELECT DISTINCT project_id, replay_id, f.field, f.value FROM clicks, LATERAL (VALUES "
    + ", ".join(f"('{f}', {_PG_LOWER.format(f)})" for f in _COLUMNS)
    + f""") AS f (field, value) WHERE f.value <> '' ON CONFLICT DO NOTHING;
    INSERT INTO click_values (project_id, replay_id, field, value)
        SELECT DISTINCT project_id, replay_id, 'classes', class
        FROM clicks, regexp_split_to_table({_PG_LOWER.format("classes")}, ' ') AS class WHERE class <> ''
        ON CONFLICT DO NOTHING;
    """)
