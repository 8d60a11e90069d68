// esbuild entry for the end-to-end test: the real @sentry/browser SDK as an IIFE that sets window.Sentry.
// Bundled at test time by tests/test_sentry_sdk.py (node_modules/.bin/esbuild --bundle --format=iife).
import * as Sentry from '@sentry/browser';
window.Sentry = Sentry;
