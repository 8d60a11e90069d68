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
  for (const x of b) s += (x < 16 ? '0' : '') + x.toString(16);
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

// Anything to a short string, never throwing (console arguments, rejection reasons).
export function str(x, max = 300) {
  let s;
  try {
    s = typeof x === 'string' ? x : x instanceof Error ? `${x.name}: ${x.message}` :
      x && typeof x === 'object' ? JSON.stringify(x) : String(x);
  } catch (e) {
    s = Object.prototype.toString.call(x);
  }
  s = String(s);
  return s.length > max ? s.slice(0, max) + '…' : s;
}
