// Lessons f and g: pictures of masks at work. Both poll an experiment on a live run.
//   f. spatial_dropout: one digit's feature maps through Dropout2d and element-wise Dropout
//   g. mc_dropout: T thinned networks' boundaries, their average, eval mode, the spread
import { COLORS, PROB_SCALE } from '../views/theme.js';
import { SCHEMA } from '../state.js';
import { LiveRun, panel, draw, Readout, buttons, slider, poll, fmt, axis } from './common.js';

const MAPS_SCALE = [[0, COLORS.neg], [0.5, '#f4f4f2'], [1, COLORS.pos]];
const STD_SCALE = [[0, '#f7f7f5'], [1, '#4a2377']];

// ---- f. spatial dropout --------------------------------------------------------------------
export function spatial(root, lesson, ctx) {
  const run = new LiveRun(lesson.hash, { stopAt: lesson.steps });
  const maps = panel(root, 'First-layer feature maps of one digit', { height: 330, wide: true, caption: '' });
  const readout = new Readout(ctx.controls, [['p', 'p'], ['whole2d', 'maps fully zeroed: Dropout2d'], ['whole1d', '… element-wise'], ['zeros', 'zeroed values: 2d / element-wise']]);
  let example = 0, seed = 0, p = 0.5;
  const tally = { draws: 0, whole2d: 0, whole1d: 0, z2d: 0, z1d: 0 };
  const clear = () => Object.assign(tally, { draws: 0, whole2d: 0, whole1d: 0, z2d: 0, z1d: 0 });
  slider(ctx.controls, 'p of both kinds', { min: 0, max: 0.9, step: 0.05, value: p, format: v => v.toFixed(2) }, v => { p = v; clear(); loop.now(); });
  buttons(ctx.controls, [['digit', 'Another digit', () => { example = Math.floor(Math.random() * (run.info ? run.info.train_size : 1)); loop.now(); }]]);
  run.addEventListener('problem', e => ctx.problem(e.detail));

  async function probe() {
    if (!run.info || !run.last) return;
    const r = await run.experiment('spatial_dropout', { example, layer: 0, p, seed: ++seed });
    const C = r.input.length, W = (C + 1) * 9 - 1, H = 3 * 9 - 1;
    const z = Array.from({ length: H }, () => new Array(W).fill(null));
    const put = (tile, row, col, scale) => {
      for (let i = 0; i < 8; i++) for (let j = 0; j < 8; j++) z[row * 9 + i][col * 9 + j] = tile[i][j] / scale;
    };
    const imgMax = Math.max(1e-6, ...r.image.flat().map(Math.abs));
    put(r.image, 0, 0, imgMax);
    for (let c = 0; c < C; c++) {
      // one scale per channel for all three rows: kept values really are 1/(1 - p) larger
      const scale = Math.max(1e-6, ...r.input[c].flat().map(Math.abs)) / Math.max(1e-6, 1 - p);
      put(r.input[c], 0, c + 1, scale);
      put(r.dropout2d.output[c], 1, c + 1, scale);
      put(r.dropout.output[c], 2, c + 1, scale);
    }
    const label = (text, row) => ({ text, x: -0.5, y: row * 9 + 3.5, xref: 'x', yref: 'y', xanchor: 'right', showarrow: false, font: { size: 11 } });
    draw(maps.plot, [{ type: 'heatmap', z, zmin: -1, zmax: 1, colorscale: MAPS_SCALE, showscale: false, hoverinfo: 'skip', xgap: 0, ygap: 0 }], {
      xaxis: { visible: false, fixedrange: true, range: [-0.5, W - 0.5] },
      yaxis: { visible: false, autorange: 'reversed', fixedrange: true, scaleanchor: 'x' },
      annotations: [label('digit · input maps', 0), label('Dropout2d', 1), label('Dropout', 2)],
      margin: { l: 110, r: 8, t: 8, b: 8 },
    });
    const dropped2d = r.dropout2d.channel_kept.filter(k => !k).length;
    Object.assign(tally, { draws: tally.draws + 1, whole2d: tally.whole2d + dropped2d, whole1d: tally.whole1d + r.dropout.channels_fully_dropped,
      z2d: tally.z2d + r.dropout2d.zero_fraction, z1d: tally.z1d + r.dropout.zero_fraction });
    maps.caption.textContent = `digit ${r.label} (training example ${r.example}), p = ${r.p.toFixed(2)}. Dropout2d removed ${dropped2d} of ${C} maps; element-wise Dropout removed none whole (${r.dropout.channels_fully_dropped}) but left holes everywhere. Colour: blue > 0, white = 0.`;
    readout.set({ p: r.p.toFixed(2), whole2d: `${dropped2d} of ${C}`, whole1d: `${r.dropout.channels_fully_dropped} of ${C}`,
      zeros: `${fmt(100 * r.dropout2d.zero_fraction, 0)}% / ${fmt(100 * r.dropout.zero_fraction, 0)}%` });
    if (tally.draws >= 3) {
      const n = tally.draws;
      ctx.evidence(`Measured over ${n} draws at p = ${p.toFixed(2)}: Dropout2d zeroed ${fmt(tally.whole2d / n, 1)} of ${C} maps completely on average (${fmt(100 * tally.z2d / n, 0)}% of the values); element-wise Dropout zeroed ${fmt(100 * tally.z1d / n, 0)}% of the values but ${fmt(tally.whole1d / n, 1)} whole maps.`);
    }
    ctx.tick();
  }

  const loop = poll(2000, probe);
  run.start();
  return { run, async stop() { loop.stop(); await run.close(); } };
}

