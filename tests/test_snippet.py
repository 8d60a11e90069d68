"""The browser snippet (static/replayd.js) in real Chromium against a running replayd.

Test pages (tests/pages/snippet/) are served by a small static server on another origin than
replayd; the snippet itself comes from replayd's /static/ (as on a real site) unless replayd is
meant to be down. The retry and queue-bound tests point the DSN at the static site itself, which
answers envelopes from a script (429 + Retry-After, 503, 400). Flush intervals and retry delays are
shortened through the script tag's data-* options so the module runs in about a minute and a half.
"""

from __future__ import annotations

import gzip
import html
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.envelopes import parse_envelope, read_recording
from tests.harness import REPO, RunningServer, free_port
from tests.waiting import wait_until

PAGES = REPO / "tests" / "pages" / "snippet"
BUNDLE = REPO / "static" / "replayd.js"
WORKER = REPO / "static" / "replayd-worker.js"
NODE = "node"
OWN_CODE_LIMIT = 8 * 1024  # bytes, minified + gzip, rrweb excluded
TYPED = "Copper watering can"
PASSWORD = "hunter2-swordfish"
FAST = {"flush-interval-ms": 1000, "retry-base-ms": 300, "retry-max-ms": 1500}
# Personal data in the network test's requests (tests/pages/snippet/network.js) and answers.
PLANTED_EMAIL = "nora.planted@example.org"
PLANTED_RESPONSE_KEY = "planted-resp-key-4410"
PROFILE_ANSWER = {"token": "planted-token-9931", "owner": PLANTED_EMAIL, "items": 3}
PLANTED_NETWORK = [PLANTED_EMAIL, "planted-pw-3321", "planted-bearer-7741", "planted-apikey-8812",
                   PLANTED_RESPONSE_KEY, "planted-token-9931"]


# --- the static site ------------------------------------------------------------------------

class Site:
    """The test pages on a free port; ``__TAG__`` becomes the snippet's script tag."""

    def __init__(self, server: RunningServer | None, snippet_url: str | None = None, **options: Any):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # Without a replayd, the site answers envelopes itself from `answers` (status, headers), then 200.
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.posts: list[tuple[float, int, bytes]] = []  # (monotonic time, status answered, body)
        dsn = server.dsn if server else f"http://key@{self.url.split('//')[1]}/1"
        snippet_url = snippet_url or f"{server.url if server else ''}/static/replayd.js"
        attrs = "".join(f' data-{k}="{html.escape(str(v))}"' for k, v in options.items())
        tag = f'<script src="{snippet_url}" data-dsn="{dsn}"{attrs} async></script>'
        camel = {"".join(w if i == 0 else w.title() for i, w in enumerate(k.split("-"))): v for k, v in options.items()}
        html_type = "text/html; charset=utf-8"
        js_type = "text/javascript"
        self.files: dict[str, tuple[bytes, str, dict[str, str]]] = {}
        pages = ("shop.html", "checkout.html", "big.html", "options.html", "twice.html", "storm.html", "network.html",
                 "clicks.html")
        for name in pages:
            body = (PAGES / name).read_text().replace("__TAG__", tag).encode()
            self.files["/" + name] = (body, html_type, {})
        replayd_origin = server.url if server else self.url
        csp = (f"default-src 'none'; script-src 'self' {replayd_origin}; connect-src {replayd_origin}; "
               "style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'")
        csp_page = (PAGES / "csp.html").read_text().replace("__SNIPPET__", snippet_url).encode()
        self.files["/csp.html"] = (csp_page, html_type, {"Content-Security-Policy": csp})
        # The same page under a policy that refuses every worker: the snippet compresses on the main thread.
        no_worker = {"Content-Security-Policy": csp + "; worker-src 'none'"}
        self.files["/csp-no-worker.html"] = (csp_page, html_type, no_worker)
        self.files["/replayd-worker.js"] = (WORKER.read_bytes(), js_type, {})  # a same-origin copy (workerUrl)
        self.files["/silent-worker.js"] = (b"onmessage = () => {};", js_type, {})  # a worker that never answers
        # A copy served under its own policy, which refuses the worker every request (uploads).
        no_connect = {"Content-Security-Policy": "connect-src 'none'"}
        self.files["/no-connect-worker.js"] = (WORKER.read_bytes(), js_type, no_connect)
        self.files["/spy.html"] = ((PAGES / "spy.html").read_bytes(), html_type, {})
        for name in ("app.js", "csp-init.js", "spy.js", "early.js", "storm.js", "network.js"):
            self.files["/" + name] = ((PAGES / name).read_bytes(), js_type, {})
        self.files["/config.js"] = (
            f"window.DSN = {json.dumps(dsn)}; window.OPTIONS = {json.dumps(camel)};".encode(), js_type, {})
        self.files["/ping.json"] = (b'{"stock": 7}', "application/json", {})
        self.files["/shop-api/report"] = (b"Quarterly stock report. " * 50, "text/plain", {})
        self.api_posts: list[tuple[str, dict[str, str], bytes]] = []  # POSTs to /shop-api/: (path, headers, body)
        self.files["/replayd.js"] = (BUNDLE.read_bytes(), js_type, {})
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="snippet-site", daemon=True)
        self.thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/shop-api/"):  # the page's own API (network details)
                    site.api_posts.append((self.path, dict(self.headers), body))
                    answer = json.dumps(PROFILE_ANSWER).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Api-Key", PLANTED_RESPONSE_KEY)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                status, headers = site.answers.pop(0) if site.answers else (200, {})
                site.posts.append((time.monotonic(), status, body))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def do_GET(self) -> None:
                found = site.files.get(self.path.split("?", 1)[0])
                if found is None:
                    self.send_error(404)
                    return
                body, content_type, headers = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def make_site() -> Any:
    sites: list[Site] = []

    def make(server: RunningServer | None, snippet_url: str | None = None, **options: Any) -> Site:
        site = Site(server, snippet_url, **options)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.close()


@pytest.fixture
def open_page(start_server, make_site, browser) -> Callable[..., tuple[RunningServer | None, Site, Any]]:
    """What most tests start with: replayd (none with ``server=False``), the test pages with the
    snippet's ``options``, and a page in a browser context of its own. The test closes
    ``page.context`` itself, before reading what the page sent (closing it fires pagehide)."""

    def open_(server: bool = True, snippet_url: str | None = None,
              **options: Any) -> tuple[RunningServer | None, Site, Any]:
        running = start_server() if server else None
        site = make_site(running, snippet_url, **options)
        return running, site, browser.new_context().new_page()

    return open_


# --- what the page sent ---------------------------------------------------------------------

class Uploads:
    """Every envelope the page posted (bodies as sent; requests that failed included)."""

    def __init__(self, page: Any):
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        page.context.on("request", self._on_request)

    def _on_request(self, request: Any) -> None:
        if request.method == "POST" and "/envelope/" in request.url:
            self.bodies.append(request.post_data_buffer or b"")
            self.headers.append(request.headers)

    def items(self, kind: str) -> list[tuple[dict[str, Any], bytes]]:
        return [(h, p) for body in self.bodies for h, p in parse_envelope(body)[1] if h.get("type") == kind]

    def recordings(self) -> list[tuple[int, bytes]]:
        return [read_recording(p) for _, p in self.items("replay_recording")]


def in_page(page: Any) -> Callable[[float], None]:
    """A sleep for ``wait_until`` that lets Playwright deliver the page's events (requests) meanwhile."""
    return lambda seconds: page.wait_for_timeout(seconds * 1000)


