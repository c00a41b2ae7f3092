// Lessons d and h: two runs with the same seed, trained side by side, one per variant.
// Both runs are LiveRuns on the tab's socket (each frame names its run, so frames arrive
// per run); the loss chart is the playground's LossView with one series per run.
//
// The runs train in lockstep: both stay paused and take `lesson.stride` steps at a time
// ('step' events), and a round ends when the frames of both have arrived. Every frame
// pair therefore shows the same step of both runs, and whatever is compared (bars, train
// loss windows, probes) is compared at equal steps.
import { COLORS } from '../views/theme.js';
import { LossView } from '../views/losses.js';
import { LiveRun, panel, draw, Readout, buttons, fmt, mergeHash, sleep } from './common.js';

const LOSS_PAINT_MS = 200;
// at most one round per ROUND_MS: the two runs' 'step' events share the tab's event
// budget (DP_EVENTS_PER_S, docs/limits.md) with the probes between rounds
const ROUND_MS = 150;

function pair(root, lesson, ctx, title, onRound = async () => {}) {
  const runs = lesson.variants.map(v => new LiveRun(mergeHash(lesson.hash, v.hash), { name: v.name }));
  const stride = lesson.stride || 20;
  const chart = panel(root, title, { height: 300, wide: true,
    caption: `solid: ${lesson.variants[0].name}, dashed: ${lesson.variants[1].name}. Both runs train in lockstep, ${stride} steps at a time, ` +
      'so every point of both is at the same step. Test loss: eval mode, the whole test set. ' +
      `Train loss: the training batches with dropout on, averaged over each ${stride} steps.` });
  const losses = new LossView(chart.plot);
  runs.forEach((r, i) => {
    r.addEventListener('frame', e => losses.add(e.detail, i));
    r.addEventListener('problem', e => ctx.problem(e.detail));
  });
  const timer = setInterval(() => { if (losses.paint()) ctx.tick(); }, LOSS_PAINT_MS);
  let generation = 0, driving = Promise.resolve(), closed = false;

  async function drive(gen) {
    const live = () => gen === generation && !closed;
    while (live()) {
      const t0 = performance.now();
      const step = Math.min(...runs.map(r => (r.last ? r.last.header.step : 0)));
      if (step >= lesson.steps) break;
      const steps = await Promise.all(runs.map(r => r.stepBy(Math.min(stride, lesson.steps - step))));
      if (!live() || steps.includes(null)) break;
      if (steps[0] !== steps[1]) { ctx.problem(`the runs fell out of step (${steps.join(' vs ')}); restart the experiment`); break; }
      await onRound(steps[0]);
      await sleep(Math.max(0, ROUND_MS - (performance.now() - t0)));
    }
  }

  // (Re)configure both runs from their hashes, fresh weights, and train them in lockstep.
  // fresh(): runs once the previous round has ended, before the new runs start: counts
  // kept by the caller restart there (a frame of that last round must not count as new)
  const start = async (fresh = () => {}) => {
    const gen = ++generation;
    await driving;  // the previous round ends first: no stray step reaches the new runs
    if (gen !== generation || closed) return;
    fresh();
    losses.setup(runs.map(r => ({ name: r.name })));
    const acks = await Promise.all(runs.map(r => r.start({ play: false })));
    if (gen !== generation || acks.some(a => !a || !a.ok)) return;
    driving = drive(gen);
  };
  const close = async () => { closed = true; clearInterval(timer); await Promise.all(runs.map(r => r.close())); };
  return { runs, losses, start, close, stride };
}

// ---- d. placement: dropout after vs before the activation ---------------------------------
// The verdict of the seed experiment (model_server/experiments/placement.py) -> option
const VERDICT_OPTION = { identical: 'identical', 'no-clear-winner': 'differ', 'before-worse': 'before-worse', 'after-worse': 'after-worse' };
const F0 = { relu: 0, sigmoid: 0.5, tanh: 0 };
const SEEDS = 8;

