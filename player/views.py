"""The player's HTML pages: the replay list, one replay, issues, one error. Thin: look things up in the
index and render a template (autoescaped)."""

from __future__ import annotations

import math

from aiohttp import web

from replayd.server.erase import user_forms
from replayd.server.index import Replay, count_cap
from replayd.server.keys import config_key, credentials_key, index_key, projects_key
from replayd.server.query import DEFAULT_SORT, SearchRefused, query_int, replay_query
from replayd.server.search import click_terms
from replayd.server.timestamps import displayable

from . import timeline
from .auth import page_auth
from .page_helpers import find_replay, not_found, page_project, player_config, render, start_at

PER_PAGE = 50
ERROR_LEAD_SECONDS = 5  # the error page starts its replay this long before the error


# --- list ------------------------------------------------------------------------------------

SORTS = {
    "-started_at": "newest first", "started_at": "oldest first", "-duration": "longest first",
    "duration": "shortest first", "-error_count": "most errors", "-segment_count": "most segments",
    "-activity": "most active", "-count_dead_clicks": "most dead clicks", "-count_rage_clicks": "most rage clicks",
    "-count_urls": "most pages", "-count_clicks": "most clicks",
}
FORM_FIELDS = ("query", "has_errors", "url", "user", "min_duration", "max_duration", "from", "to", "sort")


async def replays_page(request: web.Request) -> web.Response:
    await page_auth(request)
    pid = page_project(request)
    form = {name: request.query.get(name, "") for name in FORM_FIELDS}  # as typed, for the form
    form["sort"] = form["sort"] or DEFAULT_SORT
    offset = query_int(request.query, "cursor", 0) or 0
    secret = request.app[credentials_key].scrub_secret
    index = request.app[index_key]
    total_cap = request.app[config_key].limits.list_total_cap
    rows: list[Replay] = []
    total = 0
    click_at: dict[str, float] = {}
    search_error = None
    try:
        query = replay_query(request.query, lambda field, value: user_forms(secret, value),
                             request.app[config_key].limits.search)
    except SearchRefused as exc:  # shown above an empty list, the box keeps what was typed
        search_error = f"Search: {exc.problem}"
    else:
        rows, total = await index.list_replays(pid, query, offset=offset, limit=PER_PAGE, total_cap=total_cap)
        if terms := click_terms(query.search):  # each hit opens at its first matching click
            moments = await index.click_moments(pid, [r.replay_id for r in rows], terms)
            click_at = {r.replay_id: round(max(0.0, moments[r.replay_id] - r.started_at), 3) for r in rows
                        if r.replay_id in moments and r.started_at is not None}
    keep = {k: v for k, v in request.query.items() if k not in ("cursor", "deleted") and v}
    page_url = request.rel_url.with_query(keep)
    return render(request, "replays.html", {
        "nav": "replays", "pid": pid, "rows": rows, "form": form, "sorts": SORTS,
        # counted up to limits.list_total_cap: past it, "10000+" (an exact count of a million rows costs a second)
        "total": min(total, cap := count_cap(offset, PER_PAGE, total_cap)), "total_exact": total <= cap,
        "search_error": search_error, "click_at": click_at,
        "offset": offset, "per_page": PER_PAGE, "deleted": request.query.get("deleted") == "1",
        "prev_url": str(page_url.update_query(cursor=max(0, offset - PER_PAGE))) if offset else None,
        "next_url": str(page_url.update_query(cursor=offset + PER_PAGE)) if offset + len(rows) < total else None,
    }, status=400 if search_error else 200)


async def selectors_page(request: web.Request) -> web.Response:
    """The project's most clicked dead and rage selectors, each a link to the search for it."""
    await page_auth(request)
    pid = page_project(request)
    index = request.app[index_key]
    selectors = {kind: await index.top_selectors(pid, kind, 50) for kind in ("dead", "rage")}
    return render(request, "selectors.html", {"nav": "replays", "pid": pid, "selectors": selectors})


# --- one replay ------------------------------------------------------------------------------