def next_task(page: Any) -> None:
    """Let the page run what is already queued with setTimeout(0): the snippet (re)starts rrweb so
    after a new replay or a page restored from the back/forward cache."""
    page.evaluate("() => new Promise((resolve) => setTimeout(resolve, 0))")


def replays(server: RunningServer) -> list[dict[str, Any]]:
    return server.api("/api/0/projects/1/replays/")["data"]


def replay(server: RunningServer, rid: str) -> dict[str, Any]:
    return server.api(f"/api/0/projects/1/replays/{rid}/")["data"]


def segment(server: RunningServer, rid: str, n: int) -> list[dict[str, Any]]:
    return server.api(f"/api/0/projects/1/replays/{rid}/segments/{n}/")


def stored_events(server: RunningServer, rid: str) -> list[dict[str, Any]]:
    return [e for seg in replay(server, rid)["segments"] for e in segment(server, rid, seg["segment_id"])]


def segment_ids(server: RunningServer, rid: str) -> list[int]:
    return [s["segment_id"] for s in replay(server, rid)["segments"]]


def assert_segments_in_order(server: RunningServer, rid: str, at_least: int) -> None:
    """The replay holds at least ``at_least`` segments, numbered from 0 without a gap."""
    ids = segment_ids(server, rid)
    assert len(ids) >= at_least and ids == list(range(len(ids)))


def envelope_fetches(page) -> list[dict[str, Any]]:
    """The uploads the page sent with its own fetch (spy.html notes every call)."""
    return page.evaluate("window.fetchCalls.filter((c) => c.url.includes('/envelope/'))")


