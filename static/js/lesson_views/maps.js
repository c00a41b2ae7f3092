// Lessons f and g: pictures of masks at work. Both poll an experiment on a live run.
//   f. spatial_dropout: one digit's feature maps through Dropout2d and element-wise Dropout
//   g. mc_dropout: T thinned networks' boundaries, their average, eval mode, the spread
import { COLORS, PROB_SCALE } from '../views/theme.js';
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

export function ensemble(root, lesson, ctx) {
  const run = new LiveRun(lesson.hash, { stopAt: lesson.steps });
  const small = panel(root, `The first ${SMALL} thinned networks`, { height: 300, wide: true, caption: 'each: one fixed mask, all neurons of the plane go through the same thinned network' });
  const big = panel(root, 'Their average (MC dropout), eval mode, and the spread', { height: 320, wide: true, caption: '' });
  const readout = new Readout(ctx.controls, [['T', 'T'], ['mc', 'eval ↔ average'], ['single', 'one thinned ↔ average'], ['loss', 'test loss: eval / MC / one thinned']]);
  let T = 16, seed = 0, points = null;
  slider(ctx.controls, 'T thinned networks', { min: 1, max: 64, step: 1, value: T, format: v => String(v) }, v => { T = v; loop.now(); });
  buttons(ctx.controls, [['resample', 'Draw new masks', () => loop.now()]]);
  run.addEventListener('configured', e => { points = e.detail.points; });
  run.addEventListener('problem', e => ctx.problem(e.detail));

  const dots = n => [0, 1].map(c => ({ type: 'scatter', mode: 'markers', hoverinfo: 'skip', showlegend: false, xaxis: `x${n}`, yaxis: `y${n}`,
    x: points.train.filter(r => r[2] === c).map(r => r[0]), y: points.train.filter(r => r[2] === c).map(r => r[1]),
    marker: { size: 4, symbol: c ? 'circle' : 'diamond', color: c ? COLORS.pos : COLORS.neg, line: { width: 0.5, color: '#fff' } } }));

  function grid(rows, cols, n, gap = 0.03) {
    const layout = {}, range = run.info.plane;
    for (let k = 0; k < n; k++) {
      const r = Math.floor(k / cols), c = k % cols, id = k ? k + 1 : '';
      const w = (1 - gap * (cols - 1)) / cols, h = (1 - gap * 2 * (rows - 1)) / rows;
      layout[`xaxis${id}`] = { domain: [c * (w + gap), c * (w + gap) + w], range, visible: false, fixedrange: true, anchor: `y${id}` };
      layout[`yaxis${id}`] = { domain: [1 - (r + 1) * h - r * gap * 2, 1 - r * (h + gap * 2)], range, visible: false, fixedrange: true, anchor: `x${id}`, scaleanchor: `x${id}` };
    }
    return layout;
  }

  async function probe() {
    if (!run.info || !run.last || !points) return;
    const r = await run.experiment('mc_dropout', { thinned: T, size: SIZE, seed: ++seed });
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
    big.caption.textContent = `step ${run.last.header.step}. Left and middle: P(class 1); right: dark = the thinned networks disagree (max std ${fmt(maxStd, 2)}).`;
    // how far a single thinned network is from the average, for comparison with eval mode
    let sum = 0, count = 0;
    for (const b of r.boundaries) b.forEach((row, i) => row.forEach((v, j) => { sum += Math.abs(v - r.mean[i][j]); count++; }));
    const singleVsMean = sum / count;
    const tl = r.test_loss;
    readout.set({ T: r.thinned, mc: fmt(r.mc_vs_eval), single: fmt(singleVsMean), loss: `${fmt(tl.eval)} / ${fmt(tl.mc)} / ${fmt(tl.single)}` });
    if (r.thinned >= 8) {
      ctx.evidence(`Measured with T = ${r.thinned} at step ${run.last.header.step}: over the plane, the eval-mode network's P(class 1) is on average ${fmt(r.mc_vs_eval)} away from the average of the thinned networks, while a single thinned network is ${fmt(singleVsMean)} away from it. Test loss: eval mode ${fmt(tl.eval)}, MC average ${fmt(tl.mc)}, one thinned network ${fmt(tl.single)} (mean over the ${r.thinned}).`);
    }
    ctx.tick();
  }

  const loop = poll(2500, probe);
  run.start();
  return { run, async stop() { loop.stop(); await run.close(); } };
}
