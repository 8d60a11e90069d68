"""Player benchmark: time to first frame and to seek to the middle and the end of a 60-minute replay, in Chromium.

    .venv/bin/python bench/bench_player.py [--minutes 60] [--runs 3] [--keep]

Starts ``replayd serve`` on a temporary directory, ingests a generated replay (5 s segments through
the envelope endpoint, as the SDK uploads them; a full snapshot every 5 minutes like rrweb's
``checkoutEveryNms``, mouse moves, scrolls, text mutations, clicks and idle stretches), signs in,
then measures in Debian's Chromium, each run in a fresh browser context (cold HTTP cache):

- progressive (the player as shipped): first frame at 0 s, from navigation start; then a seek to the
  middle and one to the end (the replay's duration: its last page), each from the player's API call
  to the painted frame; and a page opened at ``?t=<end>``.
- baseline (same run, same data): ``?load=all`` fetches every segment before the first frame (what a
  player without progressive loading does), then the same seeks.

Then it compacts the replay (``replayd compact --older-than 0`` against the running server's config:
one object of a few chunks, read by byte range) and measures the progressive player again on the
compacted replay. For every seek it reports the network traffic (bytes of segment batches
transferred, from the Resource Timing entries after the seek started).

Prints medians and the baseline/progressive ratios. Targets: first frame <= 1 s, seek <= 0.5 s, on the
replay as ingested and compacted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests.*

from tests.envelopes import (
    click,
    element,
    mouse_move,
    new_id,
    page_events,
    post_envelope,
    replay_envelope,
    text,
    text_mutation,
)
from tests.harness import ADMIN_PASSWORD, CHROMIUM, CHROMIUM_ARGS, PUBLIC_KEY, launch_server

SEGMENT_S = 5
CHECKOUT_S = 300  # a full snapshot every 5 minutes
TARGET_FIRST_FRAME_MS = 1000
TARGET_SEEK_MS = 500


# --- the generated recording --------------------------------------------------------------------

def dashboard(ts: float, minute: int) -> list[dict]:
    """Meta + FullSnapshot of a dashboard page: a nav, a 40-row table, some cards (~400 nodes)."""
    rows = []
    nid = 1000
    for r in range(40):
        cells = []
        for c in range(4):
            cells.append(element(nid, "td", [text(nid + 1, f"r{r} c{c} value {(r * 7 + c * 13 + minute) % 997}")]))
            nid += 2
        rows.append(element(nid, "tr", cells, **{"class": "row"}))
        nid += 1
    cards = [element(800 + i * 2, "div", [text(801 + i * 2, f"Card {i}: {minute * 3 + i} orders")], **{"class": "card"})
             for i in range(12)]
    nav = [element(700 + i * 2, "a", [text(701 + i * 2, f"Section {i}")], href=f"/section/{i}") for i in range(20)]
    body = [
        element(40, "nav", nav),
        element(41, "div", cards, **{"class": "cards"}),
        element(42, "table", [element(43, "tbody", rows)]),
        element(44, "button", [text(45, "Refresh")], id="refresh"),
    ]
    style = [element(46, "style", [text(47, "td{padding:4px;border-bottom:1px solid #eee}.card{display:inline-block;"
                                             "padding:8px;margin:4px;background:#f3f4f6}nav a{margin-right:8px}")])]
    return page_events(ts, f"https://dash.example.test/minute/{minute}", "Operations dashboard",
                       [f"Live status at minute {minute}"], head=style, body_extra=body)


def generate(minutes: int, start_ms: float) -> list[list[dict]]:
    """Segments of 5 s: a checkout every 5 minutes; activity except in idle minutes (every 7th)."""
    segments = []
    for s in range(0, minutes * 60, SEGMENT_S):
        events: list[dict] = []
        t0 = start_ms + s * 1000
        if s % CHECKOUT_S == 0:
            events += dashboard(t0, s // 60)
        idle = (s // 60) % 7 == 6
        for k in range(SEGMENT_S):  # one mutation a second: the status line and a table cell
            t = t0 + k * 1000 + 10
            events.append(text_mutation(t, 21, f"Live status at {s + k} s"))
            events.append(text_mutation(t + 5, 1001 + ((s + k) % 160) * 2, f"updated {s + k}"))
        if not idle:
            for m in range(SEGMENT_S * 10):  # mouse moves every 100 ms
                events.append(mouse_move(t0 + m * 100 + 50, 200 + (s + m) % 600, 150 + (m * 7) % 400))
            events.append({"type": 3, "timestamp": t0 + 2500,
                           "data": {"source": 3, "id": 1, "x": 0, "y": (s * 13) % 900}})
            if s % 20 == 0:
                events.append(click(t0 + 3000, 44))
        events.sort(key=lambda e: e["timestamp"])
        segments.append(events)
    return segments


def ingest(url: str, replay_id: str, segments: list[list[dict]]) -> float:
    started = time.perf_counter()
    bodies = [replay_envelope(replay_id, i, seg, user={"id": "bench-user"}) for i, seg in enumerate(segments)]
    # the SDK sends one segment at a time per replay; a few in flight keeps the server's pool busy
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda b: post_envelope(url, b, PUBLIC_KEY), bodies))
    return time.perf_counter() - started


def compact(config_path: Path) -> str:
    """``replayd compact`` against the running server's index and blobs: the replay in one object."""
    replayd = Path(sys.executable).with_name("replayd")
    done = subprocess.run([str(replayd), "compact", "--config", str(config_path), "--older-than", "0"],
                          capture_output=True, text=True, check=True, timeout=600)
    return done.stdout.strip()


