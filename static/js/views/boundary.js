// The input plane: the model's decision boundary (eval network, or this step's thinned
// network) as a smooth image under the train and test points; hovering a neuron swaps in
// that neuron's output over the plane. The example whose mask is shown gets a ring.
// Two plots stacked with identical axes: the image and the ring below, redrawn with each
// refresh, and the points above, drawn once (redrawing ~500 SVG markers with every
// refresh cost far more than the image itself).
// The grid (DP_GRID_SIZE values a side, however many the frame brings) is painted one
// pixel per value into a small canvas and shown as a Plotly layout image stretched over
// the plane: the browser interpolates it when it scales it up, so the boundary is smooth,
// not blocks. Plotly places the image and the ring (a relayout: too costly for every
// refresh); a refresh then swaps the image's source and moves the ring in the SVG Plotly
// drew, keeping the layout in step so that Plotly's next redraw shows the same.
import { COLORS, PROB_SCALE, layoutBase } from './theme.js';
import { neuronName } from './network.js';

// PROB_SCALE as a lookup table: the grid's 0..1 values, in 256 steps (p8 has no more)
const LUT = (() => {
  const stops = PROB_SCALE.map(([t, c]) => [t, c.match(/\d+/g).map(Number)]);
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    let k = 0; while (k < stops.length - 2 && t > stops[k + 1][0]) k++;
    const [t0, c0] = stops[k], [t1, c1] = stops[k + 1];
    const u = (t - t0) / (t1 - t0);
    for (let j = 0; j < 3; j++) lut[3 * i + j] = c0[j] + (c1[j] - c0[j]) * u;
  }
  return lut;
})();

export class BoundaryView {
  constructor(el, caption, title = null) {
    this.el = el;
    this.caption = caption;
    this.title = title;  // the panel's heading: it names what the image shows
    this.paints = 0;
    this.pending = null;
  }

  setup(info) {
    const [below, above] = stackLayers(this.el);
    this.below = below;
    this.plane = info.plane;
    this.canvas = document.createElement('canvas');
    this.n = 0;
    this.shown = null;  // what the image shows now: grid values, ring, texts
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
    this.layout = layout();
    // the image's place and source are set with the first grid; the ring waits for an example
    this.layout.images = [{ source: '', xref: 'x', yref: 'y', sizing: 'stretch', layer: 'below',
      xanchor: 'left', yanchor: 'top', opacity: 0.85 }];
    this.layout.shapes = [{ type: 'circle', xsizemode: 'pixel', ysizemode: 'pixel', x0: -8, x1: 8, y0: -8, y1: 8,
      xanchor: 0, yanchor: 0, visible: false, line: { color: '#111', width: 2.5 } }];
    Plotly.react(below, [], this.layout, config);
    const top = layout();
    for (const axis of [top.xaxis, top.yaxis]) Object.assign(axis, { showgrid: false, showticklabels: false });
    Plotly.react(above, [pts(info.points.train, 0, false), pts(info.points.train, 1, false),
      pts(info.points.test, 0, true), pts(info.points.test, 1, true)], top, config);
    // both layers must follow the panel's size together, or the points drift off the
    // image (Plotly's own 'responsive' only follows window resizes)
    this.resizer = new ResizeObserver(() => { for (const gd of [below, above]) Plotly.Plots.resize(gd); });
    this.resizer.observe(this.el);
    this.el.resizer = this.resizer;
    this.above = above;
  }

