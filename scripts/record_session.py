"""Record a real rrweb session in headless Chromium on pages of a local directory: how the recordings
in tests/data/recordings were made (see the README there).

    .venv/bin/python scripts/record_session.py rustdoc-std OUT.json.br
    .venv/bin/python scripts/record_session.py mdbook OUT.json.br
    .venv/bin/python scripts/record_session.py reading OUT.json.br --root SITE_DIR --start PAGE [--pages 10] [--seed 1]

Serves ``--root`` (default: the Rust toolchain's HTML documentation) over HTTP on a free port, loads
the published ``@rrweb/record`` from node_modules into every page, and records in real time:

- ``rustdoc-std``, ``mdbook``: one scripted visit (page loads, scrolling, mouse moves, clicks, typing
  into a search box), with the options replayd's snippet uses (static/replayd/recorder.js);
- ``reading``: a reader's session of ``--pages`` pages from ``--start`` (a path under ``--root``),
  with rrweb's default options: scrolls down in steps with mouse moves, sometimes selects a line,
  follows a link within the site (now and then back to a page seen before); ``--seed`` picks the
  moves. The compaction figures' recordings (docs/benchmarks.md) were made so.

Writes every emitted event, in order, as a brotli-compressed JSON array.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import brotli
from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from tests.harness import CHROMIUM, CHROMIUM_ARGS, REPO

RUST_DOCS = Path.home() / ".rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html"
RECORDER = REPO / "node_modules" / "@rrweb" / "record" / "umd" / "record.min.js"
# replayd's snippet's options (static/replayd/recorder.js), defaults filled in.
START = """
window.rrwebRecord.record({
  emit: (event) => window.__emit(JSON.stringify(event)),
  maskInputOptions: {password: true},
  slimDOMOptions: 'all',
  inlineStylesheet: true,
  recordCanvas: false,
  collectFonts: false,
});
"""

# ``reading``: rrweb's default options, in the top frame only
READING_RECORDER = REPO / "node_modules" / "@rrweb" / "record" / "dist" / "record.umd.min.cjs"
READING_START = """(() => {
  if (window.top !== window) return;
  const start = () => (rrwebRecord.record || rrwebRecord)({ emit(event) { window.__emit(JSON.stringify(event)); } });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();"""
LINKS = """() => [...document.querySelectorAll('a[href]')]
  .filter((a) => a.href.startsWith(location.origin) && !a.href.includes('#') && a.href.endsWith('.html')
          && a.getBoundingClientRect().width > 0)
  .map((a) => a.href)"""


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def wander(page: Page, seconds: float = 4.0) -> None:
    """Scroll down and up with the wheel and move the mouse, as a reader does."""
    end = time.monotonic() + seconds
    x, y, step = 300, 300, 0
    while time.monotonic() < end:
        step += 1
        page.mouse.move(x + (step * 37) % 600, y + (step * 53) % 400, steps=4)
        page.mouse.wheel(0, 400 if step % 5 else -600)
        page.wait_for_timeout(150)


def rustdoc_std(page: Page, base: str) -> None:
    page.goto(f"{base}/std/index.html")
    wander(page, 5)
    page.click("a[href='vec/index.html']")
    wander(page, 3)
    page.goto(f"{base}/std/vec/struct.Vec.html")
    wander(page, 6)
    page.keyboard.press("s")  # rustdoc's search
    page.wait_for_timeout(500)
    page.keyboard.type("hashmap entry", delay=120)
    page.wait_for_timeout(2500)
    page.goto(f"{base}/std/collections/struct.HashMap.html")
    wander(page, 5)
    page.goto(f"{base}/std/string/struct.String.html")
    wander(page, 5)
    page.goto(f"{base}/std/iter/trait.Iterator.html")
    wander(page, 6)


def mdbook(page: Page, base: str) -> None:
    page.goto(f"{base}/book/ch04-01-what-is-ownership.html")
    wander(page, 6)
    for _ in range(3):  # mdBook's "next chapter" key
        page.keyboard.press("ArrowRight")
        page.wait_for_load_state()
        wander(page, 4)
    page.keyboard.press("s")  # mdBook's search
    page.wait_for_timeout(500)
    page.keyboard.type("borrow checker lifetimes", delay=120)
    page.wait_for_timeout(2000)
    page.goto(f"{base}/book/ch08-01-vectors.html")
    wander(page, 5)
    # a link of the table of contents
    page.click("nav#sidebar a[href$='ch08-02-strings.html'], .sidebar a[href$='ch08-02-strings.html']")
    wander(page, 3)
    page.goto(f"{base}/reference/expressions.html")
    wander(page, 5)


def reading(page: Page, rng: random.Random, pages: int) -> None:
    """A reader's session of ``pages`` pages, the first one already open."""
    seen: list[str] = []
    for n in range(pages):
        page.wait_for_timeout(1500)
        seen.append(page.url)
        height = page.evaluate("document.documentElement.scrollHeight")
        for step in range(rng.randint(4, 9)):
            for _ in range(rng.randint(5, 15)):
                page.mouse.move(rng.randint(50, 1200), rng.randint(50, 800), steps=3)
                page.wait_for_timeout(rng.randint(40, 160))
            page.mouse.wheel(0, rng.randint(200, 700))
            page.wait_for_timeout(rng.randint(300, 1200))
            if step == 2 and rng.random() < 0.4:  # select a line of text, as a reader copying it
                page.mouse.click(rng.randint(300, 700), rng.randint(200, 500), click_count=3)
        if n == pages - 1:
            break
        if len(seen) > 2 and rng.random() < 0.25:
            target = rng.choice(seen[:-1])  # back to a page seen before
        else:
            links = page.evaluate(LINKS)
            fresh = [link for link in links if link not in seen] or links or seen
            target = rng.choice(fresh[: max(1, min(len(fresh), 40))])
        if height:
            page.mouse.move(rng.randint(50, 600), rng.randint(50, 300), steps=5)
        page.goto(target)
    page.wait_for_timeout(1000)


VISITS = {"rustdoc-std": rustdoc_std, "mdbook": mdbook}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("visit", choices=[*sorted(VISITS), "reading"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--root", type=Path, default=RUST_DOCS)
    parser.add_argument("--start", help="reading: the first page, a path under --root")
    parser.add_argument("--pages", type=int, default=10, help="reading: how many pages")
    parser.add_argument("--seed", type=int, default=1, help="reading: picks the moves and links")
    args = parser.parse_args(argv)
    if args.visit == "reading" and not args.start:
        parser.error("reading needs --start")

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(args.root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    events: list[Any] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        if args.visit == "reading":
            context = browser.new_context(viewport={"width": 1366, "height": 850})
            context.expose_binding("__emit", lambda source, text: events.append(json.loads(text)))
            context.add_init_script(path=str(READING_RECORDER))
            context.add_init_script(READING_START)
            page = context.new_page()
            page.goto(f"{base}/{args.start}")
            reading(page, random.Random(args.seed), args.pages)
        else:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.expose_function("__emit", lambda text: events.append(json.loads(text)))
            context.add_init_script(RECORDER.read_text() + START)
            page = context.new_page()
            VISITS[args.visit](page, base)
            page.wait_for_timeout(1000)
        browser.close()
    server.shutdown()
    events.sort(key=lambda e: e.get("timestamp", 0))  # bindings may arrive a little out of order
    data = json.dumps(events, separators=(",", ":"), ensure_ascii=False).encode()
    args.out.write_bytes(brotli.compress(data, quality=11))
    span = (events[-1]["timestamp"] - events[0]["timestamp"]) / 1000
    full = sum(1 for e in events if e.get("type") == 2)
    print(f"{args.out}: {len(events)} events, {span:.0f} s, {full} full snapshots, {len(data) / 1e6:.2f} MB JSON")
    return 0


if __name__ == "__main__":
    sys.exit(main())
