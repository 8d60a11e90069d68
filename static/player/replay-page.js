// The replay page: player, panels, delete.
import { csrfToken, mountPlayer } from './app.js';
import { Breadcrumbs, ConsolePanel, NetworkPanel, setupTabs } from './panels.js';

const root = document.querySelector('[data-player]');
const aside = document.querySelector('.panels');
const lists = {
  breadcrumbs: new Breadcrumbs(aside.querySelector('[data-panel=breadcrumbs]'), null),
  console: new ConsolePanel(aside.querySelector('[data-panel=console]'), null),
  network: new NetworkPanel(aside.querySelector('[data-panel=network]'), null),
};
setupTabs(aside, { onShow: (name) => { if (lists[name]) lists[name].reveal(); } });
const { player } = mountPlayer(root, { panels: [lists.breadcrumbs, lists.console, lists.network], autoplay: true });

const config = player.config;
for (const button of document.querySelectorAll('[data-seek-error]')) {
  const error = config.errors.find((e) => e.event_id === button.dataset.seekError);
  if (error) button.addEventListener('click', () => player.seek(Math.max(0, error.t - 3000)));
}

const dialog = document.querySelector('[data-confirm-delete]');
const deleteButton = document.querySelector('[data-action="delete"]');
deleteButton.addEventListener('click', () => dialog.showModal());
dialog.addEventListener('close', async () => {
  if (dialog.returnValue !== 'delete') return;
  const response = await fetch(deleteButton.dataset.deleteUrl, {
    method: 'DELETE', credentials: 'same-origin', headers: { 'X-CSRF-Token': csrfToken() },
  });
  if (response.ok) {
    location.assign('/?deleted=1');
  } else {
    const body = await response.json().catch(() => ({}));
    alert(`Could not delete: ${body.detail || response.status}`);
  }
});
