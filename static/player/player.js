// The player controller: rrweb's Replayer over a window of loaded segments, driven by machine.js.
//
// Progressive loading: the first window is the segment holding the start moment back to the last full
// snapshot (config.first_load, planned by the server); the following segments stream in with
// addEvent. Seeking inside the window is immediate; seeking past it either extends the window (when
// the moment's full snapshot is already inside or adjacent) or builds a new Replayer on the moment's
// own full snapshot, so no seek waits for the segments in between.
import { States, initialState, transition } from './machine.js';
import { SegmentLoader } from './loader.js';
import { clampMoment, plan, segmentAt } from './timeline.js';
import { UrlPolicy } from './urlpolicy.js';

const STREAM_CHUNK = 12; // segments appended per step of the background stream (a minute of 5 s segments)
const END_SLACK_MS = 50;

function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}

export class Player extends EventTarget {
  constructor(root, config, { loadAll = false } = {}) {
    super();
    this.root = root;
    this.stage = root.querySelector('[data-stage]');
    this.config = config;
    this.table = config.segments;
    this.origin = config.origin;
    this.duration = config.duration;
    this.loadAll = loadAll;
    this.state = initialState;
    this.replayer = null;
    this.urlPolicy = null; // the current Replayer's: it follows the events from its full snapshot on
    this.win = { first: 0, last: -1 };
    this.winStart = this.origin;
    this.firstFull = 0; // the Replayer's offset of its first full snapshot
    this.buildGen = 0;
    this.seekGen = 0;
    this.target = clampMoment(config.start, this.duration);
    this.starved = false;
    this.streaming = null; // the buildGen of the running background stream
    this.speed = 1;
    this.skipInactive = true;
    this.loader = new SegmentLoader(config.segments_url, this.table, {
      onLoaded: () => this.emit('loaded'),
    });
    this.tick = this.tick.bind(this);
    this.resizeObserver = new ResizeObserver(() => this.fit());
    this.resizeObserver.observe(this.stage.parentElement);
  }

  emit(name, detail = {}) {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }

  // --- state machine ------------------------------------------------------------------------

  send(event) {
    const prev = this.state;
    const next = transition(prev, event);
    this.state = next;
    if (next.name !== prev.name || next.restart) this.enter(next);
    this.root.dataset.state = next.name;
    this.emit('state', { state: next, previous: prev });
  }

  enter(state) {
    if (!this.replayer) return;
    if (state.name === States.PLAYING) {
      let t = state.restart ? 0 : this.current();
      if (this.atEnd(t)) t = 0;
      if (!this.inWindow(t)) { this.seek(t); return; }
      this.replayer.play(this.toReplayer(t));
      requestAnimationFrame(this.tick);
    } else if (state.name === States.PAUSED || state.name === States.ENDED || state.name === States.LOADING) {
      this.replayer.pause();
    }
  }

  // --- time ---------------------------------------------------------------------------------

  toReplayer(t) { return Math.max(0, t + this.origin - this.winStart); }

  /** The Replayer's offset showing moment t paused: rrweb applies the events strictly before the
   * offset, so 1 ms past t shows what happened at t too (the last page, at the end), and never
   * before the window's first full snapshot (a page is always shown, also when seeking back to 0). */
  frameAt(t, { fresh = false } = {}) {
    const at = this.toReplayer(t);
    // A Replayer just built shows its first full snapshot by itself (rrweb's constructor): asking for
    // it again would rebuild the page a second time, through rrweb's virtual DOM.
    if (fresh && at <= this.firstFull) return at;
    return Math.max(at, this.firstFull) + 1;
  }

  atEnd(t) { return t >= this.duration - END_SLACK_MS; }

  current() {
    if (!this.replayer || this.state.name === States.LOADING) return this.target;
    const t = this.replayer.getCurrentTime() + this.winStart - this.origin;
    return Math.min(this.duration, Math.max(0, t));
  }

  inWindow(t) {
    if (!this.replayer) return false;
    const i = segmentAt(this.table, t);
    return i >= this.win.first && i <= this.win.last;
  }

  loadedIndexes() { return [...this.loader.done]; }

