// A segment's events (JSON texts) → its recording bytes: zlib (CompressionStream 'deflate'), and the
// same in base64 for the sessionStorage mirror. Runs in the worker (worker.js), or on the page's main
// thread where no worker can be started. Imports nothing else: the worker is built from it alone.

export function b64(u8) {
  let s = '';
  for (let i = 0; i < u8.length; i += 32768) s += String.fromCharCode.apply(null, u8.subarray(i, i + 32768));
  return btoa(s);
}

export async function pack(parts) {
  const raw = '[' + parts.join(',') + ']';
  const z = new Uint8Array(await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream('deflate'))).arrayBuffer());
  return { z, b: b64(z) };
}
