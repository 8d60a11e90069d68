"""Sign-in, sessions, CSRF and the pages' security headers (in-process app, real index and store)."""

from __future__ import annotations

import re

import pytest
from yarl import URL

from replayd.player import auth, signin
from replayd.player.routes import CSP
from replayd.server.app import create_app
from tests.envelopes import error_envelope, new_id, page_events, replay_envelope
from tests.harness import ADMIN_PASSWORD, API_TOKEN, PUBLIC_KEY, make_config


async def login_token(client) -> str:
    response = await client.get("/login")
    assert response.status == 200
    html = await response.text()
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def sign_in(client, password: str = ADMIN_PASSWORD, next_url: str = "/", headers: dict[str, str] | None = None):
    token = await login_token(client)
    return await client.post("/login", data={"password": password, "csrf_token": token, "next": next_url},
                             headers=headers, allow_redirects=False)


async def page_csrf(client, path: str = "/") -> str:
    html = await (await client.get(path)).text()
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', html).group(1)


async def ingest_replay(client) -> str:
    rid = new_id()
    events = page_events(1_795_650_000_000, "https://shop.test/", "Checkout", ["Total: 12.00"])
    response = await client.post(f"/api/1/envelope/?sentry_key={PUBLIC_KEY}", data=replay_envelope(rid, 0, events))
    assert response.status == 200, await response.text()
    return rid


# --- unauthenticated -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/projects/1/replays", "/issues", "/replays/" + "a" * 32, "/errors/" + "b" * 32])
async def test_ui_pages_redirect_to_sign_in(client, path):
    response = await client.get(path, allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", ["/api/0/projects/1/replays/", "/api/0/projects/1/issues/",
                                  "/projects/1/replays/" + "a" * 32 + "/breadcrumbs.json"])
async def test_data_calls_answer_401_without_auth(client, path):
    response = await client.get(path, allow_redirects=False)
    assert response.status == 401
    assert "data" not in await response.text()


async def test_login_page_has_a_strict_csp_and_no_inline_script(client):
    response = await client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'self'" in csp and "object-src 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = await response.text()
    assert "<script>" not in html and "onclick" not in html


# --- signing in ------------------------------------------------------------------------------

