// The error page: the replay embedded, paused a few seconds before the error, its marker in focus.
import { mountPlayer } from './app.js';

const root = document.querySelector('[data-player]');
if (root) mountPlayer(root, { autoplay: false });
