// The real @sentry/browser SDK with request/response details for this origin's /api/ (headers named
// below, bodies), nothing masked on the client: only replayd's scrubber stands between the planted
// values and storage. window.DSN comes from /dsn.js, written by the test's static server.
Sentry.init({
  dsn: window.DSN,
  release: 'orders@1.0.0',
  integrations: [Sentry.replayIntegration({
    maskAllText: false, maskAllInputs: false, blockAllMedia: false,
    minReplayDuration: 0,
    networkDetailAllowUrls: [`${window.location.origin}/api/`],
    networkRequestHeaders: ['Authorization', 'X-Customer-Email'],
    networkResponseHeaders: ['X-Session-Token', 'X-Customer-Phone'],
  })],
  replaysSessionSampleRate: 1.0,
  replaysOnErrorSampleRate: 1.0,
});
