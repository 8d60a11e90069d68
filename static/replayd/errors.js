// window.onerror and unhandledrejection → Sentry error events.

import { parseStack } from './stack.js';
import { str } from './util.js';

const MAX_VALUE = 2000;

// An Error (or anything thrown) → one Sentry exception value.
export function exception(err, fallback, mechanism) {
  let type = 'Error', value, frames = [];
  if (err && typeof err === 'object' && 'message' in err) {
    type = String(err.name || 'Error');
    value = String(err.message);
    frames = parseStack(err.stack);
  } else if (mechanism === 'onunhandledrejection') {
    type = 'UnhandledRejection';
    value = 'Non-Error promise rejection captured with value: ' + str(err, MAX_VALUE);
  } else {
    value = str(err, MAX_VALUE);
  }
  if (!frames.length && fallback && fallback.filename) {
    frames = [{ filename: fallback.filename, function: '?', lineno: fallback.lineno, colno: fallback.colno, in_app: true }];
  }
  const exc = { type, value: value.slice(0, MAX_VALUE), mechanism: { type: mechanism, handled: mechanism === 'manual' } };
  if (frames.length) exc.stacktrace = { frames };
  return exc;
}

// Calls capture(errorOrValue, mechanism, fallbackLocation) for each uncaught error.
export function installErrorHandlers(capture) {
  addEventListener('error', (e) => {
    if (e instanceof ErrorEvent) {
      capture(e.error != null ? e.error : e.message, 'onerror', { filename: e.filename, lineno: e.lineno, colno: e.colno });
    }
  });
  addEventListener('unhandledrejection', (e) => capture(e.reason, 'onunhandledrejection'));
}
