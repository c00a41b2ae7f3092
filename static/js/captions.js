// The words next to the pictures: the caption over the panels, the network legend and
// the note under the loss curves. Each is a function of what the frame on screen says
// (its mode and p) and of the run's model, so no label can say something the panels
// do not show. Pure functions: no DOM, no state.

// AlphaDropout (as aten computes it): a dropped unit is set to -ALPHA before an affine
// correction a * v + b that keeps a SELU layer's mean 0 and variance 1.
const ALPHA = 1.7580993408473766;

export function alphaAffine(p) {
  const a = 1 / Math.sqrt((ALPHA * ALPHA * p + 1) * (1 - p));
  const b = ALPHA * a * p;
  return { a, b, dropped: -ALPHA * a + b };
}

const n3 = v => v.toFixed(3);
const list = xs => xs.join(', ');

// What dropout does to a layer at drop probability p, in train mode, in a few words.
function effect(p, kind) {
  if (p <= 0) return 'nothing dropped';
  if (kind === 'alpha') {
    if (p >= 1) return 'all dropped (output 0)';  // aten: p = 1 gives zeros
    const { a, b, dropped } = alphaAffine(p);
    return `kept ${n3(a)}·x + ${n3(b)}, dropped → ${n3(dropped)}`;
  }
  if (p >= 1) return 'all dropped (output 0)';
  return `kept ×${(1 / (1 - p)).toFixed(2)}<span class="long">, dropped → 0</span>`;
}

// The caption's parts (HTML; numbers only, nothing from the URL).
//   step, mode, p: from the frame on screen; model: the run's model config;
//   rates: measured drop rate per layer (null: none yet); since: the first step counted
export function captionParts({ step, mode, p, model, rates, since }) {
  const unit = model.dropout_kind === 'dropout2d' ? 'channels' : 'units';
  const parts = [`<b>step ${step.toLocaleString('en')}</b>`];
  if (mode === 'eval') {
    parts.push('mode <b>eval</b><span class="long"> (<code>model.eval()</code>)</span>: no dropout, training continues without it');
    parts.push(`p per layer ${list(p.map(v => v.toFixed(2)))} <span class="long">(not applied)</span>`);
    parts.push(`nothing dropped, nothing scaled`);
  } else {
    parts.push('mode <b>train</b>');
    parts.push(`p <span class="long">(drop probability) per layer:</span> <b>${list(p.map(v => v.toFixed(2)))}</b>`);
    const what = p.map(v => effect(v, model.dropout_kind));
    const same = what.every(w => w === what[0]);
    const label = model.dropout_kind === 'alpha' ? 'AlphaDropout' : `${unit}`;
    parts.push(`<span class="long">${label}: </span><b>${same ? what[0] : list(what.map((w, l) => `layer ${l + 1} ${w}`))}</b>`);
  }
  const measured = rates ? list(rates.map(r => (r === null ? '–' : n3(r)))) : '–';
  parts.push(`measured<span class="long"> drop rate</span> <b>${measured}</b> <span class="long">(since step ${Math.max(1, since).toLocaleString('en')}, in this mode and p)</span>`);
  return parts;
}

// The network panel's legend (HTML, fixed words).
export function networkLegend(model) {
  const cross = '<span class="glyph" aria-hidden="true">✕</span>';
  const circle = '<span class="glyph" aria-hidden="true">●</span>';
  const colour = 'colour = its activation for the shown example (<span class="swatch pos"></span> positive, <span class="swatch neg"></span> negative, white ≈ 0)';
  let dropped = `${cross} grey cross = dropped in this step: outputs 0, edges dotted`;
  if (model.dropout_kind === 'alpha') {
    dropped = `${cross} grey cross = dropped in this step: AlphaDropout sets it to a fixed negative value (SELU's floor), then every unit is scaled and shifted (a·x + b) to keep the mean and variance; edges dotted`;
  }
  const parts = [`${circle} circle = kept, ${colour}.`, `${dropped}.`];
  if (model.kind === 'cnn') {
    parts.length = 0;
    parts.push('A small CNN, drawn layer by layer: each circle is a <b>channel</b> (a layer "width" of 8 means 8 channels of 3×3 convolutions), coloured by its mean activation.');
    parts.push('Edges stand for whole 3×3 kernels (their summed weights): the layers are not fully connected.');
    parts.push(model.dropout_kind === 'dropout2d'
      ? `${cross} grey cross = a channel that Dropout2d dropped as a whole in this step.`
      : 'Element-wise dropout drops single pixels: a channel fades with the share of its pixels dropped.');
  }
  parts.push('In eval mode nothing is dropped. p is the <em>drop</em> probability, as in PyTorch.');
  return parts.join(' ');
}

// Why the train loss may sit above the test loss, for the mode on screen.
export function lossNote(mode, p) {
  const off = !p.some(v => v > 0);
  if (mode === 'eval' || off) {
    return 'Train loss: each step\'s batch, no dropout (eval mode or p = 0). Test loss: the test set, eval mode.';
  }
  return 'Train loss is measured on each step\'s batch with dropout on (the thinned network that trained), '
    + 'test loss on the test set in eval mode (no dropout): so the train curve can sit above the test curve.';
}
