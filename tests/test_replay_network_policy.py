"""What opening a replay makes the developer's browser fetch (docs/security.md, "Replays in the
developer's browser"), in real Chromium against a running ``replayd serve``.

A recording names little HTTP and HTTPS servers on the loopback interface (the developer's own
network, spelt 127.0.0.1, localhost, [::1], [::ffff:127.0.0.1], 2130706433 and 0x7f.1) and replayd's
own API, in every place rrweb carries a URL: attributes of the full snapshot, inline styles, <style>
text with @import, @font-face, image-set() and escaped url(), srcset, an iframe's srcdoc, and later
mutations, a style-sheet rule, a declaration, a text change of a <style> and a Font event. Each place
also names the same file on a "public" host over TLS (assets.example.test, which this test's Chromium
resolves to 127.0.0.1: a public name for a private address, which the player cannot see). The replay
is played and sought; once every public copy has been fetched, the loopback servers and replayd have
received nothing from the recording, the public stylesheets are applied (http:// upgraded to
https://) and a relative URL has loaded from the recorded site.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.envelopes import element, new_id, page_events, post_envelope, replay_envelope, text
from tests.harness import ADMIN_PASSWORD, CHROMIUM, CHROMIUM_ARGS, PUBLIC_KEY, free_port
from tests.sites import wait_for_js

PUBLIC_HOST = "assets.example.test"
STYLED = "rgb(1, 2, 3)"  # what the public stylesheets make their elements' colour
START_MS = (time.time() - 600) * 1000


class RecordingServer:
    """Answers every GET (404 for unknown paths) and remembers each request's Host and path."""

    def __init__(self, hosts: list[str], files: dict[str, tuple[bytes, str]] | None = None,
                 tls: ssl.SSLContext | None = None):
        self.requests: list[str] = []
        self.files = files or {}
        seen, files_ = self.requests, self.files

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                if tls is not None:  # the handshake in this thread, not the accepting one
                    self.request.do_handshake()
                super().setup()

            def do_GET(self) -> None:
                seen.append(f"{self.headers.get('Host')}{self.path}")
                body, content_type = files_.get(self.path.split("?", 1)[0], (b"", ""))
                self.send_response(200 if content_type else 404)
                self.send_header("Content-Type", content_type or "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")  # fonts are CORS requests
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, address = super().get_request()
                if tls is not None:
                    sock = tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                return sock, address

            def handle_error(self, request, client_address) -> None:
                pass  # a refused TLS handshake or a closed socket: the test looks at what was received

        class Server6(Server):
            address_family = socket.AF_INET6

        self.port = free_port()
        self.servers = [Server((host, self.port), Handler) if ":" not in host else Server6((host, self.port), Handler)
                        for host in hosts]
        self.threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in self.servers]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=10)


