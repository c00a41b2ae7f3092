// Lessons j and k: regularisers side by side (model_server/regularizers.py). Their
// experiments train copies of the overfitting preset at once, on several seeds, and need
// no run: 'experiment' {name: 'data_size' | 'alternatives' | 'noise_injection'}. Every
// verdict on screen is computed here from the numbers those answers carry.
import { COLORS } from '../views/theme.js';
import { LiveRun, panel, draw, Readout, slider, fmt, el, presetExperiment } from './common.js';

const pm = s => `${fmt(s.mean)} ± ${fmt(s.std)}`;
const count = n => Math.round(n).toLocaleString('en');

// mean ± sd per category, and a dot per seed beside it
function withSeeds(name, xs, spreads, color, { symbol = 'circle' } = {}) {
  return [
    { type: 'scatter', mode: 'lines+markers', name, x: xs, y: spreads.map(s => s.mean),
      error_y: { type: 'data', array: spreads.map(s => s.std), thickness: 1.5, width: 5, color },
      line: { color, width: 2.5 }, marker: { color, size: 8, symbol },
      hovertemplate: `${name}, %{x}: %{y:.3f}<extra>mean ± sd over seeds</extra>` },
    { type: 'scatter', mode: 'markers', name: `${name}: each seed`, showlegend: false, hoverinfo: 'skip',
      x: xs.flatMap((x, i) => spreads[i].values.map(() => x)), y: spreads.flatMap(s => s.values),
      marker: { color, size: 5, opacity: 0.45, symbol } },
  ];
}

// ---- j. when not to use dropout -----------------------------------------------------------
const TREND_OPTION = { shrinks: 'shrinks', 'no-clear-change': 'same', grows: 'grows' };
const LABEL = {  // model_server.regularizers.ALTERNATIVES, in words
  none: () => 'nothing',
  dropout: r => `dropout p = ${r.p}`,
  weight_decay: r => `weight decay ${r.weight_decay}`,
  batchnorm: () => 'BatchNorm',
  input_noise: r => `input noise σ = ${r.input_noise}`,
  combined: () => 'dropout + weight decay + input noise',
};

const LABELS_COUNT = Object.keys(LABEL).length;
// a category label on lines of about 14 characters (Plotly tilts long ones and cuts them)
const wrap = text => text.split(' ').reduce((lines, w) => {
  const last = lines[lines.length - 1];
  if (last && (last + ' ' + w).length <= 14) lines[lines.length - 1] = last + ' ' + w; else lines.push(w);
  return lines;
}, []).join('<br>');

export function whenNot(root, lesson, ctx) {
  const { data_size: sizeParams, alternatives: altParams } = lesson.params;
  const gapPanel = panel(root, 'Train-test gap against the size of the training set', { height: 330,
    caption: `training ${2 * sizeParams.sizes.length * sizeParams.seeds} copies at once…` });
  const benefitPanel = panel(root, 'What dropout gains: test loss without dropout minus with it', { height: 330,
    caption: 'training…' });
  const altPanel = panel(root, 'The alternatives on the overfitting preset (50 training points)', { height: 360, wide: true,
    caption: 'waits for the first experiment, then trains its copies…' });
  const claimList = el('ul', { className: 'claims', dataset: { role: 'claims' } });
  const claims = el('section', { className: 'lesson-panel wide' }, el('h3', { text: 'What the explainer says, and what these runs show' }), claimList);
  root.append(claims);
  const readout = new Readout(ctx.controls, [['seeds', 'seeds'], ['small', 'dropout gains, smallest set'], ['large', 'dropout gains, largest set'], ['best', 'lowest test loss']]);
  let sizes = null, alts = null, closed = false;

  (async () => {
    try {
      const r = await presetExperiment('data_size', sizeParams);
      if (closed) return;
      sizes = r;
      drawSizes({ gapPanel, benefitPanel }, readout, r); drawClaims(claimList, sizes, alts); ctx.tick();
      altPanel.caption.textContent = `training ${LABELS_COUNT * altParams.seeds} copies at once…`;
      const a = await presetExperiment('alternatives', altParams);
      if (closed) return;
      alts = a;
      drawAlts(altPanel, readout, a); drawClaims(claimList, sizes, alts); conclude(ctx, sizes, alts); ctx.tick();
      ctx.done();
    } catch (e) { if (!closed) ctx.problem(e.message); }
  })();
  return { async stop() { closed = true; } };
}

