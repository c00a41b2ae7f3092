// A regression's function panel (it takes the boundary panel's place): the train and
// test points, the eval-mode prediction (model.eval(): no dropout), and Monte Carlo
// dropout's answer: T stochastic passes of the network with dropout on, drawn as faint
// curves of some of the thinned networks, their mean, and a band of mean ± 2 standard
// deviations. The caption says what the band is and the coverage the server measured:
// the share of the test points inside it.
// Two plots stacked with identical axes, as the boundary panel has them: the curves below,
// redrawn with each refresh, and the points above, drawn once (redrawing hundreds of SVG
// markers with every refresh would cost far more than the curves).
import { COLORS, layoutBase } from './theme.js';
import { BoundaryView, stackLayers } from './boundary.js';

const BAND_FILL = 'rgba(0,114,178,0.18)';
const CURVE = 'rgba(0,114,178,0.28)';
const pct = v => `${(100 * v).toFixed(1)}%`;

// The band's sections of a frame (docs/protocol.md), or null for a frame without them.
// -> { x, eval, mean, std, curves: [Float32Array per thinned network], inside, coverage, passes }
export function bandOf(frame) {
  const a = frame.arrays, b = frame.header.band;
  if (!a['band.mean'] || !b) return null;
  const mean = a['band.mean'].data, G = mean.length, [lo, hi] = b.x;
  const x = Array.from({ length: G }, (_, i) => lo + (hi - lo) * i / (G - 1));
  const c = a['band.curves'], curves = [];
  if (c) for (let k = 0; k < c.shape[0]; k++) curves.push(c.data.subarray(k * G, (k + 1) * G));
  return { x, eval: a['band.eval'].data, mean, std: a['band.std'].data, curves,
    inside: a['band.inside'] ? a['band.inside'].data : null, coverage: b.coverage, passes: b.passes };
}

// The share of test points inside the band, from the frame's own per-point flags.
export function insideShare(band, nTest) {
  if (!band.inside || !nTest) return null;
  let n = 0; for (let i = 0; i < nTest; i++) n += band.inside[i] ? 1 : 0;
  return n / nTest;
}

export class FunctionView {
  constructor(el, caption, title = null) {
    this.el = el;
    this.caption = caption;
    this.title = title;
    this.paints = 0;
    this.pending = null;
    this.shown = null;
  }

  setup(info) {
    const [below, above] = stackLayers(this.el);
    this.below = below; this.above = above;
    this.plane = info.plane;
    this.nTest = info.points.test.length;
    this.passes = info.config ? info.config.train.mc_passes : null;
    const layout = () => layoutBase({
      margin: { l: 30, r: 8, t: 8, b: 24 }, showlegend: false,
      xaxis: { range: info.plane, fixedrange: true, zeroline: false },
      yaxis: { range: info.plane, fixedrange: true, zeroline: false },
    });
    this.config = { displayModeBar: false, responsive: true, staticPlot: true };
    this.layout = layout();
    Plotly.react(below, this.traces(null), this.layout, this.config);
    const top = layout();
    for (const axis of [top.xaxis, top.yaxis]) Object.assign(axis, { showgrid: false, showticklabels: false });
    const pts = (rows, test) => ({
      type: 'scatter', mode: 'markers', hoverinfo: 'skip', name: test ? 'test' : 'train',
      x: rows.map(r => r[0]), y: rows.map(r => r[1]),
      marker: { size: test ? 6 : 5, symbol: test ? 'circle-open' : 'circle',
        color: test ? COLORS.test : COLORS.edgeline, line: { width: test ? 1.5 : 0 } },
    });
    Plotly.react(above, [pts(info.points.train, false), pts(info.points.test, true)], top, this.config);
    this.resizer = new ResizeObserver(() => { for (const gd of [below, above]) Plotly.Plots.resize(gd); });
    this.resizer.observe(this.el);
    this.el.resizer = this.resizer;
    if (this.title) this.title.textContent = 'Prediction and MC-dropout band';
    if (this.caption && info.config) this.caption.textContent = `the band comes with the first frame (${this.passes} stochastic passes with dropout on)`;
  }

  // Just these points, no curves (a custom set that cannot train yet).
  showPoints(plane, points, caption) {
    this.pending = null;
    this.shown = null;
    this.setup({ plane, points: { train: points, test: [] } });
    if (this.caption) this.caption.textContent = caption;
    if (this.title) this.title.textContent = 'Your points';
  }

  // The curves of a band (null: empty traces), in the order the plot keeps them.
  traces(band) {
    const line = (name, color, width, dash = 'solid') => ({ type: 'scatter', mode: 'lines', name, hoverinfo: 'skip',
      x: [], y: [], line: { color, width, dash } });
    const t = [line('band low', 'rgba(0,0,0,0)', 0), { ...line('band', 'rgba(0,0,0,0)', 0), fill: 'tonexty', fillcolor: BAND_FILL },
      line('thinned networks', CURVE, 1), line('MC mean', COLORS.pos, 2.5), line('eval mode', '#20242b', 2, 'dash')];
    if (!band) return t;
    const { x, mean, std } = band;
    t[0].x = t[1].x = t[3].x = t[4].x = x;
    t[0].y = Array.from(mean, (m, i) => m - 2 * std[i]);
    t[1].y = Array.from(mean, (m, i) => m + 2 * std[i]);
    t[3].y = Array.from(mean);
    t[4].y = Array.from(band.eval);
    // every thinned network's curve in one trace, NaN between them (few traces draw fast)
    for (const c of band.curves) { t[2].x.push(...x, NaN); t[2].y.push(...c, NaN); }
    return t;
  }

  // Called for every frame (a replayed step too: the band is always of the latest
  // weights, and says so); the curves are drawn in paint().
  update(frame, view, watching, latestStep = null) {
    const band = bandOf(frame);
    if (!band) return;
    const replay = Boolean(frame.header.replay) && latestStep !== null;
    const step = replay ? latestStep : frame.header.step;
    this.pending = { band, step, p: frame.header.p, replay };
  }

  replayed(frame, latestStep) { this.update(frame, 'eval', null, latestStep); }

  // Draws the latest band, if it differs from the one on screen. Returns true if it drew.
  paint() {
    if (!this.pending) return false;
    const next = this.pending;
    this.pending = null;
    if (this.shown && this.shown.band.mean === next.band.mean) return false;
    this.shown = next;
    Plotly.react(this.below, this.traces(next.band), this.layout, this.config);
    this.redrew = true;
    const label = this.label(next);
    if (this.caption && this.caption.textContent !== label) this.caption.textContent = label;
    this.paints++;
    return true;
  }

  label({ band, step, p, replay }) {
    const T = band.passes ?? this.passes, shown = band.curves.length;
    const ps = p && p.length ? ` (p = ${p.map(v => +v.toFixed(2)).join(', ')})` : '';
    const cover = band.coverage === null || band.coverage === undefined ? 'no test points to measure coverage on'
      : `coverage ${pct(band.coverage)}: the share of the ${this.nTest} test points inside the band`;
    const when = replay ? `, weights as of step ${step.toLocaleString('en')} (only the latest are kept)` : '';
    return `band = mean ± 2 standard deviations of ${T} stochastic passes with dropout on${ps}; `
      + `faint lines: ${shown} of those thinned networks; dashed: the eval-mode prediction (no dropout)${when}; `
      + `dots: train points, rings: test points. ${cover}`;
  }
}

// fn(x, y, event) for a click inside the plot area (the custom-data editor): the boundary
// panel's reading of a click, as both panels stack their plots alike (el, above)
FunctionView.prototype.onClick = BoundaryView.prototype.onClick;
