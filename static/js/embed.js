// The embedded playground: flags from the URL (?hide=, ?lock=, ?id=, ?autoplay=1; settings
// from the #hash as on the full page) and the postMessage API a host page uses to size the
// iframe, follow the run and drive it (host.js: origins and checks; docs/embedding.md). A
// lesson is embedded whole by its own page (embed_lesson.js).
//
// Outgoing (to window.parent): {type: 'dropout-playground:<name>', id, ...}
//   ready, height {height}, configured {config, sizes, ...}, state {playing, step, eval},
//   changed {key, value}, result {request, command, ok, ...}, error {request?, error, errors}
// Incoming (from window.parent, an allowed origin): {type: 'dropout-playground:<command>', request?}
//   play {until?}, pause, step, reset, get, set {key, value}
import { Playground } from './playground.js';
import { tabConnection } from './connection.js';
import { BY_KEY, FIELDS, check, toHash } from './state.js';
import { speedLabel } from './controls.js';
import { plotlyReady } from './plotly_ready.js';
import { HostChannel, VERSION, entry, short, readConfig } from './host.js';

const COMMANDS = { play: ['until'], pause: [], step: [], reset: [], get: [], set: ['key', 'value'] };
const FORM_GROUPS = ['data', 'model', 'train'];
const STEP_EVERY_MS = 500;        // step-count reports while playing: 2 per second at most
const CONFIGURED_WAIT_MS = 15000;

const $ = sel => document.querySelector(sel);

// The settings form folds into a <details>: an 800 x 600 frame has no room for it open.
function compactSettings(root, hidden) {
  const form = root.querySelector('[data-role=settings]');
  if (!form) return;
  const box = document.createElement('details');
  box.className = 'embed-settings';
  box.hidden = FORM_GROUPS.every(g => hidden.has(g));
  const summary = document.createElement('summary');
  summary.textContent = 'Settings';
  form.before(box);
  box.append(summary, form);
}

// The run controls outside the settings form (speed, mode, boundary view) honour ?lock= too.
const RUN_CONTROLS = { speed: '[data-role=speed]', mode: '[data-role=mode]', view: '[data-role=view]' };

function syncRunControls(root, state, locked) {
  const speed = root.querySelector(RUN_CONTROLS.speed);
  if (speed) {
    speed.value = Math.log10(state.speed);
    const label = root.querySelector('[data-role=speed-label]');
    if (label) label.textContent = speedLabel(state.speed);
  }
  const mode = root.querySelector(RUN_CONTROLS.mode);
  if (mode) mode.checked = state.mode === 'eval';
  const view = root.querySelector(RUN_CONTROLS.view);
  if (view) view.value = state.view;
  for (const [key, sel] of Object.entries(RUN_CONTROLS)) {
    const input = root.querySelector(sel);
    if (input && locked.has(key)) input.disabled = true;
  }
}

// The host page side of things: reports out, commands in.
export class HostLink {
  constructor(pg, config, locked) {
    this.pg = pg;
    this.locked = locked;
    this.channel = new HostChannel(config, { commands: COMMANDS, check: (command, msg) => this.validate(command, msg),
      run: (command, msg) => this.run(command, msg) });
    this.step = 0;
    this.eval = null;  // the latest test evaluation {step, train_loss, test_loss, test_acc}
    this.posted = { step: -1, evalStep: -1, at: 0 };
    this.configured = new Promise(resolve => { this.onConfigured = resolve; });
    pg.addEventListener('configured', e => {
      const a = e.detail;
      this.step = 0;
      this.eval = null;
      this.onConfigured();
      this.post('configured', { config: a.config, sizes: a.sizes, params: a.params, device: a.device, task: a.task,
        state: { ...pg.state } });
      this.reportState(true);
    });
    // A pause is reported once the status that caused it has given its step (status
    // listeners run after this one): the stop at `until` says that step, not the last
    // frame's, which lags it.
    pg.addEventListener('playing', e => (e.detail ? this.reportState(true) : queueMicrotask(() => this.reportState(true))));
    pg.addEventListener('changed', e => this.post('changed', { key: e.detail, value: pg.state[e.detail] }));
    pg.addEventListener('error', e => this.post('error', { error: e.detail[0], errors: e.detail }));
    pg.run.addEventListener('frame', e => {
      const h = e.detail.header;
      this.step = h.step;
      this.eval = h.eval || null;
      this.reportState(false);
    });
    pg.run.addEventListener('status', e => {
      const s = e.detail;
      if (typeof s.step === 'number') this.step = s.step;
      if (s.state === 'finished' || s.state === 'ended') this.post('state', { playing: false, step: this.step, eval: this.eval, reason: s.reason });
    });
    this.post('ready', { version: VERSION, lesson: null, hidden: config.hide,
      locked: [...locked], commands: Object.keys(COMMANDS),
      keys: FIELDS.map(f => f.key).filter(k => !locked.has(k)) });
    this.channel.watchHeight($('[data-role=embed]') || document.body);
  }

  post(name, data = {}) { this.channel.post(name, data); }

  // playing/paused at once; the step count while playing at most every STEP_EVERY_MS; a
  // paused run's new evaluation (the complete frame after a pause) at once
  reportState(now) {
    const t = performance.now();
    const playing = this.pg.playing;
    const evalStep = this.eval ? this.eval.step : -1;
    const same = this.step === this.posted.step && evalStep === this.posted.evalStep;
    if (!now && (same || (playing && t - this.posted.at < STEP_EVERY_MS))) return;
    Object.assign(this.posted, { step: this.step, evalStep, at: t });
    this.post('state', { playing, step: this.step, eval: this.eval });
  }

