// Digits: the shown example's 8x8 image and each hidden layer's feature maps, tiled into
// one heatmap (one trace however many channels). Dropped channels (Dropout2d) go dark
// as a whole; element-wise dropout darkens scattered pixels.
import { layoutBase } from './theme.js';
import { clearPlots } from './boundary.js';

export class ImagesView {
  constructor(el, caption) { this.el = el; this.caption = caption; this.pending = null; this.paints = 0; }

  setup(info) {
    clearPlots(this.el);
    this.kind = info.config.model.kind;
    Plotly.react(this.el, [{ type: 'heatmap', z: [[0]], colorscale: 'Greys', reversescale: false, showscale: false, hoverinfo: 'skip' }],
      layoutBase({ margin: { l: 8, r: 8, t: 8, b: 8 }, xaxis: { visible: false, fixedrange: true },
        yaxis: { visible: false, autorange: 'reversed', fixedrange: true, scaleanchor: 'x' } }),
      { displayModeBar: false, responsive: true });
  }

  update(frame) {
    const { arrays } = frame;
    const tiles = [];
    if (arrays.input) tiles.push(arrays.input.data);
    if (this.kind === 'cnn') {
      for (let l = 0; arrays[`act.${l}`]; l++) {
        const a = arrays[`act.${l}`];
        const c = a.shape[0];
        for (let ch = 0; ch < c; ch++) tiles.push(a.data.subarray(ch * 64, (ch + 1) * 64));
      }
    }
    if (tiles.length) this.pending = tiles;
  }

  paint() {
    if (!this.pending) return false;
    const tiles = this.pending; this.pending = null;
    const cols = Math.min(8, tiles.length), rows = Math.ceil(tiles.length / cols);
    const W = cols * 9 - 1, H = rows * 9 - 1;
    const z = Array.from({ length: H }, () => new Array(W).fill(null));
    tiles.forEach((t, k) => {
      let m = 1e-6; for (const v of t) m = Math.max(m, Math.abs(v));
      const r0 = Math.floor(k / cols) * 9, c0 = (k % cols) * 9;
      for (let i = 0; i < 64; i++) z[r0 + (i >> 3)][c0 + (i & 7)] = t[i] / m;
    });
    Plotly.restyle(this.el, { z: [z], zmin: [-1], zmax: [1], colorscale: [[[0, '#D55E00'], [0.5, '#f4f4f2'], [1, '#0072B2']]] }, [0]);
    if (this.caption) this.caption.textContent = this.kind === 'cnn'
      ? 'first tile: the input digit; then each channel\'s feature map after dropout (all zero = dropped)'
      : 'the input digit of the shown example';
    this.paints++;
    return true;
  }
}
