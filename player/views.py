"""Thin page handlers: look things up in the index, render a template (autoescaped), or answer JSON."""

from __future__ import annotations

import functools
import json
import math
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from replayd.server.index import ErrorRow, ReplayDetail, ReplayQuery
from replayd.server.keys import index_key, projects_key
from replayd.server.timestamps import displayable

from . import timeline
from .auth import current_session, page_auth, request_csrf_token
from .segments import replay_breadcrumbs

TEMPLATES = Path(__file__).resolve().parent / "templates"
PER_PAGE = 50
LOADER_BATCH = 30  # segments per request of static/player/loader.js (BATCH)
ERROR_LEAD_SECONDS = 5  # the error page starts its replay this long before the error
BREADCRUMB_CACHE = 64

jinja_key = web.AppKey("player_jinja", jinja2.Environment)
crumbs_cache_key = web.AppKey("player_breadcrumbs", OrderedDict)


# --- template helpers ------------------------------------------------------------------------

def _when(ts: float | None) -> str:
    seconds = displayable(ts)  # rows from before ingest checked times may hold inf or 1e300
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float | None) -> str:
    if seconds is not None and not math.isfinite(seconds):
        return "—"
    seconds = round(seconds or 0)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def make_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["when"] = _when
    env.filters["duration"] = _duration
    return env


def render(request: web.Request, name: str, context: dict[str, Any], status: int = 200) -> web.Response:
    env = request.app[jinja_key]
    projects = request.app[projects_key].by_id
    base = {
        "csrf_token": request_csrf_token(request) if "csrf_token" not in context else context["csrf_token"],
        "signed_in": current_session(request) is not None,
        "projects": sorted(projects.values(), key=lambda p: p.id),
        "static": lambda path: str(request.app.router["static"].url_for(filename=path)),
        "nav": context.get("nav", ""),
    }
    html = env.get_template(name).render(**{**base, **context})
    return web.Response(text=html, content_type="text/html", status=status,
                        headers={"Cache-Control": "no-store"})


