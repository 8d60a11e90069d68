// The upload queue: envelopes in order, one request at a time, retried with backoff on network
// errors, 5xx and 429 (Retry-After honoured), bounded, mirrored to sessionStorage so unsent data
// survives page loads of the tab, and drained with keepalive requests when the page goes away.

import code from 'replayd-worker-code';
import { SDK } from './config.js';
import { b64, pack } from './pack.js';
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
      w = new Worker(o.workerUrl || URL.createObjectURL(new Blob([code], { type: 'text/javascript' })));
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

export class Queue {
  constructor(url, o, onRoom) {
    this.url = url;
    this.o = o;
    this.onRoom = onRoom;
    this.q = [];
    this.busy = false;
    this.timer = 0;
    this.delay = 0;
    this.until = 0; // no request before this time (Retry-After)
    this.waiters = [];
    this.flying = 0; // size of a keepalive upload in flight
    this.job = helper(o);
  }

  bytes() {
    return this.q.reduce((n, e) => n + size(e), 0);
  }

  room(n) {
    return this.q.length < this.o.maxQueueEntries && this.bytes() + n <= this.o.maxQueueBytes;
  }

  push(e) {
    this.q.push(e);
    if (e.parts && this.o.compress && typeof CompressionStream === 'function') {
      const parts = e.parts;
      e.ready = this.job({ p: parts }, () => pack(parts), this.o.requestTimeoutMs).then((r) => {
        e.z = r.z;
        e.b64 = r.b;
        e.parts = e.raw = null;
      }, noop).then(() => this.saveSoon());
    } else {
      this.saveSoon();
    }
    this.kick();
  }

  // Changes often come in bursts (segments compressed, sent): mirror them once. The page going
  // hidden or away saves at once (index.js).
  saveSoon() {
    this.saving = this.saving || setTimeout(() => { this.saving = 0; this.save(); }, 100);
  }

  // Mirror the queue to sessionStorage: the oldest entries, up to maxStoredBytes (the host page shares
  // the origin's few MB of quota and must keep room for its own data), fewer if even that fails.
  save() {
    const all = [];
    let n = 0;
    for (const e of this.q) {
      // A segment still being compressed is stored as its JSON text: joined only if it fits.
      if (!e.z && n + (e.n || e.raw.length) > this.o.maxStoredBytes) break;
      const p = e.z ? (e.b64 = e.b64 || b64(e.z)) : rawOf(e);
      if ((n += p.length) > this.o.maxStoredBytes) break;
      all.push({ k: e.k, id: e.id, seg: e.seg, ev: e.ev, p, z: !!e.z });
    }
    for (let k = all.length; !store.set(KEY, all.slice(0, k)) && k; k >>= 1);
  }

  // Entries a previous page of this tab could not send go first.
  restore() {
    const saved = store.get(KEY);
    if (!Array.isArray(saved)) return;
    const old = [];
    for (const s of saved) {
      try {
        if (s && typeof s.p === 'string') old.push({ k: s.k, id: s.id, seg: s.seg, ev: s.ev, raw: s.z ? null : s.p, z: s.z ? unb64(s.p) : null });
      } catch (err) { /* damaged entry */ }
    }
    this.q = old.concat(this.q);
  }

  kick() {
    if (!this.busy && !this.timer && nativeFetch) this.send().catch(noop);
  }

  // Retry now (the browser came back online, the page became visible), unless the server asked
  // for a pause with Retry-After.
  wake() {
    if (this.timer && Date.now() >= this.until) { clearTimeout(this.timer); this.timer = 0; }
    this.kick();
  }

  async send() {
    this.busy = true;
    try {
      while (this.q.length) {
        const e = this.q[0];
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
        const ms = this.o.requestTimeoutMs;
        const main = () => {
          const ctl = typeof AbortController === 'function' ? new AbortController() : null;
          const t = setTimeout(() => ctl && ctl.abort(), ms);
          return nativeFetch(this.url, { method: 'POST', body, credentials: 'omit', keepalive, signal: ctl && ctl.signal })
            .then((r) => ({ s: r.status, r: r.headers.get('Retry-After') }), (err) => (log('upload failed', err), { s: 0 }))
            .finally(() => clearTimeout(t));
        };
        this.flying = keepalive ? body.length : 0;
        if (body) ({ s: status, r: retryAfter } = await (keepalive || this.direct ? main() : this.job({ u: this.url, b: body, t: ms }, main, ms + 5000)));
        // A worker's request that failed online (a workerUrl whose own CSP refuses replayd): the page's
        // own requests from now on, which the page's policy allows. Offline the page's would fail too,
        // unless navigator.onLine is wrong: at the longest backoff, the page tries anyway.
        this.direct = this.direct || !status && !keepalive && (navigator.onLine || this.delay >= this.o.retryMaxMs);
        this.flying = 0;
        if (!status || status === 429 || status >= 500) {
          const base = this.o.retryBaseMs;
          this.delay = Math.min(this.o.retryMaxMs, this.delay ? this.delay * 2 : base);
          const wait = retryAfterMs(retryAfter);
          const ms = wait != null ? wait : this.delay * (0.8 + Math.random() * 0.4);
          this.until = wait != null ? Date.now() + wait : 0;
          log('retry in', ms, 'ms; status', status);
          this.timer = setTimeout(() => { this.timer = 0; this.kick(); }, ms);
          return;
        }
        // 2xx: stored. Any other 4xx will never be accepted: drop it rather than block the queue.
        if (status >= 300) log('dropped by the server', status, e.k, e.seg);
        if (this.q[0] === e) this.q.shift();
        this.delay = 0;
        this.saveSoon();
        this.onRoom();
      }
      this.waiters.splice(0).forEach((w) => w(true));
    } finally {
      this.busy = false;
    }
  }

  // Resolves true once everything queued has been sent, false after timeoutMs.
  flush(timeoutMs) {
    return new Promise((resolve) => {
      if (!this.q.length) return resolve(true);
      this.waiters.push(resolve);
      setTimeout(() => resolve(false), timeoutMs);
      this.wake();
    });
  }

  // The page is going away: send what fits in the keepalive budget, in order. Larger bodies stay in
  // sessionStorage and go with the next page of the tab (the server stores a segment sent twice once).
  drain() {
    // a keepalive upload in flight (the page was hidden first) survives the page and uses the budget
    let budget = KEEPALIVE_BUDGET - (this.flying || 0);
    for (const e of this.flying ? this.q.slice(1) : this.q) {
      const body = envelope(e);
      if (body.length > budget || !nativeFetch) break;
      budget -= body.length;
      try {
        nativeFetch(this.url, { method: 'POST', body, keepalive: true, credentials: 'omit' }).catch(noop);
      } catch (err) {
        break;
      }
    }
  }
}
