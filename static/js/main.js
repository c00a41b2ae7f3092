// The full playground page. This module loads async, before Plotly: the socket opens at
// once, then Plotly starts loading (plotly_ready.js), and the network's first picture
// comes as soon as the server has configured the run; the other panels wait for Plotly.
import { Playground } from './playground.js';
import { Connection } from './connection.js';
import { plotlyReady } from './plotly_ready.js';

const connection = new Connection();

function start() {
  const root = document.querySelector('[data-role=root]');
  const pg = new Playground(root, { connection });
  const conn = document.querySelector('.top [data-role=connection]');
  if (connection.socket.connected) conn.textContent = 'connected';
  pg.conn.addEventListener('connected', () => { conn.textContent = 'connected'; });
  pg.conn.addEventListener('disconnected', () => { conn.textContent = 'reconnecting…'; });
}

plotlyReady().catch(() => {});  // (the playground says so if it fails)
start();
