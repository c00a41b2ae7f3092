// Shared parts of the lesson views and the compare page: a live run on the tab's socket,
// a loop that polls an experiment, and small Plotly helpers.
//
// Every LiveRun is a run (run.js) on the tab's one socket (connection.js): the frames of
// two runs never mix (each names its run), and closing a run frees it on the server.
import { tabConnection } from '../connection.js';
import { Run } from '../run.js';
import { fromHash, fitP } from '../state.js';
import { layoutBase } from '../views/theme.js';


export const sleep = ms => new Promise(r => setTimeout(r, ms));

// Later hashes win, key by key.
export function mergeHash(...hashes) {
  const out = new URLSearchParams();
  for (const h of hashes) for (const [k, v] of new URLSearchParams(String(h || '').replace(/^#/, ''))) out.set(k, v);
  return '#' + out.toString().replace(/%2C/g, ',');
}

export function stateOf(hash) {
  const { state, problems } = fromHash(hash);
  return { state: fitP(state), problems };
}

export class LiveRun extends Run {
  // hash: a playground URL hash; options.stopAt: the server pauses the run at exactly this
  // step (play {until}), so runs compared at their stop are compared at one step.
  constructor(hash, { name = '', stopAt = null } = {}) {
    super(tabConnection());
    this.name = name;
    this.stopAt = stopAt;
    this.setHash(hash);
    this.startWith = null;
  }

  setHash(hash) {
    this.hash = hash;
    this.state = stateOf(hash).state;
  }

  // after a reconnect: configured again, and trained on if it was asked to
  restore() {
    if (!this.startWith || this.closed || this.restoring) return;
    this.restoring = this.start(this.startWith).finally(() => { this.restoring = null; });
  }

  // Configure from the hash (fresh weights) and, with play, train.
  async start({ play = true } = {}) {
    this.startWith = { play };
    // (a page switch may leave old runs closing on the server for a moment: the refusal
    // then says when to retry, and Connection.call does)
    const ack = await this.configure(this.state);
    if (!ack) return null;
    if (!ack.ok) { this.fail(ack); return ack; }
    if (play) await this.play();
    return ack;
  }

  async play() {
    const ack = await super.play(this.stopAt > this.step ? this.stopAt : undefined);
    if (!ack.ok) this.fail(ack);
    return ack;
  }

  // Train n steps while paused (the 'step' event) and wait for the frame of the step
  // reached: its step number, or null if the server refused (the problem is reported).
  async stepBy(n, timeoutMs = 10_000) {
    const ack = await this.train(n);
    if (!ack.ok) { this.fail(ack); return null; }
    if (!(this.last && this.last.header.step >= ack.step)) {
      let on = null;
      const arrived = new Promise(resolve => {
        on = e => { if (e.detail.header.step >= ack.step) resolve(true); };
        this.addEventListener('frame', on);
      });
      const ok = await Promise.race([arrived, sleep(timeoutMs).then(() => false)]);
      this.removeEventListener('frame', on);
      if (!ok) return null;
    }
    return ack.step;
  }

  // One experiment on this run (model_server/experiments/): its result, or throws.
  async experiment(name, params = {}) {
    return (await this.measure(name, params)).result;
  }

  // The same, with the step the run was at when measured: {step, result}.
  async measure(name, params = {}) {
    const ack = await this.call('experiment', { name, params });
    if (!ack.ok) { const err = new Error(`${ack.error.field}: ${ack.error.message}`); err.ack = ack; throw err; }
    return ack;
  }

  take(frame) {
    super.take(frame);
    if (this.info && this.stopAt && frame.header.step === this.stopAt && this.doneAt !== this.stopAt) {
      this.doneAt = this.stopAt;  // once per stop: the paused picture repeats the step
      this.dispatchEvent(new CustomEvent('done', { detail: frame.header.step }));
    }
  }

  status(s) {
    super.status(s);
    if (s.reason) this.dispatchEvent(new CustomEvent('problem', { detail: s.reason }));
  }

  fail(ack) {
    if (this.closed) return;  // an answer that arrived after the lesson was left
    const errors = ack.errors || [ack.error];
    this.dispatchEvent(new CustomEvent('problem', { detail: errors.map(e => `${e.field}: ${e.message}`).join('; ') }));
  }

  async close() {
    this.startWith = null;
    await super.close();
  }
}

// An experiment that needs no run (the preset ones: data_size, alternatives,
// noise_injection), on the tab's socket: its acknowledgement's result, or throws.
export async function presetExperiment(name, params = {}) {
  const conn = tabConnection();
  await conn.ready();
  const ack = await conn.call('experiment', { name, params });
  if (!ack.ok) { const err = new Error(`${name}: ${ack.error.field}: ${ack.error.message}`); err.ack = ack; throw err; }
  return ack.result;
}


// Calls fn() again and again, at most every `ms`, one call at a time, until stopped.
export function poll(ms, fn) {
  let stopped = false, wake = null;
  (async () => {
    while (!stopped) {
      const t0 = performance.now();
      try { await fn(); } catch (e) { console.warn(e); }
      const wait = Math.max(50, ms - (performance.now() - t0));
      await new Promise(r => { wake = r; setTimeout(r, wait); });
    }
  })();
  return { stop() { stopped = true; if (wake) wake(); }, now() { if (wake) wake(); } };
}

// ---- DOM and Plotly helpers ----------------------------------------------------------------
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'className') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k === 'style') node.setAttribute('style', v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  node.append(...children.filter(c => c !== null && c !== undefined));
  return node;
}

// A panel: a titled box with a plot area and a caption.
export function panel(parent, title, { height = 300, wide = false, caption = '' } = {}) {
  const plot = el('div', { className: 'plot', style: `height:${height}px`, role: 'img', 'aria-label': title });
  const cap = el('p', { className: 'plot-caption', text: caption });
  const box = el('section', { className: `lesson-panel${wide ? ' wide' : ''}` }, el('h3', { text: title }), plot, cap);
  parent.append(box);
  return { box, plot, caption: cap };
}

export const CONFIG = { displayModeBar: false, responsive: true };

export function draw(plotEl, traces, layout = {}) {
  return Plotly.react(plotEl, traces, layoutBase({ margin: { l: 48, r: 12, t: 10, b: 40 }, ...layout }), CONFIG);
}

// Axis values of a size x size grid over the input plane [lo, hi].
export function axis(plane, size) {
  return Array.from({ length: size }, (_, i) => plane[0] + (plane[1] - plane[0]) * i / (size - 1));
}

// A row of numbers as "name value" chips; values update in place.
export class Readout {
  constructor(parent, items) {
    this.cells = {};
    const box = el('dl', { className: 'readout' });
    for (const [key, label] of items) {
      const dd = el('dd', { text: '–', dataset: { key } });
      box.append(el('div', {}, el('dt', { text: label }), dd));
      this.cells[key] = dd;
    }
    parent.append(box);
    this.box = box;
  }

  set(values) {
    for (const [k, v] of Object.entries(values)) if (this.cells[k]) this.cells[k].textContent = v;
  }
}

export function fmt(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (v !== 0 && Math.abs(v) < 10 ** -digits) return v.toExponential(1);
  return Number(v).toFixed(digits);
}

// A button row; each button: [label, onClick, {pressed}].
export function buttons(parent, specs) {
  const row = el('div', { className: 'lesson-buttons' });
  const out = {};
  for (const [key, label, fn] of specs) {
    const b = el('button', { type: 'button', className: 'small', text: label });
    b.addEventListener('click', fn);
    row.append(b);
    out[key] = b;
  }
  parent.append(row);
  return out;
}

// A labelled range input; onChange gets the number when the visitor lets go.
export function slider(parent, label, { min, max, step, value, format = v => v }, onChange) {
  const id = `s-${Math.random().toString(36).slice(2, 8)}`;
  const input = el('input', { type: 'range', id, min, max, step, value });
  const out = el('output', { htmlFor: id, text: format(value) });
  input.addEventListener('input', () => { out.textContent = format(Number(input.value)); });
  input.addEventListener('change', () => onChange(Number(input.value)));
  parent.append(el('div', { className: 'lesson-slider' }, el('label', { htmlFor: id, text: label }), input, out));
  return input;
}
