// Options, their defaults, and the DSN → envelope URL. Imports nothing of ours.

export const VERSION = '0.1.0';
export const SDK = { name: 'replayd.browser', version: VERSION };

export const DEFAULTS = {
  dsn: '',
  sessionSampleRate: 1, // share of sessions recorded and uploaded from the start
  onErrorSampleRate: 1, // share of the other sessions kept in a buffer and uploaded on an error
  flushIntervalMs: 5000, // a segment is cut this long after its first event
  maxSegmentBytes: 1000000, // ... or when its JSON reaches this size
  checkoutEveryNms: 300000, // a full snapshot (and a new segment) this often
  bufferMs: 60000, // buffer mode keeps at least this much before an error
  sessionIdleMs: 1800000, // a new replay after this long without user activity
  maxReplayMs: 3600000, // ... or after this long in total
  retryBaseMs: 1000, // first retry delay, doubled up to retryMaxMs
  retryMaxMs: 30000,
  requestTimeoutMs: 30000,
  maxQueueBytes: 8000000, // unsent data kept in memory; recording pauses beyond it
  maxQueueEntries: 1000,
  maxStoredBytes: 1000000, // of the queue mirrored to sessionStorage, shared with the host page
  compress: true,
  worker: true, // compress in a worker (off the page's main thread)
  workerUrl: '', // the worker's script (same origin as the page); default: a blob: URL of a built-in copy
  stormMutations: 10000, // this many DOM mutations within stormWindowMs pause recording...
  stormWindowMs: 50,
  stormCalmMs: 1000, // ... until a stormCalmMs passes with fewer; then a fresh full snapshot
  maskAllInputs: true, // passwords are masked whatever this says
  maskAllText: false,
  blockClass: 'rr-block',
  blockSelector: '',
  maskTextClass: 'rr-mask',
  maskTextSelector: '',
  ignoreClass: 'rr-ignore',
  ignoreSelector: '',
  captureErrors: true,
  breadcrumbs: true,
  networkDetailAllowUrls: [], // fetch/XHR to URLs containing one of these (or matching a RegExp): headers, bodies
  networkCaptureBodies: true,
  networkRequestHeaders: [], // besides content-type, content-length, accept
  networkResponseHeaders: [],
  networkMaxBodySize: 150000, // characters of a body kept; longer ones are cut (their size is sent)
  environment: '',
  release: '',
  debug: false,
};

// http://KEY@host[:port][/prefix]/PROJECT → http://host[:port][/prefix]/api/PROJECT/envelope/?sentry_key=KEY&...
export function envelopeUrl(dsn) {
  const u = new URL(dsn);
  const m = /^(.*)\/(\d+)\/?$/.exec(u.pathname);
  if (!u.username || !m) throw new Error('invalid dsn');
  return `${u.protocol}//${u.host}${m[1]}/api/${m[2]}/envelope/?sentry_key=${encodeURIComponent(u.username)}` +
    `&sentry_version=7&sentry_client=${SDK.name}%2F${VERSION}`;
}

// Options from the script tag: data-session-sample-rate="0.5" → sessionSampleRate: 0.5; lists
// separated by spaces: data-network-detail-allow-urls="https://api.example.com /graphql".
export function fromDataset(ds) {
  const opts = {};
  for (const k in ds) {
    if (!(k in DEFAULTS)) continue;
    const v = ds[k], t = typeof DEFAULTS[k];
    opts[k] = t === 'number' ? +v : t === 'boolean' ? v !== 'false' && v !== '0' : t === 'object' ? v.split(/\s+/).filter(String) : v;
  }
  return opts;
}
