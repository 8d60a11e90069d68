// Side panels synced with the playhead: breadcrumbs, console, network (with a request's details) and
// tabs. Every list follows the playhead (items before it full colour, the current one highlighted
// and scrolled into view) and a click on a row seeks there. Items are built with textContent only:
// recorded text is never parsed as HTML.
import { formatTime } from './timeline.js';

const ICONS = { navigation: '↪', click: '◉', rage: '✹', console: '›', network: '⇄', error: '✖', custom: '•', paused: '⏸' };
const BODY_PREVIEW_CHARS = 10000; // a longer body shows its start, its size and a "Show all" button
// what the Sentry SDK's _meta.warnings on a request or response mean
const NETWORK_WARNINGS = {
  URL_SKIPPED: 'Headers and bodies not captured: the URL is not in the recorder’s networkDetailAllowUrls.',
  MAYBE_JSON_TRUNCATED: 'The recorder cut this body (over 150,000 characters); it may not be valid JSON.',
  TEXT_TRUNCATED: 'The recorder cut this body (over 150,000 characters).',
  BODY_PARSE_ERROR: 'The recorder could not read this body.',
  BODY_PARSE_TIMEOUT: 'The recorder gave up reading this body (it took too long).',
  UNPARSEABLE_BODY_TYPE: 'The recorder could not read this body’s type (a stream, a blob…).',
};

function el(tag, className = '', text = null) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== null && text !== undefined) node.textContent = String(text);
  return node;
}

function seekButton(t, seek) {
  const time = el('button', 'seek', formatTime(t));
  time.type = 'button';
  time.title = 'Seek here';
  time.addEventListener('click', (e) => { e.stopPropagation(); seek(t); });
  return time;
}

export function formatBytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** A request's status as the panel shows it: 0 (or none, failed) is a request that got no answer. */
function statusText(status, failed) {
  if (status === 0 || ((status === undefined || status === null || status === '') && failed)) return 'failed';
  return status === undefined || status === null || status === '' ? '—' : status;
}

function formatDuration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** A recorded body as text to show: JSON (parsed by the recorder, or a string holding it)
 * pretty-printed; other text as it is. null when there is none. */
export function bodyText(body) {
  if (body === undefined || body === null || body === '') return null;
  if (typeof body === 'object') return { text: JSON.stringify(body, null, 2), json: true };
  if (typeof body !== 'string') return { text: String(body), json: false };
  const trimmed = body.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return { text: JSON.stringify(JSON.parse(trimmed), null, 2), json: true };
    } catch {
      // cut or not JSON after all: as it is
    }
  }
  return { text: body, json: false };
}

/** Console levels as the filter names them (the SDK says "warning", rrweb's plugin "warn"...). */
export function consoleLevel(level) {
  const l = String(level || 'log').toLowerCase();
  if (l === 'warning' || l === 'warn') return 'warn';
  if (l === 'error' || l === 'assert' || l === 'fatal' || l === 'critical') return 'error';
  if (l === 'info') return 'info';
  return 'log'; // log, debug, trace, dir, table...
}

/** A list of timed rows that follows the playhead. Subclasses build the rows and say which are shown. */
class TimedList {
  constructor(list, player) {
    this.list = list;
    this.player = player;
    this.items = [];
    this.index = -1; // last item at or before the playhead
    this.current = null; // its row, or the last shown one before it
    this.now = 0;
  }

  seek(t) { if (this.player) this.player.seek(t); }

  /** The element that scrolls the list (found once), or null while the panel is hidden: hidden
   * panels are not laid out, and asking would force a layout on every tick of the playhead. */
  scroller() {
    if (this.list.closest('[hidden]')) return null;
    if (this.scrollBox === undefined) {
      this.scrollBox = null;
      for (let node = this.list; node && node !== document.body; node = node.parentElement) {
        if (/(auto|scroll)/.test(getComputedStyle(node).overflowY)) { this.scrollBox = node; break; }
      }
    }
    return this.scrollBox;
  }

  empty(message) {
    const li = el('li', 'muted', message);
    this.list.replaceChildren(li);
  }

  /** items: sorted by t, each gets .el from build(item). */
  setItems(items, build, emptyMessage) {
    this.items = items;
    this.index = -1;
    this.current = null;
    if (!items.length) {
      this.empty(emptyMessage);
      return;
    }
    this.list.replaceChildren(...items.map((item) => {
      const li = build(item);
      li.dataset.t = String(item.t);
      li.addEventListener('click', (e) => {
        if (e.target.closest('a, button, input')) return;
        this.activate(item);
      });
      item.el = li;
      return li;
    }));
    this.applyFilters();
  }