async def replay_page(request: web.Request) -> web.Response:
    await page_auth(request)
    try:
        pid, replay = await find_replay(request, request.match_info["replay_id"])
    except web.HTTPNotFound as exc:
        return not_found(request, exc.text or "no such replay")
    errors = await request.app[index_key].replay_errors(pid, replay.replay_id)
    config = player_config(pid, replay, errors, start_at(request))
    if (click := _seconds(request.query.get("click"))) is not None:  # opened from a search on clicks
        config["focus_click"] = min(click * 1000, config["duration"])
    if request.query.get("load") == "all":  # the benchmark's baseline: every segment before the first frame
        config["preload"] = []
    return render(request, "replay.html", {
        "nav": "replays", "pid": pid, "replay": replay, "errors": errors, "player": config,
        "scrub_report": replay.scrub_report,
    })


def _seconds(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


# --- issues and errors -----------------------------------------------------------------------

async def issues_page(request: web.Request) -> web.Response:
    await page_auth(request)
    pid = page_project(request)
    offset = query_int(request.query, "cursor", 0) or 0
    rows, total = await request.app[index_key].list_issues(pid, offset=offset, limit=PER_PAGE)
    return render(request, "issues.html", {
        "nav": "issues", "pid": pid, "rows": rows, "total": total, "offset": offset,
        "prev_url": str(request.rel_url.update_query(cursor=max(0, offset - PER_PAGE))) if offset else None,
        "next_url": str(request.rel_url.update_query(cursor=offset + PER_PAGE))
        if offset + len(rows) < total else None,
    })


async def error_page(request: web.Request) -> web.Response:
    await page_auth(request)
    event_id = request.match_info["event_id"].replace("-", "").lower()
    index = request.app[index_key]
    pids = [page_project(request)] if "pid" in request.match_info else sorted(request.app[projects_key].by_id)
    for pid in pids:
        error = await index.get_error(pid, event_id)
        if error is not None:
            break
    else:
        return not_found(request, "no such error (expired, or never stored)")
    player = replay = replay_link = None
    if error.replay_id and error.replay_available:
        replay = await index.get_replay(pid, error.replay_id)
        if replay is not None and replay.segment_count:
            errors = await index.replay_errors(pid, replay.replay_id)
            # seconds into the player's timeline (its origin may precede the replay's start)
            at = displayable(error.timestamp)
            offset = max(0.0, at - timeline.origin_ms(replay.as_dict()) / 1000) if at is not None else 0.0
            player = player_config(pid, replay, errors, max(0.0, offset - ERROR_LEAD_SECONDS),
                                   embedded=True, focus_error=event_id)
            player["error_at"] = round(offset * 1000)
            # a second before the error, within the replay (an error after its last event: the end)
            link_at = timeline.clamp_moment((offset - 1) * 1000, player["duration"]) / 1000
            replay_link = f"/replays/{replay.replay_id}?t={math.floor(link_at * 10) / 10:.1f}"
    data = error.data
    frames = list(reversed((data.get("exception") or {}).get("frames") or []))  # most recent call first
    return render(request, "error.html", {
        "nav": "issues", "pid": pid, "error": error, "data": data, "frames": frames,
        "player": player, "replay": replay, "replay_link": replay_link, "lead_seconds": ERROR_LEAD_SECONDS,
    })


async def index_page(request: web.Request) -> web.Response:
    return await replays_page(request)


def setup_views(app: web.Application) -> None:
    app.router.add_get("/", index_page, name="home")
    app.router.add_get("/projects/{pid}/replays", replays_page, name="replays")
    app.router.add_get("/projects/{pid}/selectors", selectors_page, name="selectors")
    app.router.add_get("/replays/{replay_id}", replay_page, name="replay")
    app.router.add_get("/projects/{pid}/replays/{replay_id}", replay_page)
    app.router.add_get("/issues", issues_page, name="issues")
    app.router.add_get("/projects/{pid}/issues", issues_page)
    app.router.add_get("/errors/{event_id}", error_page, name="error")
    app.router.add_get("/projects/{pid}/errors/{event_id}", error_page)
