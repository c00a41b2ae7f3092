// Lesson l: where the network does not know. A live run of the preset shows MC dropout's
// band as it forms; the verdict comes from the server's measurement (the 'uncertainty'
// experiment, model_server/experiments/uncertain.py): on fixed seeds, the band's width in
// the gap, on the data and beyond it, at p and at a lower p, beside the spread of a deep
// ensemble trained without dropout, with coverage. What the numbers show is said whichever
// way they fall.
import { COLORS } from '../views/theme.js';
import { FunctionView } from '../views/function.js';
import { LiveRun, panel, draw, Readout, presetExperiment } from './common.js';

const pm = (s, d = 2) => `${s.mean.toFixed(d)} ± ${s.spread.toFixed(d)}`;
const pct = s => `${(100 * s.mean).toFixed(1)}% ± ${(100 * s.spread).toFixed(1)}%`;

// The option the measured widths (one {data, gap, edges} per seed) support: the widest
// region on average, if its band is `margin` times the band on the data or more on every
// seed (the experiment's answer says how much: its margin).
export function verdictOf(ws, margin) {
  const m = k => ws.reduce((s, w) => s + w[k], 0) / ws.length;
  if (Math.max(m('data'), m('gap'), m('edges')) < 1e-6) return 'none';
  const order = ['gap', 'edges'].sort((a, b) => m(b) - m(a));
  return order.find(k => ws.every(w => w[k] > margin * w.data)) || 'same';
}

// One part of the experiment's answer (mc, mc_low, ensemble) -> its widths per seed.
const perSeed = part => part.gap.values.map((gap, i) => ({ gap, data: part.data.values[i], edges: part.beyond.values[i] }));

// A band (mean ± 2 std over x) as two traces, the upper one filled down to the lower.
function bandTraces(x, { mean, std }, color, fill, name) {
  const line = (y, extra) => ({ type: 'scatter', mode: 'lines', x, y, hoverinfo: 'skip', showlegend: false, line: { width: 0 }, ...extra });
  return [line(mean.map((m, i) => m - 2 * std[i])), line(mean.map((m, i) => m + 2 * std[i]), { fill: 'tonexty', fillcolor: fill }),
    { type: 'scatter', mode: 'lines', x, y: mean, name, hoverinfo: 'skip', line: { color, width: 2 } }];
}

export function uncertainty(root, lesson, ctx) {
  const run = new LiveRun(lesson.hash, { stopAt: lesson.steps });
  const live = panel(root, `The band forming, live (seed 0, p = ${lesson.params.uncertainty.p})`, { height: 320, wide: true });
  const view = new FunctionView(live.plot, live.caption, null);
  const ens = panel(root, 'MC dropout beside a deep ensemble (first seed)', { height: 300, caption: 'measuring…' });
  const low = panel(root, 'What p does to the band (first seed)', { height: 300, caption: 'measuring…' });
  const readout = new Readout(ctx.controls, [['mc', 'MC band: gap / data / beyond'], ['ens', 'ensemble: gap / data / beyond'],
    ['low', 'lower p: gap / data / beyond'], ['cov', 'coverage: p / lower p / ensemble']]);
  let closed = false, shown = null;
  run.addEventListener('problem', e => ctx.problem(e.detail));
  run.addEventListener('frame', e => {
    if (!e.detail.header.band) return;
    if (shown !== run.info) { view.setup(run.info); shown = run.info; }
    view.update(e.detail);
    if (view.paint()) ctx.tick();
  });
  run.start();
  (async () => {
    let r;
    try { r = await presetExperiment('uncertainty', lesson.params.uncertainty); } catch (e) { ctx.problem(e.message); return; }
    if (closed) return;
    const three = k => `${pm(r[k].gap)} / ${pm(r[k].data)} / ${pm(r[k].beyond)}`;
    readout.set({ mc: three('mc'), ens: three('ensemble'), low: three('mc_low'),
      cov: `${pct(r.mc.coverage)} / ${pct(r.mc_low.coverage)} / ${pct(r.ensemble.coverage)}` });
    drawParts(r, ens, low);
    ctx.evidence(...evidence(r));
    ctx.tick();
    ctx.done();
  })();
  return { async stop() { closed = true; await run.close(); } };
}