export function placement(root, lesson, ctx) {
  const p = pair(root, lesson, ctx, 'Loss, both placements');
  const layer = panel(root, 'Hidden layer 1 of each run', { height: 280,
    caption: '' });
  const sent = panel(root, 'What a dropped neuron sends to the next layer', { height: 280, caption: 'mean output of the dropped neurons of layer 1, over all frames so far' });
  const seedsPanel = panel(root, `Does the order matter? Both orders trained on ${SEEDS} seeds`, { height: 300, wide: true,
    caption: 'measuring…' });
  const readout = new Readout(ctx.controls, [['act', 'activation'], ['step', 'step (both runs)'], ['shared', 'test evaluations at equal steps'], ['gap', 'largest test-loss gap']]);
  let act = p.runs[0].state.act, tests = null, dropped = null, seeds = {}, asked = {};
  const reset = () => { tests = p.runs.map(() => new Map()); dropped = p.runs.map(() => ({ sum: 0, n: 0 })); };
  reset();
  const pick = buttons(ctx.controls, ['relu', 'sigmoid', 'tanh'].map(a => [a, a, () => setAct(a)]));
  const mark = () => Object.entries(pick).forEach(([a, b]) => b.setAttribute('aria-pressed', String(a === act)));
  mark();

  async function setAct(a) {
    act = a; mark(); reset();
    p.runs.forEach(r => r.setHash(mergeHash(r.hash, `act=${a}`)));
    drawSeeds(seedsPanel, seeds[act], act, lesson);
    await p.start(reset);  // again once the last round of the old activation is in
    measureSeeds(a);
  }

  // both orders over several seeds, for the activation on screen: once per activation
  async function measureSeeds(a) {
    if (asked[a]) return;
    asked[a] = true;
    try {
      seeds[a] = await p.runs[0].experiment('placement_seeds', { seeds: SEEDS, steps: lesson.steps });
    } catch (e) { asked[a] = false; ctx.problem(`seed experiment: ${e.message}`); return; }
    if (a === act) drawSeeds(seedsPanel, seeds[act], act, lesson);
  }

  p.runs.forEach((r, i) => r.addEventListener('frame', e => {
    const { header: h, arrays } = e.detail;
    if (h.eval && h.eval.test_loss !== null) tests[i].set(h.eval.step, h.eval.test_loss);
    const m = arrays['mask.0'], a = arrays['act.0'];
    if (!m || !a || !h.steps) return;
    const d = dropped[i];
    for (let j = 0; j < m.data.length; j++) if (!m.data[j]) { d.sum += a.data[j]; d.n++; }
  }));

  const summary = setInterval(() => {
    const [a, b] = tests;
    let gap = 0, shared = 0;
    for (const [step, v] of a) if (b.has(step)) { shared++; gap = Math.max(gap, Math.abs(v - b.get(step))); }
    const means = dropped.map(d => (d.n ? d.sum / d.n : null));
    const step = drawLayer(layer, p.runs);
    readout.set({ act, step: step ?? '–', shared, gap: shared ? (gap === 0 ? '0 (identical)' : fmt(gap, 4)) : '–' });
    if (means.every(m => m !== null)) drawSent(sent, p.runs, means);
    const s = seeds[act];
    if (shared >= 10 && means.every(m => m !== null) && s) {
      placementEvidence(ctx, lesson, { act, shared, gap, means, s });
    }
  }, 500);

  drawSeeds(seedsPanel, seeds[act], act, lesson);
  p.start().then(() => measureSeeds(act));
  return { runs: p.runs, async stop() { clearInterval(summary); await p.close(); } };
}

// The mean output of each run's dropped neurons.
function drawSent(sent, runs, means) {
  draw(sent.plot, [{ type: 'bar', x: runs.map(r => r.name), y: means, marker: { color: [COLORS.neg, COLORS.pos] },
    text: means.map(m => fmt(m, 2)), textposition: 'outside', hovertemplate: '%{x}: %{y:.3f}<extra></extra>' }],
  { yaxis: { title: { text: 'mean output of dropped neurons' }, range: [Math.min(0, ...means) - 0.1, Math.max(0.6, ...means) + 0.1] } });
}

// The evidence, once both runs share enough evaluations and the seed experiment is in.
function placementEvidence(ctx, lesson, { act, shared, gap, means, s }) {
  const pm = (v, e) => `${fmt(v)} ± ${fmt(e)}`;
  const d = s.diff;
  const settled = {
    identical: `identical on every seed (largest |difference| ${fmt(Math.max(...d.values.map(Math.abs)), 4)})`,
    'no-clear-winner': `the difference is smaller than its spread over seeds: neither order is clearly better`,
    'before-worse': `dropout before the activation is worse by more than the spread over seeds`,
    'after-worse': `dropout after the activation is worse by more than the spread over seeds`,
  }[s.verdict];
  ctx.evidence(`Measured with ${act}: over ${shared} test evaluations at the same steps, the largest gap between the two runs' test losses is ${gap === 0 ? 'exactly 0' : fmt(gap, 4)}. ` +
    `A dropped neuron sends on ${fmt(means[0], 2)} (after) and ${fmt(means[1], 2)} (before). ` +
    `Over ${s.seeds.length} seeds, test loss after ${s.steps} steps: after ${pm(s.after.test_loss_mean, s.after.test_loss_std)}, before ${pm(s.before.test_loss_mean, s.before.test_loss_std)} ` +
    `(mean ± standard deviation); before − after, seed by seed: ${pm(d.mean, d.std)}, before worse on ${d.before_worse} of ${s.seeds.length} seeds; ${settled}.`,
  { key: act, about: `With ${act}`, answer: VERDICT_OPTION[s.verdict], explain: explainFor(lesson, act, s) });
}

