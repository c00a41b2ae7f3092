// The network panel: neurons as one scatter trace, edges as a few line traces bucketed
// by sign and strength. A dropped neuron becomes a grey cross and its edges turn dotted;
// kept neurons stay circles, filled with the colour of their activation (a kept neuron
// whose output is 0 is a white circle: still a circle, never a cross). Shape, not shade,
// tells dropped from kept, so it reads in grayscale and for colour-blind visitors. Each neuron's opacity eases toward the new
// frame's mask over a few animation frames. Plotly redraws the panel (edges and neurons)
// at most EDGES_PER_S times a second: any Plotly call costs ~15 ms here, whatever it
// changes. In between, each animation frame restyles the neuron markers Plotly drew
// (opacity, fill, stroke of their SVG paths) directly, well under a millisecond; the
// trace data is kept in step, so the next full redraw shows the same thing.
import { COLORS, ACT_SCALE, layoutBase } from './theme.js';

const MAX_INPUTS_DRAWN = 64;
const MAX_EDGES_PER_LAYER = 400;  // the strongest ones; wide layers would be a grey cloud
const BUCKETS = 3;                // strength buckets per sign
const EDGES_PER_S = 6;
const SIZE = 15;
const KEPT = 'circle', DROPPED = 'x';
const CROSS = '#7d838c';  // darker than theme's 'dropped' grey: a cross is thin, it must still read
// The SVG paths Plotly draws for these two symbols at SIZE (its symbol_defs), so that a
// restyle between two Plotly redraws can switch a marker's shape without a Plotly call.
const R = SIZE / 2, RX = Math.round(R * 0.8 / Math.SQRT2 * 100) / 100;
const PATHS = {
  [KEPT]: `M${R},0A${R},${R} 0 1,1 0,-${R}A${R},${R} 0 0,1 ${R},0Z`,
  [DROPPED]: (() => {
    const a = `l${RX},${RX}`, b = `l${RX},-${RX}`, c = `l-${RX},-${RX}`, d = `l-${RX},${RX}`;
    return `M0,${RX}${a}${b}${c}${b}${c}${d}${c}${d}${a}${d}${a}Z`;
  })(),
};

export class NetworkView {
  constructor(el) {
    this.el = el;
    this.sizes = null;
    this.paints = 0;
    this.opacity = null;  // eased opacity per neuron
    this.target = null;
    this.edgesAt = 0;
  }

  // sizes: [inputs, hidden..., outputs]; model: the run's model config (kind, dropout_kind)
  setup(sizes, model) {
    this.sizes = sizes.slice();
    this.kind = model.kind;
    // element-wise dropout in a CNN drops pixels, not channels: a channel's marker then
    // fades with the share of its pixels dropped instead of turning into a cross
    this.partial = model.kind === 'cnn' && model.dropout_kind !== 'dropout2d';
    if (this.sizes[0] > MAX_INPUTS_DRAWN) this.sizes[0] = MAX_INPUTS_DRAWN;
    const xs = [], ys = [], text = [];
    this.index = [];  // per layer: first point index
    this.sizes.forEach((n, l) => {
      this.index.push(xs.length);
      for (let i = 0; i < n; i++) {
        xs.push(l);
        ys.push(n === 1 ? 0.5 : 0.04 + 0.92 * (1 - i / (n - 1)));
        text.push(this.label(l, i));
      }
    });
    this.x = xs; this.y = ys; this.text = text;
    const count = xs.length;
    this.opacity = new Float32Array(count).fill(1);
    this.target = new Float32Array(count).fill(1);
    this.colors = new Array(count).fill(COLORS.neutral);
    this.symbols = new Array(count).fill(KEPT);
    this.lineColors = new Array(count).fill(COLORS.edgeline);
    this.weights = null;
    this.kept = this.sizes.map(n => new Uint8Array(n).fill(1));
    const traces = [];
    for (let b = 0; b < 2 * BUCKETS + 1; b++) traces.push(this.edgeTrace(b));
    traces.push({
      type: 'scatter', mode: 'markers', x: xs, y: ys, text, hoverinfo: 'text',
      marker: { size: SIZE, color: this.colors, symbol: this.symbols,
        opacity: Array.from(this.opacity), line: { width: 2, color: this.lineColors } },
      showlegend: false,
    });
    const short = (this.el.clientWidth || 600) / this.sizes.length < 75;  // narrow: 'h1' not 'hidden 1'
    const names = this.sizes.map((n, l) => l === 0 ? (short ? 'in' : 'input')
      : l === this.sizes.length - 1 ? (short ? 'out' : 'output') : (short ? `h${l}` : `hidden ${l}`));
    const layout = layoutBase({
      margin: { l: 10, r: 10, t: 10, b: 46 },
      xaxis: { visible: false, range: [-0.4, this.sizes.length - 0.6], fixedrange: true },
      yaxis: { visible: false, range: [-0.06, 1.06], fixedrange: true },
      annotations: names.map((t, l) => ({ x: l, y: -0.03, yref: 'y', text: t, showarrow: false, yanchor: 'top',
        font: { size: 11, color: COLORS.muted } })),
      hovermode: 'closest',
    });
    this.neuronTrace = traces.length - 1;
    this.traces = traces;
    this.layout = layout;
    layout.datarevision = 0;
    Plotly.react(this.el, traces, layout, { displayModeBar: false, responsive: true });
  }

