// The network panel's edges (views/network.js): the strongest ones of each layer, bucketed
// by sign and strength, and their segments as a frame's masks have them (an edge of a
// dropped neuron, either end, dotted).
import { COLORS } from './theme.js';

const MAX_EDGES_PER_LAYER = 400;  // the strongest ones; wide layers would be a grey cloud
const BUCKETS = 3;                // strength buckets per sign

// How the edges of bucket b look: positive buckets 0..BUCKETS-1 by strength, then the
// negative ones, then the dotted edges of dropped neurons.
function edgeStyle(b) {
  if (b === 2 * BUCKETS) return { color: COLORS.faded, width: 1, dash: [2, 3], alpha: 0.6 };
  const strength = (b % BUCKETS + 1) / BUCKETS;
  return { color: b < BUCKETS ? COLORS.pos : COLORS.neg, width: 0.6 + 2.4 * strength, dash: [],
    alpha: 0.35 + 0.5 * strength };
}

// each bucket's look, indexed by bucket
export const EDGE_STYLES = Array.from({ length: 2 * BUCKETS + 1 }, (_, b) => edgeStyle(b));

// A layer's edges to draw (weights come a few times a second, with the slow panels):
// the MAX_EDGES_PER_LAYER strongest, each [from point, to point, bucket if kept].
export function strongest(w, l, sizes, at) {
  const [out, inFull] = w.shape;  // (out, in) for Linear; conv (out, in, 3, 3)
  const per = w.data.length / (out * inFull);
  const nIn = sizes[l], nOut = sizes[l + 1];
  const list = [];
  let maxAbs = 1e-9;
  const atIn = at[l], atOut = at[l + 1];
  for (let o = 0; o < Math.min(out, nOut); o++) for (let i = 0; i < Math.min(inFull, nIn); i++) {
    if (atIn[i] < 0 || atOut[o] < 0) continue;  // an end not drawn
    let v = 0;
    for (let j = 0; j < per; j++) v += w.data[(o * inFull + i) * per + j];
    list.push([o, i, v]);
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  if (list.length > MAX_EDGES_PER_LAYER) {
    list.sort((a, b) => Math.abs(b[2]) - Math.abs(a[2]));
    list.length = MAX_EDGES_PER_LAYER;
  }
  return list.map(([o, i, v]) => {
    const strength = Math.min(BUCKETS - 1, Math.floor(Math.abs(v) / maxAbs * BUCKETS));
    return [i, o, (v >= 0 ? 0 : BUCKETS) + strength];
  });
}

// Per edge bucket, the segments of the edges as the last frame has them: an edge of a
// dropped neuron (either end) in the dotted bucket.
export function edgeSegments(view, px, py) {
  const segs = Array.from({ length: 2 * BUCKETS + 1 }, () => []);
  (view.edges || []).forEach((list, l) => {
    const kIn = view.kept[l], kOut = view.kept[l + 1], from0 = view.index[l], to0 = view.index[l + 1];
    const atIn = view.at[l], atOut = view.at[l + 1];
    for (const [i, o, b] of list) {
      const f = from0 + atIn[i], t = to0 + atOut[o];
      segs[kIn[i] && kOut[o] ? b : 2 * BUCKETS].push(px[f], py[f], px[t], py[t]);
    }
  });
  return segs.map(seg => Float32Array.from(seg));
}
