// The segment table's arithmetic; mirrors player/timeline.py (segment_at, plan). Times are ms from
// the replay's origin.

/** Index of the segment holding moment t: the last one starting at or before it. */
export function segmentAt(table, t) {
  if (!table.length) throw new Error('a replay without segments has no timeline');
  if (t <= table[0].start) return 0;
  let lo = 0;
  let hi = table.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (table[mid].start <= t) lo = mid; else hi = mid - 1;
  }
  return lo;
}

/** Indexes to load before showing moment t: back from its segment to the last full snapshot. */
export function plan(table, t) {
  const target = segmentAt(table, t);
  let first = target;
  while (first > 0 && !table[first].full) first -= 1;
  const out = [];
  for (let i = first; i <= target; i += 1) out.push(i);
  return out;
}

/** Contiguous runs of indexes as [startMs, endMs] ranges, for drawing what is loaded. */
export function ranges(table, indexes) {
  const sorted = [...indexes].sort((a, b) => a - b);
  const out = [];
  for (const i of sorted) {
    const seg = table[i];
    const last = out[out.length - 1];
    const nextStart = i + 1 < table.length ? table[i + 1].start : seg.end;
    if (last && last.lastIndex === i - 1) {
      last.end = Math.max(seg.end, nextStart);
      last.lastIndex = i;
    } else {
      out.push({ start: seg.start, end: Math.max(seg.end, nextStart), lastIndex: i });
    }
  }
  return out.map(({ start, end }) => [start, end]);
}

export function formatTime(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

/** The moment to show for a requested t (ms): within [0, duration]; past the end is the end (its
 * last page), before the start or not a number is the start. Mirrors player/timeline.py clamp_moment. */
export function clampMoment(t, duration) {
  const end = Math.max(0, Number(duration) || 0);
  const n = typeof t === 'number' ? t : Number.parseFloat(t);
  if (Number.isNaN(n)) return 0;
  return Math.min(end, Math.max(0, n));
}
