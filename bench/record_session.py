"""Record a real rrweb session in Chromium on a static site served from a local directory.

    .venv/bin/python bench/record_session.py SITE_DIR START_PAGE OUT.json.br [--pages 10] [--seed 1]

Serves SITE_DIR over HTTP (so the recorder can inline the site's stylesheets, as on a real site),
opens START_PAGE in Debian's Chromium with the published ``@rrweb/record`` recorder (from
node_modules) injected into every page, and browses like a reader: scrolls down in steps with mouse
moves, sometimes selects text, follows a link to another page of the site (now and then going back
to one seen before), ``--pages`` times. Writes the events (a JSON array, brotli-compressed).
Used to make the recordings in tests/data/recordings/ that the compaction figures are measured on.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import brotli

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from tests.harness import CHROMIUM, CHROMIUM_ARGS, REPO, free_port

RECORDER = REPO / "node_modules" / "@rrweb" / "record" / "dist" / "record.umd.min.cjs"
START = """(() => {
  if (window.top !== window) return;
  const start = () => (rrwebRecord.record || rrwebRecord)({ emit(event) { window.__emit(JSON.stringify(event)); } });
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start); else start();
})();"""
LINKS = """() => [...document.querySelectorAll('a[href]')]
  .filter((a) => a.href.startsWith(location.origin) && !a.href.includes('#') && a.href.endsWith('.html')
          && a.getBoundingClientRect().width > 0)
  .map((a) => a.href)"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def browse(page: Any, rng: random.Random, pages: int) -> None:
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path)
    parser.add_argument("start", help="path of the first page, relative to SITE_DIR")
    parser.add_argument("out", type=Path)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(QuietHandler, directory=str(args.site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    events: list[Any] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1366, "height": 850})
            context.expose_binding("__emit", lambda source, text: events.append(json.loads(text)))
            context.add_init_script(path=str(RECORDER))
            context.add_init_script(START)
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/{args.start}")
            browse(page, random.Random(args.seed), args.pages)
            page.close()
            context.close()
            browser.close()
    finally:
        server.shutdown()
    events.sort(key=lambda e: e.get("timestamp", 0))
    data = json.dumps(events, separators=(",", ":"), ensure_ascii=False).encode()
    args.out.write_bytes(brotli.compress(data, quality=11))
    full = sum(1 for e in events if e.get("type") == 2)
    print(f"{args.out}: {len(events)} events, {full} full snapshots, {len(data) / 1e6:.2f} MB of JSON")
    return 0


if __name__ == "__main__":
    sys.exit(main())
