// Lists: a click anywhere on a row opens it (the first cell holds a real link for keyboards).
for (const row of document.querySelectorAll('tr[data-href]')) {
  row.addEventListener('click', (e) => {
    if (e.target.closest('a, button, input, select')) return;
    const href = row.dataset.href;
    if (href.startsWith('/')) location.assign(href);
  });
}
