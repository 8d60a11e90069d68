// The init() form, for the strict-CSP page (no inline script allowed).
window.replayd.init(Object.assign({ dsn: window.DSN }, window.OPTIONS));
