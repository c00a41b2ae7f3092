// Lessons e and i: the batched dropout sweep (the 'sweep' event; model_server/sweep.py).
// The server trains one copy of the SWEEP_PRESET network per p, all at once; the page asks
// for a few steps at a time and redraws from each answer, so the chart fills in live.
import { tabConnection } from '../connection.js';
import { COLORS } from '../views/theme.js';
import { LiveRun, panel, draw, Readout, poll, slider, fmt, sleep } from './common.js';

const CHUNK = 20;   // steps per 'sweep' event

// The tab's one sweep (the server keeps one per tab), on the tab's socket.
export class SweepClient {
  constructor() {
    this.conn = tabConnection();
    this.stopped = false;
  }

  async call(payload) {
    const ack = await this.conn.call('sweep', payload);
    if (!ack.ok) { const e = new Error(`${ack.error.field}: ${ack.error.message}`); e.ack = ack; throw e; }
    return ack.sweep;
  }

  // Start a sweep over ps and train it to `steps`, calling onResult after each answer.
  async run(ps, steps, onResult) {
    this.stopped = false;
    await this.conn.ready();
    let result = await this.call({ action: 'start', ps });
    onResult(result);
    while (!this.stopped && result.step < steps) {
      result = await this.call({ action: 'step', steps: Math.min(CHUNK, steps - result.step) });
      if (!this.stopped) onResult(result);
    }
    return result;
  }

  close() {
    this.stopped = true;
  }
}

// Viridis stops, for one colour per p (ordered, colour-blind safe).
const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
export function ramp(t) {
  const x = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1), i = Math.min(VIRIDIS.length - 2, Math.floor(x)), u = x - i;
  const c = VIRIDIS[i].map((v, k) => Math.round(v + (VIRIDIS[i + 1][k] - v) * u));
  return `rgb(${c.join(',')})`;
}

// Final train and test loss against p; p = 1 gets its own marker and a warning.
function drawLossVsP(el, r, { emphasise = 'test' } = {}) {
  const ps = r.ps, one = ps.indexOf(1);
  const line = (name, ys, color, width) => ({ type: 'scatter', mode: 'lines+markers', name, x: ps, y: ys,
    line: { color, width }, marker: { size: 7 }, hovertemplate: 'p = %{x}: %{y:.3f}<extra>' + name + '</extra>' });
  const traces = [
    line('train loss (eval mode, whole train set)', r.train_loss, COLORS.train, emphasise === 'train' ? 3.5 : 2),
    line('test loss', r.test_loss, COLORS.test, emphasise === 'test' ? 3.5 : 2),
  ];
  const annotations = [];
  if (one >= 0) {
    traces.push({ type: 'scatter', mode: 'markers', name: 'p = 1: every neuron dropped', x: [1, 1], y: [r.train_loss[one], r.test_loss[one]],
      marker: { symbol: 'x', size: 14, color: COLORS.neg, line: { width: 2 } }, hoverinfo: 'skip' });
    annotations.push({ x: 1, y: r.test_loss[one], text: 'p = 1: learns only<br>the class balance', ax: -70, ay: -40, font: { color: COLORS.neg, size: 11 } });
  }
  const best = ps.indexOf(r.best_p);
  if (emphasise === 'test' && best >= 0) {
    annotations.push({ x: r.best_p, y: r.test_loss[best], text: `lowest test loss<br>p = ${r.best_p}`, ax: 0, ay: -50, font: { size: 11 } });
  }
  draw(el, traces, { xaxis: { title: { text: 'p (drop probability)' }, nticks: 12 }, yaxis: { title: { text: 'loss' }, rangemode: 'tozero' },
    legend: { orientation: 'h', y: -0.28 }, annotations, margin: { l: 48, r: 16, t: 10, b: 40 } });
}

// ---- e. the rate sweep ---------------------------------------------------------------------
export function rateSweep(root, lesson, ctx) {
  const { ps, steps } = lesson.sweep;
  const vsP = panel(root, `Loss against p, after the steps so far`, { height: 320, caption: '' });
  const curves = panel(root, 'Test loss during training, one line per p', { height: 320, caption: 'eval mode, the 50 test points' });
  const warn = ctx.warning('p = 1 drops every hidden neuron at every step. PyTorch allows it (the output is zeros, not NaN), but nothing reaches the output layer: every weight gets a zero gradient and only the output bias learns. Its loss stays near the label entropy (about 0.69 for two balanced classes) and its accuracy is the share of one class.');
  const readout = new Readout(ctx.controls, [['step', 'step'], ['best', 'lowest test loss at'], ['p0', 'p = 0: train / test'], ['p1', 'p = 1: train / test']]);
  const client = new SweepClient();

  function show(r) {
    drawLossVsP(vsP.plot, r);
    vsP.caption.textContent = `after ${r.step} of ${steps} steps; losses in eval mode on the whole training (50) and test (50) sets`;
    const c = r.curve;
    draw(curves.plot, r.ps.map((p, k) => ({ type: 'scatter', mode: 'lines', name: `p = ${p}`, x: c.step, y: c.test_loss[k],
      line: { color: ramp(0.9 * p), width: p === 1 ? 3 : 1.6, dash: p === 1 ? 'dot' : 'solid' } })),
    { xaxis: { title: { text: 'step' } }, yaxis: { title: { text: 'test loss' }, rangemode: 'tozero' }, legend: { font: { size: 10 } },
      margin: { l: 48, r: 8, t: 10, b: 40 } });
    const at = p => r.ps.indexOf(p);
    const pair = k => (k >= 0 ? `${fmt(r.train_loss[k])} / ${fmt(r.test_loss[k])}` : '–');
    readout.set({ step: r.step, best: `p = ${r.best_p}`, p0: pair(at(0)), p1: pair(at(1)) });
    const k1 = at(1);
    if (k1 >= 0) warn.textContent = `p = 1 drops every hidden neuron at every step. PyTorch allows it (zeros, not NaN), but nothing reaches the output layer: all weights get zero gradients, only the output bias learns the class balance. Measured now: train loss ${fmt(r.train_loss[k1])}, test loss ${fmt(r.test_loss[k1])}, test accuracy ${fmt(100 * r.test_acc[k1], 0)}%.`;
    if (r.step >= steps) {
      const k0 = at(0), kb = at(r.best_p);
      ctx.evidence(`Measured after ${r.step} steps: the lowest test loss is at p = ${r.best_p} (${fmt(r.test_loss[kb])}). p = 0 reached train loss ${fmt(r.train_loss[k0])} but test loss ${fmt(r.test_loss[k0])}.` +
        (k1 >= 0 ? ` p = 1 stayed at ${fmt(r.train_loss[k1])} (train) and ${fmt(r.test_loss[k1])} (test).` : ''));
    }
    ctx.tick();
  }

  client.run(ps, steps, show).catch(e => ctx.problem(e.message));
  return { async stop() { client.close(); } };
}

