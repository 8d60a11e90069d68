// Our controls on the Replayer: play/pause, speeds, skip inactivity, the timeline (loaded range,
// inactive stretches, markers, drag to scrub with a preview of the time), the clock, the loading
// overlay, and the keyboard (listed in the help dialog that `?` or the ? button opens).
import { States } from './machine.js';
import { formatTime, ranges } from './timeline.js';

const STEP_MS = 5000;
const FINE_STEP_MS = 1000;
const LONG_STEP_MS = 30000;
const DRAG_START_PX = 3; // a press that moves less is a click (seek on click, markers keep theirs)

/** The keyboard, as the help dialog lists it: [keys, what they do]. */
export const KEYS = [
  [['Space', 'K'], 'play / pause'],
  [['←', '→'], 'back / forward 5 s'],
  [['Shift + ←', 'Shift + →'], 'back / forward 1 s'],
  [['Page Up', 'Page Down'], 'back / forward 30 s'],
  [[',', '.'], 'previous / next event (breadcrumb)'],
  [['Home', 'End'], 'start / end of the replay'],
  [['?'], 'show this help'],
  [['Esc'], 'close this help'],
];

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
    this.bindScrub();
    const copy = this.q('[data-action="copy-link"]');
    if (copy) copy.addEventListener('click', () => this.copyLink(copy));
    this.help = this.q('[data-help]');
    const helpButton = this.q('[data-action="help"]');
    if (helpButton && this.help) helpButton.addEventListener('click', () => this.toggleHelp());
    if (this.help) this.renderHelp();
  }

  // --- the timeline: click or drag to seek, the time under the pointer previewed ---------------

  /** The moment (ms) under clientX, within the replay. */
  timeAt(clientX) {
    const box = this.timeline.getBoundingClientRect();
    const x = Math.min(box.width, Math.max(0, clientX - box.left));
    return box.width ? (x / box.width) * this.duration : 0;
  }

  preview(clientX) {
    const t = this.timeAt(clientX);
    this.hover.hidden = false;
    this.hover.textContent = formatTime(t);
    this.hover.dataset.t = String(Math.round(t));
    this.hover.style.left = pct(t, this.duration);
    return t;
  }

  bindScrub() {
    const tl = this.timeline;
    this.hover = this.q('[data-hover-time]');
    this.drag = null; // {id, x, t, moved} while a button is down on the timeline
    tl.addEventListener('pointermove', (e) => {
      const t = this.preview(e.clientX);
      const d = this.drag;
      if (!d || d.id !== e.pointerId) return;
      if (!d.moved && Math.abs(e.clientX - d.x) < DRAG_START_PX) return;
      d.moved = true;
      d.t = t;
      this.root.dataset.scrubbing = 'true';
      this.drawPlayhead(t); // follows the pointer; the replay seeks on release
    });
    tl.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      this.swallowClick = false; // a new press: only the click that ends a drag is swallowed
      this.drag = { id: e.pointerId, x: e.clientX, t: this.preview(e.clientX), moved: false };
      tl.setPointerCapture(e.pointerId);
    });
    const release = (e, seek) => {
      const d = this.drag;
      if (!d || d.id !== e.pointerId) return;
      this.drag = null;
      delete this.root.dataset.scrubbing;
      if (!d.moved) return; // a click: the click handler (or a marker's) seeks
      // the click that ends a drag is not a second seek (no timer to forget this: input events can
      // come before timers, so the next press clears it instead)
      this.swallowClick = true;
      if (seek) this.player.seek(this.timeAt(e.clientX)); else this.drawPlayhead(this.player.current());
    };
    tl.addEventListener('pointerup', (e) => release(e, true));
    tl.addEventListener('pointercancel', (e) => release(e, false));
    tl.addEventListener('lostpointercapture', (e) => release(e, true));
    tl.addEventListener('pointerleave', () => { if (!this.drag) this.hover.hidden = true; });
    tl.addEventListener('click', (e) => {
      if (this.swallowClick) {
        this.swallowClick = false;
        return;
      }
      this.player.seek(this.timeAt(e.clientX));
    });
  }

  // --- help -----------------------------------------------------------------------------------

  renderHelp() {
    const list = this.help.querySelector('[data-help-keys]');
    list.replaceChildren(...KEYS.flatMap(([keys, action]) => {
      const dt = document.createElement('dt');
      keys.forEach((k, i) => {
        if (i) dt.append(' ');
        const kbd = document.createElement('kbd');
        kbd.textContent = k;
        dt.append(kbd);
      });
      const dd = document.createElement('dd');
      dd.textContent = action;
      return [dt, dd];
    }));
  }

  toggleHelp() {
    if (!this.help) return;
    if (this.help.open) this.help.close(); else this.help.showModal();
  }

  setSpeed(speed) {
    this.player.setSpeed(speed);
    for (const b of this.root.querySelectorAll('[data-speed]')) {
      b.setAttribute('aria-pressed', String(Number(b.dataset.speed) === speed));
    }
  }

  /** The keyboard (KEYS lists it); ignored while typing in a field or with Ctrl/Cmd/Alt held. */
  onKey(e) {
    const target = e.target instanceof Element ? e.target : null;
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    if (target && target.closest('input, select, textarea, [contenteditable]')) return;
    if (e.key === '?') {
      this.toggleHelp();
      e.preventDefault();
      return;
    }
    if (this.help && this.help.open) return; // the dialog is modal: Esc closes it, nothing else plays
    if (target && target.closest('button, a[href], summary') && (e.key === ' ' || e.key === 'Enter')) return;
    const p = this.player;
    const now = p.current();
    const step = (ms) => p.seek(now + ms);
    switch (e.key) {
      case ' ':
      case 'k':
      case 'K':
        p.toggle();
        break;
      case 'ArrowLeft':
        step(-(e.shiftKey ? FINE_STEP_MS : STEP_MS));
        break;
      case 'ArrowRight':
        step(e.shiftKey ? FINE_STEP_MS : STEP_MS);
        break;
      case 'PageUp':
        step(-LONG_STEP_MS);
        break;
      case 'PageDown':
        step(LONG_STEP_MS);
        break;
      case 'Home':
        p.seek(0);
        break;
      case 'End':
        p.seek(this.duration);
        break;
      case ',':
      case '.': {
        const times = this.events();
        const forward = e.key === '.';
        const t = forward ? times.find((x) => x > now + 250) : [...times].reverse().find((x) => x < now - 250);
        if (t === undefined) return;
        p.seek(t);
        break;
      }
      default:
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

  drawPlayhead(t) {
    const d = this.duration;
    this.q('[data-playhead]').style.left = pct(t, d);
    this.q('[data-played]').style.width = pct(t, d);
  }

  onTime(t) {
    this.q('[data-current]').textContent = formatTime(t);
    if (!this.root.dataset.scrubbing) this.drawPlayhead(t); // while dragging it follows the pointer
    this.timeline.setAttribute('aria-valuenow', (t / 1000).toFixed(1));
    this.timeline.setAttribute('aria-valuetext', formatTime(t));
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
      if (m.end != null) { // a stretch (recording paused in a mutation storm): a band, its label on it
        el.style.width = `calc(${pct(m.end - m.t, this.duration)} + 4px)`;
        el.setAttribute('aria-label', m.label);
      }
      el.title = m.end != null ? `${formatTime(m.t)}–${formatTime(m.end)} ${m.label}`
        : `${formatTime(m.t)} ${m.kind}${m.label ? `: ${m.label}` : ''}`;
      el.dataset.kind = m.kind;
      el.dataset.t = String(m.t);
      el.tabIndex = -1;
      el.addEventListener('click', (e) => {
        e.stopPropagation();
        if (!this.swallowClick) this.player.seek(m.t);
      });
      return el;
    });
    this.markersEl.replaceChildren(...els);
  }
}
