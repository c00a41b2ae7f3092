// The tab's one socket: connect with a per-tab token, send events as promises of their
// acknowledgement, hand each frame and status to the run it names (its `run`) and
// acknowledge each frame once taken. Every page of a tab (playground, lesson, compare,
// embed) shares it: tabConnection(). Its runs (run.js) are multiplexed over it by run id.
import { io } from '/vendor/socket.io.esm.min.js';
import { decodeFrame } from './frames.js';

const ANSWER_WAIT_MS = 60000;  // how long an event waits for its answer (see call)

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
    this.runs = new Map();   // run id -> Run (run.js)
    this.count = 0;          // run ids handed out
    this.socket = io({ auth: { token: tabToken() }, transports: ['websocket'] });
    let before = false;
    this.socket.on('connect', () => {
      this.dispatchEvent(new CustomEvent('connected'));
      // a reconnect is a new server session without our runs: each is configured again
      if (before) for (const run of this.runs.values()) run.restore();
      before = true;
    });
    this.socket.on('disconnect', reason => this.dispatchEvent(new CustomEvent('disconnected', { detail: reason })));
    this.socket.on('connect_error', err => this.dispatchEvent(new CustomEvent('disconnected', { detail: err.message })));
    this.socket.on('status', s => {
      const run = s.run === null || s.run === undefined ? null : this.runs.get(s.run);
      if (run) run.status(s); else this.dispatchEvent(new CustomEvent('status', { detail: s }));
    });
    this.socket.on('broadcast', m => this.dispatchEvent(new CustomEvent('broadcast', { detail: m })));
    this.socket.on('frame', (data, ack) => {
      const received = Date.now();
      let frame;
      const t0 = performance.now();
      try { frame = decodeFrame(data); } catch (e) { console.error(e); if (ack) ack(false); return; }
      frame.received = received;
      frame.decodeMs = performance.now() - t0;  // main-thread time, for the bench
      const run = this.runs.get(frame.header.run);
      if (run) run.take(frame);  // (a closed run's last frame is taken, and dropped)
      if (ack) ack(true);  // taken: the server may send the next one
    });
  }

  get connected() { return this.socket.connected; }

  // Resolves once the socket is connected.
  ready() {
    if (this.socket.connected) return Promise.resolve();
    return new Promise(resolve => this.addEventListener('connected', resolve, { once: true }));
  }

  // A fresh run id on this socket (the server takes [A-Za-z0-9_-]{1,16}).
  nextId() { return `r${++this.count}`; }

  // Resolves with the acknowledgement ({ok: true, ...} or {ok: false, error}). A refusal
  // that says when to retry (the server's lesson experiments are all taken, this tab's
  // previous one still runs, or its runs are still closing) is retried then, a few times,
  // before it is given up. Every answer gets a minute: building a run and a lesson's work
  // wait for the trainer's turns on a busy server, and a configure given up while the
  // server still builds it would leave the run there and the page without it. A lost
  // connection is told by its own event ('disconnected'), not by this wait.
  async call(event, payload = {}, retries = 10) {
    for (let attempt = 0; ; attempt++) {
      const ack = await new Promise(resolve => {
        this.socket.timeout(ANSWER_WAIT_MS).emit(event, payload, (err, a) => {
          resolve(err ? { ok: false, error: { field: 'connection', message: 'no answer from the server (connection lost?)' } } : a);
        });
      });
      if (ack.ok || !ack.retry_after_s || attempt >= retries) return ack;
      await new Promise(r => setTimeout(r, 1000 * ack.retry_after_s * (0.75 + 0.5 * Math.random())));
    }
  }
}

let shared = null;

// The tab's connection, opened on first use.
export function tabConnection() {
  shared ||= new Connection();
  return shared;
}
