// The worker's code, off the page's main thread: a segment's events (JSON texts) → its recording
// bytes, zlib (CompressionStream 'deflate') and the same in base64 for the sessionStorage mirror;
// and uploads. These functions are self-contained (they use globals only): the snippet starts its
// worker from their source text (transport.js), and runs pack on the main thread where no worker
// can run. worker.js makes the same into replayd-worker.js (the `workerUrl` option).

export async function pack(parts) {
  const b64 = (u8) => {
    let s = '';
    for (let i = 0; i < u8.length; i += 32768) s += String.fromCharCode.apply(null, u8.subarray(i, i + 32768));
    return btoa(s);
  };
  const raw = '[' + parts.join(',') + ']';
  const z = new Uint8Array(await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream('deflate'))).arrayBuffer());
  return { z, b: b64(z) };
}

// An upload with fetchFn (the page's own fetch, or the worker's) → {s: HTTP status (0: network error
// or timeout), r: Retry-After}.
export function upload(fetchFn, url, body, ms, keepalive) {
  const ctl = new AbortController();
  setTimeout(() => ctl.abort(), ms);
  return fetchFn(url, { method: 'POST', body, credentials: 'omit', keepalive, signal: ctl.signal })
    .then((r) => ({ s: r.status, r: r.headers.get('Retry-After') }), () => ({ s: 0 }));
}

// The worker's messages: {i, p: [event JSON]} → {i, z: zlib bytes (transferred), b: base64}, or {i}
// when that failed (the page then compresses on its own thread); {i, u: URL, b: envelope bytes, t:
// timeout ms} → {i, s, r}, the upload.
export function serve(pack, upload) {
  onmessage = (m) => {
    const { i, p, u, b, t } = m.data;
    if (u) {
      upload(fetch, u, b, t).then((r) => postMessage((r.i = i, r)));
    } else {
      pack(p).then((r) => postMessage({ i, z: r.z, b: r.b }, [r.z.buffer]), () => postMessage({ i }));
    }
  };
}