  label(l, i) {
    const last = this.sizes.length - 1;
    if (l === 0) return this.kind === 'cnn' ? 'input image' : `input x${i + 1}`;
    if (l === last) return this.sizes[last] === 1 ? 'output' : `output for class ${i}`;
    return neuronName(l - 1, i, this.kind);
  }

  edgeTrace(b) {
    const faded = b === 2 * BUCKETS;
    const sign = b < BUCKETS ? 1 : -1;
    const strength = (b % BUCKETS + 1) / BUCKETS;
    return {
      type: 'scatter', mode: 'lines', x: [], y: [], hoverinfo: 'skip', showlegend: false,
      line: faded ? { color: COLORS.faded, width: 1, dash: 'dot' }
        : { color: sign > 0 ? COLORS.pos : COLORS.neg, width: 0.6 + 2.4 * strength },
      opacity: faded ? 0.6 : 0.35 + 0.5 * strength,
    };
  }

  // A new frame: decide each neuron's target look; rebuild edges if masks or weights changed.
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
      const mask = arrays[`mask.${l}`] ? this.maskPerNeuron(arrays[`mask.${l}`], l) : null;
      const act = arrays[`act.${l}`] ? this.perNeuron(arrays[`act.${l}`], l) : null;
      for (let i = 0; i < n; i++) {
        const k = this.index[l + 1] + i;
        const keep = mask ? mask[i] : 1;  // no mask: eval mode or p = 0, all kept
        const kept = this.partial || keep > 0.5;
        this.kept[l + 1][i] = kept ? 1 : 0;
        this.target[k] = this.partial ? 0.25 + 0.75 * keep : 1;
        const symbol = kept ? KEPT : DROPPED;
        if (symbol !== this.symbols[k]) this.opacity[k] = 0.2;  // a neuron switching on or off fades in
        this.symbols[k] = symbol;
        this.colors[k] = kept ? (act ? ACT_SCALE(act[i] / maxAbs) : COLORS.neutral) : CROSS;
        this.lineColors[k] = kept ? COLORS.edgeline : CROSS;
      }
    }
    if (header.example && header.example.x) {
      header.example.x.forEach((v, i) => { this.colors[i] = ACT_SCALE(v); });
    }
    const weights = this.sizes.slice(1).map((_, l) => arrays[`weight.${l}`]);
    if (weights.every(Boolean)) this.weights = weights;
    this.edgesDirty = true;
    this.styleDirty = true;
  }

  // For a CNN a "neuron" is a channel: its mean activation, and its kept fraction.
  perNeuron(arr, l) { return perNeuron(arr.data, this.sizes[l + 1]); }

  maskPerNeuron(arr, l) { return this.perNeuron(arr, l); }

  buildEdges() {
    const segs = Array.from({ length: 2 * BUCKETS + 1 }, () => ({ x: [], y: [] }));
    if (this.weights) {
      this.weights.forEach((w, l) => {
        const [out, inFull] = w.shape;  // (out, in) for Linear; conv (out, in, 3, 3)
        const per = w.data.length / (out * inFull);
        const nIn = this.sizes[l], nOut = this.sizes[l + 1];
        const list = [];
        let maxAbs = 1e-9;
        for (let o = 0; o < Math.min(out, nOut); o++) for (let i = 0; i < Math.min(inFull, nIn); i++) {
          let v = 0;
          for (let j = 0; j < per; j++) v += w.data[(o * inFull + i) * per + j];
          list.push([o, i, v]);
          maxAbs = Math.max(maxAbs, Math.abs(v));
        }
        if (list.length > MAX_EDGES_PER_LAYER) {
          list.sort((a, b) => Math.abs(b[2]) - Math.abs(a[2]));
          list.length = MAX_EDGES_PER_LAYER;
        }
        for (const [o, i, v] of list) {
          const from = this.index[l] + i, to = this.index[l + 1] + o;
          const dead = !this.kept[l][i] || !this.kept[l + 1][o];
          const strength = Math.min(BUCKETS - 1, Math.floor(Math.abs(v) / maxAbs * BUCKETS));
          const b = dead ? 2 * BUCKETS : (v >= 0 ? 0 : BUCKETS) + strength;
          segs[b].x.push(this.x[from], this.x[to], null);
          segs[b].y.push(this.y[from], this.y[to], null);
        }
      });
    }
    // the edges as drawn: the same again (paused, slow speeds, a settled mask) costs no redraw
    const same = segs.every((seg, i) => sameArray(this.traces[i].x, seg.x) && sameArray(this.traces[i].y, seg.y));
    segs.forEach((seg, i) => { this.traces[i].x = seg.x; this.traces[i].y = seg.y; });
    return !same;
  }

  // One animation frame. Returns true if it painted.
  paint() {
    if (!this.sizes) return false;
    const op = this.opacity, t = this.target;
    let moving = this.styleDirty;
    for (let k = 0; k < op.length; k++) {
      const d = t[k] - op[k];
      if (Math.abs(d) > 0.01) { op[k] += d * 0.5; moving = true; } else op[k] = t[k];
    }
    const now = performance.now();
    this.redrew = false;  // a Plotly call
    if (this.edgesDirty && now - this.edgesAt >= 1000 / EDGES_PER_S) {
      this.edgesDirty = false;
      this.redrew = this.buildEdges();
    }
    if (this.redrew) {
      this.edgesAt = now;
      Object.assign(this.traces[this.neuronTrace].marker, this.style());
      this.layout.datarevision++;
      Plotly.react(this.el, this.traces, this.layout);
      this.points = null;  // Plotly may have replaced the SVG nodes
    } else if (moving) {
      this.restyleMarkers();
    } else {
      return false;
    }
    this.styleDirty = false;
    this.paints++;
    return true;
  }

  restyleMarkers() {
    if (!this.points) {
      const trace = this.el.querySelectorAll('.scatterlayer .trace')[this.neuronTrace];
      this.points = trace ? Array.from(trace.querySelectorAll('path.point')) : [];
    }
    const pts = this.points;
    if (pts.length !== this.opacity.length) { this.points = null; return; }
    for (let k = 0; k < pts.length; k++) {
      const st = pts[k].style;
      st.opacity = this.opacity[k];
      if (this.styleDirty) {
        st.fill = this.colors[k];
        st.stroke = this.lineColors[k];
        const d = PATHS[this.symbols[k]];
        if (pts[k].getAttribute('d') !== d) pts[k].setAttribute('d', d);
      }
    }
  }

  style() {
    return { opacity: Array.from(this.opacity), color: this.colors.slice(), symbol: this.symbols.slice(),
      line: { width: 2, color: this.lineColors.slice() } };
  }

  // How many hidden neurons the last frame shows dropped (crosses), per layer: for tests.
  droppedShown() {
    return this.kept.slice(1, -1).map(k => k.length - k.reduce((a, b) => a + b, 0));
  }

  // (layer, index) of a hidden neuron under a plotly hover point, or null.
  neuronAt(pointIndex) {
    for (let l = 1; l < this.sizes.length - 1; l++) {
      const i = pointIndex - this.index[l];
      if (i >= 0 && i < this.sizes[l]) return [l - 1, i];
    }
    return null;
  }
}

// What the page calls hidden neuron `index` of hidden layer `layer` (both 0-based in the
// protocol): numbered from 1 on screen, like the layers.
export function neuronName(layer, index, kind = 'mlp') {
  return `${kind === 'cnn' ? 'channel' : 'neuron'} ${index + 1} of hidden layer ${layer + 1}`;
}

function sameArray(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// n values from a layer's section: as they are, or (a CNN's channels) each channel's mean
// over its pixels.
export function perNeuron(data, n) {
  if (data.length === n) return data;
  const per = data.length / n, out = new Float32Array(n);
  for (let i = 0; i < n; i++) { let s = 0; for (let j = 0; j < per; j++) s += data[i * per + j]; out[i] = s / per; }
  return out;
}
