// Shared by the pages: the CSRF token, JSON config blocks, and starting a player on an element.
import { Player } from './player.js';
import { Controls } from './controls.js';

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
}

function readConfig(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

/** Build the player, its controls and the side panels given (breadcrumbs first: its times are the
 * keyboard's previous/next event); load breadcrumbs after the first frame and render every panel. */
export function mountPlayer(root, { panels = [], autoplay = false } = {}) {
  const config = readConfig(root.dataset.config);
  const params = new URLSearchParams(location.search);
  const player = new Player(root, config, { loadAll: params.get('load') === 'all' });
  for (const panel of panels) panel.player = player;
  const breadcrumbs = panels[0] || null;
  const controls = new Controls(root, player, { events: () => (breadcrumbs ? breadcrumbs.times() : []) });
  document.addEventListener('keydown', (e) => controls.onKey(e));
  root.addEventListener('player-time', (e) => { for (const panel of panels) panel.sync(e.detail.t); });
  globalThis.replaydPlayer = player; // for tests and the benchmark
  const started = player.start({ autoplay });
  if (config.focus_click != null) { // opened from a search on clicks: the click it found, marked
    controls.drawMarkers([{ t: config.focus_click, kind: 'searched', label: 'the click the search found' }]);
  }
  started.then(async () => {
    const response = await fetch(config.breadcrumbs_url, { credentials: 'same-origin' });
    if (!response.ok) return;
    const data = await response.json();
    controls.drawGaps(data.inactive);
    controls.drawMarkers(data.markers.filter((m) => m.kind !== 'error'));
    for (const panel of panels) panel.render(data.breadcrumbs);
    if (!breadcrumbs) controls.events = () => data.breadcrumbs.map((c) => c.t);
    root.dataset.breadcrumbs = 'ready';
  }).catch(() => {});
  return { player, controls, config };
}