  /** A click on a row: seek there (subclasses do more). */
  activate(item) { this.seek(item.t); }

  shown() { return true; }

  applyFilters() {
    for (const item of this.items) item.el.hidden = !this.shown(item);
    this.index = -2; // recompute the current row
    this.sync(this.now);
  }

  sync(t) {
    this.now = t;
    let index = -1;
    let lo = 0;
    let hi = this.items.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid].t <= t) { index = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (index === this.index) return;
    const previous = this.index < -1 ? this.items.length - 1 : this.index;
    const [from, to] = index > previous ? [previous + 1, index] : [index + 1, previous];
    for (let i = Math.max(0, from); i <= to && i < this.items.length; i += 1) {
      this.items[i].el.classList.toggle('past', i <= index);
    }
    this.index = index;
    let k = index;
    while (k >= 0 && this.items[k].el.hidden) k -= 1;
    const row = k >= 0 ? this.items[k].el : null;
    if (row === this.current) return;
    if (this.current) this.current.classList.remove('current');
    this.current = row;
    if (row) row.classList.add('current');
    this.reveal();
  }

  /** Scroll the current row into view, or to the top before the first row (when the panel is shown). */
  reveal() {
    const row = this.current;
    const box = this.scroller();
    if (!box) return;
    if (!row) {
      box.scrollTop = 0;
      return;
    }
    const outer = box.getBoundingClientRect();
    const r = row.getBoundingClientRect();
    if (r.top < outer.top || r.bottom > outer.bottom) box.scrollTop += r.top - outer.top - outer.height / 3;
  }
}

export class Breadcrumbs extends TimedList {
  constructor(container, player) {
    super(container.querySelector('[data-crumbs]'), player);
    this.filters = container.querySelector('[data-crumb-filters]');
    if (this.filters) this.filters.addEventListener('change', () => this.applyFilters());
  }

  times() { return this.items.map((i) => i.t); }

  render(crumbs) {
    this.setItems(crumbs.map((c) => ({ ...c })), (c) => {
      const li = el('li', `crumb ${c.kind}${c.level ? ` level-${consoleLevel(c.level)}` : ''}${c.failed ? ' failed' : ''}`);
      li.dataset.kind = c.kind === 'rage' ? 'click' : c.kind;
      li.append(seekButton(c.t, (t) => this.seek(t)), el('span', 'icon', ICONS[c.kind] || '•'),
        el('span', 'label', c.label));
      if (c.kind === 'error' && c.event_id) {
        const a = el('a', 'details', 'details');
        a.href = `/errors/${encodeURIComponent(c.event_id)}`;
        li.append(a);
      }
      return li;
    }, 'No breadcrumbs recorded.');
  }

  applyFilters() {
    this.on = this.filters ? new Set([...this.filters.querySelectorAll('input:checked')].map((i) => i.value)) : null;
    super.applyFilters();
  }

  shown(c) {
    const kind = c.kind === 'rage' ? 'click' : c.kind;
    return !this.on || kind === 'custom' || kind === 'paused' || this.on.has(kind);
  }
}

/** Console output: a level filter (log, info, warn, error) and a text search. */
export class ConsolePanel extends TimedList {
  constructor(container, player) {
    super(container.querySelector('[data-console]'), player);
    this.levels = container.querySelector('[data-console-levels]');
    this.search = container.querySelector('[data-console-search]');
    this.count = container.querySelector('[data-console-count]');
    this.levels.addEventListener('change', () => this.applyFilters());
    this.search.addEventListener('input', () => this.applyFilters());
  }

  render(crumbs) {
    const items = crumbs.filter((c) => c.kind === 'console')
      .map((c) => ({ t: c.t, level: consoleLevel(c.level), text: String(c.label || '') }));
    for (const item of items) item.lower = item.text.toLowerCase();
    this.setItems(items, (item) => {
      const li = el('li', `console-row level-${item.level}`);
      li.dataset.level = item.level;
      li.append(seekButton(item.t, (t) => this.seek(t)), el('span', 'level', item.level),
        el('span', 'message', item.text));
      return li;
    }, 'No console output recorded.');
    if (!items.length) this.count.textContent = '';
  }

  shown(item) {
    return this.on.has(item.level) && (!this.query || item.lower.includes(this.query));
  }

