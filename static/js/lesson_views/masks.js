// Lesson a: every step trains another thinned network.
// Data: the frames of one slow run. mask.<l> is the keep-mask applied to the shown example
// in that step (every step has its own frame at 10 steps/s); dropped.<l> counts, per
// neuron, the examples that dropped it since the previous frame, out of header.masked[l].
import { COLORS } from '../views/theme.js';
import { LiveRun, panel, draw, Readout, buttons, slider, fmt } from './common.js';

const COLUMNS = 60;           // steps kept in the raster
const PAINT_MS = 100;
const EVIDENCE_SAMPLES = 300; // masks per neuron before the answer is shown with numbers

export function mount(root, lesson, ctx) {
  const run = new LiveRun(lesson.hash, { stopAt: lesson.steps });
  const raster = panel(root, 'Masks of the last 60 steps', { height: 300, caption: 'one column per step, one row per neuron; dark = kept, light = dropped' });
  const bars = panel(root, 'Measured keep rate of each neuron', { height: 300, caption: 'kept / seen, over every example of every step so far; dashed: 1 − p' });
  const readout = new Readout(ctx.controls, [['step', 'step'], ['seen', 'masks per neuron'], ['l1', 'layer 1 keep rate'], ['l2', 'layer 2 keep rate']]);
  const seen = { widths: [], columns: [], steps: [], counts: null, dirty: false };
  let painted = 0;

  speedControls(ctx, run);
  slider(ctx.controls, 'p of layer 1', { min: 0, max: 0.95, step: 0.05, value: run.state.p[0], format: v => v.toFixed(2) }, async v => {
    await run.set({ param: 'p', layer: 0, value: v });
    run.state.p[0] = v;
    seen.counts = null;  // measure the new p from scratch
  });

  run.addEventListener('configured', e => {
    seen.widths = e.detail.sizes.slice(1, -1);
    seen.columns = []; seen.steps = []; seen.counts = null;
  });
  run.addEventListener('problem', e => ctx.problem(e.detail));
  run.addEventListener('frame', e => record(seen, e.detail));

  function paint() {
    if (!seen.dirty || !seen.columns.length) return;
    seen.dirty = false;
    const z = paintRaster(raster, seen);
    if (seen.counts) {
      const summary = paintBars(bars, seen, run.state.p);
      report(ctx, readout, seen, summary, z, run.state.p[0]);
    }
    painted++;
    ctx.tick();
  }

  let timer = setInterval(paint, PAINT_MS);
  run.start();
  return {
    run,
    async stop() { clearInterval(timer); timer = null; await run.close(); },
    stats: () => ({ painted, columns: seen.columns.length }),
  };
}

// Slow (every step its own frame) or fast, as two pressed-state buttons.
function speedControls(ctx, run) {
  const speedButtons = buttons(ctx.controls, [
    ['slow', 'Slow: every step (10/s)', () => setSpeed(10)],
    ['fast', 'Fast: as fast as possible', () => setSpeed(1e6)],
  ]);
  const mark = speed => { speedButtons.slow.setAttribute('aria-pressed', String(speed <= 30)); speedButtons.fast.setAttribute('aria-pressed', String(speed > 30)); };
  mark(run.state.speed > 30 ? 1e6 : 10);
  async function setSpeed(v) { mark(v); await run.set({ param: 'speed', value: v }); if (!run.playing) run.play(); }
}

// One frame: its mask becomes a raster column, its dropped counts add to the keep rates.
function record(seen, { header: h, arrays }) {
  if (!h.steps) return;
  const { widths } = seen;
  const col = [];
  widths.forEach((w, l) => {
    const m = arrays[`mask.${l}`];
    for (let j = 0; j < w; j++) col.push(m ? m.data[j] : 1);
  });
  seen.columns.push(col); seen.steps.push(h.step);
  if (seen.columns.length > COLUMNS) { seen.columns.shift(); seen.steps.shift(); }
  if (!seen.counts) seen.counts = widths.map(w => ({ kept: new Float64Array(w), seen: 0 }));
  const counts = seen.counts;
  widths.forEach((w, l) => {
    const d = arrays[`dropped.${l}`], masked = h.masked[l];
    if (!masked) { counts[l].seen += h.steps; for (let j = 0; j < w; j++) counts[l].kept[j] += h.steps; return; }
    counts[l].seen += masked;
    for (let j = 0; j < w; j++) counts[l].kept[j] += masked - (d ? d.data[j] : 0);
  });
  seen.dirty = true;
}

