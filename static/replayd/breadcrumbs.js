// Breadcrumbs, in the recording as custom events (Sentry's format) and kept for error events:
// navigations, clicks, console warnings and errors; fetch and XHR requests as performance spans.

import { guard, noop, str } from './util.js';

const MAX_KEPT = 30;
const MAX_TEXT = 200; // characters of a clicked element's text sent
// What is clicked: the innermost of these around the target (Sentry's list, widened; roles of
// widgets, not of landmarks).
const CLICKABLE = 'a,button,input,select,textarea,summary,label,option,[data-testid],[role=button],' +
  '[role=checkbox],[role=combobox],[role=gridcell],[role=link],[role=menuitem],[role=menuitemcheckbox],' +
  '[role=menuitemradio],[role=option],[role=radio],[role=row],[role=searchbox],[role=slider],' +
  '[role=spinbutton],[role=switch],[role=tab],[role=textbox],[role=treeitem]';
const ATTRIBUTES = ['id', 'class', 'role', 'aria-label', 'data-testid', 'alt', 'title', 'type'];

// own: URL prefix of our uploads (never recorded); o: options; add(tag, payload): a custom event in
// the recording; nav(href); id(node): rrweb's id of a node (< 1: not recorded).
export function installBreadcrumbs(own, o, add, nav, id) {
  const kept = [];
  // keepOnly: for error events, not the recording (a request is recorded as a span)
  const crumb = guard((category, message, data, level, type, keepOnly) => {
    const c = { timestamp: Date.now() / 1000, type: type || 'default', category, message, data };
    if (level) c.level = level;
    kept.push(c);
    if (kept.length > MAX_KEPT) kept.shift();
    if (!keepOnly) add('breadcrumb', c);
  });

  // Clicks, described here so the server only reads them (click search): the target's rrweb id (the
  // one rrweb's click event carries), and the clickable element: its id, tag, a few attributes, and
  // its recorded text nodes (id, text masked as rrweb masks it), ~200 characters in all.
  const blocked = ['.' + o.blockClass, o.blockSelector], masked = ['.' + o.maskTextClass, o.maskAllText ? '*' : o.maskTextSelector];
  document.addEventListener('click', guard((e) => {
    let t = e.composedPath()[0], data; // as rrweb finds it (inside a shadow root too)
    if (t.nodeType === 3) t = t.parentElement; // a text node
    if (!t || !t.closest) return; // no element (the document, or window)
    const el = t.closest(CLICKABLE) || t, node = { id: id(el), tagName: el.tagName, attributes: {}, texts: [] };
    if (node.id > 0) {
      // a blocked element: only its class, as rrweb records it (its contents are not recorded)
      for (const k of el.matches(blocked.filter(String)) ? ['class'] : ATTRIBUTES) {
        const v = el.getAttribute(k);
        if (v != null) node.attributes[k] = v;
      }
      const walk = document.createTreeWalker(el, 4); // text nodes
      for (let n = 0, x, s; n < MAX_TEXT && (x = walk.nextNode());) {
        if (!(s = x.data).trim() || id(x) < 1) continue;
        if (x.parentElement.closest(masked.filter(String))) s = s.replace(/\S/g, '*');
        node.texts.push([id(x), s = s.slice(0, MAX_TEXT - n)]);
        n += s.length;
      }
      data = { nodeId: id(t), node };
    }
    crumb('ui.click', undefined, data);
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
        crumb('console', Array.from(arguments, (a) => str(a)).join(' ').slice(0, 500),
          { logger: 'console' }, level === 'warn' ? 'warning' : 'error');
        inConsole = false;
      }
      return orig.apply(this, arguments);
    };
  }

  // Network: a breadcrumb kept for error events and, in the recording, a performanceSpan (the Sentry
  // SDK's shape, so the server scrubs it and the player shows it alike): method, URL, status, timing;
  // for URLs in networkDetailAllowUrls also headers (a few, by name), bodies and sizes.
  const names = (list) => ['content-type', 'content-length', 'accept'].concat(list.map((h) => h.toLowerCase()));
  const reqNames = names(o.networkRequestHeaders), resNames = names(o.networkResponseHeaders);
  const pick = (pairs, allow) => {
    const out = {};
    for (let [k, v] of pairs) if (allow.includes(k = k.toLowerCase())) out[k] = v;
    return out;
  };
  // {headers, size (bytes), body (JSON parsed when it is JSON; cut at networkMaxBodySize characters)}
  const part = (headers, body, size) => {
    const r = { headers, size };
    if (body instanceof URLSearchParams) body = String(body);
    if (typeof body === 'string' && body) {
      r.size = size || new Blob([body]).size;
      if (!o.networkCaptureBodies) return r;
      if (body.length > o.networkMaxBodySize) {
        r.body = body.slice(0, o.networkMaxBodySize) + '…';
        r._meta = { warnings: ['TEXT_TRUNCATED'] };
      } else {
        try { r.body = /^\s*[[{]/.test(body) ? JSON.parse(body) : body; } catch (e) { r.body = body; }
      }
    }
    return r;
  };
  // A response body, read from a clone: at most networkMaxBodySize characters and 5 s (a stream may
  // never end); the page's own copy is untouched.
  const text = async (res) => {
    if (!o.networkCaptureBodies || !res.body) return;
    const reader = res.body.getReader(), dec = new TextDecoder(), timer = setTimeout(() => reader.cancel().catch(noop), 5000);
    let s = '';
    try {
      for (let c; !(c = await reader.read()).done && s.length <= o.networkMaxBodySize;) s += dec.decode(c.value, { stream: true });
      reader.cancel().catch(noop);
    } finally {
      clearTimeout(timer);
    }
    return s;
  };
  const allowed = (url) => o.networkDetailAllowUrls.some((p) => (typeof p === 'string' ? url.includes(p) : p.test(url)));
  const request = guard((category, method, url, status, started, detail) => {
    url = new URL(String(url), location.href).href;
    if (url.startsWith(own)) return;
    method = String(method || 'GET').toUpperCase();
    const end = Date.now(), data = { method, statusCode: status };
    crumb(category, undefined, { method, url, status_code: status, duration: end - started },
      status >= 400 || !status ? 'error' : undefined, 'http', true);
    const span = () => add('performanceSpan', { op: 'resource.' + category, description: url,
      startTimestamp: started / 1000, endTimestamp: end / 1000, data });
    if (!detail || !allowed(url)) return span();
    new Promise((resolve) => resolve(detail(data))).then(span, span);
  });
  const origFetch = window.fetch;
  if (typeof origFetch === 'function') {
    window.fetch = function (input, init) {
      const started = Date.now();
      const p = origFetch.apply(this, arguments);
      try {
        const method = (init && init.method) || (input && input.method);
        const url = input && typeof input === 'object' && 'url' in input ? input.url : input;
        p.then((r) => request('fetch', method, url, r.status, started, async (data) => {
          data.request = part(pick(new Headers((init && init.headers) || (input && input.headers) || {}), reqNames), init && init.body);
          const h = r.headers, res = r.clone(); // now, before the page reads the body
          data.response = part(pick(h, resNames), await text(res), +h.get('content-length'));
        }), () => request('fetch', method, url, 0, started));
      } catch (e) { /* never in the page's way */ }
      return p;
    };
  }
  const XHR = window.XMLHttpRequest && XMLHttpRequest.prototype;
  if (XHR) {
    const open = XHR.open, send = XHR.send, setHeader = XHR.setRequestHeader, requests = new WeakMap();
    XHR.open = function (method, url) {
      try { requests.set(this, [method, url, []]); } catch (e) { /* not an XHR */ }
      return open.apply(this, arguments);
    };
    XHR.setRequestHeader = function (name, value) {
      const info = requests.get(this);
      if (info) info[2].push([String(name), String(value)]);
      return setHeader.apply(this, arguments);
    };
    XHR.send = function (body) {
      const info = requests.get(this), started = Date.now(), xhr = this;
      if (info) try {
        xhr.addEventListener('loadend', () => request('xhr', info[0], info[1], xhr.status, started, (data) => {
          data.request = part(pick(info[2], reqNames), body);
          const type = xhr.responseType, pairs = xhr.getAllResponseHeaders().trim().split(/[\r\n]+/).map((l) => l.split(/: *(.*)/));
          data.response = part(pick(pairs, resNames),
            !type || type === 'text' ? xhr.responseText : type === 'json' ? JSON.stringify(xhr.response) : undefined,
            +xhr.getResponseHeader('content-length'));
        }));
      } catch (e) { /* nothing */ }
      return send.apply(this, arguments);
    };
  }

  return () => kept.slice();
}
