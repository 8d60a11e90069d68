"""What browser tests serve on another origin than replayd: their pages, the real Sentry SDK bundled
from node_modules, and rrweb's own replayer to play stored segments back."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.harness import REPO, free_port

ESBUILD = REPO / "node_modules" / ".bin" / "esbuild"
SENTRY_ENTRY = REPO / "tests" / "pages" / "sentry" / "sentry-entry.js"
RRWEB_REPLAY = REPO / "node_modules" / "@rrweb" / "replay"

# The page the Replayer runs in: rrweb's own files from node_modules.
PLAYER_HTML = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>replay check</title>
<link rel="stylesheet" href="/rrweb/style.css"><script src="/rrweb/replay.min.js"></script>
</head><body><div id="root"></div></body></html>"""

# path -> (body, content type), or (body, content type, more response headers)
Files = dict[str, tuple[bytes, str] | tuple[bytes, str, dict[str, str]]]


def build_sentry_bundle(out_dir: Path) -> Path:
    """``import * as Sentry from '@sentry/browser'; window.Sentry = Sentry`` as an IIFE (esbuild, ~1 s)."""
    if not ESBUILD.exists():
        raise RuntimeError(f"{ESBUILD} is missing: run `npm ci` (make test does)")
    out = out_dir / "sentry.js"
    subprocess.run([str(ESBUILD), str(SENTRY_ENTRY), "--bundle", "--format=iife", "--target=es2020",
                    f"--outfile={out}", "--log-level=warning"], cwd=REPO, check=True, timeout=120)
    return out


def sentry_files(bundle: Path, dsn: str) -> Files:
    return {
        "/sentry.js": (bundle.read_bytes(), "text/javascript"),
        "/dsn.js": (f"window.DSN = {json.dumps(dsn)};\n".encode(), "text/javascript"),
    }


def replayer_files() -> Files:
    return {
        "/player.html": (PLAYER_HTML, "text/html; charset=utf-8"),
        "/rrweb/replay.min.js": ((RRWEB_REPLAY / "umd" / "replay.min.js").read_bytes(), "text/javascript"),
        "/rrweb/style.css": ((RRWEB_REPLAY / "dist" / "style.css").read_bytes(), "text/css"),
    }


@contextlib.contextmanager
def rrweb_replayer(browser: Any, site_url: str, events: list[dict[str, Any]]) -> Iterator[Any]:
    """A page of ``site_url``'s /player.html (:func:`replayer_files`) with rrweb's own Replayer
    loaded with ``events`` as ``window.replayer``; an error the page raised fails the test."""
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        page.goto(site_url + "/player.html")
        page.evaluate("""(events) => { window.replayer = new rrwebReplay.Replayer(events, {
                root: document.getElementById('root'), showWarning: false, mouseTail: false}); }""", events)
        yield page
    finally:
        context.close()
    assert not problems, problems


def page_files(folder: Path, *names: str) -> Files:
    types = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}
    return {f"/{name}": ((folder / name).read_bytes(), types[Path(name).suffix]) for name in names}


class StaticSite:
    """Fixed files on a free loopback port (GET, and POST for pages that send data), never cached."""

    def __init__(self, files: Files):
        self.files = files

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                if length := int(self.headers.get("Content-Length") or 0):
                    self.rfile.read(length)
                found = files.get(self.path.split("?", 1)[0])
                if found is None:
                    self.send_error(404)
                    return
                body, content_type = found[0], found[1]
                self.send_response(200)
                for name, value in (found[2] if len(found) > 2 else {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="static-site", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def wait_for_js(page: Any, script: str, what: str, timeout_ms: float = 20_000) -> Any:
    """The truthy value of ``script`` in the page once it has one; an AssertionError naming ``what`` else."""
    try:
        return page.wait_for_function(script, timeout=timeout_ms).json_value()
    except Exception as exc:
        raise AssertionError(f"timed out waiting for {what}") from exc
