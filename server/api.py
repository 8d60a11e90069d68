"""The read API under /api/0/: replays, segments, errors, issues (Bearer token or a signed-in session)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import brotli
from aiohttp import web

from .auth import DELETE, bearer_token, require_auth, token_digest
from .codec import CODEC, CONTENT_TYPE, browser_readable, packed_segment_json, segment_json, unpack_blob
from .erase import USER_FIELDS, delete_replay_data, erase_user, user_forms
from .index import Replay, SegmentRecord, count_cap
from .keys import blobs_key, config_key, credentials_key, index_key, projects_key, spool_key
from .query import bad_request, query_int, replay_query
from .search import SearchNode, UserHasher, click_terms
from .segment_reader import REREADS, SegmentMoving, chunk_cache_key, read_one_packed
from .storage import BlobNotFound

MAX_PAGE = 200


def finite(value: Any) -> Any:
    """``value`` with every infinity and NaN replaced by None (null): JSON has no such numbers, and
    index rows kept before ingest checked times may hold some."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def json_response(data: Any, **kwargs: Any) -> web.Response:
    return web.json_response(finite(data), **kwargs)


def project_id(request: web.Request) -> int:
    try:
        pid = int(request.match_info["pid"])
    except ValueError:
        raise web.HTTPNotFound(text="no such project") from None
    if request.app[projects_key].get(pid) is None:
        raise web.HTTPNotFound(text=f"no project {pid}")
    return pid


def user_hasher(request: web.Request) -> UserHasher:
    """How a search's user values may be stored: as given, or hashed with the scrubbing secret."""
    secret = request.app[credentials_key].scrub_secret
    return lambda field, value: user_forms(secret, value)


async def click_offsets(request: web.Request, pid: int, rows: list[Replay],
                        search: SearchNode | None) -> dict[str, float]:
    """For a search on click fields: seconds into each replay of its first matching click."""
    terms = click_terms(search)
    if not terms or not rows:
        return {}
    moments = await request.app[index_key].click_moments(pid, [r.replay_id for r in rows], terms)
    return {r.replay_id: round(max(0.0, moments[r.replay_id] - r.started_at), 3) for r in rows
            if r.replay_id in moments and r.started_at is not None}


def _page(request: web.Request, data: list[Any], total: int, offset: int, limit: int,
          cap: int | None = None) -> web.Response:
    """A page of a list; ``total`` counted up to ``cap + 1`` (None: exactly), one more meaning "more
    than ``cap``": then ``total`` says ``cap`` and ``total_exact`` false."""
    next_cursor = str(offset + limit) if offset + len(data) < total else None
    exact = cap is None or total <= cap
    body = {"data": data, "total": total if exact else cap, "total_exact": exact, "next_cursor": next_cursor}
    headers = {}
    if next_cursor is not None:
        headers["Link"] = f'<{request.rel_url.update_query(cursor=next_cursor)}>; rel="next"'
    return json_response(body, headers=headers)


async def list_replays(request: web.Request) -> web.Response:
    await require_auth(request)
    pid = project_id(request)
    offset = query_int(request.query, "cursor", 0) or 0
    limit = query_int(request.query, "per_page", 50, low=1, high=MAX_PAGE) or 50
    total_cap = request.app[config_key].limits.list_total_cap
    query = replay_query(request.query, user_hasher(request), request.app[config_key].limits.search)
    rows, total = await request.app[index_key].list_replays(pid, query, offset=offset, limit=limit,
                                                            total_cap=total_cap)
    at = await click_offsets(request, pid, rows, query.search)
    return _page(request, [{**r.as_dict(), "click_offset": at.get(r.replay_id)} for r in rows], total, offset, limit,
                 count_cap(offset, limit, total_cap))


async def top_selectors(request: web.Request) -> web.Response:
    await require_auth(request)
    pid = project_id(request)
    limit = query_int(request.query, "per_page", 20, low=1, high=MAX_PAGE) or 20
    index = request.app[index_key]
    return json_response({kind: [s.as_dict() for s in await index.top_selectors(pid, kind, limit)]
                          for kind in ("dead", "rage")})


