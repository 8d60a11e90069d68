// Loaded before the snippet: records how it calls fetch (keepalive or not, body size).
window.fetchCalls = [];
const pageFetch = window.fetch;
window.fetch = function (url, init) {
  const body = init && init.body;
  window.fetchCalls.push({ url: String(url), keepalive: !!(init && init.keepalive), size: body ? body.byteLength || body.length || 0 : 0 });
  return pageFetch.apply(this, arguments);
};
