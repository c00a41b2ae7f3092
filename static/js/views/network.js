// The network panel: neurons and edges, edges bucketed by sign and strength. A dropped
// neuron becomes a grey cross and its edges turn dotted; kept neurons stay circles,
// filled with the colour of their activation (a kept neuron whose output is 0 is a white
// circle: still a circle, never a cross). Shape, not shade, tells dropped from kept, so it
// reads in grayscale and for colour-blind visitors. Every picture is one frame's mask, at
// once: no fade between two frames (a still picture would mix two steps' masks).
// A layer with more neurons than the panel's height can draw apart (a 64-wide layer in a
// small embed) shows every k-th neuron, each with its own mask, and the panel says so,
// with how many of the whole layer this step dropped.
// Plotly lays the panel out once per setup (and on a resize): the axes that place every
// neuron, the layer names, and an invisible marker per neuron for its hover name. Until
// Plotly has arrived (the page loads it after its own modules), the picture is placed by
// the same arithmetic as Plotly's axes will place it (margins and ranges below), so that
// the first picture waits for the server, not for Plotly's bundle.
// The picture itself is a canvas under Plotly's SVG, drawn each animation frame that changes
// it by views/network_draw.js, in a Worker where the browser can: a Plotly call, or even
// restyling SVG markers, costs the main thread more than a frame can spare; posting the
// picture costs the page next to nothing, so the edges follow every frame's masks and the
// neurons ease at the display's rate (docs/benchmarks.md, round 6).
import { COLORS, ACT_SCALE } from './theme.js';
import { DROPPED, KEPT, draw, pixels } from './network_draw.js';
import { MARGIN, sample, writeNote, plotNetwork, placement } from './network_layout.js';
import { EDGE_STYLES, strongest, edgeSegments } from './network_edges.js';

const MAX_INPUTS_DRAWN = 64;
const CROSS = '#7d838c';  // darker than theme's 'dropped' grey: a cross is thin, it must still read

// The Worker that draws the panel, and its canvas, start with this module: long before
// Plotly has run and the first frame has come, so the Worker has loaded by the first
// picture.
let spare = startDrawer();

function startDrawer() {
  const canvas = document.createElement('canvas');
  if (!window.Worker || !canvas.transferControlToOffscreen) return { canvas, worker: null };
  try {
    const worker = new Worker(new URL('./network_draw.js', import.meta.url), { type: 'module' });
    const off = canvas.transferControlToOffscreen();
    worker.postMessage({ canvas: off }, [off]);
    const drawer = { canvas, worker, failed: false };
    // a browser without module Workers fails to load it (an error event, not an exception),
    // maybe before any view has taken it: noted here, read by makeCanvas
    worker.onerror = () => { drawer.failed = true; };
    return drawer;
  } catch (e) {
    return { canvas: document.createElement('canvas'), worker: null };  // (refused: the page draws)
  }
}

export class NetworkView {
  constructor(el) {
    this.el = el;
    this.sizes = null;
    this.paints = 0;
    this.opacity = null;  // eased opacity per neuron
    this.target = null;
    this.canvas = null;
    this.worker = null;   // draws on the canvas (null: this page draws, on this.ctx)
    this.probes = new Map();
    this.edgeStyles = EDGE_STYLES;
    this.firstDrawnAt = null;  // performance.now() when the first picture was on the canvas
    this.margin = MARGIN;
    this.note = document.createElement('div');  // "showing k of n neurons", over the panel
    this.note.className = 'network-sample-note';
    this.note.dataset.role = 'network-note';
    this.note.style.cssText = 'position:absolute;left:8px;right:8px;top:2px;font-size:11px;line-height:15px;'
      + 'color:#20242b;pointer-events:none;z-index:1;white-space:pre;overflow:hidden;text-overflow:ellipsis';
    this.note.hidden = true;
    this.makeCanvas();  // now: the Worker sizes its canvas while the page waits for Plotly
  }

  // sizes: [inputs, hidden..., outputs]; model: the run's model config (kind, dropout_kind)
  setup(sizes, model) {
    this.sizes = sizes.slice();
    this.kind = model.kind;
    // element-wise dropout in a CNN drops pixels, not channels: a channel's marker then
    // fades with the share of its pixels dropped instead of turning into a cross
    this.partial = model.kind === 'cnn' && model.dropout_kind !== 'dropout2d';
    if (this.sizes[0] > MAX_INPUTS_DRAWN) this.sizes[0] = MAX_INPUTS_DRAWN;
    sample(this);
    const xs = [], ys = [], text = [];
    this.index = [];  // per layer: first point index
    this.sizes.forEach((n, l) => {
      this.index.push(xs.length);
      const ids = this.ids[l], m = ids.length;
      ids.forEach((i, j) => {
        xs.push(l);
        ys.push(m === 1 ? 0.5 : 0.04 + 0.92 * (1 - j / (m - 1)));
        text.push(this.label(l, i));
      });
    });
    this.x = xs; this.y = ys; this.text = text;
    const count = xs.length;
    this.opacity = new Float32Array(count).fill(1);
    this.target = new Float32Array(count).fill(1);
    this.colors = new Array(count).fill(COLORS.neutral);
    this.symbols = new Array(count).fill(KEPT);
    this.lineColors = new Array(count).fill(COLORS.edgeline);
    this.edges = null;  // per layer: the strongest edges [from, to, bucket by sign and strength]
    this.kept = this.sizes.map(n => new Uint8Array(n).fill(1));
    this.plotted = false;
    this.px = null;
    if (window.Plotly) this.plot();
    this.render(true);  // the untrained look at once, not after the other panels' set-up
  }