// The gap per size and dropout's gain per size, both over seeds.
function drawSizes({ gapPanel, benefitPanel }, readout, r) {
  const xs = r.sizes, S = r.seeds.length;
  draw(gapPanel.plot, [
    ...withSeeds('no dropout', xs, r.none.gap, COLORS.neg, { symbol: 'diamond' }),
    ...withSeeds(`dropout p = ${r.p}`, xs, r.dropout.gap, COLORS.pos),
  ], { xaxis: { type: 'log', title: { text: 'training points (log scale)' }, tickvals: xs, ticktext: xs.map(String) },
    yaxis: { title: { text: 'test loss − train loss' }, zeroline: true }, legend: { orientation: 'h', y: -0.3 } });
  gapPanel.caption.textContent = `${S} seeds, ${r.steps} steps of 50 examples for every size; eval mode; each size of a seed is tested on the same 1,000 points. Lines: mean ± standard deviation; dots: single seeds.`;
  const colors = r.benefit.map(b => (b.verdict === 'lower' ? COLORS.pos : b.verdict === 'higher' ? COLORS.neg : COLORS.muted));
  draw(benefitPanel.plot, [
    { type: 'bar', x: xs.map(String), y: r.benefit.map(b => b.mean), marker: { color: colors },
      error_y: { type: 'data', array: r.benefit.map(b => b.std), color: '#20242b', thickness: 1.5 },
      hovertemplate: '%{x} points: %{y:.3f}<extra>mean ± sd over seeds</extra>', name: 'mean' },
    { type: 'scatter', mode: 'markers', x: xs.flatMap((x, i) => r.benefit[i].values.map(() => String(x))), y: r.benefit.flatMap(b => b.values),
      marker: { color: '#20242b', size: 5, opacity: 0.5 }, hoverinfo: 'skip', name: 'each seed' },
  ], { xaxis: { type: 'category', title: { text: 'training points' } }, yaxis: { title: { text: 'test loss: without − with dropout' } }, showlegend: false });
  benefitPanel.caption.textContent = 'Above 0: dropout lowered the test loss. Blue: by more than the spread over seeds; grey: within it; vermillion: dropout was worse by more than the spread.';
  readout.set({ seeds: S, small: `${pm(r.benefit[0])} (${xs[0]})`, large: `${pm(r.benefit[xs.length - 1])} (${xs[xs.length - 1]})` });
}

// Train and test loss of every alternative, over seeds.
function drawAlts(altPanel, readout, r) {
  const names = r.names, labels = names.map(n => wrap(LABEL[n](r)));
  const bars = (key, name, color) => ({ type: 'bar', name, x: labels, y: names.map(n => r.runs[n][key].mean), marker: { color },
    error_y: { type: 'data', array: names.map(n => r.runs[n][key].std), color: '#20242b', thickness: 1.2 },
    hovertemplate: `%{x}: %{y:.3f}<extra>${name}, mean ± sd</extra>` });
  draw(altPanel.plot, [bars('train_loss', 'train loss', COLORS.train), bars('test_loss', 'test loss', COLORS.test)], {
    barmode: 'group', yaxis: { title: { text: 'loss (eval mode)' }, rangemode: 'tozero' }, legend: { orientation: 'h', y: 1.12 },
    annotations: [{ x: wrap(LABEL[r.best](r)), y: r.runs[r.best].test_loss.mean + r.runs[r.best].test_loss.std, text: 'lowest test loss', showarrow: true, ay: -30, font: { size: 11 } }],
    xaxis: { tickangle: 0 }, margin: { l: 52, r: 12, t: 30, b: 70 } });
  altPanel.caption.textContent = `${r.seeds.length} seeds, ${r.steps} steps each, all copies at once; copies of one seed share data, initial weights and batches. ` +
    'BatchNorm sits after each hidden Linear, before the ReLU; input noise is fresh Gaussian noise added to every batch\'s points (augmentation). Bars: mean ± standard deviation over seeds.';
  readout.set({ best: LABEL[r.best](r) });
}

