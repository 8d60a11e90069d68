"""Search, frustration and erasure end to end: envelopes in through ingest (real worker, real
scrubber), then the API's ``?query=``, the top selectors, ``POST .../users/erase/`` and
``replayd erase`` on both indexes and both blob stores."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from replayd.server.app import create_app
from replayd.server.cli import main
from replayd.server.keys import index_key
from tests.harness import ON_BOTH_INDEXES, make_config
from tests.test_ingest import AUTH, T0, envelope, error_envelope, error_event, item, post, recording, replay_event, rid

PAGE = {"type": 0, "id": 1, "childNodes": [{"type": 2, "id": 2, "tagName": "html", "attributes": {}, "childNodes": [
    {"type": 2, "id": 3, "tagName": "body", "attributes": {}, "childNodes": [
        {"type": 2, "id": 10, "tagName": "button", "attributes": {"id": "pay", "class": "btn"},
         "childNodes": [{"type": 3, "id": 11, "textContent": "Pay now"}]},
        {"type": 2, "id": 20, "tagName": "button", "attributes": {"id": "buy"},
         "childNodes": [{"type": 3, "id": 21, "textContent": "Buy"}]},
        {"type": 2, "id": 30, "tagName": "a", "attributes": {"href": "/checkout", "data-testid": "checkout"},
         "childNodes": [{"type": 2, "id": 31, "tagName": "span", "attributes": {},
                         "childNodes": [{"type": 3, "id": 32, "textContent": "Checkout"}]}]},
        {"type": 2, "id": 40, "tagName": "p", "attributes": {},
         "childNodes": [{"type": 3, "id": 41, "textContent": "x"}]},
    ]}]}]}


def at(ms: int, data: dict, kind: int = 3) -> dict:
    return {"type": kind, "timestamp": int(T0 * 1000) + ms, "data": data}


# What replayd's snippet says of a click on each node of PAGE (its ui.click breadcrumb): the
# innermost clickable element (a paragraph is none: itself), its attributes and text nodes.
ELEMENTS = {
    10: {"id": 10, "tagName": "BUTTON", "attributes": {"id": "pay", "class": "btn"}, "texts": [[11, "Pay now"]]},
    20: {"id": 20, "tagName": "BUTTON", "attributes": {"id": "buy"}, "texts": [[21, "Buy"]]},
    31: {"id": 30, "tagName": "A", "attributes": {"data-testid": "checkout"}, "texts": [[32, "Checkout"]]},
    40: {"id": 40, "tagName": "P", "attributes": {}, "texts": [[41, "x"]]},
}


def click(node: int, ms: int) -> list[dict]:
    """rrweb's click event and the snippet's breadcrumb describing its element."""
    return [at(ms, {"source": 2, "type": 2, "id": node, "x": 1, "y": 1}),
            at(ms, {"tag": "breadcrumb", "payload": {"timestamp": T0 + ms / 1000, "type": "default",
                                                     "category": "ui.click",
                                                     "data": {"nodeId": node, "node": ELEMENTS[node]}}}, 5)]


def start() -> list[dict]:
    return [at(0, {"href": "https://shop.example/cart", "width": 800, "height": 600}, 4),
            at(1, {"node": PAGE, "initialOffset": {"left": 0, "top": 0}}, 2)]


def moved(ms: int) -> dict:
    return at(ms, {"source": 1, "positions": [{"x": 1, "y": 1, "id": 3, "timeOffset": 0}]})


def changed(ms: int) -> dict:
    return at(ms, {"source": 0, "adds": [], "removes": [], "texts": [], "attributes": [{"id": 40, "attributes":
                                                                                      {"class": "busy"}}]})


def segment(replay_id: str, segment_id: int, events: list[dict], urls: list[str], user: dict) -> bytes:
    event = replay_event(replay_id, segment_id, T0 + segment_id * 10, urls=urls, user=user)
    return envelope(item({"type": "replay_event"}, json.dumps(event).encode(), with_length=False),
                    recording(segment_id, events), event_id=replay_id)




JANE, BOB, DECOY = "jane@example.com", "bob@example.com", "decoy@example.com"


async def ingest_three(client) -> tuple[str, str, str]:
    """Jane: a dead Pay button (decided by her next segment) and a rage click on Buy (5 clicks, the
    first dead: decided by her third segment), on /pay;
    Bob: a working checkout link; the decoy: a click on a paragraph."""
    jane, bob, decoy = rid(), rid(), rid()
    await post(client, segment(jane, 0, [*start(), *click(10, 1000), moved(3000)],
                               ["https://shop.example/cart", "https://shop.example/pay"], {"email": JANE, "id": "j-1"}))
    await post(client, segment(jane, 1, [*(e for i in range(5) for e in click(20, 10_000 + i * 100)), moved(12_000)],
                               [], {"email": JANE, "id": "j-1"}))
    await post(client, segment(jane, 2, [moved(18_000)], [], {"email": JANE, "id": "j-1"}))
    await post(client, segment(bob, 0, [*start(), *click(31, 1000), changed(1500), moved(9000)],
                               ["https://shop.example/checkout"], {"email": BOB, "id": "b-2"}))
    await post(client, segment(decoy, 0, [*start(), *click(40, 1000), moved(9000)],
                               ["https://shop.example/pay"], {"email": DECOY, "id": "d-3"}))
    await post(client, error_envelope(error_event(rid()[:31] + "a", jane, user={"email": JANE})))
    await post(client, error_envelope(error_event(rid()[:31] + "b", bob, user={"email": BOB})))
    return jane, bob, decoy


async def search(client, query: str, **params) -> list[dict]:
    response = await client.get("/api/0/projects/1/replays/", params={"query": query, **params}, headers=AUTH)
    assert response.status == 200, await response.text()
    return (await response.json())["data"]


@ON_BOTH_INDEXES
async def test_searches_find_exactly_the_replays_and_open_at_the_click(client):
    jane, bob, decoy = await ingest_three(client)
    found = await search(client, "click.textContent:*checkout*")
    assert [r["replay_id"] for r in found] == [bob] and found[0]["click_offset"] == pytest.approx(1.0)
    assert [r["replay_id"] for r in await search(client, "count_rage_clicks:>0 url:*pay*")] == [jane]
    assert [r["replay_id"] for r in await search(client, f"user.email:{JANE}")] == [jane]
    assert [r["replay_id"] for r in await search(client, "user.id:b-2")] == [bob]
    dead = await search(client, "dead.selector:button#pay")
    assert [r["replay_id"] for r in dead] == [jane] and dead[0]["click_offset"] == pytest.approx(1.0)
    assert [r["replay_id"] for r in await search(client, "click.selector:a[data-testid=checkout]")] == [bob]
    assert {r["replay_id"] for r in await search(client, "url:*pay*")} == {jane, decoy}
    everyone = await search(client, "", sort="-count_dead_clicks")
    assert everyone[0]["replay_id"] == jane and everyone[0]["dead_click_count"] == 2
    assert everyone[0]["rage_click_count"] == 1
    rage = await search(client, "rage.selector:#buy")
    assert [r["replay_id"] for r in rage] == [jane] and rage[0]["click_offset"] == pytest.approx(10.0)
    assert JANE not in json.dumps(everyone)  # stored hashed, found all the same
    selectors = await (await client.get("/api/0/projects/1/selectors/", headers=AUTH)).json()
    assert sorted(selectors["dead"], key=lambda s: s["selector"]) == [
        {"selector": "button#buy", "count": 1, "replay_count": 1},
        {"selector": "button#pay.btn", "count": 1, "replay_count": 1}]
    assert [s["selector"] for s in selectors["rage"]] == ["button#buy"]


@pytest.mark.parametrize(("params", "words"), [
    ({"query": "click.tag:button AND"}, "position 20"),
    ({"query": "clik.tag:a"}, "unknown field 'clik.tag'"),
    ({"query": "count_errors:>-1"}, "negative"),
    ({"query": "(" * 300 + "url:a" + ")" * 300}, "parentheses nest more than 20 deep (limits.max_search_nesting)"),
    ({"sort": "-colour"}, "sort must be one of"),
])
async def test_bad_searches_are_400_naming_the_problem(client, params, words):
    response = await client.get("/api/0/projects/1/replays/", params=params, headers=AUTH)
    assert response.status == 400
    assert words in (await response.json())["detail"]


SMALL_LIMITS = {"max_search_characters": 40, "max_search_terms": 2, "max_search_nesting": 1,
                "max_search_value_characters": 5}


@pytest.mark.parametrize(("query", "words"), [
    ("url:" + "a" * 40, "the search is 44 characters, over 40 (limits.max_search_characters)"),
    ("url:a url:b url:c", "more than 2 terms (limits.max_search_terms)"),
    ("((url:a))", "nest more than 1 deep (limits.max_search_nesting)"),
    ("url:abcdef", "url's value is over 5 characters (limits.max_search_value_characters)"),
])
async def test_search_limits_are_the_configs_and_a_refusal_names_its_key(aiohttp_client, tmp_path, query, words):
    client = await aiohttp_client(create_app(make_config(tmp_path, limits=SMALL_LIMITS)))
    response = await client.get("/api/0/projects/1/replays/", params={"query": query}, headers=AUTH)
    assert response.status == 400
    assert words in (await response.json())["detail"]
    assert await search(client, "(url:abcde url:b)") == []  # within every limit


@ON_BOTH_INDEXES
async def test_the_largest_search_the_config_allows_runs(aiohttp_client, tmp_path, index_url):
    """Each limit at the highest value the config takes: the parser's and the SQL's recursion, and the
    parameters the terms bind, stay within what both databases take."""
    limits = {"max_search_characters": 10_000, "max_search_terms": 500, "max_search_nesting": 30,
              "max_search_value_characters": 10_000}
    client = await aiohttp_client(create_app(make_config(tmp_path, limits=limits, index={"url": index_url})))
    jane, _, decoy = await ingest_three(client)
    kinds = ["!click.id:b{i}", "!user.email:j{i}", "count_errors:<{i}9", "!click.selector:b.c{i}[role=r]",
             "!click.textContent:*{i}*"]
    query = " ".join([nested_search(30), *(kinds[i % len(kinds)].format(i=i) for i in range(438)),
                      "!url:" + "*b" * 20])
    assert 9_000 < len(query) <= 10_000, len(query)
    assert {r["replay_id"] for r in await search(client, query)} == {jane, decoy}


def nested_search(depth: int) -> str:
    """``depth`` parentheses, AND and OR alternating (the deepest SQL a nesting makes), a click term
    innermost; it finds every replay with a /pay URL."""
    nested = "!click.selector:b.c[role=r][title=t]"
    for i in range(depth):
        nested = f"(url:*pay* OR url:{i} {nested})"
    return nested


@ON_BOTH_INDEXES
async def test_a_search_nested_as_deep_as_the_default_limit_runs(client):
    """Was a 500 on SQLite from 11 levels ("parser stack overflow")."""
    jane, _, decoy = await ingest_three(client)
    assert {r["replay_id"] for r in await search(client, nested_search(20))} == {jane, decoy}


async def test_the_list_page_shows_a_search_error(client):
    from tests.test_player_auth import sign_in  # the UI's own sign-in

    await sign_in(client)
    response = await client.get("/projects/1/replays", params={"query": "(count_errors:>1"})
    assert response.status == 400
    assert "missing closing parenthesis" in await response.text()


@ON_BOTH_INDEXES
async def test_erasing_a_user_through_the_api_leaves_the_others(client, config):
    jane, bob, decoy = await ingest_three(client)
    assert (await client.post("/api/0/projects/1/users/erase/", json={"email": JANE})).status == 401
    bad = await client.post("/api/0/projects/1/users/erase/", json={"colour": "red"}, headers=AUTH)
    assert bad.status == 400
    response = await client.post("/api/0/projects/1/users/erase/", json={"email": JANE}, headers=AUTH)
    assert response.status == 200
    assert await response.json() == {"erased": {"replays": 1, "errors": 1, "blobs": 3}}
    assert {r["replay_id"] for r in await search(client, "")} == {bob, decoy}
    assert not (Path(config.storage.path) / "1" / jane).exists() and (Path(config.storage.path) / "1" / bob).is_dir()
    (issue,) = (await (await client.get("/api/0/projects/1/issues/", headers=AUTH)).json())["data"]
    assert issue["count"] == 1
    (audit,) = await client.app[index_key].audit_log()
    assert audit["action"] == "erase-user-email" and audit["detail"] == {"replays": 1, "errors": 1, "blobs": 3}
    assert JANE not in json.dumps(audit) and audit["actor"].startswith("api-token:")


async def test_erasing_takes_a_token_with_the_delete_scope(aiohttp_client, tmp_path):
    from tests.test_api import DELETER, READER, SCOPED_TOKENS, bearer

    client = await aiohttp_client(create_app(make_config(tmp_path, auth={"api_tokens": SCOPED_TOKENS})))
    jane, bob, decoy = await ingest_three(client)
    refused = await client.post("/api/0/projects/1/users/erase/", json={"email": JANE}, headers=bearer(READER))
    assert refused.status == 403 and (await refused.json())["missing_scope"] == "delete"
    assert "'delete' scope" in (await refused.json())["detail"]
    assert {r["replay_id"] for r in await search(client, "")} == {jane, bob, decoy}
    assert await client.app[index_key].audit_log() == []
    response = await client.post("/api/0/projects/1/users/erase/", json={"email": JANE}, headers=bearer(DELETER))
    assert response.status == 200 and (await response.json())["erased"]["replays"] == 1
    assert {r["replay_id"] for r in await search(client, "")} == {bob, decoy}


@ON_BOTH_INDEXES
async def test_replayd_erase_removes_one_user_from_an_s3_store(aiohttp_client, tmp_path, s3_server, s3_bucket,
                                                                index_url, capsys):
    config = make_config(tmp_path, storage={"backend": "s3", "bucket": s3_bucket,
                                            "endpoint_url": s3_server.endpoint_url, "prefix": "r/"},
                         index={"url": index_url})
    client = await aiohttp_client(create_app(config))
    jane, bob, decoy = await ingest_three(client)
    await client.close()  # the CLI works on a stopped (or running) replayd's stores
    args = ["erase", "--project", "1", "--user-id", "b-2", "--config", str(tmp_path / "replayd.yaml")]
    assert await asyncio.to_thread(main, args) == 0
    assert "1 replays, 0 errors, 1 blobs" in capsys.readouterr().out
    keys = s3_server.keys(s3_bucket)
    assert not [k for k in keys if bob in k] and [k for k in keys if jane in k] and [k for k in keys if decoy in k]
