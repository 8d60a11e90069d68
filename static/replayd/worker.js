// The worker, off the page's main thread: {i, p: [event JSON]} → {i, z: zlib bytes (transferred),
// b: base64}, or {i} when that failed (the page then compresses on its own thread); {i, u: URL,
// b: envelope bytes, t: timeout ms} → {i, s: HTTP status (0: network error or timeout), r:
// Retry-After}, the upload. Built into the snippet as a string.

import { pack } from './pack.js';

onmessage = (m) => {
  const { i, p, u, b, t } = m.data;
  if (u) {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), t);
    fetch(u, { method: 'POST', body: b, credentials: 'omit', signal: ctl.signal })
      .then((r) => ({ i, s: r.status, r: r.headers.get('Retry-After') }), () => ({ i, s: 0 })).then(postMessage);
  } else {
    pack(p).then((r) => postMessage({ i, z: r.z, b: r.b }, [r.z.buffer]), () => postMessage({ i }));
  }
};
