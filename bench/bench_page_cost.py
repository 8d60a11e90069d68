"""What a recorder costs the page it records: main-thread task time in Chromium, by CDP metrics.

    .venv/bin/python bench/bench_page_cost.py [--runs 5] [--warmup 1] [--sentry] [--only a|b]

Two workloads on a page served from a local static site (which also answers the uploads, 200):

- (a) a 1,000-row table (8 cells a row) whose 8,000 cells are rewritten 10 times, each rewrite in
  its own task (8,000 mutations a burst);
- (b) a 6,000-row table rewritten 3 times (48,000 mutations a burst: a mutation storm).

Each workload runs with no recorder, with bare rrweb ``record()`` (``@rrweb/record`` 2.1.6 from
node_modules, the snippet's options, events kept in an array, nothing uploaded), with the replayd
snippet (``static/replayd.js``, default options, uploads answered by the site) and, with
``--sentry``, the Sentry SDK's ``replayIntegration`` (``@sentry/browser`` bundled as the tests do).
The page is loaded, the recorder started and its start sent (``flush()``: the first full snapshot
is not measured); then CDP ``Performance.getMetrics`` (thread time) is read before and after the
workload. "After" waits 3 s (the snippet resumes after a storm once the page is calm: counted),
then for the recorder's own work, the snippet's and Sentry's ``flush()`` (cut, serialise, compress,
upload), and half a second more, so work a recorder defers is counted too. In the storm (b) the
snippet's measurement also waits, before those 3 s, until the site has received the resume's full
snapshot, so the resume is always inside the window, however slow the machine. Each configuration
runs ``--runs`` times, in turn (a fresh browser context a run; the order rotates every run, so no
recorder always follows the same one), after ``--warmup`` runs of each that are not counted (the
first pages of a browser pay for its start-up); medians are printed with their ratio to bare rrweb
and to no recorder, all from the same run. ``--recorders`` picks others, among them
``rrweb-json`` and ``rrweb-clone`` (bare rrweb plus a ``JSON.stringify`` or a ``postMessage``
structured clone per event: what handing events on costs), ``--snippet-option`` sets the
snippet's ``data-*`` options and ``--compare FILE`` adds another build of the snippet (recorder
``compare``, ``compare2``, ...: the same options; repeatable), e.g. main's, to A/B a change in one
interleaved run.

``TaskDuration`` is every task of the page's main thread (script, style, layout, paint, GC);
``ScriptDuration`` the JavaScript part. A worker's own thread is not the page's main thread and is
not counted: moving work there is the point.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from tests.harness import CHROMIUM, CHROMIUM_ARGS, REPO, free_port

RRWEB_UMD = REPO / "node_modules" / "@rrweb" / "record" / "umd" / "record.min.js"
SNIPPET = Path(os.environ.get("BENCH_SNIPPET", REPO / "static" / "replayd.js"))

WORKLOADS = {"a": {"rows": 1000, "times": 10, "storm": False}, "b": {"rows": 6000, "times": 3, "storm": True}}
RECORDERS = ["none", "rrweb", "replayd", "sentry"]

# The recorders' options: the snippet's rrweb options for bare rrweb, so only the snippet's own
# work differs between the two.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>page cost</title>
<style>td { font: 12px monospace; padding: 0 4px; }</style>
__RECORDER__
</head><body><h1>Stock levels</h1><table id="t"><tbody></tbody></table>
<script>
const ROWS = __ROWS__, COLS = 8;
const body = document.querySelector('#t tbody');
for (let r = 0; r < ROWS; r++) {
  const tr = document.createElement('tr');
  for (let c = 0; c < COLS; c++) {
    const td = document.createElement('td');
    td.textContent = 'r' + r + 'c' + c;
    tr.appendChild(td);
  }
  body.appendChild(tr);
}
const cells = Array.from(body.querySelectorAll('td'));
const later = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Every cell's text replaced, TIMES times, one burst a task (the page's own cost is in "none").
window.workload = async (times) => {
  for (let k = 0; k < times; k++) {
    for (let i = 0; i < cells.length; i++) cells[i].textContent = 'v' + k + ':' + ((i * 7919 + k) % 100000);
    await later(50);
  }
};
const flushed = async () => {
  if (window.replayd && replayd.flush) await replayd.flush(60000);
  if (window.Sentry && Sentry.getReplay && Sentry.getReplay()) await Sentry.getReplay().flush();
};
// Before: the recorder's start (its full snapshot of the page, compressed and sent) is not measured.
window.ready = async () => { await flushed(); await later(1000); };
// After: the snippet resumes after a storm once the page is calm (stormCalmMs); that is counted.
window.settle = async () => { await later(3000); await flushed(); await later(500); };
</script></body></html>"""

