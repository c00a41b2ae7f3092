// Compare mode: two or three runs with the same data, network and seed, on one loss chart.
// Everything lives in the URL hash, so a link reproduces the comparison:
//
//   /compare#data=xor&points=100&hidden=64,64&steps=1000&runs=3&a.p=0&b.p=0.5&c.wd=0.01
//
// Keys without a prefix are shared (the playground's keys, state.js); `a.`, `b.`, `c.`
// prefix a run's own settings (RUN_KEYS); `runs` is how many (2 to MAX_RUNS) and `steps`
// where every run pauses. The runs share the tab's socket; each frame names its run (LiveRun).
//
// Runs train at their own speed (a dropout run's steps cost more), so at any moment they
// are at different steps. They are compared only where they are at the same one: the
// server pauses every run at exactly the stop step (play {until}), and the numbers under
// the chart are set side by side only when all runs stand there.
import { BY_KEY, SCHEMA, check, presetHash, setsOf } from './state.js';
import { LossView } from './views/losses.js';
import { LiveRun, el, mergeHash, fmt } from './lesson_views/common.js';
import { tabConnection } from './connection.js';

const LETTERS = ['a', 'b', 'c'];
// Each run's colour (Okabe and Ito's palette: told apart with any colour vision) and line
// style (Plotly's name, and the words for it)
const STYLES = [{ color: '#0072B2', dash: 'solid', words: 'solid' }, { color: '#D55E00', dash: 'dash', words: 'dashed' },
  { color: '#009E73', dash: 'dot', words: 'dotted' }];
// one line style each, and no more than the server lets one visitor hold
const MAX_RUNS = Math.min(STYLES.length, SCHEMA.serving.max_runs_per_client);
const SHARED_KEYS = ['task', 'data', 'points', 'noise', 'seed', 'hidden', 'act', 'opt', 'lr', 'batch'];
const RUN_KEYS = ['p', 'wd', 'place', 'bn'];
const EVAL_EVERY = 10;
// the sweep lesson's setup (the server's preset: few noisy points, a wide net), compared
// without dropout, with it, and with weight decay instead
const DEFAULT = mergeHash(
  [...new URLSearchParams(presetHash('sweep').slice(1))].filter(([k]) => SHARED_KEYS.includes(k))
    .map(([k, v]) => `${k}=${v}`).join('&'),
  `steps=1000&runs=${MAX_RUNS}&a.p=0&b.p=0.5&c.p=0&c.wd=0.01`);
const STEPS = { min: 10, max: SCHEMA.limits.max_steps, def: 1000 };  // a run stops at the server's step limit
const PAINT_MS = 200;

const $ = sel => document.querySelector(sel);
const thousands = n => n.toLocaleString('en');  // 1,000

// hash -> {shared: {key: raw}, runs: [{key: raw}], steps, problems}
export function parseCompare(hash) {
  const params = new URLSearchParams(String(hash || DEFAULT).replace(/^#/, ''));
  const shared = {}, perRun = LETTERS.map(() => ({})), problems = [];
  let count = 2, steps = STEPS.def;
  for (const [key, raw] of params) {
    const m = key.match(/^([abc])\.(\w+)$/);
    if (key === 'runs') {
      const n = Number(raw);
      if (Number.isInteger(n) && n >= 2 && n <= MAX_RUNS) count = n;
      else problems.push(`runs has to be between 2 and ${MAX_RUNS}, but got ${raw}`);
    } else if (key === 'steps') {
      const v = Number(raw);
      if (Number.isInteger(v) && v >= STEPS.min && v <= STEPS.max) steps = v;
      else problems.push(`steps has to be between ${STEPS.min} and ${STEPS.max}, but got ${raw}`);
    } else if (m && RUN_KEYS.includes(m[2])) {
      perRun[LETTERS.indexOf(m[1])][m[2]] = raw;
    } else if (SHARED_KEYS.includes(key)) {
      shared[key] = raw;
    } else {
      problems.push(`unknown setting ${key} ignored`);
    }
  }
  return { shared, runs: perRun.slice(0, count), steps, problems };
}

export function compareHash(model) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(model.shared)) params.set(k, v);
  params.set('steps', String(model.steps));
  params.set('runs', String(model.runs.length));
  model.runs.forEach((r, i) => { for (const [k, v] of Object.entries(r)) params.set(`${LETTERS[i]}.${k}`, v); });
  return '#' + params.toString().replace(/%2C/g, ',');
}