const layerMiddles = widths => widths.map((w, l) => widths.slice(0, l).reduce((a, b) => a + b, 0) + (w - 1) / 2);

// The raster of the last COLUMNS masks; returns its rows (one per neuron).
function paintRaster(raster, { widths, columns, steps }) {
  const n = columns[0].length;
  const z = Array.from({ length: n }, (_, r) => columns.map(c => c[r]));
  const labels = [];
  widths.forEach((w, l) => { for (let j = 0; j < w; j++) labels.push(`layer ${l + 1} · ${j}`); });
  const split = widths.slice(0, -1).map((w, l) => widths.slice(0, l + 1).reduce((a, b) => a + b, 0) - 0.5);
  draw(raster.plot, [{
    type: 'heatmap', z, x: steps, y: labels.map((_, i) => i), zmin: 0, zmax: 1, showscale: false,
    colorscale: [[0, '#eceef1'], [0.5, '#eceef1'], [0.5, COLORS.pos], [1, COLORS.pos]], xgap: 1, ygap: 1,
    customdata: z.map((row, r) => row.map(() => labels[r])),
    hovertemplate: 'step %{x}<br>%{customdata}: %{z}<extra>1 = kept, 0 = dropped</extra>',
  }], {
    xaxis: { title: { text: 'step' } },
    margin: { l: 64, r: 12, t: 10, b: 40 },
    yaxis: { autorange: 'reversed', tickvals: layerMiddles(widths),
      ticktext: widths.map((_, l) => `layer ${l + 1}`), zeroline: false },
    shapes: split.map(y => ({ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: y, y1: y, line: { color: '#20242b', width: 2 } })),
  });
  return z;
}

// Each neuron's measured keep rate against 1 − p; returns [min, max, mean] per layer.
function paintBars(bars, { widths, counts }, p) {
  const rates = [], xs = [], colors = [], shapes = [];
  let x = 0;
  counts.forEach((c, l) => {
    for (let j = 0; j < widths[l]; j++) { xs.push(x + j); rates.push(c.seen ? c.kept[j] / c.seen : null); colors.push(l ? COLORS.test : COLORS.pos); }
    shapes.push({ type: 'line', x0: x - 0.5, x1: x + widths[l] - 0.5, y0: 1 - p[l], y1: 1 - p[l], line: { color: '#20242b', width: 2, dash: 'dash' } });
    x += widths[l];
  });
  draw(bars.plot, [{ type: 'bar', x: xs, y: rates, marker: { color: colors },
    hovertemplate: 'neuron %{x}: kept %{y:.3f}<extra></extra>' }], {
    yaxis: { range: [0, 1], title: { text: 'keep rate' } },
    xaxis: { tickvals: layerMiddles(widths),
      ticktext: widths.map((_, l) => `layer ${l + 1} (1 − p = ${(1 - p[l]).toFixed(2)})`) },
    shapes, bargap: 0.15,
  });
  return counts.map(c => { const r = Array.from(c.kept, k => k / Math.max(1, c.seen)); return [Math.min(...r), Math.max(...r), r.reduce((a, b) => a + b, 0) / r.length]; });
}

// The readout, and the evidence sentence once every neuron has been seen often enough.
function report(ctx, readout, { widths, columns, steps, counts }, summary, z, p0) {
  const range = s => `${fmt(s[2], 2)} (${fmt(s[0], 2)}–${fmt(s[1], 2)})`;
  readout.set({ step: steps[steps.length - 1], seen: counts[0].seen,
    l1: range(summary[0]), l2: summary[1] ? range(summary[1]) : '–' });
  if (counts[0].seen < EVIDENCE_SAMPLES) return;
  const flips = z.slice(0, widths[0]).filter(row => row.some(v => v === 0) && row.some(v => v === 1)).length;
  ctx.evidence(`Measured: in layer 1 (1 − p = ${(1 - p0).toFixed(2)}) the keep rates run from ${fmt(summary[0][0], 2)} to ${fmt(summary[0][1], 2)} over ${counts[0].seen} masks per neuron, and ${flips} of its ${widths[0]} neurons were both kept and dropped within the last ${columns.length} steps.`);
}
