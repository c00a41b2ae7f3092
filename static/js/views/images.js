// Digits: the shown example's 8x8 image and each hidden layer's feature maps, tiled into
// one heatmap (one trace however many channels). A channel Dropout2d dropped is blank as
// a whole; element-wise dropout blanks scattered pixels.
import { layoutBase } from './theme.js';
import { clearPlots } from './boundary.js';

const PER_ROW = 8;      // tiles a row within a layer's block
const LABEL_ROWS = 3;   // blank heatmap rows above each block, where its label goes

export class ImagesView {
  constructor(el, caption) { this.el = el; this.caption = caption; this.pending = null; this.paints = 0; }

  setup(info) {
    clearPlots(this.el);
    this.kind = info.config.model.kind;
    Plotly.react(this.el, [{ type: 'heatmap', z: [[0]], colorscale: 'Greys', reversescale: false, showscale: false, hoverinfo: 'skip' }],
      this.layout(), { displayModeBar: false, responsive: true });
  }

  // Tiles are grouped into one block per layer (the input digit, then each hidden layer's
  // channels, at most PER_ROW a row), each block under a label naming it.
  update(frame) {
    const { arrays } = frame;
    const blocks = [];
    if (arrays.input) blocks.push({ label: 'input digit', tiles: [arrays.input.data] });
    if (this.kind === 'cnn') {
      for (let l = 0; arrays[`act.${l}`]; l++) {
        const a = arrays[`act.${l}`];
        const c = a.shape[0], tiles = [];
        for (let ch = 0; ch < c; ch++) tiles.push(a.data.subarray(ch * 64, (ch + 1) * 64));
        blocks.push({ label: `hidden layer ${l + 1}: ${c} channels after dropout`, tiles });
      }
    }
    if (blocks.length) this.pending = blocks;
  }

  paint() {
    if (!this.pending) return false;
    const blocks = this.pending; this.pending = null;
    const cols = Math.max(...blocks.map(b => Math.min(PER_ROW, b.tiles.length)));
    const W = cols * 9 - 1;
    const z = [], annotations = [];
    for (const b of blocks) {
      for (let r = 0; r < LABEL_ROWS; r++) z.push(new Array(W).fill(null));
      annotations.push({ x: -0.5, y: z.length - LABEL_ROWS - 0.5, xref: 'x', yref: 'y', text: b.label, showarrow: false,
        xanchor: 'left', yanchor: 'top', font: { size: 11, color: '#5f6673' } });
      const rows = Math.ceil(b.tiles.length / PER_ROW), r0 = z.length;
      for (let r = 0; r < rows * 9 - 1; r++) z.push(new Array(W).fill(null));
      b.tiles.forEach((t, k) => {
        let m = 1e-6; for (const v of t) m = Math.max(m, Math.abs(v));
        const top = r0 + Math.floor(k / PER_ROW) * 9, left = (k % PER_ROW) * 9;
        for (let i = 0; i < 64; i++) z[top + (i >> 3)][left + (i & 7)] = t[i] / m;
      });
    }
    Plotly.react(this.el, [{ type: 'heatmap', z, zmin: -1, zmax: 1, showscale: false, hoverinfo: 'skip',
      colorscale: [[0, '#D55E00'], [0.5, '#f4f4f2'], [1, '#0072B2']] }], this.layout(annotations));
    if (this.caption) this.caption.textContent = this.kind === 'cnn'
      ? 'Each tile is one channel\'s 8×8 feature map for the shown digit, after dropout (blue > 0 > vermillion, each tile scaled to its own largest value; an all-blank tile = a dropped or silent channel)'
      : 'the input digit of the shown example';
    this.paints++;
    return true;
  }

  layout(annotations = []) {
    return layoutBase({ margin: { l: 8, r: 8, t: 8, b: 8 }, annotations, xaxis: { visible: false, fixedrange: true },
      yaxis: { visible: false, autorange: 'reversed', fixedrange: true, scaleanchor: 'x' } });
  }
}
