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
  let widths = [], columns = [], steps = [], counts = null, dirty = false, painted = 0;

  const fast = run.state.speed > 30;
  const speedButtons = buttons(ctx.controls, [
    ['slow', 'Slow: every step (10/s)', () => setSpeed(10)],
    ['fast', 'Fast: as fast as possible', () => setSpeed(1e6)],
  ]);
  const mark = speed => { speedButtons.slow.setAttribute('aria-pressed', String(speed <= 30)); speedButtons.fast.setAttribute('aria-pressed', String(speed > 30)); };
  mark(fast ? 1e6 : 10);
  async function setSpeed(v) { mark(v); await run.set({ param: 'speed', value: v }); if (!run.playing) run.play(); }
  slider(ctx.controls, 'p of layer 1', { min: 0, max: 0.95, step: 0.05, value: run.state.p[0], format: v => v.toFixed(2) }, async v => {
    await run.set({ param: 'p', layer: 0, value: v });
    run.state.p[0] = v;
    counts = null;  // measure the new p from scratch
  });

  run.addEventListener('configured', e => {
    widths = e.detail.sizes.slice(1, -1);
    columns = []; steps = []; counts = null;
  });
  run.addEventListener('problem', e => ctx.problem(e.detail));
  run.addEventListener('frame', e => {
    const { header: h, arrays } = e.detail;
    if (!h.steps) return;
    const col = [];
    widths.forEach((w, l) => {
      const m = arrays[`mask.${l}`];
      for (let j = 0; j < w; j++) col.push(m ? m.data[j] : 1);
    });
    columns.push(col); steps.push(h.step);
    if (columns.length > COLUMNS) { columns.shift(); steps.shift(); }
    if (!counts) counts = widths.map(w => ({ kept: new Float64Array(w), seen: 0 }));
    widths.forEach((w, l) => {
      const d = arrays[`dropped.${l}`], seen = h.masked[l];
      if (!seen) { counts[l].seen += h.steps; for (let j = 0; j < w; j++) counts[l].kept[j] += h.steps; return; }
      counts[l].seen += seen;
      for (let j = 0; j < w; j++) counts[l].kept[j] += seen - (d ? d.data[j] : 0);
    });
    dirty = true;
  });

  function paint() {
    if (!dirty || !columns.length) return;
    dirty = false;
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
      yaxis: { autorange: 'reversed', tickvals: widths.map((w, l) => widths.slice(0, l).reduce((a, b) => a + b, 0) + (w - 1) / 2),
        ticktext: widths.map((_, l) => `layer ${l + 1}`), zeroline: false },
      shapes: split.map(y => ({ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: y, y1: y, line: { color: '#20242b', width: 2 } })),
    });
    if (counts) {
      const rates = [], xs = [], colors = [], shapes = [];
      let x = 0;
      counts.forEach((c, l) => {
        const p = run.state.p[l];
        for (let j = 0; j < widths[l]; j++) { xs.push(x + j); rates.push(c.seen ? c.kept[j] / c.seen : null); colors.push(l ? COLORS.test : COLORS.pos); }
        shapes.push({ type: 'line', x0: x - 0.5, x1: x + widths[l] - 0.5, y0: 1 - p, y1: 1 - p, line: { color: '#20242b', width: 2, dash: 'dash' } });
        x += widths[l];
      });
      draw(bars.plot, [{ type: 'bar', x: xs, y: rates, marker: { color: colors },
        hovertemplate: 'neuron %{x}: kept %{y:.3f}<extra></extra>' }], {
        yaxis: { range: [0, 1], title: { text: 'keep rate' } },
        xaxis: { tickvals: widths.map((w, l) => widths.slice(0, l).reduce((a, b) => a + b, 0) + (w - 1) / 2),
          ticktext: widths.map((_, l) => `layer ${l + 1} (1 − p = ${(1 - run.state.p[l]).toFixed(2)})`) },
        shapes, bargap: 0.15,
      });
      const summary = counts.map(c => { const r = Array.from(c.kept, k => k / Math.max(1, c.seen)); return [Math.min(...r), Math.max(...r), r.reduce((a, b) => a + b, 0) / r.length]; });
      readout.set({ step: steps[steps.length - 1], seen: counts[0].seen,
        l1: `${fmt(summary[0][2], 2)} (${fmt(summary[0][0], 2)}–${fmt(summary[0][1], 2)})`,
        l2: summary[1] ? `${fmt(summary[1][2], 2)} (${fmt(summary[1][0], 2)}–${fmt(summary[1][1], 2)})` : '–' });
      if (counts[0].seen >= EVIDENCE_SAMPLES) {
        const flips = z.slice(0, widths[0]).filter(row => row.some(v => v === 0) && row.some(v => v === 1)).length;
        ctx.evidence(`Measured: in layer 1 (1 − p = ${(1 - run.state.p[0]).toFixed(2)}) the keep rates run from ${fmt(summary[0][0], 2)} to ${fmt(summary[0][1], 2)} over ${counts[0].seen} masks per neuron, and ${flips} of its ${widths[0]} neurons were both kept and dropped within the last ${columns.length} steps.`);
      }
    }
    painted++;
    ctx.tick();
  }

  let timer = setInterval(paint, PAINT_MS);
  run.start();
  return {
    run,
    async stop() { clearInterval(timer); timer = null; await run.close(); },
    stats: () => ({ painted, columns: columns.length }),
  };
}
