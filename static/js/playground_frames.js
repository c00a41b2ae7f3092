// The playground's frames: each one taken (drop counts, loss points, the rate, the
// timeline), and only the latest one drawn, on the next animation frame. The network
// panel repaints once per new frame, with exactly that frame's mask (no fade); the
// boundary and the losses refresh a few times per second. At most one Plotly redraw
// (the boundary, or the loss chart) per animation frame; a panel whose data did not
// change is not touched. pg.stats.work: main-thread milliseconds per part, for the bench.
import { captionParts, lossNote } from './captions.js';
import { replay } from './playground_controls.js';

const PLANE_EVERY_MS = 150;   // boundary image swap: about 6/s, as often as the server sends one
const LOSS_EVERY_MS = 500;    // extendTraces is costly (docs/benchmarks.md): twice a second is enough to read a curve
const RATE_WINDOW_MS = 2000;  // the steps/s shown: measured over this much of the recent past
const EARLY_FRAMES = 1000;    // frames kept for the panels while Plotly is on its way

const $ = (root, sel) => root.querySelector(sel);

export function take(pg, frame) {
  const t0 = performance.now();
  takeFrame(pg, frame);
  pg.stats.work.take += performance.now() - t0;
  pg.stats.work.decode += frame.decodeMs || 0;
}

// network: false for a frame the network has shown already (taken before Plotly came)
export function takeFrame(pg, frame, network = true) {
  const h = frame.header;
  if (network) {
    pg.stats.frames++;
    pg.stats.bytes += frame.bytes;
  }
  if (!pg.info) return;
  if (!pg.plotted) {  // Plotly is on its way: the network shows it now, the rest later
    pg.network.update(frame);
    pg.frame = frame;
    pg.early.push(frame);
    if (pg.early.length > EARLY_FRAMES) pg.early.shift();
    return;
  }
  if (h.replay) {  // a past step: shown, but no curve, count or rate takes it
    pg.replayAfterLive = null;
    pg.timeline.show(frame);
    pg.network.update(frame);
    pg.plane.update(frame, pg.state.view, pg.watching, pg.timeline.latest);
    pg.frame = frame;
    return;
  }
  pg.timeline.live(frame);
  if (pg.replayAfterLive !== null && pg.replayAfterLive !== undefined && !pg.playing) {
    const step = pg.replayAfterLive;
    queueMicrotask(() => replay(pg, step));
  }
  if (h.step === 0) pg.losses.clear();
  pg.losses.add(frame);
  countDrops(pg, frame);
  // steps per second over the last RATE_WINDOW_MS of frames (an average of per-frame
  // rates would overstate it: 1/dt weighs the short gaps more)
  const w = (pg.rateWindow ||= []);
  w.push([h.t, h.step]);
  while (w.length > 2 && h.t - w[1][0] >= RATE_WINDOW_MS) w.shift();
  const [t0, s0] = w[0];
  pg.rate = pg.playing && h.t - t0 >= 250 && h.step >= s0 ? (h.step - s0) / ((h.t - t0) / 1000) : pg.rate;
  if (network) pg.network.update(frame);
  pg.plane.update(frame, pg.state.view, pg.watching);
  if (network) pg.frame = frame;
}

// The measured drop rate covers one mode and one p: a frame that brings a new mode or p
// starts the count afresh, and is itself left out (its steps may straddle the change),
// so eval mode reads exactly 0 and a new p is measured on its own.
function countDrops(pg, frame) {
  const h = frame.header, n = h.p.length;
  const key = `${h.mode}|${h.p.join(',')}|${pg.info.config.model.dropout_kind}`;
  let counting = true;
  if (key !== pg.dropKey || !pg.dropCounts || pg.dropCounts.length !== n) {
    counting = pg.dropKey === null;  // the first frame after configure or reset counts
    pg.dropKey = key;
    pg.dropCounts = Array.from({ length: n }, () => [0, 0]);
    pg.dropSince = counting ? h.step - h.steps + 1 : h.step + 1;
  }
  let shownDropped = 0, shownTotal = 0;
  for (let l = 0; l < n; l++) {
    if (!counting) break;
    const d = frame.arrays[`dropped.${l}`];
    const width = h.sizes[l + 1];
    if (h.masked[l] > 0 && d) {
      let sum = 0; for (const v of d.data) sum += v;
      pg.dropCounts[l][0] += sum;
      pg.dropCounts[l][1] += h.masked[l] * d.data.length;
    } else if (h.steps > 0) {
      pg.dropCounts[l][1] += width;  // steps without a mask: nothing dropped
    }
    const m = frame.arrays[`mask.${l}`];
    if (m) { for (const v of m.data) shownDropped += v ? 0 : 1; shownTotal += m.data.length; } else if (h.steps > 0) shownTotal += width;
  }
  if (shownTotal) {
    pg.stats.dropFractions.push(shownDropped / shownTotal);
    if (pg.stats.dropFractions.length > 2000) pg.stats.dropFractions.splice(0, 1000);
  }
}

