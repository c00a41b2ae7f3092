// The full playground page. This module loads async, beside Plotly: the socket opens at
// once, so its handshake overlaps Plotly's download and start-up; the panels wait for Plotly.
import { Playground } from './playground.js';
import { Connection } from './connection.js';

const connection = new Connection();

function start() {
  const root = document.querySelector('[data-role=root]');
  const pg = new Playground(root, { connection });
  const conn = document.querySelector('.top [data-role=connection]');
  if (connection.socket.connected) conn.textContent = 'connected';
  pg.conn.addEventListener('connected', () => { conn.textContent = 'connected'; });
  pg.conn.addEventListener('disconnected', () => { conn.textContent = 'reconnecting…'; });
}

// Plotly is a deferred script: it has run by DOMContentLoaded
if (window.Plotly) start(); else document.addEventListener('DOMContentLoaded', start);
