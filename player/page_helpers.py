"""What the player's pages and data calls share: templates, the project and replay a URL names, the
player's configuration for a replay, and errors as JSON."""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from replayd.server.index import ErrorRow, ReplayDetail
from replayd.server.keys import index_key, projects_key
from replayd.server.middlewares import http_error_as_json
from replayd.server.timestamps import displayable

from . import timeline
from .auth import current_session, request_csrf_token

TEMPLATES = Path(__file__).resolve().parent / "templates"
LOADER_BATCH = 30  # segments per request of static/player/loader.js (BATCH)

jinja_key = web.AppKey("player_jinja", jinja2.Environment)


# --- templates -------------------------------------------------------------------------------

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
            return http_error_as_json(exc)

    return answer


def not_found(request: web.Request, message: str) -> web.Response:
    return render(request, "notfound.html", {"message": message}, status=404)


# --- lookups ---------------------------------------------------------------------------------

def page_project(request: web.Request) -> int:
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
    pids = [page_project(request)] if "pid" in request.match_info else sorted(request.app[projects_key].by_id)
    for pid in pids:
        replay = await index.get_replay(pid, replay_id)
        if replay is not None and replay.segment_count:
            return pid, replay
    raise web.HTTPNotFound(text="no such replay (deleted, expired, or never stored)")


# --- the player ------------------------------------------------------------------------------

def start_at(request: web.Request) -> float:
    """``?t=`` in seconds; malformed is 0 (player_config clamps the rest into the replay)."""
    try:
        t = float(request.query.get("t", "0") or 0)
    except ValueError:
        return 0.0
    return 0.0 if math.isnan(t) else t


def player_config(pid: int, replay: ReplayDetail, errors: list[ErrorRow], start_seconds: float,
                  *, embedded: bool = False, focus_error: str | None = None) -> dict[str, Any]:
    rid = replay.replay_id
    summary = timeline.summary(replay.as_dict(), [e.as_dict() for e in errors])
    start_ms = timeline.clamp_moment(start_seconds * 1000, summary["duration"])
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


def setup_templates(app: web.Application) -> None:
    app[jinja_key] = make_env()