// ---- g. ensembles of thinned networks, MC dropout -----------------------------------------
const SMALL = 8;   // thinned networks drawn as small multiples
const SIZE = 32;   // grid resolution of every map
const DRAWS = 6;   // independent draws of T masks per measurement: the spread of each number

const mean = xs => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = xs => { const m = mean(xs); return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1)); };
const pm = xs => `${fmt(mean(xs))} ± ${fmt(sd(xs))}`;

export function ensemble(root, lesson, ctx) {
  const run = new LiveRun(lesson.hash, { stopAt: lesson.steps });
  const small = panel(root, `The first ${SMALL} thinned networks`, { height: 300, wide: true, caption: 'each: one fixed mask, all neurons of the plane go through the same thinned network' });
  const big = panel(root, 'Their average (MC dropout), eval mode, and the spread', { height: 320, wide: true, caption: '' });
  const spread = panel(root, `The same numbers over ${DRAWS} draws of masks`, { height: 300, wide: true, caption: '' });
  const readout = new Readout(ctx.controls, [['T', 'T'], ['mc', 'eval ↔ average'], ['single', 'one thinned ↔ average'], ['loss', 'test loss: eval / MC / one thinned']]);
  let T = 16, seed = 0, points = null;
  const thinned = SCHEMA.experiments.mc_dropout.properties.thinned;  // the server's range
  slider(ctx.controls, 'T thinned networks', { min: thinned.minimum, max: thinned.maximum, step: 1, value: T, format: v => String(v) }, v => { T = v; loop.now(); });
  buttons(ctx.controls, [['resample', 'Draw new masks', () => loop.now()]]);
  run.addEventListener('configured', e => { points = e.detail.points; });
  run.addEventListener('problem', e => ctx.problem(e.detail));

  const dots = n => trainDots(points, n);
  const grid = (rows, cols, n, gap) => gridLayout(run.info.plane, rows, cols, n, gap);

  async function probe() {
    if (!run.info || !run.last || !points) return;
    const { step, result: r } = await run.measure('mc_dropout', { thinned: T, size: SIZE, seed: ++seed, draws: DRAWS });
    const ax = axis(run.info.plane, r.size);
    const heat = (z, k, scale = PROB_SCALE, zmax = 1) => ({ type: 'heatmap', x: ax, y: ax, z, zmin: 0, zmax, colorscale: scale, showscale: false,
      hoverinfo: 'skip', xaxis: `x${k ? k + 1 : ''}`, yaxis: `y${k ? k + 1 : ''}` });
    const n = Math.min(SMALL, r.boundaries.length);
    draw(small.plot, r.boundaries.slice(0, n).map((b, k) => heat(b, k)), { ...grid(2, 4, n), margin: { l: 8, r: 8, t: 8, b: 8 } });
    let maxStd = 1e-6; for (const row of r.std) for (const v of row) maxStd = Math.max(maxStd, v);
    const titles = [`average of ${r.thinned} (MC dropout)`, 'eval mode (all neurons)', `spread: std over ${r.thinned}`];
    draw(big.plot, [heat(r.mean, 0), ...dots(''), heat(r.eval, 1), ...dots(2), heat(r.std, 2, STD_SCALE, maxStd), ...dots(3)], {
      ...grid(1, 3, 3, 0.04),
      annotations: titles.map((text, k) => ({ text, x: (k + 0.5) / 3, y: 1, xref: 'paper', yref: 'paper', yanchor: 'bottom', showarrow: false, font: { size: 12 } })),
      margin: { l: 8, r: 8, t: 24, b: 8 },
    });
    big.caption.textContent = `step ${step}, first draw. Left and middle: P(class 1); right: dark = the thinned networks disagree (max std ${fmt(maxStd, 2)}).`;
    drawSpread(spread, r.draws, step, r.thinned);
    ensembleNumbers(ctx, readout, r, step);
    ctx.tick();
  }

  const loop = poll(2500, probe);
  run.start();
  return { run, async stop() { loop.stop(); await run.close(); } };
}

// The training points of each class, on the axes of panel n.
const trainDots = (points, n) => [0, 1].map(c => ({ type: 'scatter', mode: 'markers', hoverinfo: 'skip', showlegend: false, xaxis: `x${n}`, yaxis: `y${n}`,
  x: points.train.filter(r => r[2] === c).map(r => r[0]), y: points.train.filter(r => r[2] === c).map(r => r[1]),
  marker: { size: 4, symbol: c ? 'circle' : 'diamond', color: c ? COLORS.pos : COLORS.neg, line: { width: 0.5, color: '#fff' } } }));

