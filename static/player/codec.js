// Segment batches from player/segments.py: msgpack({v: 1, segments: [{id, events}]}) — the browser
// undoes brotli or gzip (Content-Encoding), this module undoes msgpack. Mirrors server/codec.py:
// extension type 1 holds an event's JSON text (events nested too deep for msgpack).
const VERSION = 1;
const EXT_JSON = 1;
const SECONDS_BELOW = 1e11; // Sentry writes performanceSpan timestamps in seconds

let codec = null;
function extensionCodec() {
  if (codec) return codec;
  const { ExtensionCodec } = globalThis.MessagePack;
  const utf8 = new TextDecoder();
  codec = new ExtensionCodec();
  codec.register({
    type: EXT_JSON,
    encode: () => null,
    decode: (data) => JSON.parse(utf8.decode(data)),
  });
  return codec;
}

/** A Meta event of an empty viewport: recorders injected into about:blank frames write them, and
 * replaying one would shrink the whole replay to 0×0. */
function emptyViewport(event) {
  return event.type === 4 && event.data && (!event.data.width || !event.data.height);
}

/** Timestamps in milliseconds, as rrweb's Replayer expects (it sorts by them); no empty viewports. */
function normalise(events) {
  const out = [];
  for (const event of events) {
    if (!event || typeof event !== 'object' || emptyViewport(event)) continue;
    if (typeof event.timestamp === 'number' && event.timestamp < SECONDS_BELOW) event.timestamp *= 1000;
    out.push(event);
  }
  return out;
}

/** A batch from player/segments.py: {v: 1, segments: [{id, events}]} → Map(id → events). */
export function decodeBatch(bytes) {
  const doc = globalThis.MessagePack.decode(new Uint8Array(bytes), { extensionCodec: extensionCodec() });
  if (!doc || typeof doc !== 'object' || doc.v !== VERSION || !Array.isArray(doc.segments)) {
    throw new Error(`segment batch has an unknown codec version ${doc && doc.v}`);
  }
  return new Map(doc.segments.map((s) => [s.id, normalise(s.events)]));
}
