// Lessons d and h: two runs with the same seed, trained side by side, one per variant.
// Each run has its own socket (LiveRun), so frames arrive per run; the loss chart is the
// playground's LossView with one series per run.
import { COLORS } from '../views/theme.js';
import { LossView } from '../views/losses.js';
import { LiveRun, panel, draw, Readout, buttons, poll, fmt, mergeHash } from './common.js';

const LOSS_PAINT_MS = 200;

function pair(root, lesson, ctx, title) {
  const runs = lesson.variants.map(v => new LiveRun(mergeHash(lesson.hash, v.hash), { name: v.name, stopAt: lesson.steps }));
  const chart = panel(root, title, { height: 300, wide: true,
    caption: `solid: ${lesson.variants[0].name}, dashed: ${lesson.variants[1].name}. Test loss: eval mode, every ${runs[0].state.evalk || 'few'} steps at the same steps in both runs. ` +
      'Train loss: the training batches with dropout on, averaged between frames; the two runs\' frames fall at different steps, so those lines wiggle differently.' });
  const losses = new LossView(chart.plot);
  const setup = () => losses.setup(runs.map(r => ({ name: r.name })));
  runs.forEach((r, i) => {
    r.addEventListener('frame', e => losses.add(e.detail, i));
    r.addEventListener('problem', e => ctx.problem(e.detail));
  });
  const timer = setInterval(() => { if (losses.paint()) ctx.tick(); }, LOSS_PAINT_MS);
  const start = async () => { setup(); await Promise.all(runs.map(r => r.start())); };
  const close = async () => { clearInterval(timer); await Promise.all(runs.map(r => r.close())); };
  return { runs, losses, start, close };
}

// ---- d. placement: dropout after vs before the activation ---------------------------------
export function placement(root, lesson, ctx) {
  const p = pair(root, lesson, ctx, 'Loss, both placements');
  const layer = panel(root, 'Hidden layer 1 of each run, latest frame', { height: 260,
    caption: 'what each neuron passed on for the example on display; light bars: neurons this step\'s mask dropped' });
  const sent = panel(root, 'What a dropped neuron sends to the next layer', { height: 260, caption: 'mean output of the dropped neurons, over all frames so far' });
  const readout = new Readout(ctx.controls, [['act', 'activation'], ['shared', 'shared test points'], ['gap', 'largest test-loss gap']]);
  let act = p.runs[0].state.act, tests = null, dropped = null;
  const reset = () => { tests = p.runs.map(() => new Map()); dropped = p.runs.map(() => ({ sum: 0, n: 0, keptSum: 0, keptN: 0 })); };
  reset();
  const pick = buttons(ctx.controls, ['relu', 'sigmoid', 'tanh'].map(a => [a, a, () => setAct(a)]));
  const mark = () => Object.entries(pick).forEach(([a, b]) => b.setAttribute('aria-pressed', String(a === act)));
  mark();

  async function setAct(a) {
    act = a; mark(); reset();
    p.runs.forEach(r => r.setHash(mergeHash(r.hash, `act=${a}`)));
    await p.start();
  }

  p.runs.forEach((r, i) => r.addEventListener('frame', e => {
    const { header: h, arrays } = e.detail;
    if (h.eval && h.eval.test_loss !== null) tests[i].set(h.eval.step, h.eval.test_loss);
    for (let l = 0; arrays[`act.${l}`]; l++) {
      const m = arrays[`mask.${l}`], a = arrays[`act.${l}`];
      if (!m) continue;
      const d = dropped[i];
      for (let j = 0; j < m.data.length; j++) {
        if (m.data[j]) { d.keptSum += a.data[j]; d.keptN++; } else { d.sum += a.data[j]; d.n++; }
      }
    }
  }));

  const summary = setInterval(() => {
    const [a, b] = tests;
    let gap = 0, shared = 0;
    for (const [step, v] of a) if (b.has(step)) { shared++; gap = Math.max(gap, Math.abs(v - b.get(step))); }
    const means = dropped.map(d => (d.n ? d.sum / d.n : null));
    drawLayer();
    readout.set({ act, shared, gap: shared ? (gap === 0 ? '0 (identical)' : fmt(gap, 4)) : '–' });
    if (means.every(m => m !== null)) {
      draw(sent.plot, [{ type: 'bar', x: p.runs.map(r => r.name), y: means, marker: { color: [COLORS.neg, COLORS.pos] },
        text: means.map(m => fmt(m, 2)), textposition: 'outside', hovertemplate: '%{x}: %{y:.3f}<extra></extra>' }],
      { yaxis: { title: { text: 'mean output of dropped neurons' }, range: [Math.min(0, ...means) - 0.1, Math.max(0.6, ...means) + 0.1] } });
    }
    if (shared >= 10 && means.every(m => m !== null)) {
      ctx.evidence(`Measured with ${act}: over ${shared} test evaluations at the same steps, the largest gap between the two runs' test losses is ${gap === 0 ? 'exactly 0' : fmt(gap, 4)}. A dropped neuron sends on ${fmt(means[0], 2)} (after) and ${fmt(means[1], 2)} (before).`);
    }
  }, 500);

  const light = ['#f0b48a', '#9cc7e3'];
  function drawLayer() {
    const traces = p.runs.map((r, i) => {
      const a = r.last && r.last.arrays['act.0'], m = r.last && r.last.arrays['mask.0'];
      if (!a) return null;
      const ys = Array.from(a.data);
      return { type: 'bar', name: r.name, x: ys.map((_, j) => j), y: ys,
        marker: { color: ys.map((_, j) => (m && !m.data[j] ? light[i] : [COLORS.neg, COLORS.pos][i])), line: { width: 0 } },
        hovertemplate: `${r.name}, neuron %{x}: %{y:.3f}<extra></extra>` };
    }).filter(Boolean);
    if (traces.length) draw(layer.plot, traces, { barmode: 'group', xaxis: { title: { text: 'neuron' }, dtick: 1 },
      yaxis: { title: { text: 'output' } }, legend: { orientation: 'h', y: -0.3 } });
  }

  p.start();
  return { runs: p.runs, async stop() { clearInterval(summary); await p.close(); } };
}

// ---- h. BatchNorm and the variance shift --------------------------------------------------
export function batchnorm(root, lesson, ctx) {
  const p = pair(root, lesson, ctx, 'Loss, both orders');
  const shift = panel(root, 'Variance shift at each BatchNorm', { height: 300, wide: true,
    caption: 'variance of the BatchNorm inputs in eval mode ÷ the running variance it learned in training (1 = no shift)' });
  const readout = new Readout(ctx.controls, p.runs.map((r, i) => [`r${i}`, r.name]));
  let seed = 0;

  async function probe() {
    if (!p.runs.every(r => r.info && r.last)) return;
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
    const step = Math.min(...p.runs.map(r => r.last.header.step));
    if (step >= 300) {
      ctx.evidence(`Measured at step ${step}, eval-mode variance ÷ running variance per layer: ${p.runs.map((r, i) => `${r.name}: ${ratios[i].join(', ')}`).join('; ')}.`);
    }
    ctx.tick();
  }

  const loop = poll(2000, probe);
  p.start();
  return { runs: p.runs, async stop() { loop.stop(); await p.close(); } };
}