// the explainer's "When NOT to use" section, claim by claim, against the measurements
function drawClaims(claimList, sizes, alts) {
  claimList.textContent = '';
  const item = (claim, holds, text) => claimList.append(el('li', { dataset: { holds: String(holds) } },
    el('strong', { text: holds ? 'Holds here. ' : 'Not here. ' }), el('q', { text: claim }), document.createTextNode(` ${text}`)));
  if (sizes) {
    const r = sizes, last = r.sizes.length - 1, t = r.trend;
    const gone = firstGone(r);
    item('Dropout is less useful, or not needed, on very large datasets.', t.verdict === 'shrinks',
      `What dropout gained in test loss: ${pm(r.benefit[0])} with ${r.sizes[0]} training points, ${pm(r.benefit[last])} with ${r.sizes[last]}; ` +
      `smaller at ${r.sizes[last]} on ${t.values.filter(v => v > 0).length} of ${t.values.length} seeds.` +
      (gone === null ? '' : ` From ${gone} points on, the gain is no longer larger than its spread over seeds: for this small network, "very large" starts about there.`));
  }
  if (alts) {
    const r = alts;
    for (const [name, claim] of [['weight_decay', 'Weight decay is an alternative.'], ['batchnorm', 'Batch normalisation is an alternative.'],
      ['input_noise', 'Data augmentation is an alternative.']]) {
      const v = r.runs[name].vs_none, holds = v.verdict === 'lower';
      let text = `${LABEL[name](r)}: test loss ${pm(r.runs[name].test_loss)}, against ${pm(r.runs.none.test_loss)} with no regulariser` +
        (holds ? ', lower by more than the spread over seeds' : v.verdict === 'higher' ? ', higher by more than the spread over seeds' : ', a difference within the spread over seeds') +
        `; dropout: ${pm(r.runs.dropout.test_loss)}.`;
      if (name === 'batchnorm' && !holds) {
        const bn = r.runs.batchnorm.train_loss, none = r.runs.none.train_loss;
        text += ' In this preset every batch is the whole training set (50 points), so BatchNorm\'s batch statistics are the same at every step and add no noise. ' +
          `It fits the training points ${bn.mean < none.mean ? 'even more closely' : 'about as closely'} (train loss ${pm(bn)}, against ${pm(none)} without)` +
          (bn.mean < none.mean ? ': it helps the network fit, not generalise.' : '.');
      }
      item(claim, holds, text);
    }
  }
}

// the smallest size from which dropout's gain stays within the spread (or below 0)
function firstGone(r) {
  let at = null;
  for (let i = r.sizes.length - 1; i >= 0; i--) {
    if (r.benefit[i].verdict === 'lower') break;
    at = r.sizes[i];
  }
  return at;
}

// The evidence, once both experiments are in.
function conclude(ctx, sizes, alts) {
  const r = sizes, a = alts, last = r.sizes.length - 1, t = r.trend;
  const gapNone = r.none.gap, gapDrop = r.dropout.gap;
  const direction = { shrinks: `smaller at ${r.sizes[last]} points on every seed`, grows: `larger at ${r.sizes[last]} points on every seed`,
    'no-clear-change': `not smaller at ${r.sizes[last]} points on every seed` }[t.verdict];
  // the alternatives, sorted by how they compare with no regulariser, seed by seed
  const by = verdict => a.names.filter(n => n !== 'none' && a.runs[n].vs_none.verdict === verdict)
    .map(n => `${LABEL[n](a)} (${pm(a.runs[n].test_loss)})`);
  const lower = by('lower'), within = by('no-clear-difference'), higher = by('higher');
  const seedGains = b => b.values.map(v => Number(v).toFixed(3)).join(', ');
  ctx.evidence(`Measured on ${r.seeds.length} seeds, ${r.steps} steps each: without dropout the train-test gap goes from ${fmt(gapNone[0].mean)} at ${r.sizes[0]} training points to ${fmt(gapNone[last].mean)} at ${r.sizes[last]}; with dropout from ${fmt(gapDrop[0].mean)} to ${fmt(gapDrop[last].mean)}. ` +
    `Dropout's gain in test loss: ${pm(r.benefit[0])} at ${r.sizes[0]} points (seed by seed: ${seedGains(r.benefit[0])}), ${pm(r.benefit[last])} at ${r.sizes[last]} (${seedGains(r.benefit[last])}); ${direction}. ` +
    `The alternatives on 50 points (${a.seeds.length} seeds), test loss mean ± standard deviation: with no regulariser ${pm(a.runs.none.test_loss)}. ` +
    `Lower by more than the spread over seeds: ${lower.join(', ') || 'none'}. ` +
    (within.length ? `Within the spread: ${within.join(', ')}. ` : '') +
    (higher.length ? `Higher by more than the spread: ${higher.join(', ')}. ` : '') +
    `Lowest mean: ${LABEL[a.best](a)}.`,
  { key: t.verdict, answer: TREND_OPTION[t.verdict], explain: explainTrend(r) });
}

