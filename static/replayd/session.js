// The replay a tab is in: {id, start, last (user activity), seg (next segment id), mode, type},
// kept in sessionStorage so it survives page loads of the tab.
//   mode: 'session' (record and upload) | 'buffer' (keep the last bufferMs, upload on error) | 'off'
//   type: replay_type sent to the server: how the replay started ('session' | 'buffer')

import { store, uuid } from './util.js';

const KEY = 'replayd:session';

export const saveSession = (s) => (store.set(KEY, s), s);

export const expired = (s, o, now) => now - s.last > o.sessionIdleMs || now - s.start > o.maxReplayMs;

export function newSession(o, now) {
  const mode = Math.random() < o.sessionSampleRate ? 'session' : Math.random() < o.onErrorSampleRate ? 'buffer' : 'off';
  return saveSession({ id: uuid(), start: now, last: now, seg: 0, mode, type: mode === 'buffer' ? 'buffer' : 'session' });
}

export function loadSession(o, now) {
  const s = store.get(KEY);
  return s && s.id && !expired(s, o, now) ? s : newSession(o, now);
}