def self_signed(tmp: Path, name: str) -> ssl.SSLContext:
    """A TLS server context with a throw-away certificate for ``name`` (``cryptography`` comes with moto)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context


# --- the recording --------------------------------------------------------------------------------

def incremental(ms: float, source: int, **data: Any) -> dict:
    return {"type": 3, "timestamp": START_MS + ms, "data": {"source": source, **data}}


def mutation(ms: float, *, adds=(), attributes=(), texts=()) -> dict:
    return incremental(ms, 0, adds=list(adds), attributes=list(attributes), texts=list(texts), removes=[])


def hostile_recording(private: list[str], public: str, app: str) -> tuple[list[dict], list[str]]:
    """The events, and the paths of the public copies the browser must fetch (everything is loaded
    once these are). ``private``: base URLs on the developer's network; ``public``: the public
    host's base URL; ``app``: replayd's own."""
    places: list[str] = []
    next_id = iter(range(100, 10_000))

    def urls(place: str) -> list[str]:
        """The place's URL on each private host, then on the public one."""
        places.append(place)
        return [f"{base}/{place}" for base in private] + [f"{public}/{place}"]

    def backgrounds(place: str) -> str:
        return ", ".join(f"url({u})" for u in urls(place))

    def el(tag: str, children: list[dict] | None = None, **attributes: Any) -> dict:
        return element(next(next_id), tag, children or [], **attributes)

    def svg(node: dict) -> dict:
        return {**node, "isSVG": True}

    def box(cls: str, style: str = "") -> dict:
        return el("div", [text(next(next_id), cls)], **{"class": cls, "style": f"width:20px;height:20px;{style}"})

    def img(**attributes: str) -> dict:
        return el("img", width="10", height="10", **attributes)

    # the full snapshot: <style> text (as rrweb inlines it), links, attributes, inline styles, srcdoc
    escaped = "u\\72 l"  # "url" spelt with a CSS escape
    image_sets = urls("image-set.png")
    sheet = el("style", _cssText="".join(f"@import url({u}); " for u in urls("import-url.css"))
               + "".join(f'@import "{u}"; ' for u in urls("import-string.css"))
               + f".sheet{{background-image:{backgrounds('sheet.png')}}} "
               + "".join(f'.set{i}{{background-image:image-set("{u}" 1x)}} ' for i, u in enumerate(image_sets))
               + ".esc{background-image:" + ", ".join(f"{escaped}({u})" for u in urls("escaped.png")) + "} "
               + f"@font-face{{font-family:RecFont;src:{backgrounds('font.woff2')}}} .font{{font-family:RecFont}}")
    rule_sheet = el("style", _cssText=".placeholder{color:black}")
    declaration_sheet = el("style", _cssText=".decl{color:black}")
    style_text = text(next(next_id), ".txt{color:black}") | {"isStyle": True}
    text_sheet = el("style", [style_text])
    head = [sheet, rule_sheet, declaration_sheet, text_sheet,
            el("meta", **{"http-equiv": "refresh", "content": f"0;url={private[0]}/refresh"}),
            *(el("link", rel="stylesheet", href=u) for u in urls("link.css")),
            *(el("link", rel="preload", href=u, **{"as": "image"}) for u in urls("preload.png")),
            el("link", rel="stylesheet", href="#fragment"),
            el("link", rel="stylesheet", href=f"{public}/style.css"),  # makes #styled STYLED
            el("link", rel="stylesheet", href=f"{public.replace('https:', 'http:')}/upgraded.css")]
    attribute_urls = urls("attribute.png")  # each set on an <img> by a mutation
    changed = [img() for _ in attribute_urls]
    changed_box = box("changed")
    body = [el("p", [text(next(next_id), "Styled by a public stylesheet")], id="styled"),
            el("p", [text(next(next_id), "Styled over https")], id="upgraded"),
            *(img(src=u) for u in urls("img.png")),
            *(img(srcset=f"{u} 1x") for u in urls("srcset.png")),
            *(el("video", poster=u, width="10", height="10") for u in urls("poster.png")),
            *(el("input", type="image", src=u, alt="x") for u in urls("input.png")),
            *(el("table", [el("tbody", [el("tr", [el("td", [text(next(next_id), "t")])])])], background=u)
              for u in urls("table.png")),
            *(svg(el("svg", [svg(el("image", href=u, width="10", height="10"))], width="10", height="10"))
              for u in urls("svg.png")),
            el("iframe", srcdoc="".join(f"<img src='{u}'>" for u in urls("srcdoc.png"))),
            box("inline", f"background-image:{backgrounds('inline.png')}"),
            box("sheet"), *(box(f"set{i}") for i in range(len(image_sets))), box("esc"),
            el("p", [text(next(next_id), "font")], **{"class": "font"}),
            img(src="/relative.png"),  # the recorded site's, not replayd's
            img(src=f"{app}/api/0/projects/1/replays/fetched-by-a-recording/"),
            # a fragment where the browser fetches would be the replay page itself
            img(src="#fragment"), box("fragment", "background-image:url(#fragment)"),
            svg(el("svg", [svg(el("image", href="#fragment", width="10", height="10"))], width="10", height="10")),
            *changed, changed_box, box("rule"), box("decl"), box("txt"),
            el("p", [text(next(next_id), "event font")], style="font-family:EvtFont")]
    events = page_events(START_MS, f"{public}/shop/", "Network policy", head=head, body_extra=body)
    # later: mutations, a style-sheet rule, a declaration, a <style>'s text, a font
    events += [
        mutation(500, adds=[{"parentId": 9, "nextId": None, "node": img(src=u)} for u in urls("added.png")],
                 attributes=[*({"id": c["id"], "attributes": {"src": u}}
                               for c, u in zip(changed, attribute_urls, strict=True)),
                             {"id": changed_box["id"],
                              "attributes": {"style": {"background-image": backgrounds("style-object.png")}}}]),
        incremental(600, 8, id=rule_sheet["id"],
                    adds=[{"rule": f".rule{{background-image:{backgrounds('rule.png')}}}", "index": 1}]),
        incremental(700, 13, id=declaration_sheet["id"], index=[0],
                    set={"property": "background-image", "value": backgrounds("declaration.png"), "priority": ""}),
        mutation(800, texts=[{"id": style_text["id"],
                              "value": f".txt{{background-image:{backgrounds('style-text.png')}}}"}]),
        incremental(900, 10, family="EvtFont", fontSource=backgrounds("event-font.woff2"), buffer=False,
                    descriptors={}),
        incremental(2000, 1, positions=[{"x": 10, "y": 10, "id": 9, "timeOffset": 0}]),
    ]
    # every place's public copy must arrive, but the srcdoc's: the policy removes it whole
    return events, [p for p in places if p != "srcdoc.png"] + ["style.css"]