// ---- i. myths: dropout removes nothing; too much dropout underfits ------------------------
export function myths(root, lesson, ctx) {
  const run = new LiveRun(lesson.hash, { stopAt: lesson.steps });
  const params = panel(root, 'Parameters, with and without dropout', { height: 260, caption: '' });
  const sizes = panel(root, 'Width of each hidden layer', { height: 260, caption: '' });
  const under = panel(root, 'Too much dropout: training loss against p (the sweep of lesson e)', { height: 300, wide: true,
    caption: 'both losses in eval mode; rising training loss = the network cannot fit even the data it trains on' });
  const readout = new Readout(ctx.controls, [['params', 'parameters'], ['zeros', 'zero values, train vs eval']]);
  slider(ctx.controls, 'p of both layers', { min: 0, max: 0.95, step: 0.05, value: run.state.p[0], format: v => v.toFixed(2) }, async v => {
    for (let l = 0; l < run.state.p.length; l++) await run.set({ param: 'p', layer: l, value: v });
    loop.now();
  });
  run.addEventListener('problem', e => ctx.problem(e.detail));
  let found = null, swept = null, seed = 0;

  async function probe() {
    if (!run.info || !run.last) return;
    const r = await run.experiment('myths', { examples: 32, seed: ++seed });
    draw(params.plot, [{ type: 'bar', x: [`with dropout (p = ${r.p.map(v => v.toFixed(2)).join(', ')})`, 'same network, p = 0'],
      y: [r.params, r.params_without_dropout], text: [r.params, r.params_without_dropout].map(v => v.toLocaleString('en')),
      textposition: 'inside', marker: { color: [COLORS.pos, COLORS.muted] } }],
    { yaxis: { title: { text: 'parameters' }, rangemode: 'tozero' } });
    params.caption.textContent = r.params_equal ? 'identical: dropout has no parameters and deletes none' : 'different?!';
    const layers = r.sizes_config.map((_, l) => `layer ${l + 1}`);
    const width = shapes => shapes.map(s => s.reduce((a, b) => a * b, 1));
    draw(sizes.plot, [
      { type: 'bar', name: 'in the config', x: layers, y: r.sizes_config, marker: { color: COLORS.muted } },
      { type: 'bar', name: 'eval mode', x: layers, y: width(r.sizes_eval), marker: { color: COLORS.pos } },
      { type: 'bar', name: 'train mode', x: layers, y: width(r.sizes_train), marker: { color: COLORS.neg } },
    ], { barmode: 'group', yaxis: { title: { text: 'neurons' } }, legend: { orientation: 'h', y: -0.2 } });
    const zt = r.zero_fraction_train.map(v => `${fmt(100 * v, 0)}%`), ze = r.zero_fraction_eval.map(v => `${fmt(100 * v, 0)}%`);
    sizes.caption.textContent = `share of zero values leaving each layer, train mode: ${zt.join(', ')}; eval mode: ${ze.join(', ')} (ReLU zeros included)`;
    readout.set({ params: `${r.params.toLocaleString('en')} = ${r.params_without_dropout.toLocaleString('en')}`, zeros: `${zt[0]} vs ${ze[0]}` });
    found = r;
    evidence();
    ctx.tick();
  }

  function evidence() {
    if (!found || !swept || swept.step < lesson.sweep.steps) return;
    const k0 = swept.ps.indexOf(0), k9 = swept.ps.indexOf(0.9);
    ctx.evidence(`Measured: ${found.params.toLocaleString('en')} parameters with p = ${found.p[0].toFixed(2)}, ${found.params_without_dropout.toLocaleString('en')} at p = 0; layer widths ${found.sizes_train.map(s => s[0]).join(', ')} in train and eval mode alike. In the sweep the training loss rises from ${fmt(swept.train_loss[k0])} at p = 0 to ${fmt(swept.train_loss[k9])} at p = 0.9: too much dropout underfits.`);
  }

  const client = new SweepClient();
  const sweepAfterConfigure = async () => {
    await run.conn.ready();
    await sleep(200);
    await client.run(lesson.sweep.ps, lesson.sweep.steps, r => { swept = r; drawLossVsP(under.plot, r, { emphasise: 'train' }); evidence(); ctx.tick(); });
  };
  const loop = poll(1500, probe);
  run.start().then(() => sweepAfterConfigure()).catch(e => ctx.problem(e.message));
  return { run, async stop() { loop.stop(); client.close(); await run.close(); } };
}