// The answer's explanation for a squashing activation, from the measured verdict.
function explainFor(lesson, act, s) {
  if (act === 'relu') return lesson.question.explain;
  const d = s.diff;
  const how = {
    'no-clear-winner': `Measured over ${s.seeds.length} seeds, it does not hurt clearly: before − after is ${fmt(d.mean)} ± ${fmt(d.std)} in test loss, a difference smaller than its spread over seeds. The explainer's pitfall ("dropout before the activation hurts") is not borne out here; it is a rule of thumb, not a law.`,
    'before-worse': `Measured over ${s.seeds.length} seeds, it hurts: before − after is ${fmt(d.mean)} ± ${fmt(d.std)} in test loss, more than its spread over seeds.`,
    'after-worse': `Measured over ${s.seeds.length} seeds, the usual order is the worse one here: before − after is ${fmt(d.mean)} ± ${fmt(d.std)} in test loss, beyond its spread over seeds.`,
    identical: 'Measured over the seeds, the two orders gave identical losses.',
  }[s.verdict];
  return `With ${act} the two orders compute different numbers: before the activation, a dropped neuron sends ${act}(0) = ${F0[act]} onward instead of 0${act === 'tanh' ? ' (here also 0)' : ''}, and the kept inputs are scaled by 1/(1 − p) before the squashing instead of after. Does that hurt? ${how}`;
}

// per run: kept neurons as solid bars in the run's colour, dropped ones hollow and
// hatched (a dropped neuron after the activation sends 0: no bar, only its mark ×)
function drawLayer(layer, runs) {
  const frames = runs.map(r => r.last);
  if (frames.some(f => !f || !f.arrays['act.0'] || !f.header.steps)) return null;
  const steps = frames.map(f => f.header.step);
  if (steps[0] !== steps[1]) return null;  // mid-round: keep the last pair on screen
  const colors = [COLORS.neg, COLORS.pos];
  const traces = [];
  runs.forEach((r, i) => {
    const a = frames[i].arrays['act.0'], m = frames[i].arrays['mask.0'];
    const ys = Array.from(a.data), idx = ys.map((_, j) => j);
    const kept = idx.filter(j => !m || m.data[j]), gone = idx.filter(j => m && !m.data[j]);
    traces.push({ type: 'bar', name: `${r.name}: kept`, offsetgroup: String(i), x: kept, y: kept.map(j => ys[j]),
      marker: { color: colors[i], line: { width: 0 } }, hovertemplate: `${r.name}, neuron %{x}: %{y:.3f}<extra>kept</extra>` });
    traces.push({ type: 'bar', name: `${r.name}: dropped`, offsetgroup: String(i), x: gone, y: gone.map(j => ys[j]),
      text: gone.map(() => '×'), textposition: 'outside', cliponaxis: false, textfont: { color: colors[i], size: 13 },
      marker: { color: '#ffffff', line: { color: colors[i], width: 1.5 }, pattern: { shape: '/', fgcolor: colors[i], size: 5 } },
      hovertemplate: `${r.name}, neuron %{x}: %{y:.3f}<extra>dropped</extra>` });
  });
  draw(layer.plot, traces, { barmode: 'group', xaxis: { title: { text: 'neuron' }, dtick: 1 },
    yaxis: { title: { text: 'output' } }, legend: { orientation: 'h', y: -0.3, font: { size: 10 } } });
  layer.box.querySelector('h3').textContent = `Hidden layer 1 of each run at step ${steps[0]}`;
  const ex = frames.map(f => (f.header.example ? f.header.example.index : '?'));
  layer.caption.textContent = `both runs at step ${steps[0]}, training example #${ex[0]}${ex[1] !== ex[0] ? ` / #${ex[1]}` : ''}, the same mask: what each neuron of layer 1 passed on. ` +
    'Solid: kept; hollow, hatched, ×: dropped by this step\'s mask.';
  layer.plot.dataset.steps = steps.join(',');
  return steps[0];
}

