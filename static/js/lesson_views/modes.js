// Lessons b and c: what a dropout layer does in train mode and in eval mode.
// Data: experiments on a live run (the 'experiment' event; model_server/experiments/),
// polled while the run trains, each poll with a new seed so the train-mode masks change.
import { COLORS, PROB_SCALE } from '../views/theme.js';
import { LiveRun, panel, draw, Readout, buttons, slider, poll, fmt, axis } from './common.js';

const PASSES = 30;
const GRIDS = 6;
const GRID = 40;
const CYCLE_MS = 350;

// ---- b. train vs eval, and the forgotten model.eval() --------------------------------------
export function trainVsEval(root, lesson, ctx) {
  const run = new LiveRun(lesson.hash, { stopAt: lesson.steps });
  const passes = panel(root, `One input, ${PASSES} forward passes in each mode`, { height: 260, wide: true, caption: 'P(class 1) for the same training point' });
  const planes = panel(root, 'Decision boundary without and with model.eval()', { height: 300, wide: true, caption: '' });
  // each number has one definition, used by the tile and the evidence alike
  const readout = new Readout(ctx.controls, [['step', 'step'], ['train_std', 'spread, train mode'], ['eval_std', 'spread, eval mode'],
    ['flicker', 'boundary flicker: pass to pass'], ['off', 'train-mode boundary vs eval']]);
  let example = 0, seed = 0, grids = null, shown = 0, points = null;
  buttons(ctx.controls, [['other', 'Another input point', () => { example = Math.floor(Math.random() * (run.info ? run.info.train_size : 1)); loop.now(); }]]);

  run.addEventListener('configured', e => { points = e.detail.points; });
  run.addEventListener('problem', e => ctx.problem(e.detail));

  async function probe() {
    if (!run.info || !run.last) return;
    seed++;
    const { step, result: a } = await run.measure('train_vs_eval', { example, passes: PASSES, seed });
    const b = await run.experiment('forgot_eval_boundary', { grids: GRIDS, size: GRID, seed });
    drawPasses(passes, a, step);
    grids = b; shown = 0;
    drawPlanes(planes, run.info.plane, grids, points, a.x);
    explainPasses(ctx, readout, a, b, step);
    ctx.tick();
  }

  // cycle through the train-mode grids: the flicker a visitor would see call after call
  const cycle = setInterval(() => {
    if (!grids || !planes.plot.data) return;
    shown = (shown + 1) % grids.train.length;
    Plotly.restyle(planes.plot, { z: [grids.train[shown]] }, [0]);
    planes.caption.textContent = `left: train-mode pass ${shown + 1} of ${grids.train.length} (new masks each time); right: eval mode, the same every time`;
  }, CYCLE_MS);

  const loop = poll(1500, probe);
  run.start();
  return { run, async stop() { loop.stop(); clearInterval(cycle); await run.close(); } };
}

