// The upload queue: envelopes in order, one request at a time, retried with backoff on network
// errors, 5xx and 429 (Retry-After honoured), bounded, mirrored to sessionStorage so unsent data
// survives page loads of the tab, and drained with keepalive requests when the page goes away.

import { SDK } from './config.js';
import { pack, serve, upload } from './pack.js';
import { log, noop, store } from './util.js';

const KEY = 'replayd:queue';
const KEEPALIVE_BUDGET = 60000; // browsers refuse keepalive bodies beyond 64 KiB in flight
const enc = new TextEncoder();
// Captured before breadcrumbs wrap window.fetch, so our own uploads are never recorded.
const nativeFetch = window.fetch && window.fetch.bind(window);

function bytes(parts) {
  parts = parts.map((p) => (typeof p === 'string' ? enc.encode(p) : p));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
}

const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

// Segments are compressed and uploaded by a worker (a blob: URL, or o.workerUrl where the page's CSP
// refuses blob: workers), so the page's main thread does neither; where no worker can run (refused,
// failed to load, broken, silent for ms), on the main thread. job(message for worker.js, the same
// work on the main thread, ms) → Promise of the worker's answer or of main().
function helper(o) {
  let w = o.worker ? null : false, n = 0, jobs = {};
  const fail = () => {
    if (w) w.terminate();
    w = false;
    for (const i in jobs) jobs[i][1](jobs[i][0]());
    jobs = {};
  };
  return (msg, main, ms) => {
    if (w === null) try {
      w = new Worker(o.workerUrl || URL.createObjectURL(new Blob([`(${serve})(${pack},${upload})`], { type: 'text/javascript' })));
      w.onmessage = (m) => {
        const j = jobs[m.data.i];
        delete jobs[m.data.i];
        if (j) j[1](m.data.z || m.data.s != null ? m.data : j[0]());
      };
      w.onerror = fail;
    } catch (e) {
      log('no worker', e);
      w = false;
    }
    if (!w) return main();
    return new Promise((resolve) => {
      const i = msg.i = ++n;
      jobs[i] = [main, resolve];
      w.postMessage(msg);
      setTimeout(() => jobs[i] && fail(), ms); // a worker that never answers
    });
  };
}

// A segment's JSON text, joined from its events' when first needed (storage, an upload uncompressed).
const rawOf = (e) => e.raw || (e.raw = '[' + e.parts.join(',') + ']');

// An entry: {k: 'r' (replay segment) | 'e' (error event), id, seg, ev (replay_event), parts (event JSON
// texts) or raw (JSON text), n (its length), z (compressed bytes, replace them once ready)}.
export function envelope(e) {
  const head = JSON.stringify({ event_id: e.id, sent_at: new Date().toISOString(), sdk: SDK });
  if (e.k === 'e') return bytes([head, '\n{"type":"event"}\n', e.raw]);
  const rec = bytes([`{"segment_id":${e.seg}}\n`, e.z || rawOf(e)]);
  return bytes([head, '\n{"type":"replay_event"}\n', JSON.stringify(e.ev), '\n',
    JSON.stringify({ type: 'replay_recording', length: rec.length }), '\n', rec]);
}

const size = (e) => (e.z ? e.z.length : e.n || e.raw.length);

function retryAfterMs(header) {
  if (!header) return null;
  const s = +header;
  const ms = isNaN(s) ? Date.parse(header) - Date.now() : s * 1000;
  return isNaN(ms) ? null : Math.min(Math.max(ms, 0), 600000);
}