# --- the test -------------------------------------------------------------------------------------

@pytest.fixture
def loopback() -> Iterator[RecordingServer]:
    server = RecordingServer(["127.0.0.1", "::1"])
    yield server
    server.close()


@pytest.fixture
def loopback_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingServer]:
    """The same over TLS: the pages' CSP allows https:, so only the player's policy keeps these out."""
    server = RecordingServer(["127.0.0.1", "::1"], tls=self_signed(tmp_path_factory.mktemp("loopback"), "localhost"))
    yield server
    server.close()


@pytest.fixture
def public_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingServer]:
    css = f"#styled, #upgraded {{ color: {STYLED} }}".encode()
    server = RecordingServer(["127.0.0.1"], files={"/style.css": (css, "text/css"), "/upgraded.css": (css, "text/css")},
                             tls=self_signed(tmp_path_factory.mktemp("public"), PUBLIC_HOST))
    yield server
    server.close()


@pytest.fixture
def chromium(browser):
    """A Chromium of our own that resolves the public host to the loopback interface, as a public DNS
    name of an attacker's may (the player cannot tell), and takes its self-signed certificate."""
    own = browser.browser_type.launch(executable_path=CHROMIUM, headless=True,
                                      args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {PUBLIC_HOST} 127.0.0.1"])
    context = own.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
    yield context
    own.close()


def test_a_recording_cannot_reach_the_developers_network(start_server, chromium, loopback, loopback_tls,
                                                          public_site):
    server = start_server()
    private = [f"http://{host}:{loopback.port}" for host in
               ("127.0.0.1", "localhost", "[::1]", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1")]
    private += [f"https://{host}:{loopback_tls.port}" for host in ("127.0.0.1", "localhost", "[::1]")]
    public = f"https://{PUBLIC_HOST}:{public_site.port}"
    events, wanted = hostile_recording(private, public, server.url)
    replay_id = new_id()
    post_envelope(server.url, replay_envelope(replay_id, 0, events), PUBLIC_KEY)

    page = chromium.new_page()
    requested: list[tuple[str, str]] = []  # (URL, resource type)
    errors: list[str] = []
    page.on("request", lambda r: requested.append((r.url, r.resource_type)))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url + f"/replays/{replay_id}")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(f"**/replays/{replay_id}")
    page.wait_for_selector("[data-player][data-first-frame]", state="attached", timeout=20_000)
    page.wait_for_selector("[data-player][data-state=ended]", state="attached", timeout=20_000)
    page.evaluate("() => globalThis.replaydPlayer.seek(1000)")  # rebuilt from the snapshot, mutations fast-forwarded
    page.evaluate("() => globalThis.replaydPlayer.play()")
    page.wait_for_selector("[data-player][data-state=ended]", state="attached", timeout=20_000)

    # the public copies arrive (so every load the page makes has been asked for) ...
    deadline = time.monotonic() + 20
    while (missing := [p for p in wanted if not any(r.endswith(f"/{p}") for r in public_site.requests)]) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert missing == [], f"public copies never fetched: {missing}"
    # ... and nothing reached the developer's network or replayd's API
    assert loopback.requests == [] and loopback_tls.requests == []
    assert [u for u, _ in requested if f":{loopback.port}/" in u or f":{loopback_tls.port}/" in u] == []
    assert "fetched-by-a-recording" not in server.log() and "relative.png" not in server.log()
    assert [u for u, kind in requested if u.startswith(f"{server.url}/replays/") and kind != "document"] == []
    # the public stylesheets are applied, https:// as named and http:// upgraded; a relative URL is
    # the recorded site's
    for element_id in ("styled", "upgraded"):
        wait_for_js(page, f"""() => {{
            const doc = document.querySelector('.replayer-wrapper iframe').contentDocument;
            return getComputedStyle(doc.getElementById('{element_id}')).color === '{STYLED}';
        }}""", f"#{element_id} styled by the public stylesheet")
    assert f"{PUBLIC_HOST}:{public_site.port}/relative.png" in public_site.requests
    assert errors == []