  windowRange() {
    if (!this.replayer) return null;
    const last = this.table[this.win.last];
    const next = this.table[this.win.last + 1];
    return [this.table[this.win.first].start, next ? Math.max(last.end, next.start) : last.end];
  }

  tick() {
    this.emit('time', { t: this.current() });
    if (this.state.name === States.PLAYING) requestAnimationFrame(this.tick);
  }

  // --- building and extending the Replayer --------------------------------------------------

  build(first, last, lists) {
    const events = [].concat(...lists);
    if (events.length < 2) {
      const ts = events.length ? events[0].timestamp : this.origin;
      events.push({ type: 5, timestamp: ts + 1, data: { tag: 'replayd.pad', payload: {} } });
    }
    if (this.replayer) {
      this.replayer.pause();
      this.replayer.destroy();
    }
    this.stage.replaceChildren();
    this.buildGen += 1;
    // every URL in the recording is checked before the Replayer's iframe can fetch it
    this.urlPolicy = new UrlPolicy({ appHost: location.hostname });
    this.urlPolicy.events(events);
    this.replayer = new globalThis.rrwebReplay.Replayer(events, {
      root: this.stage,
      speed: this.speed,
      skipInactive: this.skipInactive,
      inactivePeriodThreshold: 10000,
      showWarning: false,
      triggerFocus: false,
      mouseTail: { strokeStyle: 'rgba(220, 38, 38, 0.6)', lineWidth: 2, duration: 500 },
      UNSAFE_replayCanvas: false, // never for uploaded recordings: it would add allow-scripts
    });
    this.winStart = this.replayer.getMetaData().startTime;
    const full = events.find((e) => e.type === 2);
    this.firstFull = full ? Math.max(0, full.timestamp - this.winStart) : 0;
    this.win = { first, last };
    this.replayer.on('finish', () => this.onFinish());
    this.replayer.on('resize', () => this.fit());
    this.fit();
  }

  append(index, events) {
    for (const event of this.urlPolicy.events(events)) this.replayer.addEvent(event);
    this.win.last = index;
    this.emit('window');
    if (this.starved) {
      this.starved = false;
      this.send({ type: 'LOADED' });
    }
  }

  async stream() {
    const gen = this.buildGen;
    this.streaming = gen;
    try {
      await this.streamFrom(gen);
    } finally {
      if (this.streaming === gen) this.streaming = null;
    }
  }

  async streamFrom(gen) {
    while (gen === this.buildGen && this.win.last < this.table.length - 1) {
      const next = this.win.last + 1;
      const chunk = [];
      for (let i = next; i < Math.min(this.table.length, next + STREAM_CHUNK); i += 1) chunk.push(i);
      const ahead = chunk.map((i) => i + STREAM_CHUNK);
      this.loader.prefetch(ahead);
      let lists;
      try {
        lists = await this.loader.getMany(chunk, () => {}, { urgent: false });
      } catch (err) {
        this.emit('warning', { message: String(err) });
        // playback waits for these segments: say so (a seek retries) rather than load forever
        if (this.starved && gen === this.buildGen) this.send({ type: 'FAIL', error: String(err && err.message ? err.message : err) });
        return;
      }
      if (gen !== this.buildGen) return;
      chunk.forEach((i, k) => { if (this.win.last + 1 === i) this.append(i, lists[k]); });
      await new Promise((resolve) => setTimeout(resolve, 0)); // let input and painting in between
    }
  }

  onFinish() {
    if (this.state.name !== States.PLAYING) return;
    if (this.win.last < this.table.length - 1) {
      this.starved = true; // played everything loaded; resume when the next segment arrives
      this.target = this.current();
      this.send({ type: 'SEEK_UNLOADED' });
      if (this.streaming == null) this.stream(); // the stream had stopped on an error: try again
    } else {
      this.send({ type: 'END' });
    }
  }