# --- browser measurements ---------------------------------------------------------------------------

FIRST_FRAME = """async () => {
  const root = document.querySelector('[data-player]');
  while (!root.dataset.firstFrame) await new Promise((r) => setTimeout(r, 5));
  const mark = performance.getEntriesByName('replayd:first-frame')[0];
  const requests = performance.getEntriesByType('resource').filter((e) => e.name.includes('segments.pack'));
  return {first_frame: mark.startTime, requests: requests.length};
}"""

SEEKS = """async () => {
  const p = globalThis.replaydPlayer;
  p.pause();
  const timed = async (t) => { const t0 = performance.now(); await p.seek(t); return performance.now() - t0; };
  const middle = await timed(p.duration / 2);
  const endStart = performance.now();
  const end = await timed(p.duration);
  const doc = document.querySelector('.replayer-wrapper iframe').contentDocument;
  const batches = performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('segments.pack') && e.startTime >= endStart);
  return {seek_middle: middle, seek: end, at: p.current(), text: doc.body ? doc.body.innerText.slice(0, 200) : '',
          seek_requests: batches.length, seek_bytes: batches.reduce((n, e) => n + e.transferSize, 0)};
}"""


def measure(browser, url: str, cookies: list[dict], path: str, seek: bool) -> dict:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_cookies(cookies)
    page = context.new_page()
    page.goto(url + path)
    result = page.evaluate(FIRST_FRAME)
    if seek:
        result.update(page.evaluate(SEEKS))
    context.close()
    return result


