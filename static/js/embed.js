// The embedded playground: flags from the URL (?hide=, ?lock=, ?lesson=, ?id=, ?autoplay=1;
// settings from the #hash as on the full page) and the postMessage API a host page uses to
// size the iframe, follow the run and drive it. The API is described in docs/embedding.md.
//
// Outgoing (to window.parent): {type: 'dropout-playground:<name>', id, ...}
//   ready, height {height}, configured {config, sizes, ...}, state {playing, step, eval},
//   changed {key, value}, result {request, command, ok, ...}, error {request?, error, errors}
// Incoming (from window.parent, an allowed origin): {type: 'dropout-playground:<command>', request?}
//   play {until?}, pause, step, reset, get, set {key, value}
import { Playground } from './playground.js';
import { Connection } from './connection.js';
import { BY_KEY, FIELDS, check, toHash } from './state.js';
import { speedLabel } from './controls.js';
import { plotlyReady } from './plotly_ready.js';

export const PREFIX = 'dropout-playground:';
export const VERSION = 2;  // 2: play takes until; state, result carry eval
const COMMANDS = { play: ['until'], pause: [], step: [], reset: [], get: [], set: ['key', 'value'] };
const COMMON = ['type', 'request'];
const FORM_GROUPS = ['data', 'model', 'train'];
const STEP_EVERY_MS = 500;        // step-count reports while playing: 2 per second at most
const MAX_MESSAGE_CHARS = 4096;
const CONFIGURED_WAIT_MS = 15000;

const $ = sel => document.querySelector(sel);

function readConfig() {
  const block = document.getElementById('dp-embed-config');
  const config = block ? JSON.parse(block.textContent) : {};
  return { origins: [], hide: [], lock: [], problems: [], ...config };
}

function entry(field, message, allowed = '', received = null) {
  return { field, message, allowed, received: short(received) };
}

function short(v) {
  if (v === undefined) return null;
  let text;
  try { text = JSON.stringify(v); } catch (e) { text = String(v); }
  if (text === undefined) return String(v);
  return text.length <= 80 ? v : `${text.slice(0, 80)}... (${text.length} chars)`;
}

// A lesson's settings (its URL hash) from static/js/lessons.js, where the server has one.
async function lessonHash(config, problems) {
  if (!config.lesson) return '';
  if (!config.lessons) { problems.push(`lesson ${config.lesson} not found (this server has no lessons yet)`); return ''; }
  try {
    const mod = await import('./lessons.js');
    const list = Array.isArray(mod.LESSONS) ? mod.LESSONS : Array.isArray(mod.default) ? mod.default : [];
    const lesson = list.find(l => l && l.id === config.lesson);
    if (!lesson) { problems.push(`lesson ${config.lesson} not found`); return ''; }
    return String(lesson.hash || '');
  } catch (e) {
    problems.push('the lessons could not be loaded');
    return '';
  }
}

