// Shared by both test pages: start the SDK with replays on every session, nothing masked.
// window.DSN comes from /dsn.js, written by the test's static server for the running replayd.
Sentry.init({
  dsn: window.DSN,
  release: 'greenhouse@1.0.0',
  integrations: [Sentry.replayIntegration({
    maskAllText: false, maskAllInputs: false, blockAllMedia: false,
    // Send a segment as soon as the test calls flush(), not only once the session is 5 s old.
    minReplayDuration: 0,
  })],
  replaysSessionSampleRate: 1.0,
  replaysOnErrorSampleRate: 1.0,
});
Sentry.setUser({id: 'u-2002'});
