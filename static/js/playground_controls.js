// The playground's run controls outside the settings form: play, step, reset, the speed
// (a log scale, and full speed one click away), the eval switch, the boundary view; the
// neuron whose map the plane shows (the list, the network's hover) and the paused run's
// replays (the timeline, its arrow keys).
import { speedLabel } from './controls.js';
import { BY_KEY, GENTLE_SPEED } from './state.js';
import { neuronName } from './views/network.js';

const $ = (root, sel) => root.querySelector(sel);

export function bindTransport(pg) {
  const r = pg.root;
  const on = (role, fn) => { const b = $(r, `[data-role=${role}]`); if (b) b.addEventListener('click', fn); };
  on('play', () => (pg.playing ? pg.pause() : pg.play()));
  on('step', () => pg.step());
  on('reset', () => pg.reset());
  const speed = $(r, '[data-role=speed]');
  if (speed) {
    const label = $(r, '[data-role=speed-label]');
    // a log scale over the schema's range
    Object.assign(speed, { min: Math.log10(BY_KEY.speed.min), max: Math.log10(BY_KEY.speed.max) });
    speed.addEventListener('input', () => { label.textContent = speedLabel(10 ** Number(speed.value)); });
    speed.addEventListener('change', () => pg.controls.set('speed', Math.round(10 ** Number(speed.value))));
  }
  // Full speed, and back to the speed before it (a gentle one where there was none)
  const full = $(r, '[data-role=full-speed]');
  if (full) {
    full.disabled = (pg.options.locked || new Set()).has('speed');
    full.addEventListener('click', () => {
      const max = BY_KEY.speed.max;
      pg.controls.set('speed', pg.state.speed >= max ? (pg.speedBefore ?? Math.min(GENTLE_SPEED, max)) : max);
    });
  }
  showSpeed(pg);
  const mode = $(r, '[data-role=mode]');
  if (mode) {
    mode.checked = pg.state.mode === 'eval';
    mode.addEventListener('change', () => pg.controls.set('mode', mode.checked ? 'eval' : 'train'));
  }
  const view = $(r, '[data-role=view]');
  if (view) {
    view.value = pg.state.view;
    view.addEventListener('change', () => pg.controls.set('view', view.value));
  }
}

// The run controls outside the form show the state (after a link, or the full-speed button).
export function showRunControls(pg) {
  showSpeed(pg);
  const mode = $(pg.root, '[data-role=mode]');
  if (mode) mode.checked = pg.state.mode === 'eval';
  const view = $(pg.root, '[data-role=view]');
  if (view) view.value = pg.state.view;
}

export function showSpeed(pg) {
  const v = pg.state.speed, max = BY_KEY.speed.max;
  if (v < max) pg.speedBefore = v;
  const speed = $(pg.root, '[data-role=speed]');
  if (speed) speed.value = Math.log10(v);
  const label = $(pg.root, '[data-role=speed-label]');
  if (label) label.textContent = speedLabel(v);
  const full = $(pg.root, '[data-role=full-speed]');
  if (full) full.setAttribute('aria-pressed', String(v >= max));
}

// Hovering a hidden neuron shows its output over the input plane (as TF Playground does).
export function bindHover(pg) {
  if (pg.hoverBound || !pg.network.el.on) return;
  pg.hoverBound = true;
  pg.network.el.on('plotly_hover', ev => {
    const pt = ev.points && ev.points[0];
    if (!pt || pt.curveNumber !== pg.network.neuronTrace || pg.info.task !== 'binary') return;
    const target = pg.network.neuronAt(pt.pointNumber);
    if (target) watch(pg, target);
  });
  pg.network.el.on('plotly_unhover', () => { if (pg.watching) watch(pg, null); });
}

// ← and → move the paused run's timeline one step (not while typing in a field, nor on
// the timeline's own slider, which moves by itself)
export function bindKeys(pg) {
  if (pg.options.keys === false) return;
  document.addEventListener('keydown', e => {
    if ((e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') || e.altKey || e.ctrlKey || e.metaKey || pg.playing) return;
    if (e.target.closest && e.target.closest('input, select, textarea, [contenteditable]')) return;
    pg.timeline.move(e.key === 'ArrowLeft' ? -1 : 1);
    e.preventDefault();
  });
}

export function fillWatch(pg, info) {
  const sel = $(pg.root, '[data-role=watch]');
  if (!sel) return;
  sel.textContent = '';
  sel.append(new Option('the model (decision boundary)', ''));
  if (info.task === 'binary') {
    info.sizes.slice(1, -1).forEach((n, l) => {
      for (let i = 0; i < n; i++) sel.append(new Option(neuronName(l, i, info.config.model.kind), `${l},${i}`));
    });
  }
  sel.disabled = info.task !== 'binary';
  sel.onchange = () => watch(pg, sel.value ? sel.value.split(',').map(Number) : null);
}

// One watch call in flight at a time: a mouse sweeping over the network sends the
// neuron it ends on, not every neuron it crossed. null stops the server computing a map.
export async function watch(pg, target) {
  pg.watching = target;
  pg.boundaryDirty = true;
  // the controls say what the panel is asked to show: the neuron's map, for which
  // "Boundary of" does not apply
  const sel = $(pg.root, '[data-role=watch]');
  if (sel) sel.value = target ? target.join(',') : '';
  const view = $(pg.root, '[data-role=view]');
  if (view) view.disabled = Boolean(target);
  if (pg.watchSending) return;
  pg.watchSending = true;
  const replaying = pg.timeline.shown;
  try {
    let sent;
    do {
      sent = pg.watching;
      const ack = await pg.run.set({ param: 'watch', layer: sent ? sent[0] : null, index: sent ? sent[1] : null });
      if (!ack.ok) { pg.serverErrors(ack); break; }
    } while (String(pg.watching) !== String(sent));
  } finally {
    pg.watchSending = false;
  }
  keepReplay(pg, null, replaying);
}

// A change of a paused run brings a live frame of its latest step (before the change's
// answer, or once the client has taken its last frame): a replay on show is asked for
// again after it, with the change applied (a neuron's map, the boundary asked for).
export async function keepReplay(pg, sending, step = pg.timeline.shown) {
  if (sending) await sending;
  if (step === null || step === undefined || pg.playing) return;
  pg.replayAfterLive = step;  // (again after a live frame that comes later)
  replay(pg, step);
}

// One replay call in flight at a time: a slider dragged across many steps asks for the
// step it ends on, not every step it crossed.
export async function replay(pg, step) {
  pg.replayWanted = step;
  if (pg.replaySending) return;
  pg.replaySending = true;
  try {
    let sent;
    do {
      sent = pg.replayWanted;
      const ack = await pg.run.replay(sent);
      if (!ack.ok) { pg.serverErrors(ack); break; }
    } while (pg.replayWanted !== sent);
  } finally {
    pg.replaySending = false;
  }
}
