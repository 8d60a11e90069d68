// A page that rewrites itself in storms: a 2,000-row table (16,000 cells), every cell's text replaced
// per burst (one mutation record a cell), then calm.
const ROWS = 2000, COLS = 8;
document.addEventListener('DOMContentLoaded', () => {
  const body = document.querySelector('#board tbody');
  for (let r = 0; r < ROWS; r++) {
    const tr = document.createElement('tr');
    for (let c = 0; c < COLS; c++) {
      const td = document.createElement('td');
      td.textContent = 'r' + r + 'c' + c;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  document.getElementById('status').textContent = 'ready';
});
// bursts rewrites of every cell, one a task; resolves with the number of mutations made.
window.storm = async (bursts) => {
  const cells = document.querySelectorAll('#board td');
  for (let k = 0; k < bursts; k++) {
    cells.forEach((td, i) => { td.textContent = 'burst' + k + '-' + i; });
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return bursts * cells.length;
};
