// The full playground page. This module loads async, before Plotly: the socket opens at
// once, then Plotly starts loading (plotly_ready.js), and the network's first picture
// comes as soon as the server has configured the run; the other panels wait for Plotly.
// The page opens at a gentle speed (state.js, PAGE_DEFAULTS), follows a link opened in
// its tab, and copies its own link.
import { Playground } from './playground.js';
import { tabConnection } from './connection.js';
import { PAGE_DEFAULTS } from './state.js';
import { plotlyReady } from './plotly_ready.js';

const connection = tabConnection();  // the socket opens at once

function start() {
  const root = document.querySelector('[data-role=root]');
  const pg = new Playground(root, { page: PAGE_DEFAULTS });
  const conn = document.querySelector('.top [data-role=connection]');
  if (connection.socket.connected) conn.textContent = 'connected';
  pg.conn.addEventListener('connected', () => { conn.textContent = 'connected'; });
  pg.conn.addEventListener('disconnected', () => { conn.textContent = 'reconnecting…'; });
  // (the page's own writes use history.replaceState, which fires no hashchange)
  window.addEventListener('hashchange', () => pg.followLink(location.hash));
  bindCopyLink(root, pg);
}

// "Copy link": the setup's link to the clipboard; where the Clipboard API is missing or
// refused, the link is shown in a field, selected, for the visitor's own copy.
function bindCopyLink(root, pg) {
  const box = root.querySelector('[data-role=share]');
  if (!box) return;
  const status = box.querySelector('[data-role=copy-status]');
  const field = box.querySelector('[data-role=link-field]');
  const text = box.querySelector('[data-role=link-text]');
  box.hidden = false;
  const showField = link => {
    field.hidden = false;
    text.value = link;
    text.focus();
    text.select();
    status.textContent = 'The link is selected: copy it with Ctrl+C (⌘C on a Mac).';
  };
  box.querySelector('[data-role=copy-link]').addEventListener('click', async () => {
    const link = pg.link();
    if (!navigator.clipboard || !navigator.clipboard.writeText) { showField(link); return; }
    try {
      await navigator.clipboard.writeText(link);
      field.hidden = true;
      status.textContent = 'Link copied.';
    } catch {
      showField(link);
    }
  });
  // the words go with the next change: they described the link of then
  pg.addEventListener('changed', () => { status.textContent = ''; field.hidden = true; });
}

plotlyReady().catch(() => {});  // (the playground says so if it fails)
start();