// Later hashes win, key by key: a lesson, then the embed URL's own hash.
function mergeHashes(...hashes) {
  const out = new URLSearchParams();
  for (const h of hashes) for (const [k, v] of new URLSearchParams(String(h).replace(/^#/, ''))) out.set(k, v);
  return '#' + out.toString();
}

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
    this.id = config.id || null;
    this.allowed = config.origins || [];
    this.any = this.allowed.includes('*');
    this.framed = window.parent !== window;
    this.target = this.pickTarget();
    this.step = 0;
    this.eval = null;  // the latest test evaluation {step, train_loss, test_loss, test_acc}
    this.posted = { step: -1, evalStep: -1, at: 0, height: 0 };
    this.configured = new Promise(resolve => { this.onConfigured = resolve; });
    window.addEventListener('message', e => this.receive(e));
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
    pg.conn.addEventListener('frame', e => {
      const h = e.detail.header;
      this.step = h.step;
      this.eval = h.eval || null;
      this.reportState(false);
    });
    pg.conn.addEventListener('status', e => {
      const s = e.detail;
      if (typeof s.step === 'number') this.step = s.step;
      if (s.state === 'finished' || s.state === 'ended') this.post('state', { playing: false, step: this.step, eval: this.eval, reason: s.reason });
    });
    const frame = $('[data-role=embed]') || document.body;
    new ResizeObserver(() => this.reportHeight(frame)).observe(frame);
    this.post('ready', { version: VERSION, lesson: config.lesson || null, hidden: config.hide,
      locked: [...locked], commands: Object.keys(COMMANDS),
      keys: FIELDS.map(f => f.key).filter(k => !locked.has(k)) });
    this.reportHeight(frame);
  }

  allows(origin) {
    return this.any || origin === location.origin || this.allowed.includes(origin);
  }

  // Where reports go: '*' if any origin may embed us; else the parent's origin when it is
  // allowed (known from ancestorOrigins or the referrer), else the only listed origin.
  pickTarget() {
    if (!this.framed) return null;
    if (this.any) return '*';
    let parent = location.ancestorOrigins && location.ancestorOrigins.length ? location.ancestorOrigins[0] : null;
    if (!parent && document.referrer) { try { parent = new URL(document.referrer).origin; } catch (e) { /* none */ } }
    if (parent) return this.allows(parent) ? parent : null;
    const listed = this.allowed.filter(o => o !== '*');
    return listed.length === 1 ? listed[0] : null;
  }

  envelope(name, data) {
    return { type: PREFIX + name, id: this.id, ...data };
  }

  post(name, data = {}) {
    if (this.target) window.parent.postMessage(this.envelope(name, data), this.target);
  }

  reportHeight(el) {
    const height = Math.ceil(el.getBoundingClientRect().height);
    if (height === this.posted.height) return;
    this.posted.height = height;
    this.post('height', { height });
  }

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

  // ---- commands ----------------------------------------------------------------------
  async receive(e) {
    const msg = e.data;
    if (!msg || typeof msg !== 'object' || typeof msg.type !== 'string' || !msg.type.startsWith(PREFIX)) return;  // not ours
    const request = typeof msg.request === 'string' ? msg.request.slice(0, 64) : Number.isFinite(msg.request) ? msg.request : null;
    const reply = (name, data) => {
      if (e.source && typeof e.source.postMessage === 'function') {
        e.source.postMessage(this.envelope(name, { request, ...data }), e.origin && e.origin !== 'null' ? e.origin : '*');
      }
    };
    const problem = this.validate(msg, e);
    if (problem) {
      reply('error', { error: problem, errors: [problem] });
      return;
    }
    if (!this.target && this.framed) this.target = e.origin;  // learned: reports go to this host from now on
    const command = msg.type.slice(PREFIX.length);
    try {
      const result = await this.run(command, msg);
      reply(result.ok ? 'result' : 'error', { command, ...result });
    } catch (err) {
      const error = entry('command', `${command} failed: ${err && err.message ? err.message : err}`);
      reply('error', { command, error, errors: [error] });
    }
  }

  // The schema: who may send, which types, which fields, and each set value checked by
  // the settings table (state.check). Returns an error entry or null.
  validate(msg, e) {
    if (!this.framed || e.source !== window.parent) {
      return entry('source', 'commands are taken from the page that embeds this playground only', 'window.parent', null);
    }
    if (!this.allows(e.origin)) {
      return entry('origin', `messages from ${e.origin} are not accepted: this playground takes commands only from the origins its server allows (DP_EMBED_ORIGINS)`,
        'an origin listed in DP_EMBED_ORIGINS', e.origin);
    }
    let size = Infinity;
    try { size = JSON.stringify(msg).length; } catch (err) { /* cyclic or not serializable */ }
    if (size > MAX_MESSAGE_CHARS) return entry('message', `a message has to be at most ${MAX_MESSAGE_CHARS} characters of JSON, but got ${size}`, `<= ${MAX_MESSAGE_CHARS}`, size);
    const command = msg.type.slice(PREFIX.length);
    if (!Object.hasOwn(COMMANDS, command)) {
      return entry('type', `unknown command ${command}`, Object.keys(COMMANDS).map(c => PREFIX + c).join(', '), msg.type);
    }
    if ('request' in msg && !(typeof msg.request === 'string' || Number.isFinite(msg.request))) {
      return entry('request', 'request has to be a string or a number (it is echoed in the answer)', 'string or number', msg.request);
    }
    const fields = [...COMMON, ...COMMANDS[command]];
    for (const k of Object.keys(msg)) {
      if (!fields.includes(k)) return entry(k, `unknown field ${k} for ${command}`, fields.join(', '), msg[k]);
    }
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

async function start() {
  const config = readConfig();
  const problems = [...(config.problems || [])];
  const locked = new Set();
  for (const key of config.lock || []) {
    if (Object.hasOwn(BY_KEY, key)) locked.add(key); else problems.push(`unknown setting ${key} in lock ignored`);
  }
  const hidden = new Set(config.hide || []);
  const hash = mergeHashes(await lessonHash(config, problems), location.hash);
  const root = $('[data-role=root]');
  compactSettings(root, hidden);
  const pg = new Playground(root, {
    hash, locked, keepHash: true, autoplay: !!config.autoplay, connection,
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
const connection = new Connection();
plotlyReady().catch(() => {});  // (the playground says so if it fails)
start();