  // Plotly's part of the panel (network_layout.js): by setup, or by the page once Plotly
  // has arrived.
  plot() { plotNetwork(this); }

  makeCanvas(drawer = spare || startDrawer()) {
    spare = null;
    if (drawer.failed) drawer = { canvas: document.createElement('canvas'), worker: null };
    const { canvas, worker } = drawer;
    this.canvas = canvas;
    canvas.className = 'network-picture';
    canvas.style.cssText = 'position:absolute;left:0;top:0;pointer-events:none';
    if (getComputedStyle(this.el).position === 'static') this.el.style.position = 'relative';
    this.el.prepend(canvas);
    if (!this.note.isConnected) this.el.append(this.note);
    if (!worker) {
      this.ctx = canvas.getContext('2d');
      return;
    }
    worker.onmessage = ({ data }) => {
      // (the Worker's clock: this message may wait behind the page's own work)
      if (data.drawn && this.firstDrawnAt === null) this.noteDrawn(data.drawn - performance.timeOrigin);
      const done = this.probes.get(data.probe);
      this.probes.delete(data.probe);
      if (done) done(data.pixels);
    };
    worker.onerror = () => {  // it failed (to load, or to draw): this page draws from now on
      worker.terminate();
      this.worker = null;
      canvas.remove();
      this.makeCanvas({ canvas: document.createElement('canvas'), worker: null });
      this.styleDirty = this.edgesDirty = true;
      this.probes.forEach(done => done([]));
      this.probes.clear();
    };
    this.worker = worker;
    // the panel's size now, so that the Worker has sized its canvas by the first picture
    worker.postMessage({ size: [this.el.clientWidth, this.el.clientHeight, window.devicePixelRatio || 1] });
  }

  // The first picture's time, also as a performance mark 'dp:network-drawn' (for the
  // benchmarks: it may come before the page is ready for the tests, window.__dp).
  noteDrawn(t) {
    this.firstDrawnAt = t;
    try { performance.mark('dp:network-drawn', { startTime: Math.max(0, t) }); } catch (e) { /* an old browser */ }
  }

  label(l, i) {
    const last = this.sizes.length - 1;
    if (l === 0) return this.kind === 'cnn' ? 'input image' : `input x${i + 1}`;
    if (l === last) return this.sizes[last] === 1 ? 'output' : `output for class ${i}`;
    return neuronName(l - 1, i, this.kind);
  }

  // A new frame: each neuron's target look, and the edges (their weights when it has them).
  update(frame) {
    if (!this.sizes) return;
    const { header, arrays } = frame;
    const hidden = this.sizes.length - 2;
    let maxAbs = 1e-6;
    for (let l = 0; l < hidden; l++) {
      const a = arrays[`act.${l}`];
      if (a) for (const v of this.perNeuron(a, l)) maxAbs = Math.max(maxAbs, Math.abs(v));
    }
    for (let l = 0; l < hidden; l++) {
      const n = this.sizes[l + 1];
      const mask = arrays[`mask.${l}`] ? this.perNeuron(arrays[`mask.${l}`], l) : null;
      const act = arrays[`act.${l}`] ? this.perNeuron(arrays[`act.${l}`], l) : null;
      const at = this.at[l + 1];
      for (let i = 0; i < n; i++) {
        const keep = mask ? mask[i] : 1;  // no mask: eval mode or p = 0, all kept
        const kept = this.partial || keep > 0.5;
        this.kept[l + 1][i] = kept ? 1 : 0;
        if (at[i] < 0) continue;  // not drawn (a wide layer's sample)
        const k = this.index[l + 1] + at[i];
        // this frame's look at once: a fade would show two steps' masks in one picture
        this.target[k] = this.opacity[k] = this.partial ? 0.25 + 0.75 * keep : 1;
        const symbol = kept ? KEPT : DROPPED;
        this.symbols[k] = symbol;
        this.colors[k] = kept ? (act ? ACT_SCALE(act[i] / maxAbs) : COLORS.neutral) : CROSS;
        this.lineColors[k] = kept ? COLORS.edgeline : CROSS;
      }
    }
    if (header.example && header.example.x) {
      header.example.x.forEach((v, i) => { if (this.at[0][i] >= 0) this.colors[this.at[0][i]] = ACT_SCALE(v); });
    }
    this.frameIn = frame;
    const weights = this.sizes.slice(1).map((_, l) => arrays[`weight.${l}`]);
    if (weights.every(Boolean)) this.edges = weights.map((w, l) => strongest(w, l, this.sizes, this.at));
    this.edgesDirty = true;
    this.styleDirty = true;
  }

