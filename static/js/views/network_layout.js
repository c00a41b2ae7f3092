// The network panel's layout (views/network.js): which neurons each layer draws (all, or
// a wide layer's every k-th, and the note that says so), Plotly's axes, names and hover
// markers, and where the picture goes before and after Plotly has laid the panel out.
import { COLORS, layoutBase } from './theme.js';
import { SIZE } from './network_draw.js';

export const MARGIN = { l: 10, r: 10, t: 10, b: 46 };  // px around the plot area (layer names below)
const NOTE_LINE = 15;     // px of top margin per line of the "showing k of n" note
const GAP = SIZE + 5;     // px between two neurons' centres, at least: markers stand apart
const Y_RANGE = [-0.06, 1.06];

// Which neurons each layer draws (view.ids[l]: neuron indices; view.at[l][i]: neuron i's
// place among them, -1 if not drawn): all of them where they fit the panel's height
// GAP px apart, else every k-th (the first, then every k-th after it).
export function sample(view) {
  const height = Math.round(view.el.clientHeight) || 400;
  const fits = lines => {
    const span = (height - MARGIN.t - lines * NOTE_LINE - MARGIN.b) * 0.92 / (Y_RANGE[1] - Y_RANGE[0]);
    return Math.max(2, Math.floor(span / GAP) + 1);
  };
  // a line for each layer drawn in part, and one more for a hidden layer's drop count
  const wide = view.sizes.filter(n => n > fits(0)).length;
  const lines = view.sizes.reduce((a, n, l) => a + (n > fits(0) ? (l > 0 && l < view.sizes.length - 1 ? 2 : 1) : 0), 0);
  const most = fits(lines);
  view.every = view.sizes.map(n => (n > fits(0) ? Math.ceil(n / most) : 1));
  view.ids = view.sizes.map((n, l) => Array.from({ length: Math.ceil(n / view.every[l]) }, (_, j) => j * view.every[l]));
  view.at = view.sizes.map((n, l) => {
    const at = new Int32Array(n).fill(-1);
    view.ids[l].forEach((i, j) => { at[i] = j; });
    return at;
  });
  view.margin = { ...MARGIN, t: MARGIN.t + lines * NOTE_LINE + (wide ? 4 : 0) };
  view.noteDropped = null;
}

function layerName(view, l) {
  const last = view.sizes.length - 1;
  return l === 0 ? 'input' : l === last ? 'output' : `hidden layer ${l}`;
}

// The note over a panel that draws some layers in part: per such layer what it shows,
// and (hidden layers) how many of all its neurons this frame's mask dropped.
export function writeNote(view) {
  const lines = [];
  view.sizes.forEach((n, l) => {
    if (view.every[l] === 1) return;
    const k = view.every[l], m = view.ids[l].length;
    const nth = k === 2 ? '2nd' : k === 3 ? '3rd' : `${k}th`;
    lines.push(`${layerName(view, l)}: showing ${m} of ${n} neurons, every ${nth}`);
    if (l > 0 && l < view.sizes.length - 1) {
      const kept = view.kept[l];
      let dropped = 0; for (const v of kept) dropped += v ? 0 : 1;
      let droppedShown = 0; for (const i of view.ids[l]) droppedShown += kept[i] ? 0 : 1;
      lines.push(`  dropped in this step: ${dropped} of ${n} (${droppedShown} of the ${m} shown)`);
    }
  });
  const text = lines.join('\n');
  view.note.hidden = !lines.length;
  if (view.note.textContent !== text) view.note.textContent = text;
}

// Plotly's part of the panel: axes, layer names, a hover name per neuron.
export function plotNetwork(view) {
  if (!view.sizes || view.plotted) return;
  const xs = view.x, ys = view.y, text = view.text;
  // invisible: the canvas draws the neurons; these give each its hover name
  const traces = [{
    type: 'scatter', mode: 'markers', x: xs, y: ys, text, hoverinfo: 'text',
    marker: { size: SIZE, opacity: 0, color: view.colors, symbol: view.symbols },
    showlegend: false,
  }];
  const short = (view.el.clientWidth || 600) / view.sizes.length < 75;  // narrow: 'h1' not 'hidden 1'
  const names = view.sizes.map((n, l) => (l === 0 ? (short ? 'in' : 'input')
    : l === view.sizes.length - 1 ? (short ? 'out' : 'output') : (short ? `h${l}` : `hidden ${l}`))
    + (view.every[l] > 1 ? ` (${view.ids[l].length} of ${n})` : ''));
  const layout = layoutBase({
    margin: { ...view.margin },
    xaxis: { visible: false, range: xRange(view), fixedrange: true },
    yaxis: { visible: false, range: Y_RANGE, fixedrange: true },
    annotations: names.map((t, l) => ({ x: l, y: -0.03, yref: 'y', text: t, showarrow: false, yanchor: 'top',
      font: { size: 11, color: COLORS.muted } })),
    hovermode: 'closest',
  });
  view.neuronTrace = 0;
  Plotly.react(view.el, traces, layout, { displayModeBar: false, responsive: true });
  if (!view.listening && view.el.on) {
    // a Plotly redraw (a resize) moves the axes: the picture follows
    view.el.on('plotly_afterplot', () => { view.styleDirty = view.edgesDirty = true; });
    view.listening = true;
  }
  view.plotted = true;
  view.render(true);
}

function xRange(view) { return [-0.4, view.sizes.length - 0.6]; }

// Where the picture goes: Plotly's axes once it has laid the panel out; before, the
// panel's size with the same margins and ranges (Plotly's linear axes: offset + scale).
// null: Plotly has been asked but has not laid it out yet.
export function placement(view) {
  const full = view.el._fullLayout;
  if (full && full.xaxis && full.xaxis.l2p) {
    const xa = full.xaxis, ya = full.yaxis;
    return { width: full.width, height: full.height, key: 'plotly',
      x: x => xa._offset + xa.l2p(x), y: y => ya._offset + ya.l2p(y) };
  }
  return view.plotted ? null : ownPlacement(view);
}

export function ownPlacement(view) {
  const width = Math.round(view.el.clientWidth) || 600, height = Math.round(view.el.clientHeight) || 400;
  const [x0, x1] = xRange(view), [y0, y1] = Y_RANGE, M = view.margin;
  const w = width - M.l - M.r, h = height - M.t - M.b;
  return { width, height, key: `${width}x${height}`,
    x: x => M.l + (x - x0) * w / (x1 - x0), y: y => M.t + (y1 - y) * h / (y1 - y0) };
}

// The canvas, under Plotly's SVG (whose background is transparent) and never in the way
// of hover; handed to a Worker where the browser has OffscreenCanvas.