function drawParts(r, ens, low) {
  const layout = { xaxis: { range: [r.x[0], r.x[r.x.length - 1]], zeroline: false }, yaxis: { zeroline: false },
    legend: { orientation: 'h', y: -0.15 }, margin: { l: 40, r: 10, t: 10, b: 30 } };
  const members = r.ensemble.curves.eval.map((y, i) => ({ type: 'scatter', mode: 'lines', x: r.x, y, hoverinfo: 'skip',
    showlegend: i === 0, name: 'ensemble networks', line: { color: 'rgba(213,94,0,0.35)', width: 1 } }));
  draw(ens.plot, [...bandTraces(r.x, r.mc.curves, COLORS.pos, 'rgba(0,114,178,0.18)', `MC dropout, p = ${r.mc.p}`),
    ...bandTraces(r.x, r.ensemble.curves, COLORS.neg, 'rgba(213,94,0,0.15)', `ensemble of ${r.ensemble_size}, p = 0`), ...members], layout);
  ens.caption.textContent = `shaded: mean ± 2 standard deviations; blue: ${r.passes} MC-dropout passes of one network; vermillion: `
    + `${r.ensemble_size} networks trained without dropout from different initial weights (faint: each one's prediction). `
    + `The gap is x in ${r.gap[0]}..${r.gap[1]}; the data reach ${r.data_x[0]}..${r.data_x[1]}.`;
  draw(low.plot, [...bandTraces(r.x, r.mc.curves, COLORS.pos, 'rgba(0,114,178,0.18)', `p = ${r.mc.p}`),
    ...bandTraces(r.x, r.mc_low.curves, COLORS.edgeline, 'rgba(61,68,81,0.22)', `p = ${r.mc_low.p}`)], layout);
  low.caption.textContent = `The same network trained at p = ${r.mc.p} and at p = ${r.mc_low.p}, each band from ${r.passes} passes at its own p. `
    + `Coverage over ${r.seeds.length} seeds: ${pct(r.mc.coverage)} at p = ${r.mc.p}, ${pct(r.mc_low.coverage)} at p = ${r.mc_low.p}.`;
}

// The verdict's text and judged answer from the experiment's numbers.
function evidence(r) {
  const answer = verdictOf(perSeed(r.mc), r.margin);
  const n = r.seeds.length, ratio = k => `${pm(r[k].ratio)}×`;
  const wider = (a, b) => (r[a].ratio.mean > r[b].ratio.mean ? 'more' : 'less');
  const text = [`Measured over ${n} seeds (mean ± spread), ${r.steps.toLocaleString('en')} steps each: at p = ${r.mc.p} the band `
    + `is ${pm(r.mc.gap)} wide in the gap, ${pm(r.mc.data)} on the data and ${pm(r.mc.beyond)} beyond it; gap / data ${ratio('mc')}.`,
  `The deep ensemble (${r.ensemble_size} networks, no dropout) spreads ${pm(r.ensemble.gap)} in the gap and ${pm(r.ensemble.data)} on `
    + `the data (gap / data ${ratio('ensemble')}): it singles out the gap ${wider('ensemble', 'mc')} than MC dropout does, `
    + `and its band holds ${pct(r.ensemble.coverage)} of the test points against ${pct(r.mc.coverage)} for MC dropout.`,
  `At p = ${r.mc_low.p} the band is ${pm(r.mc_low.gap)} in the gap and ${pm(r.mc_low.data)} on the data (gap / data ${ratio('mc_low')}), `
    + `coverage ${pct(r.mc_low.coverage)} against ${pct(r.mc.coverage)} at p = ${r.mc.p}.`].join(' ');
  const margin = `more than ${Math.round(100 * (r.margin - 1))}% wider than on the data on every seed`;
  const said = { gap: `the band is widest in the gap, ${margin}`, edges: `the band is widest beyond the data, ${margin}`,
    same: `neither the gap nor the region beyond the data has a band ${margin}`, none: 'the passes agree: no band at all' }[answer];
  return [text, { key: answer, about: '', answer, explain: `Measured: ${said}.` }];
}