def custom(events: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    return [e["data"]["payload"] for e in events if e.get("type") == 5 and e["data"].get("tag") == tag]


def playable(events: list[dict[str, Any]]) -> bool:
    """Starts with a full snapshot: only load/meta/custom events before it, and it comes first."""
    kinds = [e["type"] for e in events]
    return 2 in kinds and set(kinds[:kinds.index(2)]) <= {0, 1, 4, 5} and kinds[kinds.index(2) - 1] == 4


def start_snippet(page: Any, url: str) -> str:
    page.goto(url)
    page.wait_for_function("() => window.replayd && replayd.getReplayId && replayd.getReplayId()", timeout=10_000)
    return page.evaluate("replayd.getReplayId()")


def flush(page: Any, timeout_ms: int = 30_000) -> bool:
    return page.evaluate(f"replayd.flush({timeout_ms})")


def page_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


# --- build: the committed bundle is fresh, and small --------------------------------------------

def test_committed_bundle_is_fresh_and_our_code_is_small(tmp_path: Path) -> None:
    subprocess.run([NODE, "scripts/build-snippet.mjs", "--outdir", str(tmp_path), "--core"],
                   cwd=REPO, check=True, timeout=120)
    rebuilt = (tmp_path / "replayd.js").read_bytes()
    assert rebuilt == BUNDLE.read_bytes(), "static/replayd.js is stale: run `node scripts/build-snippet.mjs`"
    assert (tmp_path / "replayd-worker.js").read_bytes() == WORKER.read_bytes(), "static/replayd-worker.js is stale"
    ours = len(gzip.compress((tmp_path / "replayd.core.js").read_bytes(), 9))
    total = len(gzip.compress(rebuilt, 9))
    print(f"\nsnippet: our code {ours} B min+gzip; with @rrweb/record {total} B min+gzip ({len(rebuilt)} B min)")
    assert ours <= OWN_CODE_LIMIT
    assert b"eval(" not in rebuilt and b"new Function" not in rebuilt


def test_replayd_serves_the_bundle_cacheable(start_server) -> None:
    server = start_server()
    with urllib.request.urlopen(server.url + "/static/replayd.js", timeout=10) as response:
        assert response.read() == BUNDLE.read_bytes()
        assert "javascript" in response.headers["Content-Type"]
        validators = {k: response.headers[k] for k in ("ETag", "Last-Modified") if response.headers.get(k)}
        assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert validators  # browsers can revalidate instead of downloading again
    with urllib.request.urlopen(server.url + "/static/replayd.js?v=0123abcd", timeout=10) as response:
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    request = urllib.request.Request(server.url + "/static/replayd.js", headers={
        "If-None-Match" if "ETag" in validators else "If-Modified-Since": next(iter(validators.values()))})
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(request, timeout=10)
    not_modified.value.close()
    assert not_modified.value.code == 304


def test_stack_parser_with_real_stacks_of_three_browsers() -> None:
    result = subprocess.run([NODE, "--test", str(PAGES / "stack.test.mjs")], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout


# --- the whole story: two pages, typing, clicks, a request, an error ----------------------------

def test_session_across_pages_with_an_error(open_page) -> None:
    server, site, page = open_page(**FAST)
    errors = page_errors(page)
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/shop.html")
        page.evaluate("replayd.setUser({id: 'u-42', email: 'sam@example.com', username: 'sam', secret: 'no'})")
        page.locator("#name").press_sequentially(TYPED, delay=10)
        page.locator("#pw").press_sequentially(PASSWORD, delay=10)
        page.click("#add")
        assert page.text_content("#count") == "1"
        wait_until(uploads.recordings, 20, "a segment sent from the first page", sleep=in_page(page))
        page.click("#next")
        page.wait_for_url("**/checkout.html*")
        assert start_snippet(page, page.url) == rid  # same tab: same replay
        page.click("#ping")
        page.wait_for_function("document.getElementById('pong').textContent === '7'")
        page.click("#boom")
        assert flush(page)
        assert page.text_content("#clicks") == "2"
    finally:
        page.context.close()
    assert len(errors) == 1 and "Cannot read properties of undefined" in errors[0]  # the page's own error only

    # What the browser sent: masked on the client, plain fetches without a preflight-triggering type.
    sent = b"".join(data for _, data in uploads.recordings())
    for secret in (PASSWORD, "BLOCKED-CONTENT", "MASKED-CONTENT"):
        assert secret.encode() not in sent, f"{secret!r} left the browser"
    typed = [e["data"]["text"] for _, data in uploads.recordings() for e in json.loads(data)
             if e["type"] == 3 and e["data"].get("source") == 5]
    assert "*" * len(TYPED) in typed and all(set(t) <= {"*"} for t in typed)  # the page copies it to a <li>: not ours
    assert all(h.get("content-type", "text/plain").startswith("text/plain") for h in uploads.headers)
    replay_events = [json.loads(p) for _, p in uploads.items("replay_event")]
    assert all(ev["replay_id"] == rid and ev["user"] == {"id": "u-42", "email": "sam@example.com", "username": "sam"}
               for ev in replay_events)
    assert [ev["segment_id"] for ev in replay_events] == sorted(ev["segment_id"] for ev in replay_events)
    error_events = [json.loads(p) for _, p in uploads.items("event")]
    assert len(error_events) == 1
    error = error_events[0]
    eid = error["event_id"]
    exc = error["exception"]["values"][0]
    assert exc["type"] == "TypeError" and "total" in exc["value"]
    assert exc["mechanism"] == {"type": "onerror", "handled": False}
    top = exc["stacktrace"]["frames"][-1]
    assert top["function"] == "checkoutTotal" and top["filename"] == site.url + "/app.js" and top["lineno"] == 6
    assert error["contexts"]["replay"]["replay_id"] == rid and error["tags"]["replayId"] == rid
    assert error["request"]["url"].startswith(site.url + "/checkout.html")
    assert "HeadlessChrome" in error["request"]["headers"]["User-Agent"]
    assert any(c["category"] == "ui.click" for c in error["breadcrumbs"])

    # What replayd kept.
    listed = replays(server)
    assert [r["replay_id"] for r in listed] == [rid]
    detail = replay(server, rid)
    assert_segments_in_order(server, rid, 2)
    assert eid in detail["error_ids"]
    assert eid in [e.get("event_id") for e in detail["errors"]]
    assert any("shop.html" in u for u in detail["urls"]) and any("checkout.html" in u for u in detail["urls"])
    stored = server.api(f"/api/0/projects/1/errors/{eid}/")["data"]
    assert stored["replay_id"] == rid and stored["type"] == "TypeError"
    assert stored["data"]["exception"]["frames"][-1]["function"] == "checkoutTotal"

    events = stored_events(server, rid)
    assert {"eventId": eid} in custom(events, "error")
    assert sum(1 for e in events if e["type"] == 2) >= 2  # a full snapshot per page load
    crumbs = custom(events, "breadcrumb")
    clicked = [c["data"]["node"] for c in crumbs if c["category"] == "ui.click"]
    assert ("BUTTON", "add") in [(n["tagName"], n["attributes"].get("id")) for n in clicked]
    assert ("A", "next") in [(n["tagName"], n["attributes"].get("id")) for n in clicked]
    assert any(c["category"] == "console" and c.get("level") == "warning" for c in crumbs)
    assert any(c["category"] == "navigation" and c["data"]["to"].endswith("#pay") for c in crumbs)
    # requests: performance spans in the recording (the Sentry SDK's shape), breadcrumbs for errors
    spans = custom(events, "performanceSpan")
    assert sorted((s["op"], s["data"]["method"], s["data"]["statusCode"], s["description"]) for s in spans) == [
        ("resource.fetch", "GET", 200, site.url + "/ping.json"),
        ("resource.xhr", "GET", 200, site.url + "/ping.json?via=xhr")]
    assert all(s["endTimestamp"] >= s["startTimestamp"] and "request" not in s["data"] for s in spans)  # no details
    assert not any(c["category"] in ("fetch", "xhr") for c in crumbs)
    fetches = [c["data"] for c in error["breadcrumbs"] if c["category"] == "fetch"]
    assert [(c["method"], c["status_code"], c["url"]) for c in fetches] == [("GET", 200, site.url + "/ping.json")]
    assert fetches[0]["duration"] >= 0
    assert not any("/envelope/" in json.dumps(c) for c in crumbs + spans)  # never our own uploads
    inputs = [e["data"]["text"] for e in events if e["type"] == 3 and e["data"].get("source") == 5]
    assert inputs and all(set(t) <= {"*"} for t in inputs)


def test_unhandled_rejection_becomes_an_error_event(open_page) -> None:
    server, site, page = open_page(**FAST)
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/checkout.html")
        page.click("#reject")
        page.evaluate("replayd.captureException('a plain string')")
        assert flush(page)
    finally:
        page.context.close()
    values = [json.loads(p)["exception"]["values"][0] for _, p in uploads.items("event")]
    by_type = {v["type"]: v for v in values}
    assert by_type["RangeError"]["value"] == "payment postponed"
    assert by_type["RangeError"]["mechanism"]["type"] == "onunhandledrejection"
    assert by_type["RangeError"]["stacktrace"]["frames"][-1]["filename"] == site.url + "/app.js"
    assert by_type["Error"] == {"type": "Error", "value": "a plain string",
                                "mechanism": {"type": "manual", "handled": True}}
    assert len(replay(server, rid)["error_ids"]) == 2


# --- reliability ------------------------------------------------------------------------------

def test_no_segment_lost_while_replayd_is_down_for_20_s(open_page) -> None:
    server, site, page = open_page(snippet_url="/replayd.js", **FAST)  # the snippet stays reachable
    errors = page_errors(page)
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/shop.html")
        page.click("#add")
        wait_until(lambda: replays(server), 20, "the first segment")
        server.stop()
        down_since = time.monotonic()
        # Activity while replayd is down, including a page load (the queue moves via sessionStorage).
        for _ in range(8):
            page.click("#add")
            page.wait_for_timeout(1100)
        page.click("#next")
        page.wait_for_url("**/checkout.html*")
        assert start_snippet(page, page.url) == rid
        while time.monotonic() - down_since < 20:
            page.click("#ping")
            page.wait_for_timeout(1000)
        assert page.text_content("#clicks") != "0"  # the page kept working
        server.start()
        assert flush(page, 20_000)
    finally:
        page.context.close()
    assert errors == []
    sent = sorted({n for n, _ in uploads.recordings()})
    assert len(sent) >= 10, sent
    ids = segment_ids(server, rid)
    assert ids == sent == list(range(len(ids)))
    for n in ids:  # every segment readable
        assert isinstance(segment(server, rid, n), list)


def test_pagehide_sends_pending_data_and_big_segments_move_to_the_next_page(open_page) -> None:
    """With a long flush interval only pagehide flushes: small bodies go with keepalive, a first
    segment far over the 64 KB keepalive limit waits in sessionStorage for the next page of the tab."""
    server, site, page = open_page(**{**FAST, "flush-interval-ms": 60_000})
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/big.html")
        page.click("#next")
        page.wait_for_url("**/checkout.html*")
        assert start_snippet(page, page.url) == rid
        page.click("#ping")
        assert flush(page)
    finally:
        page.context.close()
    ids = segment_ids(server, rid)
    assert ids == list(range(len(ids))) and len(ids) >= 2
    first = json.dumps(segment(server, rid, 0))
    assert first.count("<p>") == 0 and first.count('"tagName": "p"') + first.count('"tagName":"p"') >= 4000
    assert max(len(body) for body in uploads.bodies) > 64 * 1024


def test_closing_the_tab_sends_the_last_segment(open_page) -> None:
    server, site, page = open_page(**{**FAST, "flush-interval-ms": 60_000})
    try:
        rid = start_snippet(page, site.url + "/shop.html")
        page.click("#add")
        page.close(run_before_unload=True)  # only pagehide / visibilitychange can send this segment now
        wait_until(lambda: replays(server), 20, "the last upload")
    finally:
        page.context.close()
    assert segment_ids(server, rid) == [0]
    assert any(e["type"] == 2 for e in segment(server, rid, 0))


@pytest.mark.parametrize("size", ["small", "big"])
def test_pagehide_keepalive_stays_within_the_64_kb_budget(open_page, size: str) -> None:
    _, site, page = open_page(**{**FAST, "flush-interval-ms": 60_000})
    try:
        start_snippet(page, site.url + f"/spy.html?{size}")
        page.click("#add")
        page.evaluate("window.fetchCalls.length = 0; dispatchEvent(new PageTransitionEvent('pagehide'))")
        calls = envelope_fetches(page)
        saved = page.evaluate("JSON.parse(sessionStorage.getItem('replayd:queue'))")
    finally:
        page.context.close()
    assert [entry["seg"] for entry in saved] == [0]  # kept for the tab's next page either way
    if size == "small":
        kept = [c for c in calls if c["keepalive"]]  # (the page lives on, so the queue sends it normally too)
        assert len(kept) == 1 and kept[0]["size"] <= 60_000
    else:  # over the budget: no keepalive request (the browser would refuse it)
        assert not [c for c in calls if c["keepalive"]]


def test_hidden_page_uploads_with_keepalive_once(open_page) -> None:
    """When the page is hidden (the last event a mobile browser may fire) the segment is cut and sent
    with keepalive from the page (a worker's request ends with the page), so the request outlives a
    frozen or closed page; it is sent once, not twice. A visible page's uploads go from the worker:
    the page's own fetch never sees them."""
    server, site, page = open_page(**{**FAST, "flush-interval-ms": 60_000})
    try:
        rid = start_snippet(page, site.url + "/spy.html?small")
        page.click("#add")
        assert flush(page)  # visible: an ordinary request
        page.click("#add")
        page.evaluate("""() => {
            Object.defineProperty(document, 'visibilityState', {get: () => 'hidden', configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }""")
        wait_until(lambda: len(segment_ids(server, rid)) == 2, 20, "the hidden page's segment")
        page.wait_for_function("JSON.parse(sessionStorage.getItem('replayd:queue')).length === 0")
        calls = envelope_fetches(page)
        # Read while the page lives: closing it may cut one more segment (pagehide), which is not a re-send.
        stored = segment_ids(server, rid)
    finally:
        page.context.close()
    assert [c["keepalive"] for c in calls] == [True]
    assert stored == [0, 1]


def test_host_page_unaffected_when_replayd_is_down(open_page, make_site) -> None:
    server, site, page = open_page(snippet_url=None, **FAST)
    site_with_local_snippet = make_site(server, snippet_url="/replayd.js", **FAST)
    server.stop()
    errors = page_errors(page)
    try:
        # The snippet itself unreachable (served by replayd): the page works.
        page.goto(site.url + "/shop.html")
        page.click("#add")
        assert page.text_content("#count") == "1"
        # The snippet loaded but replayd down: recording, retrying, the page still works.
        start_snippet(page, site_with_local_snippet.url + "/shop.html")
        for _ in range(3):
            page.click("#add")
        assert page.text_content("#count") == "3"
        page.click("#next")
        page.wait_for_url("**/checkout.html*")
        page.click("#ping")
        page.wait_for_function("document.getElementById('pong').textContent === '7'")
        assert page.evaluate("replayd.flush(1500)") is False
    finally:
        page.context.close()
    assert errors == []


def test_retries_honour_retry_after_and_4xx_is_dropped(make_site, browser) -> None:
    """Against scripted answers: 429 with Retry-After, a 503, a network-level 200, then a 400 that
    must not block the queue."""
    site = make_site(None, snippet_url="/replayd.js", **{**FAST, "retry-base-ms": 200})
    site.answers = [(429, {"Retry-After": "2"}), (503, {}), (200, {}), (400, {})]
    context = browser.new_context()
    page = context.new_page()
    try:
        start_snippet(page, site.url + "/shop.html")
        page.click("#add")
        assert flush(page, 10_000)
        for _ in range(2):
            page.click("#add")
            assert flush(page, 10_000)
    finally:
        context.close()
    (t0, s0, b0), (t1, s1, b1), (t2, s2, b2), (_, s3, b3) = site.posts[:4]
    assert [s0, s1, s2, s3] == [429, 503, 200, 400]
    assert t1 - t0 >= 1.9  # Retry-After: 2
    assert 0.1 <= t2 - t1 < t1 - t0  # after the 503, a backoff from retry-base-ms, not the last Retry-After
    segs = [read_recording(p)[0] for body in (b0, b1, b2, b3) for h, p in parse_envelope(body)[1]
            if h["type"] == "replay_recording"]
    assert segs == [0, 0, 0, 1]  # the same segment until stored; segment 1 refused (400)...
    later = [read_recording(p)[0] for _, _, body in site.posts[4:] for h, p in parse_envelope(body)[1]
             if h["type"] == "replay_recording"]
    assert later and later[0] == 2  # ...and dropped, not retried: the queue moved on


def test_bounded_queue_pauses_recording_and_resumes_with_a_full_snapshot(make_site, browser) -> None:
    site = make_site(None, snippet_url="/replayd.js",
                     **{**FAST, "flush-interval-ms": 300, "max-queue-entries": 3, "retry-max-ms": 500})
    site.answers = [(503, {})] * 12
    context = browser.new_context()
    page = context.new_page()
    try:
        start_snippet(page, site.url + "/shop.html")
        for _ in range(12):
            page.click("#add")
            page.wait_for_timeout(250)
        assert page.evaluate("JSON.parse(sessionStorage.getItem('replayd:queue')).length") == 3
        site.answers = []
        assert flush(page, 10_000)
        page.click("#add")
        assert flush(page, 10_000)
    finally:
        context.close()
    stored = {}
    for _, status, body in site.posts:
        for h, p in parse_envelope(body)[1]:
            if h["type"] == "replay_recording" and status == 200:
                n, data = read_recording(p)
                stored[n] = json.loads(data)
    assert sorted(stored) == list(range(len(stored))) and len(stored) >= 4
    assert playable(stored[3])  # resumed with a full snapshot


def stored_queue(page: Any) -> list[dict[str, Any]]:
    return page.evaluate("JSON.parse(sessionStorage.getItem('replayd:queue') || '[]')")


def test_stored_queue_stays_within_max_stored_bytes(make_site, browser) -> None:
    """The sessionStorage mirror keeps the oldest entries up to maxStoredBytes: the origin's quota
    is shared with the host page, which must still be able to store its own data."""
    site = make_site(None, snippet_url="/replayd.js",
                     **{**FAST, "flush-interval-ms": 300, "retry-max-ms": 500, "max-stored-bytes": 4000})
    site.answers = [(503, {})] * 40
    context = browser.new_context()
    page = context.new_page()
    errors = page_errors(page)
    try:
        start_snippet(page, site.url + "/shop.html")
        for _ in range(10):
            page.click("#add")
            page.wait_for_timeout(350)
        saved = stored_queue(page)
        assert saved and saved[0]["seg"] == 0  # the oldest first: they are sent first
        assert sum(len(entry["p"]) for entry in saved) <= 4000
        site.answers = []
        assert flush(page, 15_000)
    finally:
        context.close()
    assert errors == []
    sent = sorted({read_recording(p)[0] for _, status, body in site.posts if status == 200
                   for h, p in parse_envelope(body)[1] if h["type"] == "replay_recording"})
    assert sent == list(range(len(sent))) and len(sent) > len(saved)  # memory held more than storage


def test_full_session_storage_does_not_stop_recording(start_server, make_site, browser) -> None:
    """The host page has used up sessionStorage: the snippet records and uploads all the same."""
    server = start_server()
    site = make_site(server, **FAST)
    context = browser.new_context()
    context.add_init_script("""
        try { for (let i = 0; i < 100; i++) sessionStorage.setItem('host-' + i, 'x'.repeat(1 << 19)); } catch (e) {}
        try { for (let i = 0; i < 5000; i++) sessionStorage.setItem('host-small-' + i, 'x'.repeat(512)); } catch (e) {}
    """)
    page = context.new_page()
    errors = page_errors(page)
    try:
        rid = start_snippet(page, site.url + "/shop.html")
        assert page.evaluate("() => { try { sessionStorage.setItem('probe', 'x'.repeat(4096)); return false; }"
                             " catch (e) { return e.name; } }") == "QuotaExceededError"
        page.click("#add")
        wait_until(lambda: segment_ids(server, rid), 20, "the first segment, cut by the flush interval")
        page.click("#add")
        assert flush(page)
        assert page.text_content("#count") == "2"
    finally:
        context.close()
    assert errors == []
    ids = segment_ids(server, rid)
    assert ids == list(range(len(ids))) and len(ids) >= 2


@pytest.mark.parametrize("compression", ["CompressionStream", "missing"])
def test_segments_are_deflated_or_plain_json_without_compression_stream(start_server, make_site, browser,
                                                                        compression: str) -> None:
    server = start_server()
    site = make_site(server, **FAST)
    context = browser.new_context()
    if compression == "missing":
        context.add_init_script("delete window.CompressionStream")
    page = context.new_page()
    errors = page_errors(page)
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/shop.html")
        page.click("#add")
        wait_until(lambda: segment_ids(server, rid), 20, "the first segment, cut by the flush interval")
        page.evaluate("console.error('inventory out of sync')")
        page.click("#add")
        assert flush(page)
    finally:
        context.close()
    assert errors == []
    leads = {p.partition(b"\n")[2][:1] for _, p in uploads.items("replay_recording")}
    assert leads == ({b"x"} if compression == "CompressionStream" else {b"["})  # zlib header, or a JSON array
    ids = segment_ids(server, rid)
    assert ids == list(range(len(ids))) and len(ids) >= 2
    crumbs = custom(stored_events(server, rid), "breadcrumb")
    assert any(c["category"] == "console" and c.get("level") == "error" and c["message"] == "inventory out of sync"
               for c in crumbs)


def test_page_restored_from_the_back_forward_cache_continues_the_tabs_replay(open_page) -> None:
    """A page restored from the back/forward cache must not reuse segment ids that the tab's later
    pages sent, and must start with a full snapshot (the replay last showed those pages' DOM).
    Headless Chromium under Playwright does not restore pages from the cache, so the test sets
    the tab's session as a later page leaves it and fires the ``pageshow`` event the browser fires."""
    _, site, page = open_page(**FAST)
    errors = page_errors(page)
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/shop.html")
        page.click("#add")
        assert flush(page)
        before = len(uploads.items("replay_recording"))
        later = page.evaluate("""() => {
            const s = JSON.parse(sessionStorage.getItem('replayd:session'));
            s.seg += 3;  // the later pages of the tab sent three segments
            sessionStorage.setItem('replayd:session', JSON.stringify(s));
            dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}));
            return s.seg;
        }""")
        next_task(page)
        page.click("#add")
        assert flush(page)
        assert page.evaluate("replayd.getReplayId()") == rid
    finally:
        page.context.close()
    assert errors == []
    resumed = uploads.recordings()[before:]
    assert resumed and [n for n, _ in resumed] == list(range(later, later + len(resumed)))
    assert playable(json.loads(resumed[0][1]))


def test_stop_ends_recording_and_error_capture(open_page) -> None:
    server, site, page = open_page(**FAST)
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/checkout.html")
        page.click("#ping")
        page.evaluate("replayd.stop()")
        assert page.evaluate("replayd.getReplayId()") is None
        assert flush(page)
        sent = len(uploads.bodies)
        page.click("#boom")
        page.click("#ping")
        page.wait_for_timeout(1500)  # more than a flush interval
        assert flush(page)
    finally:
        page.context.close()
    assert sent >= 1 and len(uploads.bodies) == sent  # what was queued went; nothing after stop()
    assert uploads.items("event") == []
    assert segment_ids(server, rid) == [0]


def test_block_and_mask_selectors_and_ignore_class(open_page) -> None:
    server, site, page = open_page(**FAST, **{"block-selector": "#promo", "mask-text-selector": ".fineprint",
                                        "mask-all-inputs": "false"})
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/options.html")
        page.locator("#coupon").press_sequentially("SAVE20", delay=10)
        page.locator("#note").press_sequentially("leave at the door", delay=10)
        page.click("#save")
        assert flush(page)
    finally:
        page.context.close()
    sent = b"".join(data for _, data in uploads.recordings())
    assert b"SELECTOR-BLOCKED" not in sent and b"GARDEN50" not in sent  # blockSelector: not serialised
    assert b"SELECTOR-MASKED" not in sent and b"terms and conditions" not in sent  # maskTextSelector
    assert b"SAVE20" not in sent  # rr-ignore: its input is not recorded
    inputs = [e["data"]["text"] for e in stored_events(server, rid) if e["type"] == 3 and e["data"].get("source") == 5]
    assert "leave at the door" in inputs  # maskAllInputs: false lets other inputs through


def test_snippet_loaded_twice_records_once_and_runs_queued_calls(open_page) -> None:
    """Two script tags (a tag manager and a hard-coded one): one recorder, one set of breadcrumbs;
    calls queued in window.replayd.q before the script arrived are run."""
    server, site, page = open_page(**FAST)
    errors = page_errors(page)
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/twice.html")
        page.click("#ping")
        page.wait_for_function("document.getElementById('pong').textContent === '7'")
        page.wait_for_timeout(1500)  # a flush interval: a second recorder would have sent its segment by now
        assert flush(page)
    finally:
        page.context.close()
    assert errors == []
    sent = [n for n, _ in uploads.recordings()]
    assert sent == list(range(len(sent))) and sent  # no segment id sent twice
    assert {json.dumps(json.loads(p)["user"]) for _, p in uploads.items("replay_event")} == {'{"id": "u-early"}'}
    crumbs = custom([e for _, data in uploads.recordings() for e in json.loads(data)], "breadcrumb")
    spans = custom([e for _, data in uploads.recordings() for e in json.loads(data)], "performanceSpan")
    assert [s["op"] for s in spans].count("resource.fetch") == 1
    assert [c["category"] for c in crumbs].count("console") == 1
    assert [c["category"] for c in crumbs].count("ui.click") == 1
    assert segment_ids(server, rid) == sent


def test_logging_a_big_object_reads_little_of_it(open_page) -> None:
    """console.warn(store) with a huge store: the breadcrumb describes it from its first values and
    the page's getters run at most a hundred times."""
    _, site, page = open_page(server=False, snippet_url="/replayd.js", **FAST)
    uploads = Uploads(page)
    try:
        start_snippet(page, site.url + "/shop.html")
        reads = page.evaluate("""() => {
            let reads = 0;
            const store = {};
            for (let i = 0; i < 20000; i++) {
                Object.defineProperty(store, 'item' + i,
                                      {enumerable: true, get() { reads++; return {sku: i, tags: ['a', 'b']}; }});
            }
            console.warn('state', store);
            return reads;
        }""")
        assert flush(page)
    finally:
        page.context.close()
    assert 0 < reads <= 100
    crumbs = custom([e for _, data in uploads.recordings() for e in json.loads(data)], "breadcrumb")
    (logged,) = [c for c in crumbs if c["category"] == "console"]
    assert logged["message"].startswith('state {"item0":{"sku":0,"tags":["a","b"]}')


# --- sampling ---------------------------------------------------------------------------------

def test_buffer_mode_uploads_nothing_until_an_error(start_server, make_site, browser) -> None:
    server = start_server()
    buffer_ms = 4000
    site = make_site(server, **FAST, **{"session-sample-rate": 0, "on-error-sample-rate": 1, "buffer-ms": buffer_ms})
    context = browser.new_context()
    page = context.new_page()
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/checkout.html")
        began = time.monotonic()
        while time.monotonic() - began < 9:  # activity for longer than the buffer holds
            page.click("#ping")
            page.wait_for_timeout(300)
        assert uploads.bodies == [] and replays(server) == []
        page.click("#boom")
        wait_until(lambda: segment_ids(server, rid), 20, "the buffer, uploaded after the error")
        page.click("#ping")
        assert flush(page)
    finally:
        context.close()
    detail = replay(server, rid)
    ids = segment_ids(server, rid)
    assert ids == list(range(len(ids))) and len(ids) >= 2
    assert len(detail["error_ids"]) == 1
    replay_events = [json.loads(p) for _, p in uploads.items("replay_event")]
    assert {ev["replay_type"] for ev in replay_events} == {"buffer"}
    first = segment(server, rid, 0)
    assert playable(first)
    (error_at,) = [e["timestamp"] for e in first if e["type"] == 5 and e["data"]["tag"] == "error"]
    span = error_at - first[0]["timestamp"]  # both by the page's clock
    assert buffer_ms - 500 <= span <= 1.5 * buffer_ms + 1500, span  # ~bufferMs before the error, not all 9 s
    assert custom(first, "error") == [{"eventId": detail["error_ids"][0]}]


def test_not_sampled_records_nothing_but_still_reports_errors(open_page) -> None:
    server, site, page = open_page(**FAST, **{"session-sample-rate": 0, "on-error-sample-rate": 0})
    uploads = Uploads(page)
    try:
        page.goto(site.url + "/checkout.html")
        page.wait_for_function("() => window.replayd && replayd.flush")
        assert page.evaluate("replayd.getReplayId()") is None
        page.click("#boom")
        assert flush(page)
    finally:
        page.context.close()
    assert uploads.items("replay_recording") == []
    (event,) = [json.loads(p) for _, p in uploads.items("event")]
    assert "replay" not in event.get("contexts", {})
    assert replays(server) == []


# --- sessions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [{"max-replay-ms": 2500}, {"session-idle-ms": 2000}], ids=["max-duration", "idle"])
def test_new_replay_after_max_duration_or_idle(open_page, limit: dict[str, int]) -> None:
    server, site, page = open_page(**FAST, **limit)
    try:
        first = start_snippet(page, site.url + "/shop.html")
        page.click("#add")
        page.wait_for_timeout(2700)  # past the limit: the time passing is what is under test
        page.mouse.move(10, 10)
        page.mouse.move(200, 150)
        page.click("#add")
        second = page.wait_for_function(
            f"() => replayd.getReplayId() !== {json.dumps(first)} && replayd.getReplayId()").json_value()
        next_task(page)
        page.click("#add")
        assert flush(page)
    finally:
        page.context.close()
    assert {r["replay_id"] for r in replays(server)} == {first, second}
    assert segment_ids(server, second)[0] == 0
    assert playable(segment(server, second, 0))  # the new replay starts with a full snapshot


def test_segment_is_cut_at_max_segment_bytes(open_page) -> None:
    """A segment is cut as soon as its JSON reaches maxSegmentBytes, long before the flush interval."""
    server, site, page = open_page(**{**FAST, "flush-interval-ms": 60_000, "max-segment-bytes": 3000})
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/shop.html")
        for i in range(30):
            page.mouse.move(20 + i * 10, 40 + i * 5)
            page.click("#add")
        wait_until(lambda: len(uploads.recordings()) >= 3, 20, "segments cut by size before the flush interval",
                   sleep=in_page(page))
        assert flush(page)
    finally:
        page.context.close()
    sizes = [len(data) for _, data in uploads.recordings()]
    events = [json.loads(data) for _, data in uploads.recordings()]
    # each segment but the last reached the limit with its last event (and its comma), and not before
    for seg, size in zip(events[:-1], sizes[:-1], strict=True):
        assert size >= 3000 and size - len(json.dumps(seg[-1], separators=(",", ":"))) - 1 < 3000, size
    ids = segment_ids(server, rid)
    assert ids == list(range(len(ids))) and len(ids) >= 3


def test_full_snapshot_every_checkout_starts_a_segment(open_page) -> None:
    server, site, page = open_page(**{**FAST, "flush-interval-ms": 20_000, "checkout-every-nms": 800})
    try:
        rid = start_snippet(page, site.url + "/shop.html")
        for _ in range(12):
            page.mouse.move(20, 20)
            page.mouse.move(300, 200)
            page.wait_for_timeout(250)
        assert flush(page)
        # Read before the page closes: rrweb reports mouse moves up to 500 ms late, and one reported
        # after flush() is cut into a last segment by pagehide that starts with it, as it should.
        ids = segment_ids(server, rid)
    finally:
        page.context.close()
    assert len(ids) >= 3 and ids == list(range(len(ids)))
    for n in ids:  # every segment cut by a checkout can be played on its own
        assert playable(segment(server, rid, n))


# --- strict CSP -------------------------------------------------------------------------------

def test_strict_csp_page_with_init(open_page) -> None:
    """A strict CSP (no blob: worker): the page hosts the worker file itself (workerUrl)."""
    server, site, page = open_page(**FAST, **{"worker-url": "/replayd-worker.js"})
    workers: list[str] = []
    page.on("worker", lambda worker: workers.append(worker.url))
    uploads = Uploads(page)
    errors = page_errors(page)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    try:
        rid = start_snippet(page, site.url + "/csp.html")
        page.locator("#name").press_sequentially("rake", delay=10)
        page.click("#add")
        page.click("#boom")
        assert flush(page)
        violations = page.evaluate("window.violations")
    finally:
        page.context.close()
    assert violations == []
    assert not [m for m in console if "Content Security Policy" in m]
    assert len(errors) == 1  # the page's own TypeError
    assert workers == [site.url + "/replayd-worker.js"]
    assert {p.partition(b"\n")[2][:1] for _, p in uploads.items("replay_recording")} == {b"x"}  # compressed there
    detail = replay(server, rid)
    assert len(detail["error_ids"]) == 1 and detail["segments"]


def test_a_page_that_refuses_workers_gets_its_segments_compressed_on_the_main_thread(open_page) -> None:
    """worker-src 'none': the blob: worker is refused (the browser reports that violation), and the
    snippet compresses on the page's thread instead; nothing is lost or out of order."""
    server, site, page = open_page(**FAST)
    workers: list[str] = []
    page.on("worker", lambda worker: workers.append(worker.url))
    uploads = Uploads(page)
    errors = page_errors(page)
    try:
        rid = start_snippet(page, site.url + "/csp-no-worker.html")
        page.click("#add")
        wait_until(lambda: segment_ids(server, rid), 20, "the first segment, cut by the flush interval")
        page.locator("#name").press_sequentially("rake", delay=10)
        page.click("#add")
        page.click("#boom")
        assert flush(page)
        violations = page.evaluate("window.violations")
    finally:
        page.context.close()
    assert workers == []
    assert violations and all(v.startswith("worker-src blob") for v in violations)
    assert len(errors) == 1  # the page's own TypeError
    assert {p.partition(b"\n")[2][:1] for _, p in uploads.items("replay_recording")} == {b"x"}
    assert_segments_in_order(server, rid, 2)
    assert len(replay(server, rid)["error_ids"]) == 1


def two_segments_arrive_in_order(server, site, page, waiting_for: str) -> None:
    """Record two segments on the shop page; both arrive compressed (``x``: zlib), in order, with no page error."""
    uploads = Uploads(page)
    errors = page_errors(page)
    try:
        rid = start_snippet(page, site.url + "/shop.html")
        page.click("#add")
        wait_until(lambda: segment_ids(server, rid), 20, waiting_for)
        page.click("#add")
        assert flush(page)
    finally:
        page.context.close()
    assert errors == []
    assert {p.partition(b"\n")[2][:1] for _, p in uploads.items("replay_recording")} == {b"x"}
    assert_segments_in_order(server, rid, 2)


def test_a_worker_that_never_answers_is_replaced_by_the_main_thread(open_page) -> None:
    """workerUrl names a script that loads but never answers: after requestTimeoutMs the snippet
    compresses on the main thread, and every segment arrives in order."""
    server, site, page = open_page(**FAST, **{"worker-url": "/silent-worker.js", "request-timeout-ms": 1500})
    workers: list[str] = []
    page.on("worker", lambda worker: workers.append(worker.url))
    two_segments_arrive_in_order(server, site, page, "the first segment, compressed after the worker's silence")
    assert workers == [site.url + "/silent-worker.js"]


def test_a_worker_that_cannot_reach_replayd_hands_the_uploads_back_to_the_page(open_page) -> None:
    """A visible page's uploads go from the worker. workerUrl names a copy whose own policy refuses
    it every request: its upload fails, the page sends that segment and every later one itself, in
    order, and the worker still compresses them."""
    server, site, page = open_page(**FAST, **{"worker-url": "/no-connect-worker.js"})
    two_segments_arrive_in_order(server, site, page, "the first segment, sent by the page after the worker failed")


def test_a_worker_upload_failed_while_offline_keeps_the_uploads_in_the_worker(open_page) -> None:
    """Offline, the worker's uploads fail like the page's would: that is no reason to move every
    later upload to the page's main thread. Back online, the worker sends the waiting segment and
    the next ones, in order; the page's own fetch sends none of them."""
    server, site, page = open_page(**{**FAST, "flush-interval-ms": 60_000})
    try:
        rid = start_snippet(page, site.url + "/spy.html?small")
        page.click("#add")
        assert flush(page)
        page.context.set_offline(True)
        page.click("#add")
        assert flush(page, 1000) is False  # the worker's upload failed (and was retried)
        page.context.set_offline(False)
        assert flush(page, 10_000)
        page.click("#add")
        assert flush(page)
        calls = envelope_fetches(page)
    finally:
        page.context.close()
    assert calls == []
    assert_segments_in_order(server, rid, 3)


def test_one_failed_worker_upload_online_keeps_the_uploads_in_the_worker(open_page) -> None:
    """Online, one failed request of the worker (a network's first try on reconnecting) is retried from
    the worker: only a second failure in a row (a workerUrl whose own CSP refuses replayd) moves the
    uploads to the page's main thread. Here the first upload from the worker is cut off by the browser."""
    server, site, page = open_page(**{**FAST, "flush-interval-ms": 60_000})
    aborted: list[str] = []

    def cut_the_first(route: Any) -> None:
        if aborted:
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort("connectionreset")

    try:
        page.context.route("**/envelope/**", cut_the_first)
        rid = start_snippet(page, site.url + "/spy.html?small")
        page.click("#add")
        assert flush(page, 10_000)
        page.click("#add")
        assert flush(page)
        calls = envelope_fetches(page)
    finally:
        page.context.close()
    assert len(aborted) == 1
    assert calls == []
    assert_segments_in_order(server, rid, 2)


def test_a_hidden_pages_failed_keepalive_upload_keeps_the_visible_pages_in_the_worker(open_page) -> None:
    """A hidden page's keepalive upload (from the page) fails while replayd is down: the worker has not
    failed, so once the page is visible again the segment and the next ones go from the worker."""
    server, site, page = open_page(**{**FAST, "flush-interval-ms": 60_000})
    try:
        rid = start_snippet(page, site.url + "/spy.html?small")
        page.click("#add")
        assert flush(page)
        server.stop()
        page.click("#add")
        page.evaluate("""() => {
            Object.defineProperty(document, 'visibilityState', {get: () => 'hidden', configurable: true});
            document.dispatchEvent(new Event('visibilitychange'));
        }""")
        page.wait_for_function("window.fetchCalls.some((c) => c.keepalive)")
        page.wait_for_timeout(500)  # its failure seen
        server.start()
        page.evaluate("""() => {
            delete document.visibilityState;
            document.dispatchEvent(new Event('visibilitychange'));
        }""")
        assert flush(page, 10_000)
        page.click("#add")
        assert flush(page)
        calls = envelope_fetches(page)
    finally:
        page.context.close()
    assert calls and all(c["keepalive"] for c in calls)
    assert_segments_in_order(server, rid, 3)


def test_a_worker_that_cannot_reach_replayd_while_the_browser_says_offline_still_hands_over(open_page) -> None:
    """navigator.onLine can be wrong (false while the network works): a worker whose own policy
    refuses every request must not then hold the uploads for good. At the longest backoff the page
    sends them itself."""
    server, site, page = open_page(**FAST, **{"worker-url": "/no-connect-worker.js"})
    page.add_init_script("Object.defineProperty(Navigator.prototype, 'onLine', {get: () => false})")
    try:
        rid = start_snippet(page, site.url + "/shop.html")
        page.click("#add")
        assert flush(page, 20_000)
    finally:
        page.context.close()
    ids = segment_ids(server, rid)
    assert ids and ids == list(range(len(ids)))


# --- clicks: described in the browser ---------------------------------------------------------------

def snapshot_nodes(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Every node of the recording's first full snapshot, by rrweb id."""
    nodes: dict[int, dict[str, Any]] = {}
    todo = [next(e for e in events if e["type"] == 2)["data"]["node"]]
    while todo:
        node = todo.pop()
        nodes[node["id"]] = node
        todo.extend(node.get("childNodes", []))
    return nodes


def test_clicks_describe_the_clickable_element_with_rrweb_ids(open_page) -> None:
    """Each click: a ui.click breadcrumb with the target's rrweb id (the id rrweb's own click event
    carries) and the innermost clickable element around it: its id, tag, attributes and recorded text
    nodes (ids of the snapshot's text nodes; masked text as rrweb masks it; blocked text absent)."""
    server, site, page = open_page(**FAST)
    errors = page_errors(page)
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/clicks.html")
        page.click("#icon")  # an icon inside a button
        page.click("#help b")  # a link's text
        page.click("#plain")  # nothing clickable
        page.click("#region", position={"x": 3, "y": 3})  # a landmark role is not clickable
        page.click("#inner-icon")  # a button inside it is
        page.click("#masked .rr-mask")
        page.click("#blocked-link", position={"x": 3, "y": 3})  # its text before the blocked element
        assert flush(page)
    finally:
        page.context.close()
    assert errors == []
    sent = b"".join(data for _, data in uploads.recordings())
    assert b"SECRET-NAME" not in sent and b"BLOCKED-WORDS" not in sent

    events = stored_events(server, rid)
    nodes = snapshot_nodes(events)
    crumbs = [c for c in custom(events, "breadcrumb") if c["category"] == "ui.click"]
    rrweb_clicks = [e["data"] for e in events if e["type"] == 3 and e["data"].get("source") == 2
                    and e["data"].get("type") == 2]
    assert len(crumbs) == len(rrweb_clicks) == 7
    assert [c["data"]["nodeId"] for c in crumbs] == [c["id"] for c in rrweb_clicks]
    described = [c["data"]["node"] for c in crumbs]
    for node in described:  # the element the snapshot has under that id, its texts the snapshot's
        element = nodes[node["id"]]
        assert element["tagName"] == node["tagName"].lower()
        assert {k: element["attributes"][k] for k in node["attributes"]} == node["attributes"]
        for text_id, text in node["texts"]:
            assert nodes[text_id]["type"] == 3 and nodes[text_id]["textContent"] == text
    attributes = [(n["tagName"], n["attributes"]) for n in described]
    assert attributes == [
        ("BUTTON", {"id": "save", "class": "primary big", "aria-label": "Save the basket",
                    "data-testid": "save-basket", "type": "button"}),
        ("A", {"id": "help", "title": "Help pages"}),
        ("P", {"id": "plain"}),
        ("DIV", {"id": "region", "role": "main"}),
        ("BUTTON", {"id": "inner", "type": "submit"}),
        ("BUTTON", {"id": "masked", "type": "button"}),
        ("A", {"id": "blocked-link"})]
    assert [[text for _, text in n["texts"]] for n in described] == [
        ["★", " Save basket"],
        ["Read the ", "help", " pages"],
        ["Just a paragraph of text."],
        ["Region text ", "Inner ", "button"],
        ["Inner ", "button"],
        ["Card ", "*" * len("SECRET-NAME"), " end"],
        ["Open "]]
    assert nodes[crumbs[0]["data"]["nodeId"]]["attributes"]["id"] == "icon"  # the target is the icon


# --- mutation storms ----------------------------------------------------------------------------

STORM = {"storm-mutations": 5000, "storm-window-ms": 100, "storm-calm-ms": 600}


def test_mutation_storm_pauses_recording_marks_the_gap_and_resumes_with_a_full_snapshot(open_page) -> None:
    server, site, page = open_page(**FAST, **STORM)
    errors = page_errors(page)
    try:
        rid = start_snippet(page, site.url + "/storm.html")
        page.wait_for_function("document.getElementById('status').textContent === 'ready'")
        page.click("#status")  # recorded before the storm
        made = page.evaluate("storm(3)")  # 3 bursts of 16,000 mutations
        page.click("#status")  # while rrweb is stopped
        page.wait_for_timeout(1500)  # more than storm-calm-ms: recording resumes
        page.evaluate("document.getElementById('status').textContent = 'calm again'")
        page.click("#status")
        assert flush(page)
        ids = segment_ids(server, rid)
        events_by_segment = [segment(server, rid, n) for n in ids]
    finally:
        page.context.close()
    assert errors == []
    assert made == 48000 and ids == list(range(len(ids)))
    events = [e for seg in events_by_segment for e in seg]
    (gap,) = custom(events, "replayd.paused")
    assert gap["mutations"] >= 16000 and gap["from"] < gap["to"]  # at least the first burst, counted not recorded
    # none of the storm's mutations was serialised
    assert not any(e["type"] == 3 and e["data"].get("source") == 0 and "burst" in json.dumps(e["data"]) for e in events)
    # after it: a segment led by a fresh full snapshot of the page as the storm left it, then the calm page
    resumed = next(n for n, seg in enumerate(events_by_segment) if any(e["type"] == 2 and e["timestamp"] >= gap["from"]
                                                                        for e in seg))
    assert resumed > 0 and playable(events_by_segment[resumed])
    (snapshot,) = [e for e in events_by_segment[resumed] if e["type"] == 2]
    assert gap["from"] <= snapshot["timestamp"] <= gap["to"]  # the mark follows the snapshot it ends with
    assert "burst2-15999" in json.dumps(snapshot) and "burst0-" not in json.dumps(snapshot)
    later = json.dumps([e for seg in events_by_segment[resumed:] for e in seg if e["timestamp"] > gap["to"]])
    assert "calm again" in later
    clicks = [c for c in custom(events, "breadcrumb") if c["category"] == "ui.click"]
    assert len(clicks) == 3  # before, in and after the storm
    # rrweb's ids before and after its restart; none in between (rrweb stopped: no node described)
    rrweb_clicks = [e["data"]["id"] for e in events if e["type"] == 3 and e["data"].get("source") == 2
                    and e["data"].get("type") == 2]
    assert [c.get("data", {}).get("nodeId") for c in clicks] == [rrweb_clicks[0], None, rrweb_clicks[1]]
    assert rrweb_clicks[0] != rrweb_clicks[1]  # the restart numbered the nodes anew


# --- network details ----------------------------------------------------------------------------

def test_network_details_of_allowed_urls_are_recorded_and_scrubbed_at_rest(open_page) -> None:
    """networkDetailAllowUrls (as the Sentry SDK's): fetch and XHR to /shop-api/ are recorded with headers
    and bodies in the SDK's performanceSpan shape; personal data planted in them is found nowhere in
    what replayd stored, and /ping.json (not allowed) has no details."""
    from tests.test_privacy_e2e import _texts_in_data_dir, variants

    server, site, page = open_page(**FAST, **{"network-detail-allow-urls": "/shop-api/",
                                        "network-request-headers": "Authorization X-Api-Key",
                                        "network-response-headers": "X-Api-Key", "network-max-body-size": 500})
    errors = page_errors(page)
    uploads = Uploads(page)
    try:
        rid = start_snippet(page, site.url + "/network.html")
        page.evaluate("sendAll()")
        assert page.text_content("#result") == "saved 3 items, report 1200"  # the page's own reads untouched
        assert flush(page)
    finally:
        page.context.close()
    assert errors == []
    assert [json.loads(body) for _, _, body in site.api_posts] == [
        {"email": PLANTED_EMAIL, "password": "planted-pw-3321", "note": "call me"}] * 2

    # What left the browser: the SDK's shape, with the details (the server is the one to scrub them).
    sent = [e["data"]["payload"] for _, data in uploads.recordings() for e in json.loads(data)
            if e["type"] == 5 and e["data"]["tag"] == "performanceSpan"]
    by_url = {(s["op"], s["description"].removeprefix(site.url)): s for s in sent}
    assert set(by_url) == {("resource.fetch", "/shop-api/profile"), ("resource.xhr", "/shop-api/profile?via=xhr"),
                           ("resource.fetch", "/shop-api/report"), ("resource.fetch", "/ping.json")}
    for op in ("resource.fetch", "resource.xhr"):
        data = by_url[(op, "/shop-api/profile" + ("?via=xhr" if op == "resource.xhr" else ""))]["data"]
        assert data["method"] == "POST" and data["statusCode"] == 200
        assert data["request"]["headers"] == {"authorization": "Bearer planted-bearer-7741",
                                              "x-api-key": "planted-apikey-8812", "content-type": "application/json"}
        assert data["request"]["body"] == {"email": PLANTED_EMAIL, "password": "planted-pw-3321", "note": "call me"}
        assert data["request"]["size"] == len(json.dumps(data["request"]["body"], separators=(",", ":")))
        assert data["response"]["headers"]["x-api-key"] == PLANTED_RESPONSE_KEY
        assert data["response"]["body"] == PROFILE_ANSWER and data["response"]["size"] > 0
    report = by_url[("resource.fetch", "/shop-api/report")]["data"]["response"]
    assert report["size"] == 1200 and report["body"].endswith("…") and len(report["body"]) == 501
    assert report["_meta"] == {"warnings": ["TEXT_TRUNCATED"]}
    ping = by_url[("resource.fetch", "/ping.json")]
    assert ping["data"] == {"method": "GET", "statusCode": 200} and ping["endTimestamp"] >= ping["startTimestamp"]

    # What replayd stored: scrubbed in place, and no planted value anywhere at rest.
    stored = {(s["op"], s["description"].removeprefix(site.url)): s["data"]
              for s in custom(stored_events(server, rid), "performanceSpan")}
    profile = stored[("resource.fetch", "/shop-api/profile")]
    assert profile["request"]["headers"]["authorization"] == "[Filtered]"
    assert profile["request"]["body"]["password"] == "[Filtered]" and profile["request"]["body"]["note"] == "call me"
    assert profile["response"]["body"]["items"] == 3
    texts = _texts_in_data_dir(server)
    leaks = [f"{value!r} in {where}" for value in PLANTED_NETWORK for variant in variants(value)
             for where, text in texts if variant in text]
    assert not leaks, leaks
    assert any("Quarterly stock report" in text for where, text in texts if where.startswith("blob "))
