// Loss curves (train: mean over the steps since the previous frame; test: each
// evaluation) and test accuracy on a second axis. Points are buffered per frame and
// added in one extendTraces at most a few times a second.
import { COLORS, layoutBase } from './theme.js';

const MAX_POINTS = 5000;

export class LossView {
  constructor(el) { this.el = el; this.buffer = null; this.paints = 0; this.count = 0; }

  // series: [{name, color, dash}]. Plotly reads a subset of HTML in names: a name must be
  // plain text with < > & already escaped. With a colour, every curve of the series has it
  // (and its dash), and the curves differ by width and opacity; without, by colour.
  // accuracy: false for a regression (no accuracy: its curves and axis stay hidden).
  setup(series = [{ name: '' }], { accuracy = true } = {}) {
    this.series = series;
    const traces = [];
    const dash = ['solid', 'dash', 'dot'];
    series.forEach((s, i) => {
      const pre = s.name ? `${s.name}: ` : '';
      const own = c => ({ color: s.color || c, dash: s.dash || dash[i] });
      traces.push({ type: 'scatter', mode: 'lines', name: `${pre}train loss`, x: [], y: [], legendgroup: String(i),
        line: { ...own(COLORS.train), width: s.color ? 1 : 1.5 }, opacity: s.color ? 0.5 : 1 });
      traces.push({ type: 'scatter', mode: 'lines', name: `${pre}test loss`, x: [], y: [], legendgroup: String(i),
        line: { ...own(COLORS.test), width: s.color ? 3 : 2 } });
      traces.push({ type: 'scatter', mode: 'lines', name: `${pre}test accuracy`, x: [], y: [], yaxis: 'y2', legendgroup: String(i), visible: accuracy,
        line: { ...own(COLORS.acc), width: s.color ? 1.5 : 1 }, opacity: s.color ? 0.8 : 1 });
    });
    Plotly.react(this.el, traces, layoutBase({
      margin: { l: 44, r: 40, t: 8, b: 34 },
      xaxis: { title: { text: 'step' }, rangemode: 'tozero' },
      yaxis: { title: { text: 'loss' }, rangemode: 'tozero' },
      yaxis2: { title: { text: 'test accuracy' }, overlaying: 'y', side: 'right', range: [0, 1], dtick: 0.25, tickformat: '.0%', showgrid: false, visible: accuracy },
      legend: { orientation: 'h', y: -0.25, font: { size: 10 } },
    }), { displayModeBar: false, responsive: true });
    this.reset();
  }

  reset() {
    this.buffer = this.series.flatMap(() => [{ x: [], y: [] }, { x: [], y: [] }, { x: [], y: [] }]);
    this.lastEval = this.series.map(() => -1);
    this.count = 0;
  }

  clear() {
    if (!this.series) return;
    const n = this.series.length * 3;
    Plotly.restyle(this.el, { x: Array.from({ length: n }, () => []), y: Array.from({ length: n }, () => []) });
    this.reset();
  }

  add(frame, s = 0) {
    const h = frame.header, b = this.buffer;
    if (h.train_loss !== null && h.train_loss !== undefined && h.steps > 0) { b[3 * s].x.push(h.step); b[3 * s].y.push(h.train_loss); }
    const e = h.eval;
    if (e && e.step !== this.lastEval[s]) {
      this.lastEval[s] = e.step;
      if (e.test_loss !== null) { b[3 * s + 1].x.push(e.step); b[3 * s + 1].y.push(e.test_loss); }
      if (e.test_acc !== null) { b[3 * s + 2].x.push(e.step); b[3 * s + 2].y.push(e.test_acc); }
    }
  }

  paint() {
    if (!this.buffer || this.buffer.every(t => t.x.length === 0)) return false;
    const idx = [], xs = [], ys = [];
    this.buffer.forEach((t, i) => { if (t.x.length) { idx.push(i); xs.push(t.x); ys.push(t.y); } });
    Plotly.extendTraces(this.el, { x: xs, y: ys }, idx, MAX_POINTS);
    this.count += xs.reduce((a, x) => a + x.length, 0);
    this.buffer.forEach(t => { t.x = []; t.y = []; });
    this.paints++;
    return true;
  }
}