// The answer's explanation, from the measured trend of dropout's gain.
function explainTrend(r) {
  const last = r.sizes.length - 1, gone = firstGone(r);
  if (r.trend.verdict === 'shrinks') {
    return `Overfitting needs a network that can memorise and too few examples to stop it. With ${r.sizes[0]} points the network without dropout learns them by heart: its test loss is above its training loss by ${fmt(r.none.gap[0].mean)} on average, with dropout by ${fmt(r.dropout.gap[0].mean)}. With more points there is less to memorise; the gap without dropout is already small, and dropout has little left to fix` +
      (gone === null ? '.' : `: from ${gone} points on, its gain was no longer larger than its spread over seeds.`) +
      ' On a big enough dataset dropout has little left to do; the explainer is right about this one. How big is big depends on the network: a larger one can memorise more.';
  }
  return `Measured here, the gain did not shrink on every seed (${pm(r.benefit[0])} at ${r.sizes[0]} points, ${pm(r.benefit[last])} at ${r.sizes[last]}). The explainer expects it to; these runs do not show it clearly.`;
}

// ---- k. dropout as noise ------------------------------------------------------------------
export function noise(root, lesson, ctx) {
  const run = new LiveRun(lesson.hash, { stopAt: lesson.steps });
  const livePanel = panel(root, 'Dropout\'s factors, counted from the live run\'s masks', { height: 300, caption: 'waiting for the run…' });
  const gaussPanel = panel(root, 'Gaussian factors N(1, p/(1 − p)), drawn in training', { height: 300, caption: 'training the copies…' });
  const lossPanel = panel(root, 'Train and test loss: no noise, dropout, Gaussian noise', { height: 320, wide: true, caption: 'training the copies…' });
  const readout = new Readout(ctx.controls, [['counted', 'factors counted (live run)'], ['mean', 'mean: measured / theory'], ['var', 'variance: measured / theory'], ['gauss', 'Gaussian: mean / variance']]);
  let p = run.state.p[0], tally = null, skipNext = false, result = null, asked = 0;
  const fresh = () => { tally = { zeros: 0, total: 0, p }; };
  fresh();
  slider(ctx.controls, 'p of both layers', { min: 0.1, max: 0.8, step: 0.1, value: p, format: v => v.toFixed(1) }, async v => {
    p = Number(v.toFixed(1));
    fresh();
    skipNext = true;  // the next frame may still count steps of the old p
    for (let l = 0; l < run.state.p.length; l++) await run.set({ param: 'p', layer: l, value: p });
    if (!run.playing) { run.stopAt = run.step + lesson.steps; await run.play(); }  // a new stretch to count
    measure();
  });
  run.addEventListener('problem', e => ctx.problem(e.detail));
  run.addEventListener('frame', e => {
    const { header: h, arrays } = e.detail;
    if (!h.steps || !h.masked) return;
    if (h.p.some(q => Math.abs(q - tally.p) > 1e-9)) return;  // steps of another p
    if (skipNext) { skipNext = false; return; }
    h.masked.forEach((m, l) => {
      const d = arrays[`dropped.${l}`];
      if (!d || !m) return;
      let z = 0; for (const v of d.data) z += v;
      tally.zeros += z;
      tally.total += m * d.data.length;
    });
    if (!tally.total) return;
    drawLive(livePanel, readout, tally, run.step);
    noiseEvidence(ctx, result, tally);
    ctx.tick();
  });

  async function measure() {
    const want = p, ticket = ++asked;
    gaussPanel.caption.textContent = `training the copies at p = ${want}…`;
    try {
      const r = await presetExperiment('noise_injection', { ...lesson.params.noise_injection, p: want });
      if (ticket !== asked || run.closed) return;  // p moved on meanwhile
      result = r;
      drawGauss({ gaussPanel, lossPanel }, readout, r);
      noiseEvidence(ctx, result, tally);
      ctx.tick();
    } catch (e) { if (!run.closed) ctx.problem(e.message); }
  }

  run.start().then(() => measure());
  return { run, async stop() { await run.close(); } };
}

