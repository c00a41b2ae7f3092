// One run on the tab's socket (connection.js): every event it sends names it (`run`), and
// the connection hands it the frames and statuses that name it. Configuring a run from a
// page state (state.js) happens here and nowhere else: the config, then the live
// settings a config does not carry (speed, mode, view). After a reconnect the server has
// a new session without the run: the connection asks each live run to restore itself,
// which configures it again, once.
import { toConfig } from './state.js';

const CLOSE_WAIT_MS = 1000;  // a close the server does not answer is given up (the socket frees it anyway)

export class Run extends EventTarget {
  // restore: what a reconnect does (default: configure the last state again)
  constructor(conn, { id = conn.nextId(), restore = null } = {}) {
    super();
    this.conn = conn;
    this.id = id;
    this.restorer = restore;
    this.info = null;        // the configure acknowledgement; null while (re)configuring
    this.last = null;        // the latest frame
    this.frames = 0;
    this.playing = false;
    this.closed = false;
    this.wanted = null;      // the state it was last configured from
    this.restoring = null;
    conn.runs.set(this.id, this);
  }

  call(event, payload = {}) {
    return this.conn.call(event, { ...payload, run: this.id });
  }

  // Fresh weights from a page state. 'configured' is dispatched as soon as the run has
  // its new shape (before the live settings go), so that its first frame finds the
  // page's panels set up for it.
  async configure(state) {
    this.wanted = state;
    this.info = null;  // frames of the previous configuration, still in flight, are dropped
    await this.conn.ready();
    if (this.closed) return null;
    const ack = await this.call('configure', { config: toConfig(state) });
    if (this.closed) {  // closed while it was being built: the server has it now, and frees it
      if (ack.ok) await this.call('close');
      return null;
    }
    if (!ack.ok) return ack;
    this.info = ack;
    this.last = null;
    this.dispatchEvent(new CustomEvent('configured', { detail: ack }));
    const live = [{ param: 'speed', value: state.speed }];
    if (state.mode !== 'train') live.push({ param: 'mode', value: state.mode });
    if (state.view !== 'eval') live.push({ param: 'view', value: state.view });
    for (const change of live) await this.set(change);
    this.setPlaying(false);
    return ack;
  }

  restore() {
    if (!this.wanted || this.closed || this.restoring) return;
    const again = this.restorer ? this.restorer() : this.configure(this.wanted);
    this.restoring = Promise.resolve(again).finally(() => { this.restoring = null; });
  }

  // until: the server pauses the run at exactly that step
  async play(until) {
    const ack = await this.call('play', until === undefined ? {} : { until });
    if (ack.ok) this.setPlaying(true);
    return ack;
  }

  async pause() {
    const ack = await this.call('pause');
    this.setPlaying(false);
    return ack;
  }

  get step() { return this.last ? this.last.header.step : 0; }

  // n steps of a paused run (the 'step' event)
  train(n) { return this.call('step', { n }); }
  reset() { return this.call('reset'); }
  // A refused change is also told as a 'refused' event: whoever sent it need not wait.
  async set(change) {
    const ack = await this.call('set', { change });
    if (!ack.ok) this.dispatchEvent(new CustomEvent('refused', { detail: ack }));
    return ack;
  }
  replay(step) { return this.call('replay', { step }); }

  take(frame) {
    if (!this.info) return;
    this.last = frame;
    this.frames++;
    this.dispatchEvent(new CustomEvent('frame', { detail: frame }));
  }

  status(s) {
    if (s.state === 'playing') this.setPlaying(true);
    else if (['paused', 'finished', 'ended'].includes(s.state)) this.setPlaying(false);
    this.dispatchEvent(new CustomEvent('status', { detail: s }));
  }

  setPlaying(on) {
    if (this.playing === on) return;
    this.playing = on;
    this.dispatchEvent(new CustomEvent('playing', { detail: on }));
  }

  // The server frees the run; the socket stays for the tab's other runs. Its frames in
  // flight are dropped from now on.
  async close() {
    this.closed = true;
    this.wanted = null;
    this.conn.runs.delete(this.id);
    if (this.conn.connected && this.info) {
      await Promise.race([this.call('close'), new Promise(r => setTimeout(r, CLOSE_WAIT_MS))]);
    }
  }
}
