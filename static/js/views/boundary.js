// The input plane: the model's decision boundary (eval network, or this step's thinned
// network) as a heatmap under the train and test points; hovering a neuron swaps in that
// neuron's output over the plane. The example whose mask is shown gets a ring.
import { COLORS, PROB_SCALE, layoutBase } from './theme.js';

export class BoundaryView {
  constructor(el, caption) {
    this.el = el;
    this.caption = caption;
    this.paints = 0;
    this.pending = null;
  }

  setup(info) {
    this.plane = info.plane;
    const n = 48;
    const axis = Array.from({ length: n }, (_, i) => info.plane[0] + (info.plane[1] - info.plane[0]) * i / (n - 1));
    this.axis = axis;
    const pts = (rows, cls, test) => ({
      type: 'scatter', mode: 'markers', hoverinfo: 'skip', showlegend: true,
      name: `${test ? 'test' : 'train'} · class ${cls}`,
      x: rows.filter(r => r[2] === cls).map(r => r[0]), y: rows.filter(r => r[2] === cls).map(r => r[1]),
      marker: { size: test ? 6 : 7, symbol: (cls ? 'circle' : 'diamond') + (test ? '-open' : ''),
        color: cls ? COLORS.pos : COLORS.neg, line: { width: test ? 1.5 : 1, color: test ? undefined : '#fff' } },
    });
    const traces = [
      { type: 'heatmap', x: axis, y: axis, z: [[0.5]], zmin: 0, zmax: 1, colorscale: PROB_SCALE, showscale: false,
        hoverinfo: 'skip', opacity: 0.85 },
      pts(info.points.train, 0, false), pts(info.points.train, 1, false),
      pts(info.points.test, 0, true), pts(info.points.test, 1, true),
      { type: 'scatter', mode: 'markers', x: [], y: [], hoverinfo: 'skip', name: 'shown example',
        marker: { size: 16, symbol: 'circle-open', color: '#111', line: { width: 2.5 } } },
    ];
    const layout = layoutBase({
      margin: { l: 30, r: 8, t: 8, b: 28 },
      xaxis: { range: info.plane, fixedrange: true, zeroline: false, constrain: 'domain' },
      yaxis: { range: info.plane, fixedrange: true, zeroline: false, scaleanchor: 'x' },
      legend: { orientation: 'h', y: -0.12, font: { size: 10 } },
    });
    Plotly.react(this.el, traces, layout, { displayModeBar: false, responsive: true });
  }

  // Called for every frame; the heavy heatmap restyle happens in paint().
  update(frame, view, watching) {
    const { arrays, header } = frame;
    let grid = null, label = null, scale = null;
    if (watching && arrays.neuron && header.watch) {
      grid = arrays.neuron.data;
      let m = 1e-6; for (const v of grid) m = Math.max(m, Math.abs(v));
      grid = Float32Array.from(grid, v => 0.5 + 0.5 * v / m);
      label = `output of neuron ${header.watch[1]} in hidden layer ${header.watch[0] + 1} (eval mode; blue > 0 > vermillion)`;
    } else if (view === 'thinned' && arrays['boundary.thinned']) {
      grid = arrays['boundary.thinned'].data;
      label = `boundary of this step's thinned network (the mask shown on the left, scaled by 1/(1-p))`;
    } else if (arrays['boundary.eval']) {
      grid = arrays['boundary.eval'].data;
      label = view === 'thinned' ? 'no thinned network in eval mode or at p = 0: full network shown'
        : 'boundary of the full network in eval mode (no dropout)';
    }
    if (grid) this.pending = { grid, label };
    if (header.example && header.example.x) this.example = header.example.x;
  }

  paint() {
    if (!this.pending) return false;
    const { grid, label } = this.pending;
    this.pending = null;
    const n = this.axis.length, z = [];
    for (let r = 0; r < n; r++) z.push(Array.from(grid.subarray(r * n, (r + 1) * n)));
    Plotly.restyle(this.el, { z: [z] }, [0]);
    if (this.example) Plotly.restyle(this.el, { x: [[this.example[0]]], y: [[this.example[1]]] }, [5]);
    if (this.caption) this.caption.textContent = label;
    this.paints++;
    return true;
  }
}