def sign_in(browser, url: str) -> list[dict]:
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "/login")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("form.login-form button[type=submit]")
    page.wait_for_url(url + "/")
    cookies = context.cookies()
    context.close()
    return cookies


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    data_dir = Path(tempfile.mkdtemp(prefix="replayd-bench-player-"))
    # one worker per core, as deployed; compacted by the benchmark itself, when it says so
    server = launch_server(data_dir, server={"workers": 0}, compaction={"enabled": False})
    url = server.url
    try:
        replay_id = new_id()
        segments = generate(args.minutes, (time.time() - args.minutes * 60 - 600) * 1000)
        raw = sum(len(json.dumps(s)) for s in segments)
        seconds = ingest(url, replay_id, segments)
        stored = sum(f.stat().st_size for f in (data_dir / "blobs").rglob("*") if f.is_file())
        print(f"replay: {args.minutes} min, {len(segments)} segments, {sum(map(len, segments))} events, "
              f"{raw / 1e6:.1f} MB raw JSON, {stored / 1e6:.2f} MB stored; ingested in {seconds:.1f} s")
        end_s = args.minutes * 60 - 2
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            cookies = sign_in(browser, url)
            # warm-up (server caches, Chromium's code caches), not counted
            measure(browser, url, cookies, f"/replays/{replay_id}", seek=True)
            results: dict[str, list[dict]] = {"progressive": [], "open_at_end": [], "baseline": [],
                                              "compacted": [], "compacted_open_at_end": []}
            for _ in range(args.runs):
                results["progressive"].append(measure(browser, url, cookies, f"/replays/{replay_id}", seek=True))
                results["open_at_end"].append(measure(browser, url, cookies, f"/replays/{replay_id}?t={end_s}",
                                                      seek=False))
                results["baseline"].append(measure(browser, url, cookies, f"/replays/{replay_id}?load=all", seek=True))
            compacted = compact(server.config_path)
            compacted_stored = sum(f.stat().st_size for f in (data_dir / "blobs").rglob("*") if f.is_file())
            print(f"compacted: {compacted}; {compacted_stored / 1e6:.2f} MB stored "
                  f"({compacted_stored / stored:.2f}x the segments)")
            measure(browser, url, cookies, f"/replays/{replay_id}", seek=True)  # warm-up, not counted
            for _ in range(args.runs):
                results["compacted"].append(measure(browser, url, cookies, f"/replays/{replay_id}", seek=True))
                results["compacted_open_at_end"].append(
                    measure(browser, url, cookies, f"/replays/{replay_id}?t={end_s}", seek=False))
            browser.close()
    finally:
        server.close()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            print(f"data kept in {data_dir}")

    def col(name: str, key: str) -> float:
        return median([r[key] for r in results[name]])

    prog_ff, prog_seek = col("progressive", "first_frame"), col("progressive", "seek")
    comp_ff, comp_seek = col("compacted", "first_frame"), col("compacted", "seek")
    comp_end_ff = col("compacted_open_at_end", "first_frame")
    comp_mid = col("compacted", "seek_middle")
    prog_mid, base_mid = col("progressive", "seek_middle"), col("baseline", "seek_middle")
    end_ff = col("open_at_end", "first_frame")
    base_ff, base_seek = col("baseline", "first_frame"), col("baseline", "seek")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {load} (other work on the machine skews these figures)")
    print(f"medians of {args.runs} runs "
          "(ms; first frame from navigation start, seek from the call to the painted frame)")
    print(f"{'':30} {'first frame':>12} {'seek to middle':>15} {'seek to end':>12} "
          f"{'segment requests by 1st frame':>31}")
    print(f"{'progressive (shipped)':30} {prog_ff:12.0f} {prog_mid:15.0f} {prog_seek:12.0f} "
          f"{col('progressive', 'requests'):31.0f}")
    print(f"{'progressive, opened at ?t=end':30} {end_ff:12.0f} {'—':>15} {'—':>12} "
          f"{col('open_at_end', 'requests'):31.0f}")
    print(f"{'baseline: all segments first':30} {base_ff:12.0f} {base_mid:15.0f} {base_seek:12.0f} "
          f"{col('baseline', 'requests'):31.0f}")
    print(f"{'compacted, progressive':30} {comp_ff:12.0f} {comp_mid:15.0f} {comp_seek:12.0f} "
          f"{col('compacted', 'requests'):31.0f}")
    print(f"{'compacted, opened at ?t=end':30} {comp_end_ff:12.0f} {'—':>15} {'—':>12} "
          f"{col('compacted_open_at_end', 'requests'):31.0f}")
    for name in ("progressive", "compacted"):
        print(f"network traffic of the seek to the end, {name}: {col(name, 'seek_bytes') / 1e3:.0f} kB "
              f"in {col(name, 'seek_requests'):.0f} segment batch requests (median)")
    print(f"compacted / as ingested: first frame {comp_ff / prog_ff:.2f}x, seek {comp_seek / prog_seek:.2f}x")
    print(f"\nfirst frame: baseline / progressive = {base_ff / prog_ff:.1f}x")
    print(f"open at the end vs baseline first frame: {base_ff / end_ff:.1f}x")
    print(f"seek to middle: progressive {prog_mid:.0f} ms, seek to end: progressive {prog_seek:.0f} ms "
          f"(baseline, everything already loaded: {base_mid:.0f} / {base_seek:.0f} ms)")
    sample = results["progressive"][-1]
    print(f"after the seek the replay shows t={sample['at'] / 1000:.1f} s: {sample['text'][:60]!r}")
    ok = all(ff <= TARGET_FIRST_FRAME_MS for ff in (prog_ff, end_ff, comp_ff, comp_end_ff)) \
        and all(seek <= TARGET_SEEK_MS for seek in (prog_seek, prog_mid, comp_seek, comp_mid))
    print(f"targets (first frame <= {TARGET_FIRST_FRAME_MS} ms, seek <= {TARGET_SEEK_MS} ms): "
          f"{'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