  fit() {
    const wrapper = this.stage.querySelector('.replayer-wrapper');
    const iframe = wrapper && wrapper.querySelector('iframe');
    if (!iframe) return;
    const box = this.stage.parentElement.getBoundingClientRect();
    const w = Number(iframe.width) || iframe.offsetWidth || 1;
    const h = Number(iframe.height) || iframe.offsetHeight || 1;
    const scale = Math.min(box.width / w, box.height / h, 1);
    wrapper.style.transform = `scale(${scale})`;
    wrapper.style.left = `${Math.max(0, (box.width - w * scale) / 2)}px`;
    wrapper.style.top = `${Math.max(0, (box.height - h * scale) / 2)}px`;
  }

  // --- public API ---------------------------------------------------------------------------

  /** Load what the start moment needs, show its first frame; resolves when that frame is painted. */
  async start({ autoplay = false } = {}) {
    if (!this.table.length) {
      this.send({ type: 'FAIL', error: 'this replay has no segments' });
      return;
    }
    // opened at the end (?t= past it, an error that ends the replay): show the last page, ended,
    // rather than autoplay from the start
    const atEnd = this.atEnd(this.target);
    if (autoplay && !atEnd) this.send({ type: 'PLAY' });
    performance.mark('replayd:start');
    try {
      const indexes = this.loadAll ? this.table.map((_, i) => i) : (this.config.first_load.length
        ? this.config.first_load : plan(this.table, this.target));
      const lists = await this.loader.getMany(indexes, (done, total) => this.emit('progress', { done, total }));
      performance.mark('replayd:fetched');
      this.build(indexes[0], indexes[indexes.length - 1], lists);
      this.replayer.pause(this.frameAt(this.target, { fresh: true }));
      performance.mark('replayd:built');
      this.send({ type: 'LOADED' });
      if (atEnd) this.send({ type: 'END' });
      await nextFrame();
      performance.mark('replayd:first-frame');
      this.root.dataset.firstFrame = String(Math.round(performance.now()));
      this.emit('time', { t: this.current() });
      this.stream();
    } catch (err) {
      this.send({ type: 'FAIL', error: String(err && err.message ? err.message : err) });
    }
  }

  /** Show moment t (ms from the origin); resolves when its frame is painted. */
  async seek(t) {
    t = clampMoment(t, this.duration);
    const gen = ++this.seekGen;
    this.target = t;
    if (this.inWindow(t) && this.state.name !== States.LOADING && this.state.name !== States.FAILED) {
      this.showAt(t);
      await nextFrame();
      return;
    }
    const needed = plan(this.table, t);
    const first = needed[0];
    const target = needed[needed.length - 1];
    this.send({ type: 'SEEK_UNLOADED' });
    const progress = (done, total) => this.emit('progress', { done, total });
    let fresh = false; // a new Replayer
    try {
      if (this.replayer && first >= this.win.first && first <= this.win.last + 1) {
        const missing = [];
        for (let i = this.win.last + 1; i <= target; i += 1) missing.push(i);
        const lists = await this.loader.getMany(missing, progress);
        if (gen !== this.seekGen) return;
        missing.forEach((i, k) => { if (i === this.win.last + 1) this.append(i, lists[k]); });
      } else {
        const lists = await this.loader.getMany(needed, progress);
        if (gen !== this.seekGen) return;
        this.build(first, target, lists);
        this.stream();
        fresh = true;
      }
      this.starved = false;
      this.replayer.pause(this.frameAt(t, { fresh }));
      this.send({ type: 'LOADED' });
      this.emit('time', { t });
      await nextFrame();
    } catch (err) {
      this.send({ type: 'FAIL', error: String(err && err.message ? err.message : err) });
    }
  }

  showAt(t) {
    if (this.state.name === States.PLAYING) {
      this.replayer.play(this.toReplayer(t));
    } else {
      this.replayer.pause(this.frameAt(t));
      if (this.state.name === States.ENDED) this.send({ type: 'SEEK' });
    }
    this.emit('time', { t });
  }

  toggle() { this.send({ type: 'TOGGLE' }); }
  play() { this.send({ type: 'PLAY' }); }
  pause() { this.send({ type: 'PAUSE' }); }

  setSpeed(speed) {
    this.speed = speed;
    if (this.replayer) this.replayer.setConfig({ speed });
  }

  setSkipInactive(on) {
    this.skipInactive = on;
    if (this.replayer) this.replayer.setConfig({ skipInactive: on });
  }
}