// Test loss of both orders, seed by seed, with mean ± sd; a note while it is measured.
function drawSeeds(seedsPanel, s, act, lesson) {
  if (!s) {
    seedsPanel.caption.textContent = `training both orders with ${act} on ${SEEDS} seeds (${lesson.steps} steps each)…`;
    if (seedsPanel.plot.data) Plotly.purge(seedsPanel.plot);
    return;
  }
  const names = ['after activation', 'before activation'], colors = [COLORS.neg, COLORS.pos];
  const parts = [s.after, s.before];
  const traces = s.seeds.map((seed, k) => ({ type: 'scatter', mode: 'lines+markers', x: names, y: parts.map(q => q.test_loss[k]),
    line: { color: '#b8bcc2', width: 1 }, marker: { color: colors, size: 7 }, showlegend: false,
    hovertemplate: `seed ${seed}, %{x}: test loss %{y:.3f}<extra></extra>` }));
  traces.push({ type: 'scatter', mode: 'markers', name: 'mean ± standard deviation over seeds', x: names, y: parts.map(q => q.test_loss_mean),
    error_y: { type: 'data', array: parts.map(q => q.test_loss_std), color: '#20242b', thickness: 2, width: 10 },
    marker: { symbol: 'line-ew-open', size: 26, color: '#20242b', line: { width: 3 } } });
  draw(seedsPanel.plot, traces, { xaxis: { type: 'category' }, yaxis: { title: { text: `test loss after ${s.steps} steps` } },
    legend: { orientation: 'h', y: -0.2 } });
  const d = s.diff;
  seedsPanel.caption.textContent = `${act}: one line per seed (its own data sample, initial weights, batches and masks, the same for both orders). ` +
    `before − after: ${fmt(d.mean)} ± ${fmt(d.std)}, before worse on ${d.before_worse} of ${s.seeds.length} seeds. ` +
    `Test accuracy: after ${fmt(100 * s.after.test_acc_mean, 1)}% ± ${fmt(100 * s.after.test_acc_std, 1)}, before ${fmt(100 * s.before.test_acc_mean, 1)}% ± ${fmt(100 * s.before.test_acc_std, 1)}.`;
  seedsPanel.plot.dataset.verdict = s.verdict;
}

// ---- h. BatchNorm and the variance shift --------------------------------------------------
const PROBE_MS = 2000;

export function batchnorm(root, lesson, ctx) {
  // probed between rounds, so both runs are measured at the same step
  const p = pair(root, lesson, ctx, 'Loss, both orders', async step => {
    if (step < lesson.steps && performance.now() - probedAt < PROBE_MS) return;
    probedAt = performance.now();
    await probe(step);
  });
  const shift = panel(root, 'Variance shift at each BatchNorm', { height: 300, wide: true,
    caption: 'variance of the BatchNorm inputs in eval mode ÷ the running variance it learned in training (1 = no shift)' });
  const readout = new Readout(ctx.controls, p.runs.map((r, i) => [`r${i}`, r.name]));
  let seed = 0, probedAt = -Infinity;

  async function probe(step) {
    seed++;
    const results = [];
    for (const r of p.runs) results.push(await r.experiment('batchnorm_shift', { passes: 8, seed }));
    const traces = results.map((res, i) => ({
      type: 'bar', name: p.runs[i].name, x: res.blocks.map(b => `layer ${b.layer + 1}`),
      y: res.blocks.map(b => (b.bn_input ? b.bn_input.eval_over_running : null)),
      text: res.blocks.map(b => (b.bn_input ? fmt(b.bn_input.eval_over_running, 2) : '')), textposition: 'outside',
      marker: { color: i ? COLORS.pos : COLORS.neg },
      customdata: res.blocks.map(b => (b.bn_input ? [b.bn_input.train_var, b.bn_input.eval_var, b.bn_input.running_var] : [0, 0, 0])),
      hovertemplate: '%{x}: eval var %{customdata[1]:.3f} ÷ running var %{customdata[2]:.3f} = %{y:.2f}<br>(train-mode var %{customdata[0]:.3f})<extra>%{fullData.name}</extra>',
    }));
    draw(shift.plot, traces, { barmode: 'group', yaxis: { title: { text: 'eval var ÷ running var' }, range: [0, 1.3] },
      shapes: [{ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: 1, y1: 1, line: { dash: 'dash', color: '#20242b', width: 1.5 } }],
      legend: { orientation: 'h', y: -0.2 } });
    const ratios = results.map(res => res.blocks.map(b => (b.bn_input ? fmt(b.bn_input.eval_over_running, 2) : '–')));
    readout.set(Object.fromEntries(ratios.map((r, i) => [`r${i}`, r.join(', ')])));
    shift.caption.textContent = `both runs at step ${step}: variance of the BatchNorm inputs in eval mode ÷ the running variance it learned in training (1 = no shift)`;
    if (step >= 300) {
      ctx.evidence(`Measured at step ${step} of both runs, eval-mode variance ÷ running variance per layer: ${p.runs.map((r, i) => `${r.name}: ${ratios[i].join(', ')}`).join('; ')}.`);
    }
    ctx.tick();
  }

  p.start();
  return { runs: p.runs, async stop() { await p.close(); } };
}
