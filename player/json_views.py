"""The player's JSON calls for one replay: its timeline and its breadcrumbs (``segments.py`` serves
its segments). Errors are answered as JSON whatever the request's Accept header."""

from __future__ import annotations

import json
from collections import OrderedDict

from aiohttp import web

from replayd.server.auth import require_auth
from replayd.server.keys import index_key

from . import timeline
from .page_helpers import find_replay, json_errors, player_config, start_at
from .segments import replay_breadcrumbs

BREADCRUMB_CACHE = 64

crumbs_cache_key = web.AppKey("player_breadcrumbs", OrderedDict)


@json_errors
async def timeline_json(request: web.Request) -> web.Response:
    """The segment table (ms from the origin, full snapshots), gaps, errors and the plan for ``?t=``."""
    await require_auth(request)
    pid, replay = await find_replay(request, request.match_info["replay_id"])
    errors = await request.app[index_key].replay_errors(pid, replay.replay_id)
    return web.json_response(player_config(pid, replay, errors, start_at(request)),
                             headers={"Cache-Control": "no-store"})


@json_errors
async def breadcrumbs_json(request: web.Request) -> web.Response:
    """Breadcrumbs, markers and inactive stretches of a whole replay, cached per stored version."""
    await require_auth(request)
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


def setup_json_views(app: web.Application) -> None:
    app[crumbs_cache_key] = OrderedDict()
    app.router.add_get("/projects/{pid}/replays/{replay_id}/breadcrumbs.json", breadcrumbs_json)
    app.router.add_get("/projects/{pid}/replays/{replay_id}/timeline.json", timeline_json)
