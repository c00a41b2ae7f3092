// The full playground page.
import { Playground } from './playground.js';

function start() {
  const root = document.querySelector('[data-role=root]');
  const pg = new Playground(root);
  const conn = document.querySelector('.top [data-role=connection]');
  pg.conn.addEventListener('connected', () => { conn.textContent = 'connected'; });
  pg.conn.addEventListener('disconnected', () => { conn.textContent = 'reconnecting…'; });
}

if (window.Plotly) start(); else window.addEventListener('load', start);
