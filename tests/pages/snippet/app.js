// The host page's own code. It counts its console errors and keeps working whatever replayd does.
window.violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));

function checkoutTotal(order) {
  return order.total; // TypeError when there is no order
}

// Pseudo-random text that compresses badly: a large first segment (over the keepalive limit).
function fillBig(el) {
  let x = 12345, out = [];
  for (let i = 0; i < 4000; i++) {
    let w = '';
    for (let j = 0; j < 40; j++) { x = (x * 1103515245 + 12345) % 2147483648; w += 'abcdefghijklmnopqrstuvwxyz0123456789'[x % 36]; }
    out.push('<p>' + w + '</p>');
  }
  el.innerHTML = out.join('');
}

document.addEventListener('DOMContentLoaded', () => {
  const big = document.getElementById('big');
  if (big && location.search.indexOf('small') < 0) fillBig(big);
});

document.addEventListener('click', (e) => {
  const id = e.target && e.target.id;
  const clicks = document.getElementById('clicks');
  if (clicks) clicks.textContent = String(+clicks.textContent + 1);
  if (id === 'add') {
    const li = document.createElement('li');
    li.textContent = document.getElementById('name').value;
    document.getElementById('list').appendChild(li);
    document.getElementById('count').textContent = String(document.querySelectorAll('#list li').length);
  } else if (id === 'ping') {
    console.warn('stock service is slow');
    if (location.hash !== '#pay') history.pushState({}, '', location.pathname + '#pay');
    fetch('/ping.json').then((r) => r.json()).then((d) => { document.getElementById('pong').textContent = d.stock; });
    const xhr = new XMLHttpRequest();
    xhr.open('GET', '/ping.json?via=xhr');
    xhr.send();
  } else if (id === 'boom') {
    checkoutTotal(undefined);
  } else if (id === 'reject') {
    Promise.reject(new RangeError('payment postponed'));
  }
});
