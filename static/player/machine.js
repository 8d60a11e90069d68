// The player as an explicit state machine (after rrweb's replay/machine.ts): pure transitions, no
// DOM. The controller (player.js) performs the effects of entering each state.
//
//   loading ──LOADED──▶ paused ◀──PAUSE/TOGGLE── playing
//      ▲                  │ ──PLAY/TOGGLE──▶        │ ──END──▶ ended
//      └──── SEEK_UNLOADED (from any state; resumes playing after LOADED if it was playing)
//   any ──FAIL──▶ failed ──SEEK_UNLOADED──▶ loading (a seek retries what failed)

export const States = Object.freeze({
  LOADING: 'loading', PAUSED: 'paused', PLAYING: 'playing', ENDED: 'ended', FAILED: 'failed',
});

export const initialState = Object.freeze({ name: States.LOADING, resume: false });

export function transition(state, event) {
  if (event.type === 'FAIL') return { name: States.FAILED, resume: false, error: event.error };
  // A failed load (the network, a restarting server) is retried by seeking again.
  if (state.name === States.FAILED) return event.type === 'SEEK_UNLOADED' ? { name: States.LOADING, resume: false } : state;
  if (event.type === 'SEEK_UNLOADED') {
    const resume = state.name === States.LOADING ? state.resume : state.name === States.PLAYING;
    return { name: States.LOADING, resume };
  }
  switch (state.name) {
    case States.LOADING:
      if (event.type === 'LOADED') return { name: state.resume ? States.PLAYING : States.PAUSED, resume: false };
      if (event.type === 'PLAY') return { ...state, resume: true };
      if (event.type === 'PAUSE') return { ...state, resume: false };
      if (event.type === 'TOGGLE') return { ...state, resume: !state.resume };
      return state;
    case States.PAUSED:
      if (event.type === 'PLAY' || event.type === 'TOGGLE') return { name: States.PLAYING, resume: false };
      if (event.type === 'END') return { name: States.ENDED, resume: false };
      return state;
    case States.PLAYING:
      if (event.type === 'PAUSE' || event.type === 'TOGGLE') return { name: States.PAUSED, resume: false };
      if (event.type === 'END') return { name: States.ENDED, resume: false };
      if (event.type === 'SEEK') return state;
      return state;
    case States.ENDED:
      if (event.type === 'PLAY' || event.type === 'TOGGLE') return { name: States.PLAYING, resume: false, restart: true };
      if (event.type === 'SEEK') return { name: States.PAUSED, resume: false };
      return state;
    default:
      return state;
  }
}
