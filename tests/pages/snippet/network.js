// Requests with personal data in their headers and bodies: to /shop-api/ (allowed for details by the test)
// and to /ping.json (not allowed). The planted values are listed in tests/test_snippet.py.
const PROFILE = { email: 'nora.planted@example.org', password: 'planted-pw-3321', note: 'call me' };
const HEADERS = { Authorization: 'Bearer planted-bearer-7741', 'X-Api-Key': 'planted-apikey-8812',
  'Content-Type': 'application/json' };

window.sendAll = async () => {
  const saved = await fetch('/shop-api/profile', { method: 'POST', headers: HEADERS, body: JSON.stringify(PROFILE) });
  const answer = await saved.json();
  await new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/shop-api/profile?via=xhr');
    for (const k in HEADERS) xhr.setRequestHeader(k, HEADERS[k]);
    xhr.onloadend = resolve;
    xhr.send(JSON.stringify(PROFILE));
  });
  const report = await (await fetch('/shop-api/report')).text();
  await fetch('/ping.json');
  document.getElementById('result').textContent = 'saved ' + answer.items + ' items, report ' + report.length;
};
