// Calls made before the (async) snippet arrives, queued as docs/snippet.md describes.
window.replayd = { q: [['setUser', [{ id: 'u-early' }]]] };