# The snippet's rrweb options (static/replayd/recorder.js), for bare rrweb.
RRWEB_OPTIONS = """checkoutEveryNms: 300000, maskAllInputs: true, maskInputOptions: {password: true},
  maskTextClass: 'rr-mask', blockClass: 'rr-block', ignoreClass: 'rr-ignore', slimDOMOptions: 'all',
  inlineStylesheet: true, recordCanvas: false, collectFonts: false"""


def bare_rrweb(emit: str) -> str:
    return f"""<script src="/record.js"></script><script>
window.events = [];
const channel = new MessageChannel();
rrwebRecord.record({{emit: (e) => {{ {emit}; }}, {RRWEB_OPTIONS}}});
</script>"""


RECORDER_TAGS = {
    "none": "",
    "rrweb": bare_rrweb("window.events.push(e)"),
    # For comparison (--recorders): bare rrweb plus what any recorder must do to hand an event on:
    # JSON text per event, or a structured clone per event (postMessage, as to a worker).
    "rrweb-json": bare_rrweb("window.events.push(JSON.stringify(e))"),
    "rrweb-clone": bare_rrweb("channel.port1.postMessage(e)"),
    "replayd": '<script src="/replayd.js" data-dsn="__DSN__"__ATTRS__></script>',
    "sentry": """<script src="/sentry.js"></script><script>
Sentry.init({dsn: '__DSN__', integrations: [Sentry.replayIntegration({maskAllText: false, blockAllMedia: false,
  minReplayDuration: 0})], replaysSessionSampleRate: 1.0, replaysOnErrorSampleRate: 1.0});
</script>""",
}


def full_snapshots(envelope: bytes) -> int:
    """rrweb full snapshots in an uploaded envelope's replay_recording (zlib or plain JSON)."""
    lines = envelope.split(b"\n", 4)
    if len(lines) < 5 or b'"replay_recording"' not in lines[3]:
        return 0
    data = lines[4].partition(b"\n")[2]
    with contextlib.suppress(zlib.error):
        data = zlib.decompress(data)
    return data.count(b'{"type":2,')