// The queue: push(entry), room(n), save(), restore(), kick(), wake(), flush(ms), drain().
export function createQueue(url, o, onRoom) {
  let q = [];
  let busy = false, timer = 0, delay = 0, saving = 0;
  let until = 0; // no request before this time (Retry-After)
  let flying = 0; // size of a keepalive upload in flight
  let direct = false, bad = 0; // uploads from the page, not the worker; the worker's failures in a row (below)
  const waiters = [], job = helper(o);

  const kick = () => {
    if (!busy && !timer && nativeFetch) send().catch(noop);
  };

  // Mirror the queue to sessionStorage: the oldest entries, up to maxStoredBytes (the host page shares
  // the origin's few MB of quota and must keep room for its own data), fewer if even that fails.
  function save() {
    const all = [];
    let n = 0;
    for (const e of q) {
      // A segment still being compressed is stored as its JSON text: joined only if it fits.
      if (!e.z && n + (e.n || e.raw.length) > o.maxStoredBytes) break;
      const p = e.z ? e.b64 : rawOf(e);
      if ((n += p.length) > o.maxStoredBytes) break;
      all.push({ k: e.k, id: e.id, seg: e.seg, ev: e.ev, p, z: !!e.z });
    }
    for (let k = all.length; !store.set(KEY, all.slice(0, k)) && k; k >>= 1);
  }

  // Changes often come in bursts (segments compressed, sent): mirror them once. The page going
  // hidden or away saves at once (index.js).
  const saveSoon = () => {
    saving = saving || setTimeout(() => { saving = 0; save(); }, 100);
  };

  // Retry now (the browser came back online, the page became visible), unless the server asked
  // for a pause with Retry-After.
  const wake = () => {
    if (timer && Date.now() >= until) { clearTimeout(timer); timer = 0; }
    kick();
  };

  async function send() {
    busy = true;
    try {
      while (q.length) {
        const e = q[0];
        await e.ready;
        let status = 0, retryAfter = null, body;
        try {
          body = envelope(e);
        } catch (err) {
          status = 400; // cannot be built (a damaged entry from storage): drop it below
        }
        // A hidden page may be frozen or closed at any moment: keepalive (from the page: a worker's
        // request ends with the page) lets the request outlive it.
        const keepalive = !!body && document.visibilityState === 'hidden' && body.length <= KEEPALIVE_BUDGET;
        const ms = o.requestTimeoutMs;
        const main = () => upload(nativeFetch, url, body, ms, keepalive);
        flying = keepalive ? body.length : 0;
        if (body) ({ s: status, r: retryAfter } = await (keepalive || direct ? main() : job({ u: url, b: body, t: ms }, main, ms + 5000)));
        // A worker's requests that failed online twice running (a workerUrl whose own CSP refuses
        // replayd; once is a reconnecting network's first try): the page's own requests from now on,
        // which the page's policy allows. Offline the page's would fail too, unless navigator.onLine
        // is wrong: at the longest backoff, the page tries anyway.
        bad = status || keepalive ? 0 : bad + (navigator.onLine || delay >= o.retryMaxMs);
        direct = direct || bad > 1;
        flying = 0;
        if (!status || status === 429 || status >= 500) {
          delay = Math.min(o.retryMaxMs, delay ? delay * 2 : o.retryBaseMs);
          const wait = retryAfterMs(retryAfter);
          const ms = wait != null ? wait : delay * (0.8 + Math.random() * 0.4);
          until = wait != null ? Date.now() + wait : 0;
          log('retry', ms, status);
          timer = setTimeout(() => { timer = 0; kick(); }, ms);
          return;
        }
        // 2xx: stored. Any other 4xx will never be accepted: drop it rather than block the queue.
        if (status >= 300) log('dropped', status, e.k, e.seg);
        if (q[0] === e) q.shift();
        delay = 0;
        saveSoon();
        onRoom();
      }
      waiters.splice(0).forEach((w) => w(true));
    } finally {
      busy = false;
    }
  }

  return {
    room: (n) => q.length < o.maxQueueEntries && q.reduce((n, e) => n + size(e), 0) + n <= o.maxQueueBytes,

    push(e) {
      q.push(e);
      if (e.parts && o.compress && typeof CompressionStream === 'function') {
        const parts = e.parts;
        e.ready = job({ p: parts }, () => pack(parts), o.requestTimeoutMs).then((r) => {
          e.z = r.z;
          e.b64 = r.b;
          e.parts = e.raw = null;
        }, noop).then(saveSoon);
      } else {
        saveSoon();
      }
      kick();
    },

    save,

    // Entries a previous page of this tab could not send go first.
    restore() {
      const saved = store.get(KEY);
      if (!Array.isArray(saved)) return;
      const old = [];
      for (const s of saved) {
        try {
          if (s && typeof s.p === 'string') old.push({ k: s.k, id: s.id, seg: s.seg, ev: s.ev, raw: s.z ? null : s.p, z: s.z ? unb64(s.p) : null, b64: s.p });
        } catch (err) { /* damaged entry */ }
      }
      q = old.concat(q);
    },

    kick,
    wake,

    // Resolves true once everything queued has been sent, false after timeoutMs.
    flush: (timeoutMs) => new Promise((resolve) => {
      if (!q.length) return resolve(true);
      waiters.push(resolve);
      setTimeout(() => resolve(false), timeoutMs);
      wake();
    }),

    // The page is going away: send what fits in the keepalive budget, in order. Larger bodies stay in
    // sessionStorage and go with the next page of the tab (the server stores a segment sent twice once).
    drain() {
      // a keepalive upload in flight (the page was hidden first) survives the page and uses the budget
      let budget = KEEPALIVE_BUDGET - flying;
      for (const e of flying ? q.slice(1) : q) {
        const body = envelope(e);
        if (body.length > budget || !nativeFetch) break;
        budget -= body.length;
        try {
          upload(nativeFetch, url, body, o.requestTimeoutMs, true);
        } catch (err) {
          break;
        }
      }
    },
  };
}
