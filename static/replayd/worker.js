// The compression worker: {i, p: [event JSON]} → {i, z: zlib bytes (transferred), b: base64}, or {i}
// when it failed (the page then compresses on its own thread). Built into the snippet as a string.

import { pack } from './pack.js';

onmessage = (m) => {
  const i = m.data.i;
  pack(m.data.p).then((r) => postMessage({ i, z: r.z, b: r.b }, [r.z.buffer]), () => postMessage({ i }));
};
