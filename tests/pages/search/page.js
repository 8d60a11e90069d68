// The checkout link works without leaving the page: it shows the order (a DOM change).
document.addEventListener('click', (e) => {
  const link = e.target.closest && e.target.closest('#checkout');
  if (!link) return;
  e.preventDefault();
  const done = document.getElementById('done');
  done.textContent = 'Order placed: thank you!';
});