async def erase_user_route(request: web.Request) -> web.Response:
    """POST {"email"|"id"|"username": value}: every replay and error of that user is deleted."""
    token = bearer_token(request)
    await require_auth(request, DELETE)
    if token is None:
        raise web.HTTPForbidden(text="erasing a user takes an API token (Authorization: Bearer)")
    pid = project_id(request)
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("the body must be JSON: {\"email\": ...} or {\"id\": ...} or {\"username\": ...}") from None
    given = [(f, body[f]) for f in USER_FIELDS if isinstance(body, dict) and body.get(f) not in (None, "")]
    if len(given) != 1 or not isinstance(given[0][1], (str, int)) or isinstance(given[0][1], bool):
        raise bad_request(f"name exactly one user field ({', '.join(USER_FIELDS)}) with a string value")
    field, value = given[0]
    actor = "api-token:" + token_digest(token)[:12]  # which token, never the token itself
    counts = await erase_user(request.app[index_key], request.app[blobs_key], request.app[spool_key], pid, field,
                              str(value), request.app[credentials_key].scrub_secret, actor)
    return json_response({"erased": counts})


async def get_replay(request: web.Request) -> web.Response:
    await require_auth(request)
    pid = project_id(request)
    replay = await request.app[index_key].get_replay(pid, request.match_info["replay_id"])
    if replay is None:
        raise web.HTTPNotFound(text="no such replay")
    errors = await request.app[index_key].replay_errors(pid, replay.replay_id)
    return json_response({"data": {**replay.as_dict(), "errors": [e.as_dict() for e in errors]}})


class NotYetUploaded(Exception):
    """The segment sits in another node's spool until that node uploads it: 503, try again soon."""


NOT_YET_UPLOADED_RETRY_AFTER = 5


def not_yet_uploaded(segment: SegmentRecord) -> web.HTTPServiceUnavailable:
    return web.HTTPServiceUnavailable(
        text=f"segment {segment.segment_id} is not yet uploaded: another replayd node holds it in its spool "
             "until the blob store takes it", headers={"Retry-After": str(NOT_YET_UPLOADED_RETRY_AFTER)})


async def read_segment_blob(app: web.Application, segment: SegmentRecord) -> bytes | None:
    """A segment's stored bytes (its index row given): from the local spool while it waits for
    upload, else from the blob store; None if neither has it. NotYetUploaded when the row says
    spooled and neither has it: another node spooled it (or uploaded it just now: read again)."""
    if segment.location == "spool":
        blob = await app[spool_key].blob(segment)
        if blob is not None:
            return blob
    try:
        return await app[blobs_key].get(segment.blob_key)
    except BlobNotFound:
        if segment.location == "spool":
            raise NotYetUploaded(segment.blob_key) from None
        return None


async def get_segment(request: web.Request) -> web.StreamResponse:
    await require_auth(request)
    pid = project_id(request)
    try:
        segment_id = int(request.match_info["segment_id"])
    except ValueError:
        raise web.HTTPNotFound(text="no such segment") from None
    return await _segment_answer(request, pid, segment_id, rereads=REREADS)


async def _read_again(request: web.Request, row: SegmentRecord, rereads: int) -> web.StreamResponse:
    """The segment was not where its row pointed: compaction may have switched the row to its chunk
    and deleted the blob (or a later compaction the object) since we read it. Read the row again and
    answer from where it points now; 404 if it is unchanged (the blob is lost) or gone, 503 if it kept moving."""
    again = await request.app[index_key].get_segment(row.project_id, row.replay_id, row.segment_id)
    if again is None or again == row:
        raise web.HTTPNotFound(text="segment blob is missing")
    if rereads == 0:
        raise SegmentMoving(row)
    return await _segment_answer(request, row.project_id, row.segment_id, rereads=rereads - 1)