  applyFilters() {
    this.on = new Set([...this.levels.querySelectorAll('input:checked')].map((i) => i.value));
    this.query = this.search.value.trim().toLowerCase();
    super.applyFilters();
    if (!this.items.length) return;
    const shown = this.items.filter((i) => !i.el.hidden).length;
    this.count.textContent = shown === this.items.length ? `${shown}` : `${shown} of ${this.items.length}`;
  }
}

/** Network requests; a click seeks there and opens the request's details (from its segment). */
export class NetworkPanel extends TimedList {
  constructor(container, player) {
    super(container.querySelector('[data-network]'), player);
    this.pane = container.querySelector('[data-network-detail]');
    this.body = this.pane.querySelector('[data-detail-body]');
    this.pane.querySelector('[data-detail-close]').addEventListener('click', () => this.closeDetail());
    this.selected = null;
    this.gen = 0;
  }

  render(crumbs) {
    const items = crumbs.filter((c) => c.kind === 'network').map((c) => ({ ...c }));
    this.setItems(items, (c) => {
      const li = el('li', `net-row${c.failed ? ' failed' : ''}`);
      const status = statusText(c.status, c.failed);
      li.append(seekButton(c.t, (t) => this.seek(t)), el('span', 'method', c.method || ''),
        el('span', 'status', status), el('span', 'url', c.url || c.label), el('span', 'dur', formatDuration(c.dur)));
      li.title = c.url || c.label;
      return li;
    }, 'No network requests recorded.');
  }

  activate(item) {
    this.seek(item.t);
    this.openDetail(item);
  }

  closeDetail() {
    this.pane.hidden = true;
    if (this.selected) this.selected.el.classList.remove('selected');
    this.selected = null;
    this.gen += 1;
  }

  /** The recorded span of a request: the segment's performanceSpan events, counted as the server did. */
  async span(item) {
    if (item.seg === undefined || item.span === undefined || !this.player) return null;
    const index = this.player.table.findIndex((row) => row.id === item.seg);
    if (index < 0) return null;
    const events = await this.player.loader.get(index);
    const spans = events.filter((e) => e && e.type === 5 && e.data && e.data.tag === 'performanceSpan');
    const found = spans[item.span];
    return found && found.data.payload && typeof found.data.payload === 'object' ? found.data.payload : null;
  }

  async openDetail(item) {
    if (this.selected) this.selected.el.classList.remove('selected');
    this.selected = item;
    item.el.classList.add('selected');
    this.pane.hidden = false;
    const gen = ++this.gen;
    this.pane.dataset.state = 'loading';
    this.body.replaceChildren(el('p', 'muted', 'Loading the request’s details…'));
    let payload = null;
    let problem = '';
    try {
      payload = await this.span(item);
    } catch (err) {
      problem = `Could not load the details: ${err && err.message ? err.message : err}`;
    }
    if (gen !== this.gen) return;
    this.body.replaceChildren(...this.detail(item, payload, problem));
    this.pane.dataset.state = 'ready';
    this.pane.scrollTop = 0;
  }

  detail(item, payload, problem) {
    const data = payload && payload.data && typeof payload.data === 'object' ? payload.data : {};
    const start = payload ? Number(payload.startTimestamp) : NaN;
    const end = payload ? Number(payload.endTimestamp) : NaN;
    const scale = start < 1e11 ? 1000 : 1; // the SDK writes seconds
    const duration = Number.isFinite(start) && Number.isFinite(end) ? (end - start) * scale : item.dur;
    const request = data.request && typeof data.request === 'object' ? data.request : null;
    const response = data.response && typeof data.response === 'object' ? data.response : null;
    const status = data.statusCode !== undefined ? data.statusCode : item.status;
    const general = el('dl', 'detail-general');
    const row = (name, value, key) => {
      const dd = el('dd', '', value);
      dd.dataset.field = key;
      general.append(el('dt', '', name), dd);
    };
    row('Method', data.method || item.method || '—', 'method');
    row('URL', (payload && payload.description) || item.url || item.label, 'url');
    row('Status', statusText(status, item.failed && !payload), 'status');
    row('Type', (payload && payload.op) || item.op || '—', 'op');
    row('Started', formatTime(item.t), 'start');
    row('Duration', formatDuration(duration), 'duration');
    row('Request size', formatBytes(request ? request.size : item.req_size), 'request-size');
    row('Response size', formatBytes(response ? response.size : item.res_size), 'response-size');
    const out = [general];
    if (problem) out.push(el('p', 'detail-note error', problem));
    else if (!payload && item.via === 'breadcrumb') out.push(...this.crumbDetail(item));
    else if (!payload) out.push(el('p', 'detail-note', 'Only the summary was recorded for this request.'));
    else {
      out.push(...this.part('Request', request, 'request'), ...this.part('Response', response, 'response'));
    }
    return out;
  }