// One run's playground hash: shared settings, its own, a test evaluation every few steps.
function runHash(model, i) {
  const own = { ...model.runs[i] };
  const layers = String(model.shared.hidden || '8,8').split(',').length;
  if (own.p !== undefined && !String(own.p).includes(',')) own.p = Array(layers).fill(own.p).join(',');
  const params = new URLSearchParams({ ...model.shared, ...own, evalk: String(EVAL_EVERY) });
  return mergeHash('#' + params.toString());
}

function runLabel(model, i) {
  const r = model.runs[i];
  const bits = [];
  if (r.p !== undefined) bits.push(`p ${r.p}`);
  if (r.wd !== undefined && Number(r.wd) !== 0) bits.push(`wd ${r.wd}`);
  if (r.place === 'before_activation') bits.push('dropout before act.');
  if (r.bn && r.bn !== 'none') bits.push(`BN ${r.bn.replace('_', ' ')}`);
  return `${LETTERS[i].toUpperCase()}: ${bits.join(', ') || 'defaults'}`;
}

// Text from the URL, for Plotly: it reads a subset of HTML (links, styles) in trace names
export function plotlyText(text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// options: a select's choices, where they depend on other settings (the task's data sets)
function field(key, value, onChange, { label = BY_KEY[key].label, options = BY_KEY[key].options } = {}) {
  const f = BY_KEY[key];
  const id = `c-${key}-${Math.random().toString(36).slice(2, 7)}`;
  let input;
  if (f.type === 'select') {
    input = el('select', { id });
    for (const o of options) input.append(el('option', { value: o, text: o.replace(/_/g, ' ') }));
    input.value = value ?? f.def;
  } else {
    input = el('input', { id, type: f.type.endsWith('list') ? 'text' : 'number', value: value ?? (Array.isArray(f.def) ? f.def.join(',') : f.def) });
    if (!f.type.endsWith('list')) Object.assign(input, { min: f.min, max: f.max, step: f.step ?? 'any' });
  }
  const err = el('span', { className: 'field-error', role: 'status' });
  input.addEventListener('change', () => {
    const [, problem] = check(f, f.type.endsWith('list') ? input.value : input.value);
    err.textContent = problem || '';
    input.setAttribute('aria-invalid', problem ? 'true' : 'false');
    if (!problem) onChange(input.value);
  });
  return el('div', { className: 'field' }, el('label', { htmlFor: id, text: label }), input, err);
}

class Compare {
  constructor(root) {
    this.root = root;
    const parsed = parseCompare(location.hash);
    this.model = { shared: parsed.shared, runs: parsed.runs, steps: parsed.steps };
    if (parsed.problems.length) this.notice(`From the link: ${parsed.problems.join('; ')}.`);
    this.runs = [];
    this.losses = new LossView($('[data-role=losses]'));
    this.playing = true;
    this.bind();
    const conn = tabConnection();
    conn.addEventListener('connected', () => this.status('connected'));
    conn.addEventListener('disconnected', () => this.status('reconnecting…'));
    if (conn.connected) this.status('connected');
    this.renderShared();
    this.restart();
    setInterval(() => this.paint(), PAINT_MS);
    window.__compare = this;  // for the browser tests
  }

  bind() {
    $('[data-role=play]').addEventListener('click', () => this.toggle());
    $('[data-role=restart]').addEventListener('click', () => this.restart());
    $('[data-role=add]').addEventListener('click', () => {
      if (this.model.runs.length >= MAX_RUNS) return;
      this.model.runs.push({ p: '0.5' });
      this.changed();
    });
    window.addEventListener('hashchange', () => {
      if (location.hash === this.written) return;
      const parsed = parseCompare(location.hash);
      this.model = { shared: parsed.shared, runs: parsed.runs, steps: parsed.steps };
      this.renderShared();
      this.restart();
    });
  }

  renderShared() {
    const form = $('[data-role=shared]');
    form.textContent = '';
    const shared = this.model.shared, sets = setsOf(shared.task ?? BY_KEY.task.def);
    for (const key of SHARED_KEYS) {
      form.append(field(key, shared[key], v => {
        shared[key] = v;
        // a new task: its own data sets to choose from, and one of them
        if (key === 'task') { if (!setsOf(v).includes(shared.data ?? BY_KEY.data.def)) shared.data = setsOf(v)[0]; this.renderShared(); }
        this.changed();
      }, key === 'data' ? { options: sets } : {}));
    }
    const steps = el('input', { type: 'number', id: 'c-steps', min: STEPS.min, max: STEPS.max, step: 100, value: this.model.steps });
    steps.addEventListener('change', () => {
      const v = Number(steps.value);
      if (Number.isInteger(v) && v >= STEPS.min && v <= STEPS.max) { this.model.steps = v; this.changed(); }
    });
    form.append(el('div', { className: 'field' }, el('label', { htmlFor: 'c-steps', text: 'Every run stops at step' }), steps));
    $('[data-role=evalk]').textContent = String(EVAL_EVERY);
  }

  renderRuns() {
    const box = $('[data-role=runs]');
    box.textContent = '';
    this.cards = this.model.runs.map((r, i) => {
      const status = el('p', { className: 'run-status', text: 'starting…' });
      const remove = el('button', { type: 'button', className: 'small', text: 'remove', 'aria-label': `remove run ${LETTERS[i].toUpperCase()}` });
      remove.hidden = this.model.runs.length <= 2;
      remove.addEventListener('click', () => { this.model.runs.splice(i, 1); this.changed(); });
      const fields = RUN_KEYS.map(k => field(k, r[k], v => { r[k] = v; this.changed(); }, k === 'p' ? { label: 'p (drop), one or per layer' } : {}));
      const card = el('section', { className: 'panel run-card', dataset: { run: LETTERS[i] }, style: `--run-color: ${STYLES[i].color}` },
        el('h2', {}, el('span', { className: 'swatch', style: `border-top-style: ${STYLES[i].words}` }),
          el('span', { text: runLabel(this.model, i) }), el('span', { className: 'dash', text: `${STYLES[i].words} lines` }), remove),
        ...fields, status);
      box.append(card);
      return { card, status };
    });
    $('[data-role=add]').hidden = this.model.runs.length >= MAX_RUNS;
  }

  // A setting changed: new URL, and every run starts again from the same seed.
  changed() {
    this.written = compareHash(this.model);
    history.replaceState(null, '', this.written);
    this.restart();
  }

  // Restarts run one after another: the old runs close before the new ones start.
  restart() {
    this.restarting = (this.restarting || Promise.resolve()).then(() => this.startRuns()).catch(e => console.error(e));
    return this.restarting;
  }

  async startRuns() {
    const old = this.runs;
    this.runs = [];
    await Promise.all(old.map(r => r.close()));
    this.renderRuns();
    this.losses.setup(this.model.runs.map((_, i) => ({ name: plotlyText(runLabel(this.model, i)), ...STYLES[i] })));
    this.fitLegend();
    this.until = this.model.steps;
    this.markStop();
    this.runs = this.model.runs.map((_, i) => {
      const run = new LiveRun(runHash(this.model, i), { name: runLabel(this.model, i), stopAt: this.until });
      run.addEventListener('frame', e => this.losses.add(e.detail, i));
      run.addEventListener('problem', e => this.notice(`${run.name}: ${e.detail}`));
      run.addEventListener('playing', () => this.updateButton());
      return run;
    });
    const share = $('[data-role=share]');
    share.href = location.pathname + compareHash(this.model);
    this.playing = true;
    this.updateButton();
    await Promise.all(this.runs.map(r => r.start({ play: true })));
  }

  // Pause stops each run where it is; Play takes every run on to the same stop step (the
  // next one, `steps` further, once all stand at the current one).
  async toggle() {
    const any = this.runs.some(r => r.playing);
    if (any) { await Promise.all(this.runs.map(r => r.pause())); this.playing = false; }
    else {
      if (this.allAtStop()) { this.until += this.model.steps; this.markStop(); }
      for (const r of this.runs) r.stopAt = this.until;
      await Promise.all(this.runs.map(r => r.play()));
      this.playing = true;
    }
    this.updateButton();
  }

  allAtStop() {
    return this.runs.length > 0 && this.runs.every(r => !r.playing && r.step === this.until);
  }

  updateButton() {
    const b = $('[data-role=play]');
    const any = this.runs.some(r => r.playing);
    const text = any ? 'Pause' : this.allAtStop() ? `Train ${this.model.steps} more` : 'Play';
    if (b.textContent !== text) b.textContent = text;
  }

  // Three curves per run do not fit beside a phone's chart, and Plotly's legend then
  // scrolls over the axis title: below the chart instead, row after row, the figure
  // taller by the rows it needs.
  fitLegend() {
    const el = this.losses.el, width = el.clientWidth;
    if (!width) return;
    const entries = 3 * this.model.runs.length, perRow = Math.max(1, Math.floor((width - 20) / 170));
    const rows = Math.ceil(entries / perRow), legend = 20 * rows;
    el.style.height = `${260 + 44 + legend}px`;
    Plotly.relayout(el, {
      legend: { orientation: 'h', x: 0, xanchor: 'left', y: 0, yanchor: 'bottom', yref: 'container', entrywidth: 170,
                font: { size: 10 } },
      'margin.b': 44 + legend, height: 260 + 44 + legend,
    });
  }

  // A dotted line on the chart where every run will stop (and be compared).
  markStop() {
    const x = this.until;
    Plotly.relayout(this.losses.el, {
      shapes: [{ type: 'line', xref: 'x', yref: 'paper', x0: x, x1: x, y0: 0, y1: 1, line: { color: '#6b7480', width: 1, dash: 'dot' } }],
      annotations: [{ xref: 'x', yref: 'paper', x, y: 1, xanchor: 'right', yanchor: 'top', showarrow: false,
        text: `every run stops at step ${thousands(x)}`, font: { size: 10, color: '#4a5563' } }],
    });
  }

  // The table: each run's latest test evaluation and the step it was measured at. The
  // line above it says whether they may be compared: only when every run stands at the
  // stop step and was evaluated at one and the same step.
  paint() {
    this.losses.paint();
    if (!this.cards) return;
    // (soft hyphens: on a phone the long headings break there, and the table fits)
    const rows = [['run', 'measured at step', 'test loss', 'test accu\u00adracy', 'train loss', 'param\u00adeters']];
    this.runs.forEach((r, i) => {
      const h = r.last && r.last.header, e = h && h.eval;
      if (this.cards[i]) {
        this.cards[i].status.textContent = h ? `step ${thousands(h.step)}${r.playing ? ' · training' : ' · paused'}` : 'starting…';
      }
      rows.push([r.name, e ? thousands(e.step) : '–', fmt(e && e.test_loss), e && e.test_acc !== null ? `${(100 * e.test_acc).toFixed(1)}%` : '–',
        fmt(e && e.train_loss), r.info ? thousands(r.info.params) : '–']);
    });
    const table = $('[data-role=table]');
    table.textContent = '';
    rows.forEach((row, k) => table.append(el('tr', {}, ...row.map(c => el(k ? 'td' : 'th', { text: String(c) })))));
    this.verdict();
    this.updateButton();  // a run's complete frame may come after its 'paused' status
  }

  verdict() {
    const box = $('[data-role=verdict]');
    const evals = this.runs.map(r => r.last && r.last.header.eval);
    const stand = new Set(this.runs.map(r => r.step));
    const measured = new Set(evals.map(e => e && e.step));
    const still = this.runs.length > 0 && this.runs.every(r => r.last && !r.playing);
    let text, at = '';
    if (this.runs.some(r => !r.last)) {
      text = 'Starting…';
    } else if (still && stand.size === 1 && measured.size === 1 && evals.every(e => e && e.test_loss !== null)) {
      at = String(this.runs[0].step);
      const order = this.runs.map((r, i) => [r.name, evals[i].test_loss]).sort((a, b) => a[1] - b[1]);
      text = `Every run stopped at step ${thousands(this.runs[0].step)}. Test loss at step ${thousands(evals[0].step)}, lowest first: ` +
        order.map(([name, loss]) => `${name.replace(': ', ' (')}) ${fmt(loss)}`).join(' · ') + '.';
    } else if (!still) {
      text = `Training: each run at its own speed, so at different steps. Every run stops at step ${thousands(this.until)}; they are compared there.`;
    } else {
      text = `Paused at different steps (${this.runs.map(r => `${r.name.split(':')[0]} ${thousands(r.step)}`).join(', ')}): not compared. ` +
        `Play takes every run to step ${thousands(this.until)}.`;
    }
    if (box.textContent !== text) box.textContent = text;
    box.dataset.step = at;  // the step the runs are compared at ('' while they are not)
  }

  status(text) {
    const c = $('.top [data-role=connection]');
    if (c) c.textContent = text;
  }

  notice(text) {
    const n = $('[data-role=notice]');
    n.textContent = text;
    n.dataset.kind = 'warn';
    n.hidden = !text;
  }
}

function start() { new Compare($('[data-role=compare]')); }

// Plotly is a deferred script: it has run by DOMContentLoaded (this module is async)
if (window.Plotly) start(); else document.addEventListener('DOMContentLoaded', start);
