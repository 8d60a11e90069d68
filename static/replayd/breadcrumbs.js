// Breadcrumbs, in the recording as custom events (Sentry's format) and kept for error events:
// navigations, clicks, console warnings and errors, fetch and XHR requests (never bodies or headers).

import { guard, str } from './util.js';

const MAX_KEPT = 30;

// A CSS-like description of a clicked element: "body > form#signup > button.primary[type="submit"]".
export function describe(el) {
  const parts = [];
  for (let i = 0; el && el.nodeType === 1 && i < 5; i++, el = el.parentElement) {
    let d = el.tagName.toLowerCase();
    if (el.id) d += '#' + el.id;
    for (const c of Array.prototype.slice.call(el.classList, 0, 3)) d += '.' + c;
    for (const a of ['type', 'name', 'role']) {
      const v = el.getAttribute(a);
      if (v) d += `[${a}="${v}"]`;
    }
    parts.unshift(d);
    if (el.id || d === 'body') break;
  }
  return parts.join(' > ');
}

// own: URL prefix of our uploads (never recorded); add(crumb): where breadcrumbs go; nav(href).
export function installBreadcrumbs(own, add, nav) {
  const kept = [];
  const crumb = guard((category, message, data, level, type) => {
    const c = { timestamp: Date.now() / 1000, type: type || 'default', category, message, data };
    if (level) c.level = level;
    kept.push(c);
    if (kept.length > MAX_KEPT) kept.shift();
    add(c);
  });

  // Clicks.
  document.addEventListener('click', guard((e) => {
    const el = e.target && e.target.nodeType === 1 ? e.target : e.target && e.target.parentElement;
    if (el) crumb('ui.click', describe(el));
  }), true);

  // Navigations within the page (history API, back/forward, hash).
  let href = location.href;
  const moved = guard(() => {
    if (location.href === href) return;
    crumb('navigation', undefined, { from: href, to: location.href }, undefined, 'navigation');
    href = location.href;
    nav(href);
  });
  for (const name of ['pushState', 'replaceState']) {
    const orig = history[name];
    if (typeof orig !== 'function') continue;
    history[name] = function () {
      const r = orig.apply(this, arguments);
      moved();
      return r;
    };
  }
  addEventListener('popstate', moved);
  addEventListener('hashchange', moved);

  // Console warnings and errors (the call itself is untouched).
  let inConsole = false;
  for (const level of ['warn', 'error']) {
    const orig = console[level];
    if (typeof orig !== 'function') continue;
    console[level] = function () {
      if (!inConsole) {
        inConsole = true;
        crumb('console', Array.prototype.map.call(arguments, (a) => str(a)).join(' ').slice(0, 500),
          { logger: 'console' }, level === 'warn' ? 'warning' : 'error');
        inConsole = false;
      }
      return orig.apply(this, arguments);
    };
  }

  // Network: method, URL, status, duration.
  const request = guard((category, method, url, status, started) => {
    url = new URL(String(url), location.href).href;
    if (url.indexOf(own) === 0) return;
    crumb(category, undefined, {
      method: String(method || 'GET').toUpperCase(), url, status_code: status,
      duration: Math.round(Date.now() - started),
    }, status >= 400 || !status ? 'error' : undefined, 'http');
  });
  const origFetch = window.fetch;
  if (typeof origFetch === 'function') {
    window.fetch = function (input, init) {
      const started = Date.now();
      const p = origFetch.apply(this, arguments);
      try {
        const method = (init && init.method) || (input && input.method);
        const url = input && typeof input === 'object' && 'url' in input ? input.url : input;
        p.then((r) => request('fetch', method, url, r.status, started), () => request('fetch', method, url, 0, started));
      } catch (e) { /* never in the page's way */ }
      return p;
    };
  }
  const XHR = window.XMLHttpRequest && XMLHttpRequest.prototype;
  if (XHR) {
    const open = XHR.open, send = XHR.send, requests = new WeakMap();
    XHR.open = function (method, url) {
      try { requests.set(this, [method, url]); } catch (e) { /* not an XHR */ }
      return open.apply(this, arguments);
    };
    XHR.send = function () {
      const info = requests.get(this), started = Date.now();
      if (info) try {
        this.addEventListener('loadend', () => request('xhr', info[0], info[1], this.status, started));
      } catch (e) { /* nothing */ }
      return send.apply(this, arguments);
    };
  }

  return () => kept.slice();
}