async def _segment_answer(request: web.Request, pid: int, segment_id: int, *, rereads: int) -> web.StreamResponse:
    row = await request.app[index_key].get_segment(pid, request.match_info["replay_id"], segment_id)
    if row is None:
        raise web.HTTPNotFound(text="no such segment")
    # the form answered; a cache keeps one per Accept (JSON or msgpack) and Accept-Encoding (br or not)
    headers = {"Cache-Control": "private, max-age=86400", "Vary": "Accept, Accept-Encoding", "X-Replayd-Codec": CODEC}
    wants_packed = request.query.get("format") == "msgpack" or CONTENT_TYPE in request.headers.get("Accept", "")
    wants_br = wants_packed and "br" in request.headers.get("Accept-Encoding", "")
    limit = request.app[config_key].limits.max_decoded_bytes
    if not row.compacted:
        try:
            blob = await read_segment_blob(request.app, row)
        except NotYetUploaded:
            raise not_yet_uploaded(row) from None
        if blob is None:
            return await _read_again(request, row, rereads)
        if wants_br and browser_readable(blob):
            # The stored bytes as they are: the browser undoes brotli itself, no server CPU spent.
            return web.Response(body=blob, content_type=CONTENT_TYPE, headers={**headers, "Content-Encoding": "br"})
        if not wants_br:
            body = await asyncio.to_thread(segment_json, blob, limit)
            return web.Response(body=body, content_type="application/json", headers=headers)
        packed: bytes | None = await asyncio.to_thread(unpack_blob, blob, limit)  # v2: the browser reads v1's form only
    else:
        # A compacted segment: its bytes cut from its chunk; the same answer as before compaction (the
        # msgpack form compressed again, so its bytes may differ; what they decode to does not).
        packed = await read_one_packed(request.app[blobs_key], row, lambda r: read_segment_blob(request.app, r),
                                       request.app[chunk_cache_key], limit)
    if packed is None:
        return await _read_again(request, row, rereads)
    if wants_br:
        quality = request.app[config_key].storage.compression_quality
        body = await asyncio.to_thread(brotli.compress, packed, quality=quality)
        return web.Response(body=body, content_type=CONTENT_TYPE, headers={**headers, "Content-Encoding": "br"})
    body = await asyncio.to_thread(packed_segment_json, packed)
    return web.Response(body=body, content_type="application/json", headers=headers)


async def delete_replay(request: web.Request) -> web.Response:
    await require_auth(request, DELETE)
    pid = project_id(request)
    replay_id = request.match_info["replay_id"]
    index = request.app[index_key]
    if await index.get_replay(pid, replay_id) is None:
        raise web.HTTPNotFound(text="no such replay")
    deleted_blobs = await delete_replay_data(index, request.app[blobs_key], request.app[spool_key], pid, replay_id)
    return web.json_response({"deleted": replay_id, "blobs": deleted_blobs})


async def get_error(request: web.Request) -> web.Response:
    await require_auth(request)
    pid = project_id(request)
    error = await request.app[index_key].get_error(pid, request.match_info["event_id"].replace("-", "").lower())
    if error is None:
        raise web.HTTPNotFound(text="no such error")
    return json_response({"data": error.as_dict()})


async def list_issues(request: web.Request) -> web.Response:
    await require_auth(request)
    pid = project_id(request)
    offset = query_int(request.query, "cursor", 0) or 0
    limit = query_int(request.query, "per_page", 50, low=1, high=MAX_PAGE) or 50
    rows, total = await request.app[index_key].list_issues(pid, offset=offset, limit=limit)
    return _page(request, [i.as_dict() for i in rows], total, offset, limit)


def setup_api_routes(app: web.Application) -> None:
    base = "/api/0/projects/{pid}"
    app.router.add_get(f"{base}/replays/", list_replays)
    app.router.add_get(f"{base}/replays/{{replay_id}}/", get_replay)
    app.router.add_delete(f"{base}/replays/{{replay_id}}/", delete_replay)
    app.router.add_get(f"{base}/replays/{{replay_id}}/segments/{{segment_id}}/", get_segment)
    app.router.add_get(f"{base}/errors/{{event_id}}/", get_error)
    app.router.add_get(f"{base}/issues/", list_issues)
    app.router.add_get(f"{base}/selectors/", top_selectors)
    app.router.add_post(f"{base}/users/erase/", erase_user_route)
