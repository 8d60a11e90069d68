// esbuild entry for the browser tests: the real @sentry/browser SDK as an IIFE that sets window.Sentry.
// Bundled at test time by tests/sites.py (node_modules/.bin/esbuild --bundle --format=iife).
import * as Sentry from '@sentry/browser';
window.Sentry = Sentry;
