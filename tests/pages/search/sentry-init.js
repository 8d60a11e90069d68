// The Sentry SDK with replays on every session, nothing masked; window.DSN comes from /dsn.js.
Sentry.init({
  dsn: window.DSN,
  integrations: [Sentry.replayIntegration({
    maskAllText: false, maskAllInputs: false, blockAllMedia: false, minReplayDuration: 0,
  })],
  replaysSessionSampleRate: 1.0,
  replaysOnErrorSampleRate: 1.0,
});