export function paint(pg) {
  const now = performance.now(), work = pg.stats.work;
  let t = now;
  const spent = part => { const t1 = performance.now(); work[part] += t1 - t; t = t1; };
  const fresh = pg.frame;
  pg.frame = null;
  if (fresh) pg.drawn = fresh;
  // the text panels re-layout the page: ten times a second is plenty for reading
  if (pg.drawn && pg.drawn !== pg.captioned && now - (pg.captionAt || 0) >= 100) {
    pg.captioned = pg.drawn; pg.captionAt = now; caption(pg);
  }
  spent('caption');
  if (pg.network.paint()) {
    pg.stats.paints++;
    if (fresh) {
      pg.stats.latencies.push(Date.now() - fresh.header.t);
      if (pg.stats.latencies.length > 2000) pg.stats.latencies.splice(0, 1000);
    }
  }
  spent('network');
  let redrawn = false;  // a Plotly redraw (the boundary's): this animation frame's budget
  if (pg.plane && (pg.boundaryDirty || now - (pg.planeAt || 0) >= PLANE_EVERY_MS)) {
    if (pg.boundaryDirty && pg.drawn) pg.plane.update(pg.drawn, pg.state.view, pg.watching, pg.timeline.latest);
    pg.boundaryDirty = false;
    if (pg.plane.paint()) { pg.planeAt = now; redrawn = pg.plane.redrew; }
  }
  spent('boundary');
  if (!redrawn && now - (pg.lossAt || 0) >= LOSS_EVERY_MS && pg.losses.paint()) pg.lossAt = now;
  spent('loss');
  pg.stats.rafs++;
  pg.stats.longest = Math.max(pg.stats.longest, t - now);
}

function caption(pg) {
  const h = pg.drawn && pg.drawn.header;
  const cap = $(pg.root, '[data-role=caption]');
  if (!cap || !pg.info) return;
  // (a replayed step is one step: the rate measured on the live run does not describe it)
  const rates = !(h && h.replay) && pg.dropCounts && pg.dropCounts.some(([, seen]) => seen)
    ? pg.dropCounts.map(([d, seen]) => (seen ? d / seen : null)) : null;
  const parts = captionParts({
    step: h ? h.step : 0, mode: h ? h.mode : pg.state.mode, p: h ? h.p : pg.state.p,
    model: pg.info.config.model, rates, since: pg.dropSince,
  });
  if (h && h.replay) parts.unshift(`<strong>Replay</strong>: the mask, values and loss of step ${h.step.toLocaleString('en')}; weights as of step ${pg.timeline.latest.toLocaleString('en')} (only the latest are kept: edges, boundary and neuron maps use them)`);
  setText(cap, parts.join(' · '), true);
  const dev = $(pg.root, '[data-role=device]');
  if (dev && h) {
    // the training rate while playing; a paused run trains at no rate at all
    const rate = pg.rate === null || !pg.playing ? '' : ` · ${Math.round(pg.rate).toLocaleString('en')} steps/s`;
    setText(dev, `${h.device}${rate} · ${pg.info.params.toLocaleString('en')} parameters`);
  }
  const stats = $(pg.root, '[data-role=stats]');
  if (stats && h && h.eval) {
    const e = h.eval;
    // a regression has no accuracy (its loss is the mean squared error)
    const acc = pg.info.task === 'regression' ? '' : `, test accuracy ${e.test_acc === null ? '–' : (100 * e.test_acc).toFixed(1) + '%'}`;
    setText(stats, `step ${e.step.toLocaleString('en')}: train loss ${fmt(e.train_loss)}, test loss ${fmt(e.test_loss)}${acc}`);
  }
  const note = $(pg.root, '[data-role=loss-note]');
  if (note && h) setText(note, lossNote(h.mode, h.p));
}

// Text that is already on screen is not written again: every write re-lays out the page.
export function setText(node, text, html = false) {
  if (node.shownText === text) return;
  node.shownText = text;  // a property, not an attribute: no DOM write for the check
  if (html) node.innerHTML = text; else node.textContent = text;
}

function fmt(v) { return v === null || v === undefined ? '–' : v.toFixed(3); }
