// Our controls on the Replayer: play/pause, speeds, skip inactivity, the timeline (loaded range,
// inactive stretches, markers), the clock, the loading overlay, and the keyboard.
import { States } from './machine.js';
import { formatTime, ranges } from './timeline.js';

const STEP_MS = 5000;

function pct(t, duration) {
  return `${duration ? Math.min(100, Math.max(0, (t / duration) * 100)) : 0}%`;
}

function bar(className, start, end, duration, title = '') {
  const el = document.createElement('div');
  el.className = className;
  el.style.left = pct(start, duration);
  el.style.width = `calc(${pct(end - start, duration)} + 1px)`;
  if (title) el.title = title;
  return el;
}

export class Controls {
  constructor(root, player, { events = () => [] } = {}) {
    this.root = root;
    this.player = player;
    this.events = events; // sorted breadcrumb times, for shift+arrow
    this.duration = player.duration;
    this.q = (sel) => root.querySelector(sel);
    this.timeline = this.q('[data-timeline]');
    this.playButton = this.q('[data-action="toggle"]');
    this.overlay = this.q('[data-overlay]');
    this.overlayText = this.q('[data-overlay-text]');
    this.progress = this.q('[data-progress]');
    this.markersEl = this.q('[data-markers]');
    this.gapsEl = this.q('[data-gaps]');
    this.focusError = player.config.focus_error;
    this.bind();
    this.drawGaps(player.config.gaps.map(([a, b]) => [a, b]));
    this.drawMarkers(player.config.errors.map((e) => ({ t: e.t, kind: 'error', label: e.label, event_id: e.event_id })));
    this.onTime(player.target);
    this.onState(player.state);
  }

  bind() {
    const p = this.player;
    p.addEventListener('time', (e) => this.onTime(e.detail.t));
    p.addEventListener('state', (e) => this.onState(e.detail.state));
    p.addEventListener('progress', (e) => this.onProgress(e.detail));
    p.addEventListener('loaded', () => this.drawLoaded());
    p.addEventListener('window', () => this.drawLoaded());
    this.playButton.addEventListener('click', () => p.toggle());
    for (const button of this.root.querySelectorAll('[data-speed]')) {
      button.addEventListener('click', () => this.setSpeed(Number(button.dataset.speed)));
    }
    const skip = this.q('[data-skip]');
    skip.addEventListener('change', () => p.setSkipInactive(skip.checked));
    p.setSkipInactive(skip.checked);
    this.timeline.addEventListener('click', (e) => {
      const box = this.timeline.getBoundingClientRect();
      p.seek(((e.clientX - box.left) / box.width) * this.duration);
    });
    const hover = this.q('[data-hover-time]');
    this.timeline.addEventListener('mousemove', (e) => {
      const box = this.timeline.getBoundingClientRect();
      hover.hidden = false;
      hover.textContent = formatTime(((e.clientX - box.left) / box.width) * this.duration);
      hover.style.left = `${e.clientX - box.left}px`;
    });
    this.timeline.addEventListener('mouseleave', () => { hover.hidden = true; });
    const copy = this.q('[data-action="copy-link"]');
    if (copy) copy.addEventListener('click', () => this.copyLink(copy));
  }

  setSpeed(speed) {
    this.player.setSpeed(speed);
    for (const b of this.root.querySelectorAll('[data-speed]')) {
      b.setAttribute('aria-pressed', String(Number(b.dataset.speed) === speed));
    }
  }