  /** A request recorded only as a breadcrumb (no span): what else it holds, as stored (scrubbed). */
  crumbDetail(item) {
    const out = [el('p', 'detail-note', 'Recorded as a breadcrumb only: no headers or bodies were kept for this request.')];
    const data = item.data && typeof item.data === 'object' ? Object.entries(item.data) : [];
    if (data.length) {
      const section = el('section', 'detail-part');
      section.dataset.part = 'breadcrumb';
      const table = el('table', 'detail-headers');
      table.dataset.headers = 'breadcrumb';
      for (const [name, value] of data) {
        const tr = el('tr');
        tr.append(el('th', '', name), el('td', '', value));
        table.append(tr);
      }
      section.append(el('h3', '', 'Breadcrumb data'), table);
      out.push(section);
    }
    return out;
  }

  /** Headers and body of a request or a response. */
  part(title, info, key) {
    const section = el('section', 'detail-part');
    section.dataset.part = key;
    section.append(el('h3', '', title));
    if (!info) {
      section.append(el('p', 'muted', 'Nothing recorded.'));
      return [section];
    }
    const warnings = info._meta && Array.isArray(info._meta.warnings) ? info._meta.warnings : [];
    for (const w of warnings) section.append(el('p', 'detail-note', NETWORK_WARNINGS[w] || String(w)));
    section.append(el('h4', '', 'Headers'));
    section.append(this.headers(info.headers, key));
    section.append(el('h4', '', 'Body'));
    section.append(this.bodyBlock(info, key));
    return [section];
  }

  headers(headers, key) {
    let pairs = [];
    if (Array.isArray(headers)) {
      pairs = headers.map((h) => (Array.isArray(h) ? h : h && typeof h === 'object' ? [h.name ?? h.key, h.value] : [h, '']));
    } else if (headers && typeof headers === 'object') {
      pairs = Object.entries(headers);
    } else if (typeof headers === 'string' && headers) {
      return el('pre', 'detail-text', headers);
    }
    if (!pairs.length) return el('p', 'muted', 'none recorded');
    const table = el('table', 'detail-headers');
    table.dataset.headers = key;
    for (const [name, value] of pairs) {
      const tr = el('tr');
      tr.append(el('th', '', name), el('td', '', typeof value === 'object' ? JSON.stringify(value) : value));
      table.append(tr);
    }
    return table;
  }

  bodyBlock(info, key) {
    const wrap = el('div', 'detail-body');
    wrap.dataset.body = key;
    if (Object.prototype.hasOwnProperty.call(info, 'body') && info.body === null) {
      wrap.append(el('p', 'muted', 'removed at ingest (the scrubbing rules drop bodies)'));
      return wrap;
    }
    const body = bodyText(info.body);
    if (!body) {
      wrap.append(el('p', 'muted', typeof info.size === 'number' && info.size > 0
        ? `not recorded (${formatBytes(info.size)})` : 'none'));
      return wrap;
    }
    const pre = el('pre', `detail-text${body.json ? ' json' : ''}`);
    const whole = body.text;
    const size = typeof info.size === 'number' ? `, ${formatBytes(info.size)}` : '';
    if (whole.length > BODY_PREVIEW_CHARS) {
      pre.textContent = `${whole.slice(0, BODY_PREVIEW_CHARS)}…`;
      const note = el('p', 'detail-note', `Showing the first ${BODY_PREVIEW_CHARS.toLocaleString('en')} of `
        + `${whole.length.toLocaleString('en')} characters${size}. `);
      note.dataset.truncated = 'true';
      const all = el('button', 'link', 'Show all');
      all.type = 'button';
      all.addEventListener('click', () => {
        pre.textContent = whole;
        note.remove();
      });
      note.append(all);
      wrap.append(note, pre);
    } else {
      pre.textContent = whole;
      wrap.append(pre);
    }
    return wrap;
  }
}

export function setupTabs(container, { onShow = () => {} } = {}) {
  const tabs = [...container.querySelectorAll('[data-tab]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => {
      for (const t of tabs) t.setAttribute('aria-selected', String(t === tab));
      for (const panel of container.querySelectorAll('[data-panel]')) panel.hidden = panel.dataset.panel !== tab.dataset.tab;
      onShow(tab.dataset.tab);
    });
  }
}