// Mean and variance of the counted factors: 0 for a dropped value, 1/(1 − p) for a kept one.
function liveMoments(tally) {
  const s = 1 / (1 - tally.p), kept = tally.total - tally.zeros;
  const m = kept * s / tally.total;
  return { mean: m, var: kept * s * s / tally.total - m * m, zeroShare: tally.zeros / tally.total, scale: s };
}

// The factor axis for p: both dropout factors and four Gaussian sds either side of 1.
function factorRange(p) {
  const sd = Math.sqrt(p / (1 - p));
  return [Math.min(-0.2, 1 - 4.2 * sd), Math.max(1 / (1 - p) + 0.3, 1 + 4.2 * sd)];
}

// Dropout's two factors as counted, against p and 1 − p.
function drawLive(livePanel, readout, tally, step) {
  const t = liveMoments(tally);
  draw(livePanel.plot, [
    { type: 'bar', x: [0, t.scale], y: [t.zeroShare, 1 - t.zeroShare], width: [0.12, 0.12], marker: { color: [COLORS.neg, COLORS.pos] },
      text: [`0: ${fmt(100 * t.zeroShare, 1)}%`, `${fmt(t.scale, 3)}: ${fmt(100 * (1 - t.zeroShare), 1)}%`], textposition: 'outside',
      hovertemplate: 'factor %{x:.3f}: %{y:.4f} of all factors<extra>measured</extra>', name: 'measured' },
    { type: 'scatter', mode: 'markers', x: [0, t.scale], y: [tally.p, 1 - tally.p], name: 'theory: p and 1 − p',
      marker: { symbol: 'line-ew-open', size: 30, color: '#20242b', line: { width: 2 } }, hovertemplate: 'theory: %{y}<extra></extra>' },
  ], { xaxis: { title: { text: 'factor = mask / (1 − p)' }, range: factorRange(tally.p), zeroline: false },
    yaxis: { title: { text: 'share of factors' }, range: [0, 1.1] }, showlegend: false, bargap: 0 });
  livePanel.caption.textContent = `the playground's own run of this preset at p = ${tally.p}, step ${step}: every mask of every example since the last change of p, ${count(tally.total)} factors (black lines: p and 1 − p).`;
  livePanel.plot.dataset.total = String(tally.total);
  readout.set({ counted: count(tally.total), mean: `${fmt(t.mean, 4)} / 1`, var: `${fmt(t.var, 4)} / ${fmt(tally.p / (1 - tally.p), 4)}` });
}

// The Gaussian factors drawn in training, and the losses of the three kinds of copies.
function drawGauss({ gaussPanel, lossPanel }, readout, r) {
  const g = r.gauss, e = g.edges, w = e[1] - e[0], centres = e.slice(0, -1).map((v, i) => v + w / 2);
  const sd = Math.sqrt(r.theory.var);
  const pdf = centres.map(x => w * Math.exp(-0.5 * ((x - 1) / sd) ** 2) / (sd * Math.sqrt(2 * Math.PI)));
  draw(gaussPanel.plot, [
    { type: 'bar', x: centres, y: g.counts.map(c => c / g.count), width: w * 0.95, marker: { color: centres.map(x => (x < 0 ? COLORS.neg : COLORS.pos)) },
      name: 'measured', hovertemplate: 'factor %{x:.2f}: %{y:.4f}<extra>measured</extra>' },
    { type: 'scatter', mode: 'lines', x: centres, y: pdf, line: { color: '#20242b', width: 2, dash: 'dot' }, name: `theory N(1, ${fmt(r.theory.var, 3)})`, hoverinfo: 'skip' },
  ], { xaxis: { title: { text: 'factor' }, range: factorRange(r.p), zeroline: true }, yaxis: { title: { text: 'share of factors' }, rangemode: 'tozero' },
    legend: { orientation: 'h', y: 1.12 }, bargap: 0 });
  gaussPanel.caption.textContent = `every factor the Gaussian copies drew in training: ${r.seeds.length} seeds × ${r.steps} steps × 50 examples × 128 neurons = ${count(g.count)} (bins of ${fmt(w, 2)}; vermillion: below 0, the value's sign flips: ${fmt(100 * g.negative, 1)}%).`;
  const labels = ['no noise', `dropout p = ${r.p}`, `Gaussian, variance ${fmt(r.theory.var, 3)}`];
  const kinds = ['none', 'dropout', 'gauss'];
  const bars = (key, name, color) => ({ type: 'bar', name, x: labels, y: kinds.map(k => r.runs[k][key].mean), marker: { color },
    error_y: { type: 'data', array: kinds.map(k => r.runs[k][key].std), color: '#20242b', thickness: 1.2 },
    hovertemplate: `%{x}: %{y:.3f}<extra>${name}, mean ± sd</extra>` });
  draw(lossPanel.plot, [bars('train_loss', 'train loss', COLORS.train), bars('test_loss', 'test loss', COLORS.test)],
    { barmode: 'group', yaxis: { title: { text: 'loss (eval mode)' }, rangemode: 'tozero' }, legend: { orientation: 'h', y: 1.12 } });
  lossPanel.caption.textContent = `the overfitting preset (50 training points), ${r.seeds.length} seeds × ${r.steps} steps, the three kinds trained at once; copies of one seed share data, initial weights and batches. Bars: mean ± standard deviation over seeds.`;
  readout.set({ gauss: `${fmt(g.mean, 4)} / ${fmt(g.var, 4)}` });
}