  /** Keyboard: space play/pause, ←/→ 5 s, shift+←/→ previous/next event. */
  onKey(e) {
    const target = e.target;
    if (target && (target.closest('input, select, textarea, [contenteditable]') || e.ctrlKey || e.metaKey || e.altKey)) return;
    if (target && target.closest('button') && e.key === ' ') return; // a focused button handles space
    const p = this.player;
    const now = p.current();
    if (e.key === ' ' || e.code === 'Space') {
      p.toggle();
    } else if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      const forward = e.key === 'ArrowRight';
      if (e.shiftKey) {
        const times = this.events();
        const t = forward ? times.find((x) => x > now + 250) : [...times].reverse().find((x) => x < now - 250);
        if (t === undefined) return;
        p.seek(t);
      } else {
        p.seek(now + (forward ? STEP_MS : -STEP_MS));
      }
    } else {
      return;
    }
    e.preventDefault();
  }

  link() {
    const seconds = (this.player.current() / 1000).toFixed(1);
    return `${location.origin}${this.player.config.page_url}?t=${seconds}`;
  }

  async copyLink(button) {
    const url = this.link();
    button.dataset.link = url;
    let ok = false;
    try {
      await navigator.clipboard.writeText(url);
      ok = true;
    } catch (err) {
      ok = false;
    }
    const label = button.textContent;
    button.textContent = ok ? 'Link copied' : url;
    setTimeout(() => { button.textContent = label; }, ok ? 1500 : 6000);
  }

  onTime(t) {
    const d = this.duration;
    this.q('[data-current]').textContent = formatTime(t);
    this.q('[data-playhead]').style.left = pct(t, d);
    this.q('[data-played]').style.width = pct(t, d);
    this.timeline.setAttribute('aria-valuenow', (t / 1000).toFixed(1));
    this.root.dataset.current = String(Math.round(t));
    this.dispatchTime(t);
  }

  dispatchTime(t) {
    this.root.dispatchEvent(new CustomEvent('player-time', { detail: { t } }));
  }

  onState(state) {
    const playing = state.name === States.PLAYING || (state.name === States.LOADING && state.resume);
    this.playButton.textContent = playing ? '❚❚' : '▶';
    this.playButton.setAttribute('aria-label', playing ? 'Pause' : 'Play');
    const labels = { loading: 'loading…', paused: 'paused', playing: 'playing', ended: 'ended', failed: 'failed' };
    this.q('[data-state-label]').textContent = labels[state.name] || state.name;
    this.overlay.hidden = state.name !== States.LOADING && state.name !== States.FAILED;
    this.progress.hidden = state.name === States.FAILED;
    if (state.name === States.FAILED) {
      this.overlayText.textContent = `Cannot play this replay: ${state.error || 'unknown error'}`;
    }
  }

  onProgress({ done, total }) {
    if (this.player.state.name === States.FAILED) return;
    this.progress.max = Math.max(1, total);
    this.progress.value = done;
    this.overlayText.textContent = total > 1 ? `Loading segments ${done} / ${total}…` : 'Loading…';
  }

  drawLoaded() {
    const layer = this.q('[data-loaded]');
    const d = this.duration;
    const bars = ranges(this.player.table, this.player.loadedIndexes())
      .map(([a, b]) => bar('range cached', a, b, d, 'downloaded'));
    const win = this.player.windowRange();
    if (win) bars.push(bar('range window', win[0], win[1], d, `loaded ${formatTime(win[0])}–${formatTime(win[1])}`));
    layer.replaceChildren(...bars);
  }

  drawGaps(stretches) {
    this.gaps = (this.gaps || []).concat(stretches);
    this.gapsEl.replaceChildren(...this.gaps.map(([a, b]) => bar('range gap', a, b, this.duration,
      `inactive ${formatTime(a)}–${formatTime(b)}`)));
  }

  drawMarkers(markers) {
    this.markers = (this.markers || []).concat(markers);
    const els = this.markers.map((m) => {
      const el = document.createElement('button');
      el.type = 'button';
      el.className = `marker ${m.kind}${m.event_id && m.event_id === this.focusError ? ' focus' : ''}`;
      el.style.left = pct(m.t, this.duration);
      el.title = `${formatTime(m.t)} ${m.kind}${m.label ? `: ${m.label}` : ''}`;
      el.dataset.kind = m.kind;
      el.dataset.t = String(m.t);
      el.tabIndex = -1;
      el.addEventListener('click', (e) => { e.stopPropagation(); this.player.seek(m.t); });
      return el;
    });
    this.markersEl.replaceChildren(...els);
  }
}