class Site:
    """The benchmark page (one per recorder and workload), the recorders' files, and a sink that
    answers every POST (the uploads) 200."""

    def __init__(self, sentry_bundle: Path | None, snippet_options: dict[str, str], compare: dict[str, Path]):
        self.files: dict[str, tuple[bytes, str]] = {
            "/record.js": (RRWEB_UMD.read_bytes(), "text/javascript"),
            "/replayd.js": (SNIPPET.read_bytes(), "text/javascript"),
        }
        self.tags = dict(RECORDER_TAGS)
        for name, path in compare.items():
            self.files[f"/{name}.js"] = (path.read_bytes(), "text/javascript")
            self.tags[name] = RECORDER_TAGS["replayd"].replace("/replayd.js", f"/{name}.js")
        self.snapshots = 0  # full snapshots received in uploads
        site = self
        if sentry_bundle:
            self.files["/sentry.js"] = (sentry_bundle.read_bytes(), "text/javascript")
        files = self.files

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                found = files.get(self.path.split("?", 1)[0])
                if found is None:
                    self.send_error(404)
                    return
                self._send(200, *found)

            def do_POST(self) -> None:
                site.snapshots += full_snapshots(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self._send(200, b"{}", "application/json")

            def do_OPTIONS(self) -> None:
                self._send(204, b"", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Access-Control-Allow-Headers", "*")
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # a page closed with its last upload in flight
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        dsn = f"http://benchkey@{self.url.split('//')[1]}/1"
        attrs = "".join(f' data-{k}="{v}"' for k, v in snippet_options.items())
        for workload, shape in WORKLOADS.items():
            for recorder, tag in self.tags.items():
                recorder_tag = tag.replace("__DSN__", dsn).replace("__ATTRS__", attrs)
                html = PAGE.replace("__RECORDER__", recorder_tag).replace("__ROWS__", str(shape["rows"]))
                self.files[f"/{workload}-{recorder}.html"] = (html.encode(), "text/html; charset=utf-8")
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def metrics(cdp: Any) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def snippet(recorder: str) -> bool:
    return recorder == "replayd" or recorder.startswith("compare")


def measure(browser: Any, site: Site, workload: str, recorder: str) -> dict[str, float]:
    """One run: main-thread seconds of the workload plus the recorder's flush."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{site.url}/{workload}-{recorder}.html")
        if snippet(recorder):
            page.wait_for_function("() => window.replayd && replayd.getReplayId && replayd.getReplayId()")
        if recorder == "sentry":
            page.wait_for_function("() => window.Sentry && Sentry.getReplay && Sentry.getReplay()")
        page.evaluate("() => ready()")
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
        before = metrics(cdp)
        snapshots = site.snapshots
        page.evaluate("(times) => workload(times)", WORKLOADS[workload]["times"])
        if WORKLOADS[workload]["storm"] and snippet(recorder):  # the resume, counted whenever it comes
            deadline = time.monotonic() + 60
            while site.snapshots == snapshots and time.monotonic() < deadline:
                time.sleep(0.05)
            if site.snapshots == snapshots:
                print(f"{recorder}: no full snapshot after the storm", file=sys.stderr)
        page.evaluate("() => settle()")
        after = metrics(cdp)
        return {k: after[k] - before[k] for k in ("TaskDuration", "ScriptDuration")}
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="runs of each configuration first, not counted")
    parser.add_argument("--sentry", action="store_true", help="also measure the Sentry SDK's replayIntegration")
    parser.add_argument("--only", choices=sorted(WORKLOADS), action="append", help="one workload (repeatable)")
    parser.add_argument("--recorders", help="comma-separated, instead of " + ",".join(RECORDERS))
    parser.add_argument("--json", type=Path, help="write the raw figures here too")
    parser.add_argument("--snippet-option", action="append", default=[], metavar="NAME=VALUE",
                        help="a data-* option of the snippet's script tag, e.g. compress=false (repeatable)")
    parser.add_argument("--compare", type=Path, metavar="FILE", action="append", default=[],
                        help="another build of the snippet, measured as recorder 'compare' (then 'compare2', ...)"
                             " in the same run (repeatable)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    recorders = args.recorders.split(",") if args.recorders else [
        r for r in RECORDERS if r != "sentry" or args.sentry]
    compare = {f"compare{i + 1 if i else ''}": path for i, path in enumerate(args.compare)}
    recorders += [name for name in compare if name not in recorders]
    workloads = args.only or sorted(WORKLOADS)
    loadavg = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = None
        if args.sentry:
            from tests.sites import build_sentry_bundle

            bundle = build_sentry_bundle(Path(tmp))
        site = Site(bundle, dict(o.split("=", 1) for o in args.snippet_option), compare)
        results: dict[str, dict[str, list[dict[str, float]]]] = {w: {r: [] for r in recorders} for w in workloads}
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    for run in range(-args.warmup, args.runs):
                        turn = recorders[run % len(recorders):] + recorders[:run % len(recorders)]
                        for workload in workloads:
                            for recorder in turn:  # interleaved, so drifting load hits each alike
                                figures = measure(browser, site, workload, recorder)
                                if run >= 0:
                                    results[workload][recorder].append(figures)
                                label = run + 1 if run >= 0 else "warm-up"
                                print(f"run {label} {workload} {recorder:8} task {figures['TaskDuration']:.3f} s"
                                      f" script {figures['ScriptDuration']:.3f} s", file=sys.stderr)
                finally:
                    browser.close()
        finally:
            site.close()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (at start {loadavg[0]:.2f});"
          f" medians of {args.runs} runs")
    for workload in workloads:
        shape = WORKLOADS[workload]
        print(f"\n({workload}) {shape['rows']} rows x 8 cells rewritten {shape['times']} times"
              f" ({shape['rows'] * 8} mutations a burst)")
        print(f"{'recorder':10} {'task s':>8} {'script s':>9} {'x none':>7} {'x rrweb':>8}")
        med = {r: {k: statistics.median(f[k] for f in runs) for k in ("TaskDuration", "ScriptDuration")}
               for r, runs in results[workload].items()}
        for recorder in recorders:
            task = med[recorder]["TaskDuration"]
            ratios = [f"{task / med[base]['TaskDuration']:{width}.2f}" if base in med else " " * width
                      for base, width in (("none", 7), ("rrweb", 8))]
            print(f"{recorder:10} {task:8.3f} {med[recorder]['ScriptDuration']:9.3f} {' '.join(ratios)}")
        for base in ("none", "rrweb"):  # each run's ratio, against the same run's
            if base in med:
                print(f"each run x {base}: " + "; ".join(
                    f"{r} " + " ".join(f"{f['TaskDuration'] / g['TaskDuration']:.2f}"
                                       for f, g in zip(results[workload][r], results[workload][base], strict=True))
                    for r in recorders if r != base))
    if args.json:
        args.json.write_text(json.dumps({"loadavg": os.getloadavg(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