// The answer the measurement gives: does Gaussian noise help, and as well as dropout?
function judged(r) {
  if (r.gauss_vs_none.verdict !== 'lower') return 'no-help';
  return r.gauss_vs_dropout.verdict === 'higher' ? 'worse' : 'as-well';
}

// The answer's explanation, from the measured verdict.
function explainNoise(r) {
  const d = r.gauss_vs_dropout, runs = r.runs;
  const numbers = `test loss ${pm(runs.gauss.test_loss)} with Gaussian noise, ${pm(runs.dropout.test_loss)} with dropout, ${pm(runs.none.test_loss)} with neither`;
  return {
    'as-well': `Hard zeros are not what makes dropout work here: Gaussian noise with the same mean and variance held the network back from memorising about as much (${numbers}). ` +
      'The mean 1 keeps every layer\'s output the same on average, so eval mode needs no correction for either noise; the variance p/(1 − p) sets how hard the noise pushes. That is the noise-injection view of dropout. The original dropout paper (Srivastava et al., 2014) reports the same for multiplicative Gaussian noise.',
    worse: `Here the shape of the noise mattered: Gaussian noise of the same mean and variance regularised clearly less than dropout (${numbers}; Gaussian − dropout: ${pm(d)}, seed by seed, beyond its spread).`,
    'no-help': `Here Gaussian noise did not lower the test loss clearly (${numbers}).`,
  }[judged(r)];
}

// The evidence, once the copies are in for the p the live run counts and it counted enough.
function noiseEvidence(ctx, result, tally) {
  if (!result || result.p !== tally.p || tally.total < 10_000) return;
  const r = result, t = liveMoments(tally), g = r.gauss, d = r.gauss_vs_dropout;
  const how = { lower: 'Gaussian lower by more than the spread', higher: 'Gaussian higher by more than the spread', 'no-clear-difference': 'within the spread' }[d.verdict];
  ctx.evidence(`Measured at p = ${r.p}: in the live run, ${count(tally.total)} factors counted from its masks; ${fmt(100 * t.zeroShare, 2)}% were 0 and the rest ${fmt(t.scale, 3)}, mean ${fmt(t.mean, 4)} (theory 1), variance ${fmt(t.var, 4)} (theory p/(1 − p) = ${fmt(r.theory.var, 4)}). ` +
    `The Gaussian copies' ${count(g.count)} factors: mean ${fmt(g.mean, 4)}, variance ${fmt(g.var, 4)}, ${fmt(100 * g.negative, 1)}% below 0. ` +
    `Test loss over ${r.seeds.length} seeds after ${r.steps} steps: no noise ${pm(r.runs.none.test_loss)}, dropout ${pm(r.runs.dropout.test_loss)}, Gaussian ${pm(r.runs.gauss.test_loss)}. ` +
    `Seed by seed, no noise − Gaussian: ${pm(r.gauss_vs_none)}; dropout − Gaussian: ${pm(d)}, ${how}.`,
  { key: `${r.p}:${judged(r)}`, answer: judged(r), about: `At p = ${r.p}`, explain: explainNoise(r) });
}
