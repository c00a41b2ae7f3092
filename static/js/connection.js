// The socket: connect with a per-tab token, send events as promises of their
// acknowledgement, hand frames to the page and acknowledge each one once taken.
import { io } from '/vendor/socket.io.esm.min.js';
import { decodeFrame } from './frames.js';

function tabToken() {
  let t = null;
  try { t = sessionStorage.getItem('dp-token'); } catch (e) { /* storage blocked: a fresh token */ }
  if (!t) {
    t = Array.from(crypto.getRandomValues(new Uint8Array(12)), b => b.toString(16).padStart(2, '0')).join('');
    try { sessionStorage.setItem('dp-token', t); } catch (e) { /* fine */ }
  }
  return t;
}

export class Connection extends EventTarget {
  constructor() {
    super();
    this.socket = io({ auth: { token: tabToken() }, transports: ['websocket'] });
    this.socket.on('connect', () => this.dispatchEvent(new CustomEvent('connected')));
    this.socket.on('disconnect', reason => this.dispatchEvent(new CustomEvent('disconnected', { detail: reason })));
    this.socket.on('connect_error', err => this.dispatchEvent(new CustomEvent('disconnected', { detail: err.message })));
    this.socket.on('status', s => this.dispatchEvent(new CustomEvent('status', { detail: s })));
    this.socket.on('broadcast', m => this.dispatchEvent(new CustomEvent('broadcast', { detail: m })));
    this.socket.on('frame', (data, ack) => {
      const received = Date.now();
      let frame;
      const t0 = performance.now();
      try { frame = decodeFrame(data); } catch (e) { console.error(e); if (ack) ack(false); return; }
      frame.received = received;
      frame.decodeMs = performance.now() - t0;  // main-thread time, for the bench
      this.dispatchEvent(new CustomEvent('frame', { detail: frame }));
      if (ack) ack(true);  // taken: the server may send the next one
    });
  }

  // Resolves with the acknowledgement ({ok: true, ...} or {ok: false, error}). A refusal
  // that says when to retry (the server's lesson experiments are all taken, or this tab's
  // previous one still runs) is retried then, a few times, before it is given up. Lesson
  // work may take seconds on a busy server: it gets a minute.
  async call(event, payload = {}, retries = 10) {
    for (let attempt = 0; ; attempt++) {
      const ack = await new Promise(resolve => {
        // lesson work waits its turn on a busy server: give it longer than a control event
        this.socket.timeout(event === 'experiment' || event === 'sweep' ? 60000 : 10000).emit(event, payload, (err, a) => {
          resolve(err ? { ok: false, error: { field: 'connection', message: 'no answer from the server (connection lost?)' } } : a);
        });
      });
      if (ack.ok || !ack.retry_after_s || attempt >= retries) return ack;
      await new Promise(r => setTimeout(r, 1000 * ack.retry_after_s * (0.75 + 0.5 * Math.random())));
    }
  }
}
