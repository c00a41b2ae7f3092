// Colours that stay distinct for colour-blind visitors (blue vs vermillion, after Okabe
// and Ito), plus shape cues (hollow = dropped, diamond = class 0) so nothing relies on
// colour alone.
export const COLORS = {
  pos: '#0072B2',       // positive activation / weight, class 1
  neg: '#D55E00',       // negative activation / weight, class 0
  neutral: '#c9ced6',
  dropped: '#9aa0a6',
  faded: '#b8bcc2',
  edgeline: '#3d4451',
  muted: '#5f6673',
  train: '#1b9e77',
  test: '#7570b3',
  acc: '#444',
};

const NEG = [0xD5, 0x5E, 0x00], MID = [0xf4, 0xf4, 0xf2], POS = [0x00, 0x72, 0xB2];

// v in [-1, 1] -> a colour on the vermillion - white - blue scale
export function ACT_SCALE(v) {
  const t = Math.max(-1, Math.min(1, Number.isFinite(v) ? v : 0));
  const [a, b] = t < 0 ? [MID, NEG] : [MID, POS];
  const u = Math.abs(t);
  const c = a.map((x, i) => Math.round(x + (b[i] - x) * u));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// Plotly colorscale matching ACT_SCALE, for heatmaps of values in [0, 1] (probabilities)
export const PROB_SCALE = [[0, 'rgb(213,94,0)'], [0.5, 'rgb(244,244,242)'], [1, 'rgb(0,114,178)']];

export function layoutBase(extra = {}) {
  return {
    paper_bgcolor: 'rgba(0,0,0,0)', plot_bgcolor: 'rgba(0,0,0,0)',
    font: { family: 'system-ui, -apple-system, Segoe UI, Roboto, sans-serif', size: 12, color: '#20242b' },
    ...extra,
  };
}
