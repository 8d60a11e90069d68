// Small helpers shared by every module: guarded calls, ids, sessionStorage, debug log.

let debugOn = false;
export const setDebug = (on) => { debugOn = !!on; };

export function log(...args) {
  if (debugOn) try { console.log('[replayd]', ...args); } catch (e) { /* nothing to do */ }
}

// Run fn, never let an exception reach the host page.
export function guard(fn) {
  return function () {
    try {
      return fn.apply(this, arguments);
    } catch (e) {
      log('internal error', e);
    }
  };
}

export const noop = () => {};

export function uuid() {
  const b = new Uint8Array(16);
  try { crypto.getRandomValues(b); } catch (e) { for (let i = 0; i < 16; i++) b[i] = Math.random() * 256; }
  b[6] = (b[6] & 15) | 64;
  b[8] = (b[8] & 63) | 128;
  let s = '';
  for (const x of b) s += (x | 256).toString(16).slice(1);
  return s;
}

export const store = {
  get(key) {
    try { return JSON.parse(sessionStorage.getItem(key)); } catch (e) { return null; }
  },
  set(key, value) {
    try { sessionStorage.setItem(key, JSON.stringify(value)); return true; } catch (e) { return false; }
  },
};

// At most this many values of an object are read to describe it, three levels deep: the page may log
// a whole store, and every value read runs the page's getters.
const MAX_VALUES = 100;

function brief(x) {
  let n = 0;
  const walk = (v, depth) => {
    if (typeof v === 'string') return JSON.stringify(v.length > 300 ? v.slice(0, 300) : v);
    if (typeof v === 'function') return 'ƒ ' + v.name;
    if (!v || typeof v !== 'object' || v instanceof Date) return String(v);
    const arr = Array.isArray(v);
    if (depth > 2) return arr ? '[…]' : '{…}';
    const keys = arr ? null : Object.keys(v), len = arr ? v.length : keys.length, out = [];
    for (let i = 0, k; i < len; i++) {
      if (++n > MAX_VALUES) { out.push('…'); break; }
      out.push(arr ? walk(v[i], depth + 1) : JSON.stringify(k = keys[i]) + ':' + walk(v[k], depth + 1));
    }
    return arr ? `[${out}]` : `{${out}}`; // joined with ','
  };
  return walk(x, 0);
}

// Anything to a short string, never throwing (console arguments, rejection reasons).
export function str(x, max = 300) {
  let s;
  try {
    s = typeof x === 'string' ? x : x instanceof Error ? `${x.name}: ${x.message}` :
      x && typeof x === 'object' ? brief(x) : String(x);
  } catch (e) {
    s = Object.prototype.toString.call(x);
  }
  s = String(s);
  return s.length > max ? s.slice(0, max) + '…' : s;
}
