// Side panels synced with the playhead: breadcrumbs (navigations, clicks, console, network, errors)
// and tabs. Items are built with textContent only: recorded text is never parsed as HTML.
import { formatTime } from './timeline.js';

const ICONS = { navigation: '↪', click: '◉', rage: '✹', console: '›', network: '⇄', error: '✖', custom: '•' };

export class Breadcrumbs {
  constructor(container, player) {
    this.list = container.querySelector('[data-crumbs]');
    this.filters = container.querySelector('[data-crumb-filters]');
    this.player = player;
    this.items = [];
    this.current = -1;
    if (this.filters) this.filters.addEventListener('change', () => this.applyFilters());
  }

  times() { return this.items.map((i) => i.t); }

  render(crumbs) {
    this.items = crumbs.map((c) => ({ ...c }));
    if (!this.items.length) {
      const li = document.createElement('li');
      li.className = 'muted';
      li.textContent = 'No breadcrumbs recorded.';
      this.list.replaceChildren(li);
      return;
    }
    this.list.replaceChildren(...this.items.map((c) => {
      const li = document.createElement('li');
      li.className = `crumb ${c.kind}${c.level ? ` level-${c.level}` : ''}${c.failed ? ' failed' : ''}`;
      li.dataset.kind = c.kind === 'rage' ? 'click' : c.kind;
      li.dataset.t = String(c.t);
      const time = document.createElement('button');
      time.type = 'button';
      time.className = 'seek';
      time.textContent = formatTime(c.t);
      time.title = 'Seek here';
      time.addEventListener('click', () => this.player.seek(c.t));
      const icon = document.createElement('span');
      icon.className = 'icon';
      icon.textContent = ICONS[c.kind] || '•';
      const label = document.createElement('span');
      label.className = 'label';
      label.textContent = c.label;
      li.append(time, icon, label);
      if (c.kind === 'error' && c.event_id) {
        const a = document.createElement('a');
        a.href = `/errors/${encodeURIComponent(c.event_id)}`;
        a.textContent = 'details';
        a.className = 'details';
        li.append(a);
      }
      li.addEventListener('click', (e) => { if (e.target === li || e.target === label) this.player.seek(c.t); });
      c.el = li;
      return li;
    }));
    this.applyFilters();
  }

  applyFilters() {
    if (!this.filters) return;
    const on = new Set([...this.filters.querySelectorAll('input:checked')].map((i) => i.value));
    for (const c of this.items) {
      const kind = c.kind === 'rage' ? 'click' : c.kind;
      c.el.hidden = !(on.has(kind) || kind === 'custom');
    }
  }

  sync(t) {
    let index = -1;
    let lo = 0;
    let hi = this.items.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.items[mid].t <= t) { index = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (index === this.current) return;
    const [from, to] = index > this.current ? [this.current + 1, index] : [index + 1, this.current];
    for (let i = Math.max(0, from); i <= to && i < this.items.length; i += 1) {
      this.items[i].el.classList.toggle('past', i <= index);
    }
    if (this.current >= 0 && this.items[this.current]) this.items[this.current].el.classList.remove('current');
    this.current = index;
    if (index >= 0) {
      const el = this.items[index].el;
      el.classList.add('current');
      const box = this.list.getBoundingClientRect();
      const r = el.getBoundingClientRect();
      if (r.top < box.top || r.bottom > box.bottom) this.list.scrollTop += r.top - box.top - box.height / 3;
    }
  }
}

export function setupTabs(container) {
  const tabs = [...container.querySelectorAll('[data-tab]')];
  for (const tab of tabs) {
    tab.addEventListener('click', () => {
      for (const t of tabs) t.setAttribute('aria-selected', String(t === tab));
      for (const panel of container.querySelectorAll('[data-panel]')) panel.hidden = panel.dataset.panel !== tab.dataset.tab;
    });
  }
}
