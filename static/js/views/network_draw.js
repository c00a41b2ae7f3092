// Drawing the network panel (views/network.js): its edges and neurons on one canvas.
// The page runs this module as a Worker that owns the canvas (an OffscreenCanvas): each
// animation frame the page posts the picture's state and the Worker draws it, so the
// drawing and the canvas's trip to the screen cost the page's main thread nothing. A
// browser without OffscreenCanvas imports draw() and calls it on the page.
// No imports: a Worker's script is served under a policy that lets it load nothing else.

export const SIZE = 15;          // a neuron's marker, px
export const KEPT = 'circle', DROPPED = 'x';
const R = SIZE / 2, RX = Math.round(R * 0.8 / Math.SQRT2 * 100) / 100;
// the marker shapes, as SVG paths centred on 0,0 (Plotly's own symbols at SIZE: a circle,
// and its filled 'x' cross, whose arms are thick enough to read at this size)
const PATHS = {
  [KEPT]: `M${R},0A${R},${R} 0 1,1 0,-${R}A${R},${R} 0 0,1 ${R},0Z`,
  [DROPPED]: (() => {
    const a = `l${RX},${RX}`, b = `l${RX},-${RX}`, c = `l-${RX},-${RX}`, d = `l-${RX},${RX}`;
    return `M0,${RX}${a}${b}${c}${b}${c}${d}${c}${d}${a}${d}${a}Z`;
  })(),
};
let shapes = null;  // Path2D of each shape, made on first use

// picture: {width, height, ratio (device pixels per CSS px), px, py (each neuron's
// centre, CSS px), opacity, colors, lineColors, symbols (per neuron), segments (per edge
// bucket: x1, y1, x2, y2, ...), edgeStyles (per bucket: color, width, dash, alpha)}
export function draw(ctx, picture) {
  const { width, height, ratio } = picture;
  fit(ctx.canvas, width, height, ratio);
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  picture.segments.forEach((seg, b) => {
    if (!seg.length) return;
    const st = picture.edgeStyles[b];
    ctx.globalAlpha = st.alpha; ctx.strokeStyle = st.color; ctx.lineWidth = st.width;
    ctx.setLineDash(st.dash);
    ctx.beginPath();
    for (let i = 0; i < seg.length; i += 4) { ctx.moveTo(seg[i], seg[i + 1]); ctx.lineTo(seg[i + 2], seg[i + 3]); }
    ctx.stroke();
  });
  shapes = shapes || { [KEPT]: new Path2D(PATHS[KEPT]), [DROPPED]: new Path2D(PATHS[DROPPED]) };
  ctx.setLineDash([]);
  ctx.lineWidth = 2;
  const { px, py, opacity, colors, lineColors, symbols } = picture;
  for (let k = 0; k < px.length; k++) {
    ctx.setTransform(ratio, 0, 0, ratio, px[k] * ratio, py[k] * ratio);
    ctx.globalAlpha = opacity[k];
    ctx.fillStyle = colors[k];
    ctx.strokeStyle = lineColors[k];
    const shape = shapes[symbols[k]];
    ctx.fill(shape);
    ctx.stroke(shape);
  }
  ctx.globalAlpha = 1;
}

// The canvas's size in device pixels. (An OffscreenCanvas's first resize is slow
// (docs/benchmarks.md, round 6): the page asks for the panel's size as soon as it knows it.)
export function fit(canvas, width, height, ratio) {
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
}

// The colour of the canvas at these CSS px points, [[r, g, b, a], ...]: what was drawn there
// (for tests: the picture itself, not the state it was drawn from).
export function pixels(ctx, points, ratio) {
  return points.map(([x, y]) => Array.from(ctx.getImageData(Math.round(x * ratio), Math.round(y * ratio), 1, 1).data));
}

if (typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope) {
  let ctx = null, segments = [], edgeStyles = [], ratio = 1, drawn = false;
  self.onmessage = ({ data }) => {
    if (data.canvas) ctx = data.canvas.getContext('2d');
    if (data.size && ctx) fit(ctx.canvas, ...data.size);
    if (data.segments) ({ segments, edgeStyles } = data);  // only when the edges changed
    if (data.picture && ctx) {
      ratio = data.picture.ratio;
      draw(ctx, { ...data.picture, segments, edgeStyles });
      if (!drawn) {  // the page notes when (the time since the epoch: the two clocks differ)
        drawn = true;
        self.postMessage({ drawn: performance.timeOrigin + performance.now() });
      }
    }
    if (data.probe && ctx) self.postMessage({ probe: data.probe.id, pixels: pixels(ctx, data.probe.points, ratio) });
  };
}
