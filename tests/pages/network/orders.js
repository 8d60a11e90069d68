// The page's requests and console output. Every personal value here (headers, bodies, console) is
// planted: tests/test_player_network.py checks it is stored nowhere and shown scrubbed.
const log = (text) => {
  const li = document.createElement('li');
  li.textContent = text;
  document.getElementById('log').append(li);
};
window.done = {};

document.getElementById('save').addEventListener('click', async () => {
  console.debug('cache warm');
  const response = await fetch('/api/profile?view=full', {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'Authorization': 'Bearer netAuthTok9Q8W7E6R5T4Y3U',
      'X-Customer-Email': 'header.person@example.com',
    },
    body: JSON.stringify({
      contact: 'body.person@example.com', phone: '+1 415 555 0199', card: '4242 4242 4242 4242',
      note: 'leave the parcel at the back door',
    }),
  });
  const saved = await response.json();
  console.info('profile saved for console.person@example.com');
  log(`Profile saved (${saved.status}).`);
  window.done.save = true;
});

document.getElementById('catalog').addEventListener('click', async () => {
  const response = await fetch('/api/catalog');
  const items = await response.json();
  console.log(`catalog loaded: ${items.length} items`);
  console.warn(`slow response from /api/catalog (${items.length} items)`);
  log(`Catalog: ${items.length} items.`);
  window.done.catalog = true;
});

document.getElementById('ping').addEventListener('click', async () => {
  await fetch('/other/ping', { headers: { 'X-Customer-Email': 'ping.person@example.com' } });
  console.error('payment service unavailable: retry in 30 s');
  log('Pinged.');
  window.done.ping = true;
});

// Requests that get no answer at all (nothing listens on port 9): the SDK records them with statusCode 0.
document.getElementById('offline').addEventListener('click', async () => {
  try { await fetch('http://127.0.0.1:9/stock/fetch'); } catch (e) { /* the point */ }
  await new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', 'http://127.0.0.1:9/stock/xhr');
    xhr.onloadend = resolve;
    xhr.send('sku=SKU-0001');
  });
  log('Stock service unreachable.');
  window.done.offline = true;
});
