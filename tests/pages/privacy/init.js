// Starts the real @sentry/browser SDK (window.Sentry, bundled by the test) with client-side masking OFF:
// everything the page shows or the person types reaches the SDK in clear; only replayd's scrubber stands
// between it and storage. window.DSN comes from /dsn.js, written by the test's static server.
Sentry.init({
  dsn: window.DSN,
  release: 'privacy-shop@1.0.0',
  integrations: [Sentry.replayIntegration({
    maskAllText: false, maskAllInputs: false, blockAllMedia: false,
    // The SDK masks title, placeholder and aria-label attributes by default: switch that off too.
    // (rrweb itself still masks password fields and cc-number/cc-exp/cc-csc inputs, and drops
    // <meta name="csrf-token">, whatever the options: the page has fields it does not know.)
    maskAttributes: [],
    minReplayDuration: 0,
    // Let the SDK record request/response details of fetches to this origin (headers, bodies).
    networkDetailAllowUrls: [window.location.origin],
    networkRequestHeaders: ['Authorization', 'X-Api-Key'],
  })],
  replaysSessionSampleRate: 1.0,
  replaysOnErrorSampleRate: 1.0,
});
Sentry.setUser({id: 'u-3003', email: 'sdk.user.mail@example.com', username: 'priv_username_7781'});
