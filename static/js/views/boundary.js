// The input plane: the model's decision boundary (eval network, or this step's thinned
// network) as a heatmap under the train and test points; hovering a neuron swaps in that
// neuron's output over the plane. The example whose mask is shown gets a ring.
// Two plots stacked with identical axes: the heatmap and the ring below, redrawn with each
// refresh, and the points above, drawn once (redrawing ~500 SVG markers with every
// heatmap refresh cost far more than the heatmap itself).
import { COLORS, PROB_SCALE, layoutBase } from './theme.js';
import { neuronName } from './network.js';

export class BoundaryView {
  constructor(el, caption, title = null) {
    this.el = el;
    this.caption = caption;
    this.title = title;  // the panel's heading: it names what the heatmap shows
    this.paints = 0;
    this.pending = null;
  }

  setup(info) {
    clearPlots(this.el);
    this.el.classList.add('stacked');
    const below = document.createElement('div'), above = document.createElement('div');
    below.className = 'stack-layer'; above.className = 'stack-layer stack-top';
    this.el.append(below, above);
    this.below = below;
    const n = 48;
    const axis = Array.from({ length: n }, (_, i) => info.plane[0] + (info.plane[1] - info.plane[0]) * i / (n - 1));
    this.axis = axis;
    const pts = (rows, cls, test) => ({
      type: 'scatter', mode: 'markers', hoverinfo: 'skip', showlegend: false,
      x: rows.filter(r => r[2] === cls).map(r => r[0]), y: rows.filter(r => r[2] === cls).map(r => r[1]),
      marker: { size: test ? 6 : 7, symbol: (cls ? 'circle' : 'diamond') + (test ? '-open' : ''),
        color: cls ? COLORS.pos : COLORS.neg, line: { width: test ? 1.5 : 1, color: test ? undefined : '#fff' } },
    });
    const layout = () => layoutBase({
      margin: { l: 30, r: 8, t: 8, b: 24 }, showlegend: false,
      xaxis: { range: info.plane, fixedrange: true, zeroline: false, constrain: 'domain' },
      yaxis: { range: info.plane, fixedrange: true, zeroline: false, scaleanchor: 'x' },
    });
    const config = { displayModeBar: false, responsive: true, staticPlot: true };
    this.traces = [
      { type: 'heatmap', x: axis, y: axis, z: [[0.5]], zmin: 0, zmax: 1, colorscale: PROB_SCALE, showscale: false,
        hoverinfo: 'skip', opacity: 0.85 },
      { type: 'scatter', mode: 'markers', x: [], y: [], hoverinfo: 'skip',
        marker: { size: 16, symbol: 'circle-open', color: '#111', line: { width: 2.5 } } },
    ];
    this.layout = layout();
    this.layout.datarevision = 0;
    Plotly.react(below, this.traces, this.layout, config);
    const top = layout();
    for (const axis of [top.xaxis, top.yaxis]) Object.assign(axis, { showgrid: false, showticklabels: false });
    Plotly.react(above, [pts(info.points.train, 0, false), pts(info.points.train, 1, false),
      pts(info.points.test, 0, true), pts(info.points.test, 1, true)], top, config);
    // both layers must follow the panel's size together, or the points drift off the
    // heatmap (Plotly's own 'responsive' only follows window resizes)
    this.resizer = new ResizeObserver(() => { for (const gd of [below, above]) Plotly.Plots.resize(gd); });
    this.resizer.observe(this.el);
    this.el.resizer = this.resizer;
    this.above = above;
  }

  // Just these points over an empty plane (a custom set that cannot train yet).
  showPoints(plane, points, caption) {
    this.pending = null;
    this.example = null;
    this.setup({ plane, points: { train: points, test: [] } });
    this.traces[0].visible = false;  // no model: no heatmap
    Plotly.react(this.below, this.traces, this.layout);
    if (this.caption) this.caption.textContent = caption;
    if (this.title) this.title.textContent = 'Your points';
  }

  // fn(x, y, event) for a click inside the plot area, in plane coordinates (the custom-data
  // editor). The plots are static: the click is read from the page, through the axes.
  onClick(fn) {
    this.el.addEventListener('click', e => {
      const gd = this.above, full = gd && gd._fullLayout;
      if (!full || !gd.isConnected) return;
      const { xaxis: xa, yaxis: ya } = full;
      const r = gd.getBoundingClientRect();
      const px = e.clientX - r.left - xa._offset, py = e.clientY - r.top - ya._offset;
      if (px < 0 || py < 0 || px > xa._length || py > ya._length) return;
      fn(xa.p2l(px), ya.p2l(py), e);
    });
  }

  // Called for every frame; the heavy heatmap restyle happens in paint().
  update(frame, view, watching) {
    const { arrays, header } = frame;
    let grid = null, label = null, title = 'Decision boundary';
    if (watching && arrays.neuron && header.watch) {
      grid = arrays.neuron.data;
      let m = 1e-6; for (const v of grid) m = Math.max(m, Math.abs(v));
      grid = Float32Array.from(grid, v => 0.5 + 0.5 * v / m);
      const name = neuronName(header.watch[0], header.watch[1]);
      title = `Output of ${name}`;
      label = `output of ${name} over the plane (eval mode; blue > 0 > vermillion)`;
    } else if (view === 'thinned' && arrays['boundary.thinned']) {
      grid = arrays['boundary.thinned'].data;
      label = `boundary of this step's thinned network (the mask shown on the left, scaled by 1/(1-p))`;
    } else if (arrays['boundary.eval']) {
      grid = arrays['boundary.eval'].data;
      // the server sends only the boundary on screen; a frame taken before a switch to
      // 'thinned' still carries the eval one
      if (view !== 'thinned') label = 'boundary of the full network in eval mode (no dropout)';
      else if (header.view === 'thinned') label = 'no thinned network in eval mode or at p = 0: full network shown';
      else label = 'boundary of the full network in eval mode (the thinned one comes with the next frame)';
    }
    if (grid) this.pending = { grid, label, title };
    if (header.example && header.example.x) this.example = header.example.x;
  }

  paint() {
    if (!this.pending) return false;
    const { grid, label, title } = this.pending;
    this.pending = null;
    const n = this.axis.length, z = [];
    for (let r = 0; r < n; r++) z.push(Array.from(grid.subarray(r * n, (r + 1) * n)));
    this.traces[0].z = z;
    if (this.example) { this.traces[1].x = [this.example[0]]; this.traces[1].y = [this.example[1]]; }
    this.layout.datarevision++;
    Plotly.react(this.below, this.traces, this.layout);
    if (this.caption) this.caption.textContent = label;
    if (this.title) this.title.textContent = title;
    this.paints++;
    return true;
  }
}

// Empty a panel that another view may have drawn into.
export function clearPlots(el) {
  if (el.resizer) { el.resizer.disconnect(); el.resizer = null; }
  for (const gd of [el, ...el.querySelectorAll('.js-plotly-plot')]) Plotly.purge(gd);
  el.textContent = '';
  el.classList.remove('stacked');
}