  // For a CNN a "neuron" is a channel: its mean activation, and its kept fraction.
  perNeuron(arr, l) { return perNeuron(arr.data, this.sizes[l + 1]); }

  // One animation frame. Returns true if it painted.
  paint() {
    if (!this.sizes) return false;
    const edges = this.edgesDirty;
    if (!this.styleDirty && !edges) return false;
    if (!this.render(edges)) return false;
    this.edgesDirty = this.styleDirty = false;
    this.paints++;
    return true;
  }

  // The picture of the last frame, placed by Plotly's axes as the hover points are; the
  // edges again when they changed. False: Plotly has not laid the panel out yet.
  render(edges) {
    const place = placement(this);
    if (!place) return false;
    const { width, height } = place;
    if (this.canvas.style.width !== `${width}px` || this.canvas.style.height !== `${height}px`) {
      this.canvas.style.width = `${width}px`; this.canvas.style.height = `${height}px`;
    }
    if (place.key !== this.placedBy) edges = true;  // placed anew: the edges move too
    if (edges || !this.px) {  // (a resize redraws the edges too: Plotly's afterplot)
      this.px = Float32Array.from(this.x, place.x);
      this.py = Float32Array.from(this.y, place.y);
      this.placedBy = place.key;
    }
    const px = this.px, py = this.py;
    const picture = { width, height, ratio: window.devicePixelRatio || 1, px, py, opacity: this.opacity,
      colors: this.colors, lineColors: this.lineColors, symbols: this.symbols };
    if (edges) this.segments = edgeSegments(this, px, py);
    if (this.worker) {
      this.worker.postMessage(edges ? { picture, segments: this.segments, edgeStyles: this.edgeStyles } : { picture });
    } else {
      draw(this.ctx, { ...picture, segments: this.segments, edgeStyles: this.edgeStyles });
      if (this.firstDrawnAt === null) this.noteDrawn(performance.now());
    }
    this.ratio = picture.ratio;
    this.rendered = this.frameIn || null;  // the frame this picture shows (for tests)
    if (this.every.some(k => k > 1)) writeNote(this);
    return true;
  }

  // The colours drawn at these points of the panel (CSS px), [[r, g, b, a], ...], once the
  // pictures posted so far are drawn: for tests of what the canvas shows.
  probe(points) {
    if (!this.worker) return Promise.resolve(pixels(this.ctx, points, this.ratio || 1));
    const id = (this.probeId = (this.probeId || 0) + 1);
    return new Promise(done => { this.probes.set(id, done); this.worker.postMessage({ probe: { id, points } }); });
  }

  // How many hidden neurons the last frame shows dropped (crosses), per layer: for tests.
  droppedShown() {
    return this.kept.slice(1, -1).map((k, l) => this.ids[l + 1].reduce((a, i) => a + (k[i] ? 0 : 1), 0));
  }

  // The hidden neurons drawn, per layer (all of them, or a wide layer's sample): for tests.
  drawnNeurons() { return this.ids.slice(1, -1).map(ids => ids.slice()); }

  // Each hidden neuron drawn: [layer, index, x, y] with its centre in CSS px of the panel.
  centres() {
    const out = [];
    if (!this.px) return out;
    for (let l = 1; l < this.sizes.length - 1; l++) {
      this.ids[l].forEach((i, j) => { const k = this.index[l] + j; out.push([l - 1, i, this.px[k], this.py[k]]); });
    }
    return out;
  }

  // (layer, index) of a hidden neuron under a plotly hover point, or null.
  neuronAt(pointIndex) {
    for (let l = 1; l < this.sizes.length - 1; l++) {
      const j = pointIndex - this.index[l];
      if (j >= 0 && j < this.ids[l].length) return [l - 1, this.ids[l][j]];
    }
    return null;
  }
}

// What the page calls hidden neuron `index` of hidden layer `layer` (both 0-based in the
// protocol): numbered from 1 on screen, like the layers.
export function neuronName(layer, index, kind = 'mlp') {
  return `${kind === 'cnn' ? 'channel' : 'neuron'} ${index + 1} of hidden layer ${layer + 1}`;
}

// n values from a layer's section: as they are, or (a CNN's channels) each channel's mean
// over its pixels.
export function perNeuron(data, n) {
  if (data.length === n) return data;
  const per = data.length / n, out = new Float32Array(n);
  for (let i = 0; i < n; i++) { let s = 0; for (let j = 0; j < per; j++) s += data[i * per + j]; out[i] = s / per; }
  return out;
}
