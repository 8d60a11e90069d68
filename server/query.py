"""Query-string parameters, read one way for the read API and the player's pages: a malformed value is
a 400 naming the parameter. ``replay_query`` is the replay list's filters, for both."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from .index import ReplayQuery
from .index.records import SORT_KEYS
from .search import SearchError, SearchLimits, SearchNode, UserHasher, parse

DEFAULT_SORT = "-started_at"


def bad_request(detail: str, **extra: Any) -> web.HTTPBadRequest:
    """A 400 whose JSON body has more than ``detail`` (a search error's position)."""
    return web.HTTPBadRequest(text=json.dumps({"detail": detail, **extra}), content_type="application/json")


class SearchRefused(web.HTTPBadRequest):
    """A ``query=`` the search language refuses: 400, its problem and position in the JSON body."""

    def __init__(self, error: SearchError):
        super().__init__(text=json.dumps({"detail": f"query: {error}", "position": error.position}),
                         content_type="application/json")
        self.problem = str(error)


def search(text: str, user_forms: UserHasher | None, limits: SearchLimits) -> SearchNode | None:
    """``query=``: the search language (server/search.py); a 400 naming the problem and its position."""
    try:
        return parse(text, user_forms, limits)
    except SearchError as exc:
        raise SearchRefused(exc) from None


def _bad(name: str, what: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=f"query parameter {name} must be {what}")


def query_int(query: Mapping[str, str], name: str, default: int | None = None, *, low: int = 0,
              high: int | None = None) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(name, "an integer") from None
    if value < low or (high is not None and value > high):
        raise _bad(name, f"between {low} and {high}")
    return value


def query_float(query: Mapping[str, str], name: str) -> float | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError:
        raise _bad(name, "a number") from None


def query_bool(query: Mapping[str, str], name: str) -> bool | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise _bad(name, "1 or 0")


def query_date(query: Mapping[str, str], name: str, *, end_of_day: bool = False) -> float | None:
    """A UTC day (``YYYY-MM-DD``, what ``<input type=date>`` sends) as Unix seconds: its start, or its end."""
    raw = query.get(name)
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise _bad(name, "a date, YYYY-MM-DD") from None
    return day.timestamp() + (86400 if end_of_day else 0)


def replay_query(query: Mapping[str, str], user_forms: UserHasher | None, limits: SearchLimits) -> ReplayQuery:
    """The replay list's filters, search and order. Start times are Unix seconds (``started_after``,
    ``started_before``) or UTC days (``from``, ``to``, both inclusive: the list page's date inputs);
    when both name a bound, the narrower one holds. ``user_forms``: how the search's user values
    may be stored (as given, hashed); ``limits``: the config's ``limits.max_search_*``."""
    sort = query.get("sort") or DEFAULT_SORT
    if sort.lstrip("-") not in SORT_KEYS:
        raise _bad("sort", "one of " + ", ".join(SORT_KEYS) + " (prefix - for descending)")
    after = [t for t in (query_float(query, "started_after"), query_date(query, "from")) if t is not None]
    before = [t for t in (query_float(query, "started_before"), query_date(query, "to", end_of_day=True))
              if t is not None]
    return ReplayQuery(
        has_errors=query_bool(query, "has_errors"),
        url=query.get("url") or None,
        user=query.get("user") or None,
        min_duration=query_float(query, "min_duration"),
        max_duration=query_float(query, "max_duration"),
        started_after=max(after) if after else None,
        started_before=min(before) if before else None,
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        search=search(query.get("query", ""), user_forms, limits),
    )