// The answers of every pass in each mode, for one training point.
function drawPasses(passes, a, step) {
  const xs = a.train.map((_, i) => i + 1);
  const pe = a.eval[0];
  draw(passes.plot, [
    { type: 'scatter', mode: 'markers', name: 'train mode (dropout on)', x: xs, y: a.train, marker: { color: COLORS.neg, size: 8, symbol: 'diamond' } },
    { type: 'scatter', mode: 'lines+markers', name: 'eval mode (model.eval())', x: xs, y: a.eval, line: { color: COLORS.pos, width: 3 }, marker: { size: 5 } },
    { type: 'scatter', mode: 'lines', name: 'mean of the train-mode answers', x: [1, PASSES], y: [a.train_mean, a.train_mean], line: { color: COLORS.neg, width: 1.5, dash: 'dot' } },
  ], { xaxis: { title: { text: 'pass' } }, yaxis: { title: { text: 'P(class 1)' }, range: [-0.02, 1.02] },
    legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom' }, margin: { l: 48, r: 12, t: 30, b: 40 } });  // above the plot: clear of the x-axis title
  passes.caption.textContent = `training point #${a.example} at (${a.x.map(v => v.toFixed(2)).join(', ')}), class ${a.y}, step ${step}; the same weights in both modes. ` +
    `${a.below} train-mode answers below the eval-mode answer, ${a.above} above; their mean ${fmt(a.train_mean)} vs eval ${fmt(pe)}`;
}

// The readout, and the evidence: answers to three decimals, as the chart and the text show
// them. Answers that differ only past that (a point the network is sure of) are the same
// answer on screen.
function explainPasses(ctx, readout, a, b, step) {
  const pe = a.eval[0];
  const dec3 = v => v.toFixed(3);
  const trainShown = new Set(a.train.map(dec3)).size, evalShown = new Set(a.eval.map(dec3)).size;
  const sure = Math.abs(a.train_mean - 0.5) < Math.abs(pe - 0.5) ? 'less sure than' : 'at least as sure as';
  const numbers = { step, train_std: fmt(a.train_std), eval_std: fmt(a.eval_std), flicker: fmt(b.flicker), off: fmt(b.train_vs_eval) };
  readout.set(numbers);
  const boundary = `Boundary flicker: pass to pass (mean |ΔP| over the plane between consecutive train-mode passes) ${numbers.flicker}; ` +
    `train-mode boundary vs eval (mean |ΔP| between a train-mode pass and the eval-mode boundary) ${numbers.off}.`;
  if (trainShown > 1) {
    ctx.evidence(`Measured at step ${step} on point #${a.example}: ${PASSES} train-mode passes gave ${trainShown} different answers to three decimals, from ${dec3(Math.min(...a.train))} to ${dec3(Math.max(...a.train))} (spread ${numbers.train_std}); ` +
      `eval mode gave ${evalShown} (spread ${numbers.eval_std}), always ${fmt(pe)}. ${a.below} train-mode answers fall below the eval-mode answer and ${a.above} above it; ` +
      `their mean, ${fmt(a.train_mean)}, is ${sure} eval mode. ${boundary}`, { key: 'vary', answer: 'vary' });
  } else {
    // this point cannot show the answers varying: no verdict is drawn from it
    ctx.evidence(`Measured at step ${step} on point #${a.example}: all ${PASSES} train-mode answers read ${dec3(a.train[0])} to three decimals (spread ${numbers.train_std}), ` +
      `eval mode ${dec3(pe)}. ${boundary}`, { key: `flat:${a.example}`, about: `Point #${a.example}`, answer: null,
      explain: `The network is so sure of this point that no mask moves its answer by as much as 0.001: on screen its ${PASSES} train-mode answers are one flat line. ` +
        'This point shows neither side of the question, so it decides nothing; the boundary below still flickers from pass to pass. Choose "Another input point" for one the network is less sure of.' });
  }
}

// The boundary in train mode (its first pass) beside eval mode, the point ringed in both.
function drawPlanes(planes, range, grids, points, x) {
  const ax = axis(range, grids.size);
  const heat = (z, n) => ({ type: 'heatmap', x: ax, y: ax, z, zmin: 0, zmax: 1, colorscale: PROB_SCALE, showscale: false,
    hoverinfo: 'skip', xaxis: `x${n}`, yaxis: `y${n}` });
  const dots = (n) => [0, 1].map(c => ({ type: 'scatter', mode: 'markers', hoverinfo: 'skip', showlegend: false, xaxis: `x${n}`, yaxis: `y${n}`,
    x: points.train.filter(r => r[2] === c).map(r => r[0]), y: points.train.filter(r => r[2] === c).map(r => r[1]),
    marker: { size: 5, symbol: c ? 'circle' : 'diamond', color: c ? COLORS.pos : COLORS.neg, line: { width: 0.5, color: '#fff' } } }));
  const ring = n => ({ type: 'scatter', mode: 'markers', x: [x[0]], y: [x[1]], hoverinfo: 'skip', showlegend: false, xaxis: `x${n}`, yaxis: `y${n}`,
    marker: { size: 14, symbol: 'circle-open', color: '#111', line: { width: 2.5 } } });
  draw(planes.plot, [heat(grids.train[0], ''), ...dots(''), ring(''), heat(grids.eval, 2), ...dots(2), ring(2)], {
    grid: { rows: 1, columns: 2, pattern: 'independent' },
    xaxis: { range, domain: [0, 0.48], fixedrange: true, constrain: 'domain', zeroline: false },
    yaxis: { range, fixedrange: true, scaleanchor: 'x', zeroline: false },
    xaxis2: { range, domain: [0.52, 1], fixedrange: true, constrain: 'domain', zeroline: false },
    yaxis2: { range, fixedrange: true, scaleanchor: 'x2', zeroline: false },
    annotations: [
      { text: 'train mode: forgot model.eval()', x: 0.24, y: 1.0, xref: 'paper', yref: 'paper', showarrow: false, yanchor: 'bottom' },
      { text: 'eval mode', x: 0.76, y: 1.0, xref: 'paper', yref: 'paper', showarrow: false, yanchor: 'bottom' },
    ],
    margin: { l: 30, r: 10, t: 24, b: 24 },
  });
}

// ---- c. inverted scaling -------------------------------------------------------------------
export function invertedScaling(root, lesson, ctx) {
  const run = new LiveRun(lesson.hash, { stopAt: lesson.steps });
  const values = panel(root, 'One example through the dropout layer', { height: 300, caption: '' });
  const means = panel(root, 'Mean over 1000 train-mode passes vs the eval-mode value', { height: 300, caption: '' });
  const readout = new Readout(ctx.controls, [['p', 'p'], ['kept', 'kept values ×'], ['expected', '1/(1 − p)'], ['inv', 'mean ÷ eval, inverted'], ['raw', 'mean ÷ eval, no rescaling']]);
  // ps: the p the run trains with in each layer; the slider shows the shown layer's
  let layer = 0, seed = 0;
  const ps = run.state.p.slice();
  const label = () => `p of the shown layer (layer ${layer + 1})`;
  const pSlider = slider(ctx.controls, label(), { min: 0, max: 0.9, step: 0.05, value: ps[0], format: v => v.toFixed(2) }, async v => {
    const at = layer;
    ps[at] = v;
    await run.set({ param: 'p', layer: at, value: v });
    loop.now();
  });
  const showLayer = () => {
    pSlider.value = String(ps[layer]);
    pSlider.dispatchEvent(new Event('input'));  // its output follows
    pSlider.labels.forEach(l => { l.textContent = label(); });
  };
  buttons(ctx.controls, [['layer', 'Show the other layer', () => { layer = 1 - layer; showLayer(); loop.now(); }]]);
  run.addEventListener('problem', e => ctx.problem(e.detail));

  async function probe() {
    if (!run.info || !run.last) return;
    seed++;
    const r = await run.experiment('inverted_scaling', { layer, passes: 1000, examples: 16, seed });
    if (r.layer !== layer) return;  // the other layer was chosen meanwhile: its probe comes next
    // the example of the batch with the most nonzero values (ReLU leaves many at 0)
    const nonzero = row => row.filter(v => v !== 0).length;
    const e = r.input.reduce((best, row, k) => (nonzero(row) > nonzero(r.input[best]) ? k : best), 0);
    const idx = r.input[e].map((_, j) => j);
    const mask = r.first_mask[e];
    const dropped = idx.filter(j => !mask[j]);
    draw(values.plot, [
      { type: 'bar', name: 'entering dropout (= eval-mode output)', x: idx, y: r.input[e], marker: { color: COLORS.pos } },
      { type: 'bar', name: 'one train-mode pass', x: idx, y: r.first_output[e], marker: { color: COLORS.neg } },
      { type: 'scatter', mode: 'markers', name: 'dropped in this pass', x: dropped, y: dropped.map(() => 0),
        marker: { symbol: 'x-thin', size: 9, color: '#20242b', line: { width: 2, color: '#20242b' } } },
    ], { barmode: 'group', xaxis: { title: { text: `neuron of hidden layer ${r.layer + 1}` }, dtick: 1 }, yaxis: { title: { text: 'value' } },
      legend: { orientation: 'h', y: -0.28 } });
    values.caption.textContent = `training example ${e}; in this pass ${dropped.length} of ${mask.length} values were dropped (×), the kept ones multiplied by ${fmt(r.kept_scale, 2)}`;
    drawMeans(means, r);
    readout.set({ p: r.p.toFixed(2), kept: fmt(r.kept_scale), expected: fmt(r.expected_scale), inv: fmt(r.scale_inverted), raw: fmt(r.scale_no_rescale) });
    ctx.evidence(`Measured at p = ${r.p.toFixed(2)}: every kept value was multiplied by ${fmt(r.kept_scale)} (1/(1 − p) = ${fmt(r.expected_scale)}). Averaged over ${r.passes} passes the output is ${fmt(r.scale_inverted)} × the eval-mode value; without the rescaling it would be ${fmt(r.scale_no_rescale)} × (1 − p = ${fmt(1 - r.p, 2)}).`);
    ctx.tick();
  }

  const loop = poll(1500, probe);
  run.start();
  return { run, async stop() { loop.stop(); await run.close(); } };
}

// Each value's mean over the passes against its eval-mode value, with and without rescaling.
function drawMeans(means, r) {
  const x = r.input.flat(), inv = r.mean_inverted.flat(), raw = r.mean_no_rescale.flat();
  const keep = x.map((v, i) => v !== 0 ? i : -1).filter(i => i >= 0);
  const top = Math.max(1e-6, ...x);
  draw(means.plot, [
    { type: 'scatter', mode: 'lines', name: 'y = x', x: [0, top], y: [0, top], line: { color: '#888', dash: 'dot', width: 1 }, hoverinfo: 'skip' },
    { type: 'scatter', mode: 'lines', name: `y = (1 − p)·x`, x: [0, top], y: [0, (1 - r.p) * top], line: { color: '#888', dash: 'dash', width: 1 }, hoverinfo: 'skip' },
    { type: 'scatter', mode: 'markers', name: 'inverted dropout (PyTorch)', x: keep.map(i => x[i]), y: keep.map(i => inv[i]), marker: { color: COLORS.pos, size: 6 } },
    { type: 'scatter', mode: 'markers', name: 'no rescaling (counterfactual)', x: keep.map(i => x[i]), y: keep.map(i => raw[i]), marker: { color: COLORS.neg, size: 6, symbol: 'diamond' } },
  ], { xaxis: { title: { text: 'eval-mode value x' } }, yaxis: { title: { text: 'mean over passes' } }, legend: { orientation: 'h', y: -0.3 } });
  means.caption.textContent = `${keep.length} nonzero values of 16 examples, layer ${r.layer + 1}, p = ${r.p.toFixed(2)}; measured drop rate ${fmt(r.drop_rate)}`;
}
