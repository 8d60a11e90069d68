// rrweb's recorder cut into segments: one segment per flushIntervalMs of activity (or maxSegmentBytes),
// a new segment at every full snapshot; in buffer mode, a rolling window of full-snapshot-led chunks
// that becomes segment 0 when an error happens.

import { record } from '@rrweb/record';
import { expired, loadSession, newSession, saveSession } from './session.js';
import { guard, log } from './util.js';

const FULL = 2;
const META = 4;
const INCREMENTAL = 3;
// Incremental sources that are a person's doing: mouse move, click, scroll, input, touch, drag.
const ACTIVITY = { 1: 1, 2: 1, 3: 1, 5: 1, 6: 1, 12: 1 };

// stamp(event): adds what every event carries (page, SDK, user, ...).
export function createRecorder(o, queue, stamp) {
  let s = loadSession(o, Date.now());
  let stopRrweb = null;
  let paused = false; // between a stop of rrweb and its restart
  let blocked = false; // the queue was full: drop events until the next full snapshot
  let stopped = false;
  let pend = fresh();
  let wins = []; // buffer mode: [{t, ev: [json], n}], each led by a full snapshot
  // Mutation storms: rrweb is stopped while the page rewrites itself faster than stormMutations per
  // stormWindowMs, and started again (a fresh full snapshot) once a stormCalmMs passes with fewer.
  let storm = null; // {n: mutations seen while paused, from: ms, k: mutations seen in this look}
  let win = 0, count = 0, watch = null;

  function fresh() {
    // n: the segment's JSON length if cut now ('[' + events joined by ',' + ']')
    return { ev: [], n: 1, t1: 0, urls: [], errs: [], timer: 0, full: false };
  }

  function replayEvent(seg, p) {
    return stamp({
      type: 'replay_event', replay_id: s.id, event_id: s.id, segment_id: seg, replay_type: s.type,
      replay_start_timestamp: s.start / 1000, timestamp: (p.t1 || Date.now()) / 1000,
      urls: p.urls, error_ids: p.errs, trace_ids: [],
    });
  }

  // Close the pending segment and queue it (numbered now, compressed in the background, off the
  // page's thread where a worker runs).
  function cut() {
    clearTimeout(pend.timer);
    if (!pend.ev.length) return;
    const p = pend;
    pend = fresh();
    if (s.mode !== 'session') return;
    if (!queue.room(p.n)) {
      log('queue full');
      blocked = true;
      return;
    }
    const seg = s.seg++;
    saveSession(s);
    queue.push({ k: 'r', id: s.id, seg, ev: replayEvent(seg, p), parts: p.ev, n: p.n });
  }

  function add(e) {
    const json = JSON.stringify(e);
    if (!pend.ev.length) pend.timer = setTimeout(guard(cut), o.flushIntervalMs);
    pend.ev.push(json);
    pend.n += json.length + 1;
    pend.t1 = e.timestamp;
    if (e.type === FULL) pend.full = true;
    if (pend.n >= o.maxSegmentBytes) cut();
  }

  function buffer(e) {
    const t = e.timestamp;
    if (e.type === META || !wins.length) {
      wins.push({ t, ev: [], n: 0 });
      // Drop chunks once the next one alone covers bufferMs.
      while (wins.length > 1 && wins[1].t <= t - o.bufferMs) wins.shift();
    }
    const w = wins[wins.length - 1];
    const json = JSON.stringify(e);
    w.ev.push(json);
    w.n += json.length;
    if (w.n > o.maxQueueBytes) wins = wins.slice(-1);
  }

  function emit(e) {
    if (stopped || paused) return;
    const t = e.timestamp || Date.now();
    const active = e.type === INCREMENTAL && e.data && ACTIVITY[e.data.source];
    if (expired(s, o, t)) {
      // Idle too long or too old: nothing is recorded until the person acts, then a new replay.
      cut();
      if (active) rotate();
      return;
    }
    if (active) s.last = t;
    if (blocked) {
      if (e.type !== META) return;
      blocked = false;
    }
    if (s.mode === 'buffer') return buffer(e);
    if (e.type === META && pend.full) cut(); // every full snapshot starts a segment
    add(e);
  }

  // A custom event (breadcrumbs, errors, spans, storm marks): ours, so it is kept while rrweb is
  // stopped by a storm.
  const custom = (tag, payload, t) => emit({ type: 5, timestamp: t || Date.now(), data: { tag, payload } });

  // A storm's gap so far: {mutations, from, to} (the player shows "recording paused").
  function mark(gap) {
    const t = Date.now();
    custom('replayd.paused', { mutations: gap.n, from: gap.from, to: t }, t);
    gap.n = 0;
    gap.from = t;
  }

  // Our observer is created before rrweb's, so the browser calls it first with the same records: on a
  // storm it stops rrweb, which discards rrweb's copy of them unprocessed. While paused it looks away
  // (watching costs the page a record per mutation) and back every other stormCalmMs: the storm is
  // over once a stormCalmMs of watching sees fewer than stormMutations.
  // rrweb's options: the browser then hands both observers the same record objects (their JS
  // wrappers made once).
  const look = () => watch.observe(document, { childList: true, attributes: true, attributeOldValue: true,
    characterData: true, characterDataOldValue: true, subtree: true });

  function observe(records) {
    const t = Date.now(), n = records.length;
    if (storm) {
      storm.n += n;
      if ((storm.k += n) >= o.stormMutations) watch.disconnect();
      return;
    }
    if (t - win > o.stormWindowMs) { win = t; count = 0; }
    if ((count += n) < o.stormMutations || !stopRrweb) return;
    log('mutation storm');
    storm = { n: count, from: t };
    halt();
    watch.disconnect();
    const probe = guard(() => {
      if (stopped) return;
      storm.k = 0;
      look();
      setTimeout(guard(() => {
        if (stopped) return;
        if (storm.k >= o.stormMutations) return void setTimeout(probe, o.stormCalmMs);
        const gap = storm;
        storm = null;
        start(); // a fresh full snapshot, then the mark
        mark(gap);
      }), o.stormCalmMs);
    });
    setTimeout(probe, o.stormCalmMs);
  }

  function start() {
    if (stopped || s.mode === 'off' || storm) return;
    if (!watch) {
      watch = new MutationObserver(guard(observe));
      look();
    }
    stopRrweb = record({
      emit: guard(emit),
      checkoutEveryNms: s.mode === 'buffer' ? o.bufferMs / 2 : o.checkoutEveryNms,
      maskAllInputs: o.maskAllInputs,
      maskInputOptions: { password: true },
      maskTextSelector: o.maskAllText ? '*' : o.maskTextSelector || null,
      maskTextClass: o.maskTextClass,
      blockClass: o.blockClass,
      blockSelector: o.blockSelector || null,
      ignoreClass: o.ignoreClass,
      ignoreSelector: o.ignoreSelector || null,
      slimDOMOptions: 'all',
      inlineStylesheet: true,
      recordCanvas: false,
      collectFonts: false,
    });
    pend.urls.push(location.href);
  }

  function halt() {
    try { stopRrweb && stopRrweb(); } catch (e) { log(e); }
    stopRrweb = null;
  }

  // Stop rrweb and start it again outside the current emit (a fresh full snapshot, new options).
  function restart() {
    paused = true;
    setTimeout(guard(() => { halt(); paused = false; start(); }), 0);
  }

  function rotate() {
    s = newSession(o, Date.now());
    wins = [];
    pend = fresh();
    log('new replay', s.id, s.mode);
    restart();
  }

  const recording = () => (stopRrweb || storm) && !paused && !stopped;

  return {
    start: guard(start),
    // Cut the segment (the page is hidden or going away, or flush()): a storm's gap so far is marked.
    cut: guard(() => {
      if (storm) mark(storm);
      cut();
    }),
    id: () => s.id,
    mode: () => s.mode,
    // The queue has room again: resume with a full snapshot.
    room: guard(() => {
      if (blocked && stopRrweb && !paused) record.takeFullSnapshot(true);
    }),
    custom: guard((tag, payload, t) => {
      if (recording()) custom(tag, payload, t);
    }),
    // rrweb's id of a node; -1 while rrweb is stopped (a restart numbers the nodes anew)
    nodeId: (n) => (stopRrweb && !paused ? record.mirror.getId(n) : -1),
    url: guard((href) => {
      if (recording()) pend.urls.push(href);
    }),
    // An error happened: mark it; in buffer mode upload the buffer as segment 0 and carry on as a
    // session. Returns whether the error belongs to a replay.
    error: guard((eventId) => {
      if (!recording()) return false;
      custom('error', { eventId });
      if (s.mode === 'buffer') {
        if (!wins.length) return false;
        s.mode = 'session';
        s.start = wins[0].t;
        pend = fresh();
        for (const w of wins) { pend.ev = pend.ev.concat(w.ev); pend.n += w.n + w.ev.length; }
        pend.t1 = Date.now();
        pend.urls.push(location.href);
        wins = [];
        pend.errs.push(eventId);
        cut();
        restart(); // checkouts every checkoutEveryNms from now on
      } else {
        pend.errs.push(eventId);
      }
      return true;
    }),
    // Keep the session fresh across page loads, e.g. before the page goes away.
    save: guard(() => saveSession(s)),
    // The page came back from the back/forward cache: the tab's later pages may have moved the
    // session on (segment ids, a new replay), and the replay last showed their DOM. Take the stored
    // session and a fresh full snapshot, as on a page load.
    resume: guard(() => {
      if (stopped) return;
      s = loadSession(o, Date.now());
      pend = fresh();
      wins = [];
      restart();
    }),
    stop: guard(() => {
      cut();
      stopped = true;
      halt();
      if (watch) watch.disconnect();
    }),
  };
}
