// window.replayd: init (or auto-start from the script tag's data-dsn), setUser, flush, stop,
// captureException. Everything is guarded: nothing here may throw into the host page.

import { installBreadcrumbs } from './breadcrumbs.js';
import { DEFAULTS, SDK, VERSION, envelopeUrl, fromDataset } from './config.js';
import { exception, installErrorHandlers } from './errors.js';
import { createRecorder } from './recorder.js';
import { createQueue } from './transport.js';
import { guard, log, setDebug, store, uuid } from './util.js';

const MAX_ERRORS = 50; // per page load, against error loops
const USER_KEY = 'replayd:user';

let o = null, queue = null, rec = null, user = store.get(USER_KEY), crumbs = () => [];
let stopped = false, errorCount = 0;
const seen = new WeakSet();

// What every event sent carries (errors and replay_events): the page, the SDK, user, environment, release.
function stamp(ev) {
  ev.request = { url: location.href, headers: { 'User-Agent': navigator.userAgent } };
  ev.platform = 'javascript';
  ev.sdk = SDK;
  if (user) ev.user = user;
  if (o.environment) ev.environment = o.environment;
  if (o.release) ev.release = o.release;
  return ev;
}

const capture = guard((err, mechanism, fallback) => {
  if (!o || stopped || !o.captureErrors || errorCount >= MAX_ERRORS) return;
  if (err && typeof err === 'object') {
    if (seen.has(err)) return;
    seen.add(err);
  }
  errorCount++;
  const id = uuid();
  const ev = stamp({
    event_id: id, timestamp: Date.now() / 1000, level: 'error',
    exception: { values: [exception(err, fallback, mechanism)] }, breadcrumbs: crumbs(),
  });
  if (rec.error(id)) {
    ev.contexts = { replay: { replay_id: rec.id() } };
    ev.tags = { replayId: rec.id() };
  }
  queue.push({ k: 'e', id, raw: JSON.stringify(ev) });
  return id;
});

const api = {
  version: VERSION,

  init: guard((options) => {
    if (o) return log('already started');
    const opts = { ...DEFAULTS, ...options };
    setDebug(opts.debug);
    let url;
    try {
      url = envelopeUrl(opts.dsn);
    } catch (e) {
      return console.warn('[replayd] not started: invalid dsn', opts.dsn);
    }
    o = opts;
    queue = createQueue(url, o, () => rec.room());
    queue.restore();
    rec = createRecorder(o, queue, stamp);
    if (o.breadcrumbs) {
      crumbs = installBreadcrumbs(url.split('?')[0], o, rec.custom, rec.url, rec.nodeId);
    }
    installErrorHandlers(capture);
    // Cut and persist synchronously: the page may be gone before compression or a request ends.
    const away = guard(() => { rec.cut(); rec.save(); queue.save(); });
    addEventListener('pagehide', guard(() => { away(); queue.drain(); }));
    addEventListener('pageshow', guard((e) => { if (e.persisted) { rec.resume(); queue.kick(); } }));
    document.addEventListener('visibilitychange', guard(() => {
      if (document.visibilityState === 'hidden') { away(); queue.kick(); } else queue.wake();
    }));
    addEventListener('online', guard(() => queue.wake()));
    rec.start();
    queue.kick();
    log('started', rec.id(), rec.mode());
  }),

  // Kept for the tab's later pages too (sessionStorage), until setUser(null).
  setUser: guard((u) => {
    user = null;
    if (u && typeof u === 'object') {
      for (const k of ['id', 'email', 'username']) if (u[k] != null) (user = user || {})[k] = String(u[k]);
    }
    store.set(USER_KEY, user);
  }),

  // Cut the current segment and send everything queued; resolves true once sent.
  flush: (timeoutMs = 30000) => (rec ? (rec.cut(), queue.flush(timeoutMs)) : Promise.resolve(false)),

  // Stop recording and capturing (what is queued is still sent).
  stop: guard(() => {
    if (!rec || stopped) return;
    stopped = true;
    rec.stop();
    queue.kick();
  }),

  captureException: (err) => capture(err, 'manual'),

  getReplayId: () => (rec && !stopped && rec.mode() !== 'off' ? rec.id() : null),
};

// A page may queue calls before the async script arrives: window.replayd = {q: [['setUser', [{...}]]]}.
// A page that loads the script twice (a tag manager and a hard-coded tag) keeps the first copy: two
// would record the same replay with clashing segment ids and wrap fetch, console and history twice.
const early = window.replayd;
if (!(early && early.version)) {
  window.replayd = api;
  guard(() => {
    const script = document.currentScript;
    if (script && script.dataset && script.dataset.dsn) api.init(fromDataset(script.dataset));
    if (early && Array.isArray(early.q)) early.q.forEach((c) => api[c[0]] && api[c[0]].apply(api, c[1] || []));
  })();
}
