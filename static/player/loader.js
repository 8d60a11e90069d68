// Fetches and decodes segments, each once, in batches (one request for a run of consecutive
// segments: player/segments.py), a few requests at a time; remembers them by index.
import { decodeBatch } from './codec.js';

const BATCH = 30; // segments per request: big enough to cut round trips, small enough to show progress
const MAX_UNAVAILABLE_RETRIES = 6; // a spooled segment is normally uploaded within seconds

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

export class SegmentLoader {
  constructor(url, table, { concurrency = 4, onLoaded = () => {} } = {}) {
    this.url = url;
    this.table = table;
    this.concurrency = concurrency;
    this.onLoaded = onLoaded;
    this.cache = new Map(); // index -> Promise<events>
    this.done = new Set();
    this.active = 0;
    this.queue = [];
  }

  /** Events of segment `index` (a fresh array each call: the Replayer mutates what it is given). */
  async get(index, options = {}) {
    const [events] = await this.getMany([index], () => {}, options);
    return events;
  }

  /** Several segments, in the order asked; calls progress(done, total) as they arrive. */
  async getMany(indexes, progress = () => {}, { urgent = true } = {}) {
    this.request(indexes.filter((i) => !this.cache.has(i)), urgent);
    let count = 0;
    progress(0, indexes.length);
    const lists = await Promise.all(indexes.map((i) => this.cache.get(i).then((events) => {
      count += 1;
      progress(count, indexes.length);
      return events;
    })));
    return lists.map((events) => events.slice());
  }

  /** Start loading (without waiting) segments not asked for yet. */
  prefetch(indexes) {
    this.request(indexes.filter((i) => i >= 0 && i < this.table.length && !this.cache.has(i)), false);
  }

  request(missing, urgent) {
    if (!missing.length) return;
    const sorted = [...missing].sort((a, b) => a - b);
    const runs = [];
    for (const i of sorted) {
      const run = runs[runs.length - 1];
      if (run && run[run.length - 1] === i - 1 && run.length < BATCH) run.push(i); else runs.push([i]);
    }
    const jobs = runs.map((run) => {
      const waits = run.map(() => deferred());
      run.forEach((i, k) => this.cache.set(i, waits[k].promise));
      return { run, waits };
    });
    if (urgent) this.queue.unshift(...jobs); else this.queue.push(...jobs);
    this.pump();
  }

  pump() {
    while (this.active < this.concurrency && this.queue.length) {
      const job = this.queue.shift();
      this.active += 1;
      this.fetchRun(job).finally(() => {
        this.active -= 1;
        this.pump();
      });
    }
  }

  async fetchRun({ run, waits }) {
    const first = this.table[run[0]].id;
    const last = this.table[run[run.length - 1]].id;
    try {
      // no custom headers: the request must match the page's <link rel=preload> to reuse it
      let response = await fetch(`${this.url}?from=${first}&to=${last}`, { credentials: 'same-origin' });
      // 503: a segment waits in another replayd node's spool ("not yet uploaded"); ask again when told
      for (let retry = 0; response.status === 503 && retry < MAX_UNAVAILABLE_RETRIES; retry += 1) {
        const seconds = Math.min(30, Number(response.headers.get('Retry-After')) || 5);
        await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
        response = await fetch(`${this.url}?from=${first}&to=${last}`, { credentials: 'same-origin' });
      }
      if (!response.ok) throw new Error(`segments ${first}–${last}: HTTP ${response.status}`);
      const byId = decodeBatch(await response.arrayBuffer());
      run.forEach((i, k) => {
        const events = byId.get(this.table[i].id) || [];
        this.done.add(i);
        waits[k].resolve(events);
        this.onLoaded(i);
      });
    } catch (err) {
      run.forEach((i, k) => {
        this.cache.delete(i);
        waits[k].reject(err);
      });
    }
  }
}
