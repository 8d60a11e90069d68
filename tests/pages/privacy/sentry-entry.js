// esbuild entry for tests/test_privacy_e2e.py: the real @sentry/browser SDK as an IIFE that sets window.Sentry.
import * as Sentry from '@sentry/browser';
window.Sentry = Sentry;
