// Lesson l: where the network does not know. MC dropout's band on the sine with a gap,
// measured on the lesson's seeds: the same preset trained once per seed (a round of live
// runs, at most as many at once as a visitor may hold), each to the lesson's step, at
// each of the lesson's drop probabilities. The band of each run's last frame is read
// where the training points are, in the widest gap between them, and beyond them;
// the verdict is what those widths show over the seeds, whichever way it falls.
import { FunctionView, bandOf } from '../views/function.js';
import { LiveRun, panel, Readout, fmt, mergeHash } from './common.js';

const mean = a => a.reduce((s, v) => s + v, 0) / a.length;
const spread = a => Math.sqrt(mean(a.map(v => (v - mean(a)) ** 2)));
const pm = (a, d = 3) => `${fmt(mean(a), d)} ± ${fmt(spread(a), d)}`;
const MARGIN = 1.1;  // a region counts as wider when its band is this much wider than on the data, on every seed

// One band's mean width (4 std: from mean - 2 std to mean + 2 std) in the three regions of
// x that the run's own training points define: on the data, in their widest gap, beyond.
export function widths(band, train) {
  const xs = train.map(r => r[0]).sort((a, b) => a - b);
  let gap = [0, 0];
  for (let i = 1; i < xs.length; i++) if (xs[i] - xs[i - 1] > gap[1] - gap[0]) gap = [xs[i - 1], xs[i]];
  const lo = xs[0], hi = xs[xs.length - 1], where = { data: [], gap: [], edges: [] };
  band.x.forEach((x, i) => {
    const w = 4 * band.std[i];
    if (x < lo || x > hi) where.edges.push(w); else if (x > gap[0] && x < gap[1]) where.gap.push(w); else where.data.push(w);
  });
  return { data: mean(where.data), gap: mean(where.gap), edges: where.edges.length ? mean(where.edges) : NaN, at: gap };
}

// The option the measured widths (one {data, gap, edges} per seed) support: the widest
// region on average, if its band is wider than on the data by MARGIN on every seed.
export function verdictOf(ws) {
  const m = k => mean(ws.map(w => w[k]));
  if (Math.max(m('data'), m('gap'), m('edges') || 0) < 1e-6) return 'none';
  const order = ['gap', 'edges'].filter(k => Number.isFinite(m(k))).sort((a, b) => m(b) - m(a));
  return order.find(k => ws.every(w => w[k] > MARGIN * w.data)) || 'same';
}

// Train one run per seed at drop probability p to the lesson's step; -> per seed
// {widths, coverage, step}. show: the first run's frames, for the live panel.
async function round(lesson, p, show, ctx) {
  const ps = Array(lesson.layers).fill(p).join(',');
  const runs = lesson.seeds.map(seed => new LiveRun(mergeHash(lesson.hash, `seed=${seed}&p=${ps}`), { stopAt: lesson.steps }));
  const bands = runs.map(() => null);
  runs.forEach((r, i) => {
    r.addEventListener('problem', e => ctx.problem(e.detail));
    r.addEventListener('frame', e => {
      if (!e.detail.header.band) return;
      bands[i] = { frame: e.detail, info: r.info };
      if (i === 0) show(e.detail, r.info);
    });
  });
  const done = runs.map(r => new Promise(resolve => r.addEventListener('done', resolve, { once: true })));
  try {
    const acks = await Promise.all(runs.map(r => r.start()));
    if (acks.some(a => !a || !a.ok)) return null;
    await Promise.all(done);
    // the band of the stop step: the paused run's last frame carries it
    await Promise.all(runs.map((r, i) => waitFor(r, () => bands[i] && bands[i].frame.header.step === lesson.steps)));
  } finally {
    await Promise.all(runs.map(r => r.close()));
  }
  return bands.map(b => {
    const band = bandOf(b.frame);
    return { widths: widths(band, b.info.points.train), coverage: band.coverage, step: b.frame.header.step };
  });
}

function waitFor(run, ok, ms = 5000) {
  if (ok()) return Promise.resolve(true);
  return new Promise(resolve => {
    const on = () => { if (ok()) { run.removeEventListener('frame', on); resolve(true); } };
    run.addEventListener('frame', on);
    setTimeout(() => { run.removeEventListener('frame', on); resolve(ok()); }, ms);
  });
}

export function uncertainty(root, lesson, ctx) {
  const live = panel(root, 'The band, live (first seed)', { height: 320, wide: true, caption: '' });
  const title = live.box.querySelector('h3');
  const view = new FunctionView(live.plot, live.caption, null);
  const readout = new Readout(ctx.controls, [['round', 'now training'],
    ...lesson.ps.flatMap(p => [[`w${p}`, `band width at p = ${p}: data / gap / beyond`], [`c${p}`, `coverage at p = ${p}`]])]);
  let shownInfo = null, closed = false;
  const show = (frame, info) => {
    if (info !== shownInfo) { view.setup(info); shownInfo = info; }
    view.update(frame);
    if (view.paint()) ctx.tick();
  };
  const measured = {};
  (async () => {
    for (const p of lesson.ps) {
      if (closed) return;
      title.textContent = `The band at p = ${p}, live (seed ${lesson.seeds[0]} of ${lesson.seeds.join(', ')})`;
      readout.set({ round: `p = ${p}, ${lesson.seeds.length} seeds, ${lesson.steps.toLocaleString('en')} steps each` });
      const got = await round(lesson, p, show, ctx);
      if (!got || closed) return;
      measured[p] = got;
      const w = k => got.map(g => g.widths[k]);
      readout.set({ [`w${p}`]: `${pm(w('data'), 2)} / ${pm(w('gap'), 2)} / ${pm(w('edges'), 2)}`,
        [`c${p}`]: pm(got.map(g => 100 * g.coverage), 1) + '%' });
      ctx.evidence(...evidence(lesson, measured));
    }
    readout.set({ round: 'done' });
    ctx.done();
  })();
  return { async stop() { closed = true; } };
}

// The verdict's text and judged answer from what has been measured so far.
function evidence(lesson, measured) {
  const [main, ...others] = lesson.ps.filter(p => measured[p]);
  const ws = measured[main].map(g => g.widths), w = k => ws.map(x => x[k]);
  const answer = verdictOf(ws);
  const n = ws.length;
  const parts = [`Measured at p = ${main}, over ${n} seeds (mean ± spread), step ${lesson.steps.toLocaleString('en')}: `
    + `the band is ${pm(w('gap'), 2)} wide in the gap, ${pm(w('edges'), 2)} beyond the data and ${pm(w('data'), 2)} on the data `
    + `(gap / data ${fmt(mean(w('gap')) / mean(w('data')), 2)}, beyond / data ${fmt(mean(w('edges')) / mean(w('data')), 2)}).`];
  for (const p of others) {
    const g = measured[p];
    parts.push(`At p = ${p}: ${pm(g.map(x => x.widths.gap), 2)} in the gap, ${pm(g.map(x => x.widths.data), 2)} on the data; `
      + `coverage ${pm(g.map(x => 100 * x.coverage), 1)}% against ${pm(measured[main].map(x => 100 * x.coverage), 1)}% at p = ${main}.`);
  }
  const margin = `more than ${Math.round(100 * (MARGIN - 1))}% wider than on the data on every seed`;
  const said = { gap: `the band is widest in the gap, ${margin}`, edges: `the band is widest beyond the data, ${margin}`,
    same: `neither the gap nor the region beyond the data has a band ${margin}`, none: 'the passes agree: no band at all' }[answer];
  return [parts.join(' '), { key: answer, about: '', answer, explain: `Measured: ${said}.` }];
}