  snapshot() {
    return { playing: this.pg.playing, step: this.step, eval: this.eval, state: { ...this.pg.state }, locked: [...this.locked] };
  }

  // ---- commands (host.js has checked the sender, the type and the fields) ----------------
  validate(command, msg) {
    if (command === 'set') return this.checkSet(msg);
    if (command === 'play' && 'until' in msg && !(Number.isInteger(msg.until) && msg.until >= 1)) {
      return entry('until', `until has to be a whole number of steps, at least 1, but got ${short(msg.until)}`, 'an integer >= 1', msg.until);
    }
    return null;
  }

  checkSet(msg) {
    const key = msg.key;
    const f = typeof key === 'string' && Object.hasOwn(BY_KEY, key) ? BY_KEY[key] : null;
    if (!f) return entry('key', `unknown setting ${short(key)}`, FIELDS.map(x => x.key).join(', '), key);
    if (this.locked.has(key)) {
      return entry('key', `${key} is locked by the page that embeds this playground`,
        FIELDS.map(x => x.key).filter(k => !this.locked.has(k)).join(', '), key);
    }
    if (!('value' in msg)) return entry('value', `value is required to set ${key}`, allowedText(f), null);
    const value = this.normalize(key, msg.value);
    const okType = f.type.endsWith('list') ? Array.isArray(value) || typeof value === 'string' || typeof value === 'number'
      : typeof value === 'string' || typeof value === 'number';
    if (!okType) return entry('value', `${key} has to be ${f.type.endsWith('list') ? 'a list' : 'a number or a string'}, but got ${typeof value}`, allowedText(f), value);
    const [, problem] = check(f, value);
    if (problem) return entry('value', problem, allowedText(f), msg.value);
    if (key === 'p') {
      const n = this.pg.state.hidden.length;
      const got = Array.isArray(value) ? value.length : String(value).split(',').length;
      if (got !== n) return entry('value', `p needs one drop probability per hidden layer (${n}), but got ${got}`, `${n} values between 0 and 1`, msg.value);
    }
    return null;
  }

  // p may be one number for every layer
  normalize(key, value) {
    return key === 'p' && typeof value === 'number' ? this.pg.state.hidden.map(() => value) : value;
  }

  async run(command, msg) {
    const pg = this.pg;
    if (command !== 'get') {
      const timeout = new Promise(resolve => setTimeout(() => resolve('timeout'), CONFIGURED_WAIT_MS));
      if (await Promise.race([this.configured, timeout]) === 'timeout') {
        return { ok: false, error: entry('connection', 'the playground is not connected to its server yet') };
      }
    }
    if (command === 'get') return { ok: true, ...this.snapshot() };
    if (command === 'set') {
      const ok = pg.controls.set(msg.key, this.normalize(msg.key, msg.value));
      syncRunControls(pg.root, pg.state, this.locked);
      if (!ok) return { ok: false, error: entry('value', `${msg.key} was not changed`, allowedText(BY_KEY[msg.key]), msg.value) };
      return { ok: true, key: msg.key, value: pg.state[msg.key], ...this.snapshot() };
    }
    const ack = command === 'play' ? await pg.play(msg.until) : await pg[command]();
    if (!ack.ok) return { ok: false, error: ack.error, errors: ack.errors || [ack.error] };
    if (typeof ack.step === 'number') this.step = ack.step;
    if (command !== 'play') this.reportState(true);
    return { ok: true, ...this.snapshot() };
  }
}

function allowedText(f) {
  if (f.type === 'select') return f.options.join(', ');
  if (f.type.endsWith('list')) return `a list of values between ${f.min} and ${f.max}`;
  return `${f.min}..${f.max}`;
}

function start() {
  const config = readConfig();
  const problems = [...(config.problems || [])];
  const locked = new Set();
  for (const key of config.lock || []) {
    if (Object.hasOwn(BY_KEY, key)) locked.add(key); else problems.push(`unknown setting ${key} in lock ignored`);
  }
  const hidden = new Set(config.hide || []);
  const hash = location.hash;
  const root = $('[data-role=root]');
  compactSettings(root, hidden);
  const pg = new Playground(root, {
    hash, locked, keepHash: true, autoplay: !!config.autoplay,
    hiddenGroups: new Set(FORM_GROUPS.filter(g => hidden.has(g))),
  });
  syncRunControls(root, pg.state, locked);
  if (problems.length) {
    const n = root.querySelector('[data-role=notice]');
    const before = n && !n.hidden ? n.textContent : '';
    pg.notice([before, ...problems].filter(Boolean).join('\n'), 'warn');
  }
  const conn = $('.embed-foot [data-role=connection]');
  if (connection.socket.connected) conn.textContent = 'connected';
  pg.conn.addEventListener('connected', () => { conn.textContent = 'connected'; });
  pg.conn.addEventListener('disconnected', () => { conn.textContent = 'reconnecting…'; });
  const full = $('[data-role=open-full]');
  const openFull = () => { full.href = new URL('/', location.href).href + toHash(pg.state); };
  openFull();
  pg.addEventListener('changed', openFull);
  pg.host = new HostLink(pg, config, locked);
  window.__embed = pg.host;  // for the browser tests
}

// This module loads async, before Plotly: the socket opens at once, then Plotly starts
// loading (plotly_ready.js); the network's first picture does not wait for it.
const connection = tabConnection();
plotlyReady().catch(() => {});  // (the playground says so if it fails)
start();