def json_errors(handler: Handler) -> Handler:
    """The player's data calls (not under /api/) answer errors as ``{"detail": ...}`` like the API,
    whatever the request's Accept header: fetch() and <link rel=preload> send none that asks for JSON."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
            return web.json_response({"detail": exc.text or exc.reason}, status=exc.status, headers=headers)

    return answer


# --- lookups ---------------------------------------------------------------------------------

def _pid(request: web.Request) -> int:
    raw = request.match_info.get("pid") or request.query.get("project")
    projects = request.app[projects_key].by_id
    if raw is None:
        return min(projects) if projects else 1
    try:
        pid = int(raw)
    except ValueError:
        raise web.HTTPNotFound(text="no such project") from None
    if pid not in projects:
        raise web.HTTPNotFound(text=f"no project {pid}")
    return pid


async def find_replay(request: web.Request, replay_id: str) -> tuple[int, ReplayDetail]:
    """The replay and its project: projects are few, so ask each (or only the one in the path)."""
    index = request.app[index_key]
    replay_id = replay_id.replace("-", "").lower()
    pids = [_pid(request)] if "pid" in request.match_info else sorted(request.app[projects_key].by_id)
    for pid in pids:
        replay = await index.get_replay(pid, replay_id)
        if replay is not None and replay.segment_count:
            return pid, replay
    raise web.HTTPNotFound(text="no such replay (deleted, expired, or never stored)")


# --- list ------------------------------------------------------------------------------------

def _float(raw: str | None) -> float | None:
    try:
        return float(raw) if raw not in (None, "") else None
    except ValueError:
        raise web.HTTPBadRequest(text="numbers expected in the duration filters") from None


def _date(raw: str | None, end: bool = False) -> float | None:
    if not raw:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise web.HTTPBadRequest(text="dates must be YYYY-MM-DD") from None
    return day.timestamp() + (86400 if end else 0)


SORTS = {
    "-started_at": "newest first", "started_at": "oldest first", "-duration": "longest first",
    "duration": "shortest first", "-error_count": "most errors", "-segment_count": "most segments",
}


def list_filters(request: web.Request) -> tuple[dict[str, str], dict[str, Any]]:
    """The form's values as typed, and the index's keyword arguments."""
    q = request.query
    form = {k: q.get(k, "") for k in ("has_errors", "url", "user", "min_duration", "max_duration", "from", "to")}
    form["sort"] = q.get("sort", "-started_at") if q.get("sort") in SORTS else "-started_at"
    min_d, max_d = _float(form["min_duration"]), _float(form["max_duration"])
    kwargs = {
        "has_errors": True if form["has_errors"] == "1" else False if form["has_errors"] == "0" else None,
        "url": form["url"] or None,
        "user": form["user"] or None,
        "min_duration": min_d,
        "max_duration": max_d,
        "started_after": _date(form["from"]),
        "started_before": _date(form["to"], end=True),
        "sort": form["sort"].lstrip("-"),
        "descending": form["sort"].startswith("-"),
    }
    return form, kwargs


async def replays_page(request: web.Request) -> web.Response:
    await page_auth(request)
    pid = _pid(request)
    form, kwargs = list_filters(request)
    try:
        offset = max(0, int(request.query.get("cursor", "0") or 0))
    except ValueError:
        offset = 0
    rows, total = await request.app[index_key].list_replays(pid, ReplayQuery(**kwargs), offset=offset,
                                                            limit=PER_PAGE)
    keep = {k: v for k, v in request.query.items() if k not in ("cursor", "deleted") and v}
    page_url = request.rel_url.with_query(keep)
    return render(request, "replays.html", {
        "nav": "replays", "pid": pid, "rows": rows, "total": total, "form": form, "sorts": SORTS,
        "offset": offset, "per_page": PER_PAGE, "deleted": request.query.get("deleted") == "1",
        "prev_url": str(page_url.update_query(cursor=max(0, offset - PER_PAGE))) if offset else None,
        "next_url": str(page_url.update_query(cursor=offset + PER_PAGE)) if offset + len(rows) < total else None,
    })


# --- one replay ------------------------------------------------------------------------------

def _start_at(request: web.Request) -> float:
    try:
        return max(0.0, float(request.query.get("t", "0") or 0))
    except ValueError:
        return 0.0


def player_config(pid: int, replay: ReplayDetail, errors: list[ErrorRow], start_seconds: float,
                  *, embedded: bool = False, focus_error: str | None = None) -> dict[str, Any]:
    rid = replay.replay_id
    summary = timeline.summary(replay.as_dict(), [e.as_dict() for e in errors])
    start_ms = min(start_seconds * 1000, summary["duration"])
    first_load = timeline.plan(summary["segments"], start_ms) if summary["segments"] else []
    segments_url = f"/projects/{pid}/replays/{rid}/segments.pack"
    # the requests the loader makes first (runs of BATCH, as static/player/loader.js cuts them),
    # announced in <link rel=preload> so they start while the scripts load
    preload = [f"{segments_url}?from={summary['segments'][run[0]]['id']}&to={summary['segments'][run[-1]]['id']}"
               for run in (first_load[i:i + LOADER_BATCH] for i in range(0, len(first_load), LOADER_BATCH))]
    return {
        "project": pid,
        "replay_id": rid,
        "api": f"/api/0/projects/{pid}/replays/{rid}",
        "breadcrumbs_url": f"/projects/{pid}/replays/{rid}/breadcrumbs.json",
        "segments_url": segments_url,
        "page_url": f"/replays/{rid}",
        "start": start_ms,
        "first_load": first_load,
        "preload": preload,
        "embedded": embedded,
        "focus_error": focus_error,
        **summary,
    }


def not_found(request: web.Request, message: str) -> web.Response:
    return render(request, "notfound.html", {"message": message}, status=404)


async def replay_page(request: web.Request) -> web.Response:
    await page_auth(request)
    try:
        pid, replay = await find_replay(request, request.match_info["replay_id"])
    except web.HTTPNotFound as exc:
        return not_found(request, exc.text or "no such replay")
    errors = await request.app[index_key].replay_errors(pid, replay.replay_id)
    config = player_config(pid, replay, errors, _start_at(request))
    if request.query.get("load") == "all":  # the benchmark's baseline: every segment before the first frame
        config["preload"] = []
    return render(request, "replay.html", {
        "nav": "replays", "pid": pid, "replay": replay, "errors": errors, "player": config,
        "scrub_report": replay.scrub_report,
    })


@json_errors
async def timeline_json(request: web.Request) -> web.Response:
    """The segment table (ms from the origin, full snapshots), gaps, errors and the plan for ``?t=``."""
    await page_auth_json(request)
    pid, replay = await find_replay(request, request.match_info["replay_id"])
    errors = await request.app[index_key].replay_errors(pid, replay.replay_id)
    return web.json_response(player_config(pid, replay, errors, _start_at(request)),
                             headers={"Cache-Control": "no-store"})


@json_errors
async def breadcrumbs_json(request: web.Request) -> web.Response:
    """Breadcrumbs, markers and inactive stretches of a whole replay, cached per stored version."""
    await page_auth_json(request)
    pid, replay = await find_replay(request, request.match_info["replay_id"])
    errors = [e.as_dict() for e in await request.app[index_key].replay_errors(pid, replay.replay_id)]
    cache = request.app[crumbs_cache_key]
    key = (pid, replay.replay_id)
    version = (replay.segment_count, replay.updated_at, len(errors))
    hit = cache.get(key)
    if hit is not None and hit[0] == version:
        cache.move_to_end(key)
        body = hit[1]
    else:
        summary = timeline.summary(replay.as_dict(), errors)
        result = await replay_breadcrumbs(request.app, pid, replay, errors, summary["origin"], summary["duration"])
        body = json.dumps(result, separators=(",", ":"))
        cache[key] = (version, body)
        while len(cache) > BREADCRUMB_CACHE:
            cache.popitem(last=False)
    return web.Response(text=body, content_type="application/json", headers={"Cache-Control": "no-store"})


async def page_auth_json(request: web.Request) -> None:
    from replayd.server.auth import require_auth

    await require_auth(request)


# --- issues and errors -----------------------------------------------------------------------

async def issues_page(request: web.Request) -> web.Response:
    await page_auth(request)
    pid = _pid(request)
    try:
        offset = max(0, int(request.query.get("cursor", "0") or 0))
    except ValueError:
        offset = 0
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
    pids = [_pid(request)] if "pid" in request.match_info else sorted(request.app[projects_key].by_id)
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
            replay_link = f"/replays/{replay.replay_id}?t={max(0.0, offset - 1):.1f}"
    data = error.data
    frames = list(reversed((data.get("exception") or {}).get("frames") or []))  # most recent call first
    return render(request, "error.html", {
        "nav": "issues", "pid": pid, "error": error, "data": data, "frames": frames,
        "player": player, "replay": replay, "replay_link": replay_link, "lead_seconds": ERROR_LEAD_SECONDS,
    })


async def index_page(request: web.Request) -> web.Response:
    return await replays_page(request)


def setup_views(app: web.Application) -> None:
    app[jinja_key] = make_env()
    app[crumbs_cache_key] = OrderedDict()
    app.router.add_get("/", index_page, name="home")
    app.router.add_get("/projects/{pid}/replays", replays_page, name="replays")
    app.router.add_get("/replays/{replay_id}", replay_page, name="replay")
    app.router.add_get("/projects/{pid}/replays/{replay_id}", replay_page)
    app.router.add_get("/projects/{pid}/replays/{replay_id}/breadcrumbs.json", breadcrumbs_json)
    app.router.add_get("/projects/{pid}/replays/{replay_id}/timeline.json", timeline_json)
    app.router.add_get("/issues", issues_page, name="issues")
    app.router.add_get("/projects/{pid}/issues", issues_page)
    app.router.add_get("/errors/{event_id}", error_page, name="error")
    app.router.add_get("/projects/{pid}/errors/{event_id}", error_page)