async def test_sign_in_sets_a_signed_httponly_lax_cookie(client):
    response = await sign_in(client, next_url="/issues")
    assert response.status == 303
    assert response.headers["Location"] == "/issues"
    cookie = response.cookies[auth.SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    page = await client.get("/", allow_redirects=False)
    assert page.status == 200
    assert "Replays" in await page.text()
    api = await client.get("/api/0/projects/1/replays/")
    assert api.status == 200


async def test_session_cookie_is_secure_behind_https(client):
    token = await login_token(client)
    response = await client.post("/login", data={"password": ADMIN_PASSWORD, "csrf_token": token, "next": "/"},
                                 headers={"X-Forwarded-Proto": "https"}, allow_redirects=False)
    assert response.status == 303
    assert response.cookies[auth.SESSION_COOKIE]["secure"]
    plain = await sign_in(client)  # plain HTTP (the test client): a Secure cookie would never come back
    assert not plain.cookies[auth.SESSION_COOKIE]["secure"]


async def test_wrong_password_is_refused(client):
    response = await sign_in(client, password="nope")
    assert response.status == 401
    assert "Wrong password" in await response.text()
    assert auth.SESSION_COOKIE not in response.cookies
    assert (await client.get("/", allow_redirects=False)).status == 302


async def test_sign_in_without_its_csrf_token_is_refused(client):
    await client.get("/login")
    response = await client.post("/login", data={"password": ADMIN_PASSWORD, "csrf_token": "forged"},
                                 allow_redirects=False)
    assert response.status == 403
    response = await client.post("/login", data={"password": ADMIN_PASSWORD}, allow_redirects=False)
    assert response.status == 403


# Browsers drop tabs and newlines from a Location, so "/<TAB>/evil.test" is "//evil.test" to them.
OFF_SITE = ("//evil.test/", "https://evil.test/", "/\\evil.test", "/\t/evil.test/", "/\n/evil.test",
            "/\r\n/evil.test", "/ /evil.test", "javascript:alert(1)")


async def test_next_never_leaves_the_site(client):
    for target in OFF_SITE:
        response = await sign_in(client, next_url=target)
        assert response.headers["Location"] == "/", repr(target)
        # and when already signed in, GET /login?next= redirects at once: the same rule
        again = await client.get("/login", params={"next": target}, allow_redirects=False)
        assert again.status == 302 and again.headers["Location"] == "/", repr(target)
        client.session.cookie_jar.clear()


async def test_next_keeps_a_local_page_with_its_query(client):
    sent = await client.get("/?url=shop.test&sort=-duration", allow_redirects=False)
    next_url = URL(sent.headers["Location"]).query["next"]
    assert next_url == "/?url=shop.test&sort=-duration"
    response = await sign_in(client, next_url=next_url)
    assert response.headers["Location"] == next_url


async def test_forged_or_expired_cookie_is_not_a_session(client):
    secret = "s3cret"
    good = auth.sign_session(secret, "admin")
    assert auth.read_session(secret, good)["u"] == "admin"
    assert auth.read_session("other", good) is None
    payload, mac = good.rsplit(".", 1)
    assert auth.read_session(secret, payload + "x." + mac) is None
    assert auth.read_session(secret, good, max_age=-1) is None  # signed longer ago than a session lasts
    assert auth.read_session(secret, "garbage") is None
    assert auth.read_browser(secret, good) is None  # a signature for one purpose is none for another
    assert auth.read_browser(secret, auth.sign_browser(secret))
    assert auth.read_session(secret, auth.sign_browser(secret)) is None
    client.session.cookie_jar.update_cookies({auth.SESSION_COOKIE: good})
    assert (await client.get("/", allow_redirects=False)).status == 302


# --- CSRF on state changes -------------------------------------------------------------------

async def test_delete_with_a_session_needs_the_csrf_token(client):
    rid = await ingest_replay(client)
    await sign_in(client)
    url = f"/api/0/projects/1/replays/{rid}/"
    refused = await client.delete(url)
    assert refused.status == 403
    assert "CSRF" in (await refused.json())["detail"]
    assert (await client.get(url)).status == 200
    refused = await client.delete(url, headers={"X-CSRF-Token": "not-the-token"})
    assert refused.status == 403
    token = await page_csrf(client, f"/replays/{rid}")
    deleted = await client.delete(url, headers={"X-CSRF-Token": token})
    assert deleted.status == 200
    assert (await client.get(url)).status == 404


async def test_bearer_needs_no_csrf_and_opens_ui_pages(client):
    rid = await ingest_replay(client)
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    page = await client.get(f"/replays/{rid}", headers=bearer, allow_redirects=False)
    assert page.status == 200
    assert "Content-Security-Policy" in page.headers
    crumbs = await client.get(f"/projects/1/replays/{rid}/breadcrumbs.json", headers=bearer)
    assert crumbs.status == 200
    assert (await crumbs.json())["breadcrumbs"][0]["kind"] == "navigation"
    bad = await client.get("/", headers={"Authorization": "Bearer wrong"}, allow_redirects=False)
    assert bad.status == 401
    assert (await client.delete(f"/api/0/projects/1/replays/{rid}/", headers=bearer)).status == 200


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(client):
    await sign_in(client)
    assert (await client.post("/logout", data={}, allow_redirects=False)).status == 403
    token = await page_csrf(client)
    response = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/login"
    assert (await client.get("/", allow_redirects=False)).status == 302


# --- pages -----------------------------------------------------------------------------------

async def test_pages_render_escaped_recorded_values(client):
    rid = new_id()
    events = page_events(1_795_650_000_000, "https://shop.test/<script>alert(1)</script>", "Hi", [])
    body = replay_envelope(rid, 0, events, urls=["https://shop.test/<script>alert(1)</script>"],
                           user={"id": "<img src=x onerror=alert(1)>"})
    assert (await client.post(f"/api/1/envelope/?sentry_key={PUBLIC_KEY}", data=body)).status == 200
    eid = new_id()
    body = error_envelope(eid, rid, type="<b>Bold</b>", value="<script>alert(2)</script>")
    assert (await client.post(f"/api/1/envelope/?sentry_key={PUBLIC_KEY}", data=body)).status == 200
    await sign_in(client)
    for path in ("/", f"/replays/{rid}", f"/errors/{eid}", "/issues"):
        response = await client.get(path)
        assert response.status == 200, path
        html = await response.text()
        assert "<script>alert" not in html and "<img src=x" not in html and "<b>Bold" not in html, path
        assert re.findall(r'<script(?![^>]*\b(?:src=|type="application/json"))', html) == [], path


async def test_unknown_replay_and_error_are_404_pages(client):
    await sign_in(client)
    assert (await client.get("/replays/" + "c" * 32)).status == 404
    assert (await client.get("/errors/" + "d" * 32)).status == 404


async def test_error_without_replay_says_so(client):
    eid = new_id()
    body = error_envelope(eid, None)
    assert (await client.post(f"/api/1/envelope/?sentry_key={PUBLIC_KEY}", data=body)).status == 200
    await sign_in(client)
    html = await (await client.get(f"/errors/{eid}")).text()
    assert "No replay was recorded for this error" in html
    assert "computeTotal" in html and "TypeError" in html


async def test_list_filters_and_sorting(client):
    rid = await ingest_replay(client)
    await sign_in(client)
    html = await (await client.get("/?url=shop.test&sort=-duration")).text()
    assert f"/replays/{rid}" in html
    html = await (await client.get("/?has_errors=1")).text()
    assert f"/replays/{rid}" not in html
    html = await (await client.get("/?from=2000-01-01&to=2000-01-02")).text()
    assert f"/replays/{rid}" not in html
    for bad in ("from=yesterday", "sort=-price", "min_duration=long"):  # the API's parser: a 400
        assert (await client.get(f"/?{bad}")).status == 400, bad


async def test_vendor_files_are_linked_as_versioned_static_files(client):
    rid = await ingest_replay(client)
    await sign_in(client)
    html = await (await client.get(f"/replays/{rid}")).text()
    urls = re.findall(r'"(/static/vendor/[^"?]+\?v=[^"]+)"', html)
    assert sorted(URL(url).path for url in urls) == [
        "/static/vendor/msgpack.js", "/static/vendor/rrweb-replay.css", "/static/vendor/rrweb-replay.js"]
    for url in urls:
        response = await client.get(url)
        assert response.status == 200, url
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        # Python 3.11's mimetypes says application/javascript, 3.12's text/javascript: browsers run both.
        kind = "text/css" if url.split("?")[0].endswith(".css") else "javascript"
        assert kind in response.headers["Content-Type"], url


def test_csp_forbids_inline_script_and_foreign_framing():
    directives = dict(d.split(" ", 1) for d in CSP.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'self'"
    assert directives["object-src"] == "'none'"


async def test_failed_sign_ins_are_throttled_per_address(client, config):
    for _ in range(config.auth.sign_in_failures):
        assert (await sign_in(client, password="guess")).status == 401
    refused = await sign_in(client, password="guess")
    assert refused.status == 429 and int(refused.headers["Retry-After"]) > 0
    assert "too many failed sign-ins" in await refused.text()
    # the right password waits too: a guesser learns nothing from the answer
    assert (await sign_in(client)).status == 429


def test_the_throttle_forgets_failures_after_its_window():
    throttle = signin.SignInThrottle(per_client=2, total=100, window=60)
    throttle.attempt("10.0.0.1", now=0)
    throttle.attempt("10.0.0.1", now=1)
    assert throttle.retry_after("10.0.0.1", known=False, now=2) == 59
    assert throttle.retry_after("10.0.0.2", known=False, now=2) == 0
    assert throttle.retry_after("10.0.0.1", known=False, now=61) == 0


def test_a_successful_attempt_is_not_counted():
    throttle = signin.SignInThrottle(per_client=2, total=2, window=60)
    first = throttle.attempt("10.0.0.1", now=0)
    throttle.succeeded("10.0.0.1", first)
    throttle.attempt("10.0.0.1", now=1)
    assert throttle.retry_after("10.0.0.1", known=False, now=2) == 0


# --- behind a reverse proxy, and attacks from many addresses ---------------------------------

@pytest.fixture
async def proxied(aiohttp_client, tmp_path):
    """The app behind a reverse proxy on 127.0.0.1 (the test client's address)."""
    config = make_config(tmp_path, server={"trusted_proxies": ["127.0.0.1"]}, auth={"sign_in_failures": 3})
    return await aiohttp_client(create_app(config))


def forwarded(*hops: str) -> dict[str, str]:
    return {"X-Forwarded-For": ", ".join(hops)}


async def test_behind_a_trusted_proxy_one_client_cannot_lock_out_another(proxied):
    for _ in range(3):
        assert (await sign_in(proxied, password="guess", headers=forwarded("203.0.113.7"))).status == 401
    assert (await sign_in(proxied, password="guess", headers=forwarded("203.0.113.7"))).status == 429
    # what the client writes left of the address the proxy saw changes nothing
    assert (await sign_in(proxied, headers=forwarded("198.51.100.1", "203.0.113.7"))).status == 429
    assert (await sign_in(proxied, headers=forwarded("203.0.113.8"))).status == 303


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(client, config):
    assert config.server.trusted_proxies == []  # the default: no proxy is trusted
    for n in range(config.auth.sign_in_failures):
        assert (await sign_in(client, password="guess", headers=forwarded(f"203.0.113.{n}"))).status == 401
    assert (await sign_in(client, headers=forwarded("198.51.100.1"))).status == 429


async def test_addresses_of_one_ipv6_64_share_a_budget(proxied):
    for host in ("::1", "::2", "::3"):
        assert (await sign_in(proxied, password="guess", headers=forwarded("2001:db8:1:2" + host))).status == 401
    assert (await sign_in(proxied, headers=forwarded("2001:db8:1:2:ffff::9"))).status == 429
    assert (await sign_in(proxied, headers=forwarded("2001:db8:1:3::1"))).status == 303


async def test_a_browser_that_signed_in_before_gets_in_during_an_attack_from_many_addresses(aiohttp_client, tmp_path):
    config = make_config(tmp_path, server={"trusted_proxies": ["127.0.0.0/8"]},
                         auth={"sign_in_failures": 3, "sign_in_failures_total": 5})
    client = await aiohttp_client(create_app(config))
    jar = client.session.cookie_jar
    assert (await sign_in(client, headers=forwarded("192.0.2.10"))).status == 303
    known = {c.key: c.value for c in jar}[auth.BROWSER_COOKIE]
    jar.clear()
    for n in range(5):  # every attacker stays under its own budget
        assert (await sign_in(client, password="guess", headers=forwarded(f"203.0.113.{n}"))).status == 401
    # sign-in pauses for clients that never signed in, even with the right password ...
    paused = await sign_in(client, headers=forwarded("192.0.2.11"))
    assert paused.status == 429 and int(paused.headers["Retry-After"]) > 0
    # ... but not for the browser that did, from any address, the attacker's too
    jar.clear()
    jar.update_cookies({auth.BROWSER_COOKIE: known})
    assert (await sign_in(client, headers=forwarded("203.0.113.0"))).status == 303
    # a forged browser cookie is an unknown client
    jar.clear()
    jar.update_cookies({auth.BROWSER_COOKIE: known.split(".")[0] + ".forged"})
    assert (await sign_in(client, headers=forwarded("192.0.2.10"))).status == 429