// rows x cols square maps of the plane, the first n of them used.
function gridLayout(range, rows, cols, n, gap = 0.03) {
  const layout = {};
  for (let k = 0; k < n; k++) {
    const r = Math.floor(k / cols), c = k % cols, id = k ? k + 1 : '';
    const w = (1 - gap * (cols - 1)) / cols, h = (1 - gap * 2 * (rows - 1)) / rows;
    layout[`xaxis${id}`] = { domain: [c * (w + gap), c * (w + gap) + w], range, visible: false, fixedrange: true, anchor: `y${id}` };
    layout[`yaxis${id}`] = { domain: [1 - (r + 1) * h - r * gap * 2, 1 - r * (h + gap * 2)], range, visible: false, fixedrange: true, anchor: `x${id}`, scaleanchor: `x${id}` };
  }
  return layout;
}

// The readout and the evidence, every number over the draws: one draw's margin can be
// smaller than the spread.
function ensembleNumbers(ctx, readout, r, step) {
  const D = r.draws, col = f => D.map(f);
  const evalAvg = col(d => d.mc_vs_eval), singleAvg = col(d => d.single_vs_mean);
  const closer = col(d => d.single_vs_mean - d.mc_vs_eval);
  const lossEval = D[0].test_loss.eval, lossMc = col(d => d.test_loss.mc), lossOne = col(d => d.test_loss.single);
  readout.set({ T: r.thinned, mc: pm(evalAvg), single: pm(singleAvg), loss: `${fmt(lossEval)} / ${pm(lossMc)} / ${pm(lossOne)}` });
  if (r.thinned >= 8) {
    const won = closer.filter(v => v > 0).length;
    const clear = mean(closer) > sd(closer) ? 'by more than the spread over draws' : 'but by less than the spread over draws: no clear claim';
    const mcBetter = lossMc.filter(v => v < lossEval).length;
    const mcClause = mcBetter === D.length && lossEval - mean(lossMc) > sd(lossMc) ? 'the MC average predicted better than eval mode in every draw'
      : mcBetter === 0 && mean(lossMc) - lossEval > sd(lossMc) ? 'eval mode predicted better than the MC average in every draw'
        : `the MC average beat eval mode in ${mcBetter} of ${D.length} draws: no clear winner`;
    const oneWorse = lossOne.filter(v => v > lossEval).length;
    ctx.evidence(`Measured with T = ${r.thinned} at step ${step}, over ${D.length} draws of masks (mean ± standard deviation): over the plane, the eval-mode network's P(class 1) is ${pm(evalAvg)} away from the average of the thinned networks, a single thinned network ${pm(singleAvg)}. ` +
      `Eval mode was the closer one in ${won} of ${D.length} draws, ${clear}. Test loss: eval mode ${fmt(lossEval)} (no randomness), MC average ${pm(lossMc)}, one thinned network ${pm(lossOne)} (higher than eval mode in ${oneWorse} of ${D.length} draws); ${mcClause}.`);
  }
}

// left: distances to the average; right: test losses; a dot per draw, mean ± sd bars
function drawSpread(spread, D, step, T) {
  const groups = [
    ['x', 'y', [['eval ↔ average', d => d.mc_vs_eval, COLORS.pos], ['one thinned ↔ average', d => d.single_vs_mean, COLORS.neg]]],
    ['x2', 'y2', [['eval mode', d => d.test_loss.eval, COLORS.pos], ['MC average', d => d.test_loss.mc, '#4a2377'], ['one thinned', d => d.test_loss.single, COLORS.neg]]],
  ];
  const traces = [];
  for (const [xa, ya, series] of groups) {
    for (const [name, f, color] of series) {
      const ys = D.map(f);
      traces.push({ type: 'scatter', mode: 'markers', name, xaxis: xa, yaxis: ya, x: ys.map(() => name), y: ys, showlegend: false,
        marker: { color, size: 7, opacity: 0.75 }, hovertemplate: `${name}, draw %{pointNumber}: %{y:.3f}<extra></extra>` });
      traces.push({ type: 'scatter', mode: 'markers', name: `${name}: mean ± sd`, xaxis: xa, yaxis: ya, x: [name], y: [mean(ys)], showlegend: false,
        error_y: { type: 'data', array: [sd(ys)], color: '#20242b', thickness: 2, width: 12 },
        marker: { symbol: 'line-ew-open', size: 28, color: '#20242b', line: { width: 3 } }, hoverinfo: 'skip' });
    }
  }
  draw(spread.plot, traces, {
    xaxis: { domain: [0, 0.45], type: 'category' }, yaxis: { title: { text: 'mean |ΔP| over the plane' }, rangemode: 'tozero' },
    xaxis2: { domain: [0.55, 1], type: 'category', anchor: 'y2' }, yaxis2: { title: { text: 'test loss' }, anchor: 'x2', rangemode: 'tozero' },
    margin: { l: 52, r: 12, t: 10, b: 40 },
  });
  spread.caption.textContent = `step ${step}: ${D.length} independent draws of ${T} masks each, the same weights; a dot per draw, bars: mean ± standard deviation. ` +
    'Eval mode has no randomness: its test loss is the same in every draw.';
  spread.plot.dataset.draws = String(D.length);
}