  // Just these points over an empty plane (a custom set that cannot train yet).
  showPoints(plane, points, caption) {
    this.pending = null;
    this.example = null;
    this.setup({ plane, points: { train: points, test: [] } });  // no model: no image comes
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

  // Called for every frame; the image is drawn in paint(). latestStep: the run's last
  // step, for a replayed frame (header.replay): its mask and example are of its own step,
  // its weights (so the eval boundary and a neuron's map) of the latest, and the thinned
  // boundary is its own step's mask on those weights. Each label says which step it shows.
  update(frame, view, watching, latestStep = null) {
    const { arrays, header } = frame;
    const replay = Boolean(header.replay) && latestStep !== null;
    const S = header.step.toLocaleString('en'), L = replay ? latestStep.toLocaleString('en') : S;
    const asOf = replay ? `, weights as of step ${L} (only the latest weights are kept)` : '';
    let grid = null, label = null, title = 'Decision boundary';
    let steps = { weights: replay ? latestStep : header.step, mask: null };  // which step(s) the image shows
    if (watching && arrays.neuron && header.watch) {
      grid = arrays.neuron.data;
      let m = 1e-6; for (const v of grid) m = Math.max(m, Math.abs(v));
      grid = Float32Array.from(grid, v => 0.5 + 0.5 * v / m);
      const name = neuronName(header.watch[0], header.watch[1]);
      title = replay ? `Output of ${name}, as of step ${L}` : `Output of ${name}`;
      label = `output of ${name} over the plane (eval mode${asOf}; blue > 0 > vermillion)`;
    } else if (view === 'thinned' && arrays['boundary.thinned']) {
      grid = arrays['boundary.thinned'].data;
      steps.mask = header.step;
      label = replay
        ? `boundary of step ${S}'s thinned network: its mask (shown on the left, scaled by 1/(1-p)) on the weights of step ${L} (only the latest weights are kept)`
        : `boundary of this step's thinned network (the mask shown on the left, scaled by 1/(1-p))`;
    } else if (arrays['boundary.eval']) {
      grid = arrays['boundary.eval'].data;
      // the server sends only the boundary on screen; a frame taken before a switch to
      // 'thinned' still carries the eval one
      if (view !== 'thinned') label = `boundary of the full network in eval mode (no dropout)${asOf}`;
      else if (header.view === 'thinned') {
        label = replay ? `step ${S} drew no mask (eval mode or p = 0): no thinned network; the full network as of step ${L} shown`
          : 'no thinned network in eval mode or at p = 0: full network shown';
      } else label = `boundary of the full network in eval mode${asOf} (the thinned one comes with the next frame)`;
    }
    if (header.example && header.example.x) this.example = header.example.x;
    if (grid) {
      if (replay) label += `; ◯ = the example of step ${S}`;
      this.pending = { grid, label, title, steps };
      if (!replay) this.latest = this.pending;
    } else if (replay && this.latest) {  // a replayed frame without a grid: the latest, said so
      this.pending = { ...this.latest, label: `${this.latest.label}, as of step ${this.latest.steps.weights.toLocaleString('en')}, not of the replayed step ${S}; ◯ = the example of step ${S}` };
    }
  }

  // A replayed past step (the playground's older call): update() says which step it shows.
  replayed(frame, latestStep, view = 'eval', watching = null) {
    this.update(frame, view, watching, latestStep);
  }

  // Draws the latest grid, if it differs from the one on screen. Returns true if it drew.
  paint() {
    if (!this.pending) return false;
    const { grid, label, title, steps } = this.pending;
    const example = this.example;
    this.pending = null;
    const was = this.shown;
    if (was && was.label === label && was.title === title && String(was.example) === String(example)
        && sameValues(was.grid, grid)) return false;
    this.shown = { grid, label, title, example, steps };
    const source = this.image(grid);
    const n = this.n, [lo, hi] = this.plane;
    // pixel centres on the grid points: the image reaches half a cell past the plane
    const half = (hi - lo) / (n - 1) / 2;
    const placed = { x: lo - half, y: hi + half, sizex: hi - lo + 2 * half, sizey: hi - lo + 2 * half };
    this.shown.n = n;
    const [image, ring] = [this.layout.images[0], this.layout.shapes[0]];  // gd.layout itself
    // where a ring Plotly draws anew stands: the layout's anchor until now
    const anchor = [ring.xanchor, ring.yanchor];
    image.source = source;
    if (example) Object.assign(ring, { xanchor: example[0], yanchor: example[1], visible: true });
    this.redrew = !this.swap(source, example, anchor);  // Plotly places them
    if (this.redrew) {
      Object.assign(image, placed);
      Plotly.relayout(this.below, { images: [image], shapes: [ring] });
      const [img, path] = this.drawn();
      if (img) img.placedN = n;
      if (path) path.drawnAt = [ring.xanchor, ring.yanchor];
    }
    // text already on screen is not written again: every write re-lays out the page
    if (this.caption && this.caption.textContent !== label) this.caption.textContent = label;
    if (this.title && this.title.textContent !== title) this.title.textContent = title;
    this.paints++;
    return true;
  }

  // The new image and ring straight into the SVG Plotly drew, when it drew them where they
  // are now. Returns false when Plotly has to place them (first grid, a new grid size).
  swap(source, example, anchor) {
    const [img, path] = this.drawn();
    if (!img || img.placedN !== this.n || (example && !path)) return false;
    img.setAttributeNS('http://www.w3.org/1999/xlink', 'href', source);
    if (example && path) {
      // a path Plotly drew sits at the anchor it was drawn for; move it from there
      path.drawnAt ||= anchor;
      const scale = Number(img.getAttribute('width')) / this.layout.images[0].sizex;
      const [x0, y0] = path.drawnAt;
      path.setAttribute('transform', `translate(${(example[0] - x0) * scale},${(y0 - example[1]) * scale})`);
    }
    return true;
  }

  drawn() {
    return [this.below.querySelector('.imagelayer image'), this.below.querySelector('.shapelayer path')];
  }

  // The grid (row-major, y up) as a PNG of one pixel per value (rows flipped: images go down).
  image(grid) {
    const n = Math.round(Math.sqrt(grid.length));
    if (n !== this.n) {
      this.n = this.canvas.width = this.canvas.height = n;
      this.ctx = this.canvas.getContext('2d');
      this.pixels = this.ctx.createImageData(n, n);
    }
    const px = this.pixels.data;
    for (let r = 0; r < n; r++) {
      const row = (n - 1 - r) * n;
      for (let c = 0; c < n; c++) {
        const v = grid[row + c];
        const k = 3 * Math.max(0, Math.min(255, Math.round((v === v ? v : 0.5) * 255)));
        const o = 4 * (r * n + c);
        px[o] = LUT[k]; px[o + 1] = LUT[k + 1]; px[o + 2] = LUT[k + 2]; px[o + 3] = 255;
      }
    }
    this.ctx.putImageData(this.pixels, 0, 0);
    return this.canvas.toDataURL('image/png');
  }
}

function sameValues(a, b) {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// A panel of two plots stacked with identical axes (cleared first): [below, above].
export function stackLayers(el) {
  clearPlots(el);
  el.classList.add('stacked');
  const below = document.createElement('div'), above = document.createElement('div');
  below.className = 'stack-layer'; above.className = 'stack-layer stack-top';
  el.append(below, above);
  return [below, above];
}

// Empty a panel that another view may have drawn into.
export function clearPlots(el) {
  if (el.resizer) { el.resizer.disconnect(); el.resizer = null; }
  for (const gd of [el, ...el.querySelectorAll('.js-plotly-plot')]) Plotly.purge(gd);
  el.textContent = '';
  el.classList.remove('stacked');
}
