// The live playground: wires the settings, the socket and the panels together.
// Frames arrive at most ~30 per second; every frame's numbers are taken (drop counts,
// loss points) but only the latest one is drawn, on the next animation frame. The network
// panel repaints once per new frame, with exactly that frame's mask (no fade); the
// boundary and the losses refresh a few times per second. At most one Plotly redraw
// (network edges, or the loss chart) per animation frame; a panel whose data did not
// change is not touched. stats.work: main-thread milliseconds per part, for the bench.
import { Connection } from './connection.js';
import { Controls, speedLabel } from './controls.js';
import { fromHash, toHash, toConfig, keyOfPath, BY_KEY, FIELDS, GENTLE_SPEED } from './state.js';
import { captionParts, networkLegend, lossNote } from './captions.js';
import { NetworkView, neuronName } from './views/network.js';
import { BoundaryView } from './views/boundary.js';
import { ImagesView } from './views/images.js';
import { LossView } from './views/losses.js';
import { TimelineView } from './views/timeline.js';
import { Exporter } from './export.js';
import { CustomEditor } from './custom_data.js';
import { plotlyReady, withPlotly } from './plotly_ready.js';

const PLANE_EVERY_MS = 150;   // boundary image swap: about 6/s, as often as the server sends one
const LOSS_EVERY_MS = 500;    // extendTraces is costly (docs/benchmarks.md): twice a second is enough to read a curve
const RATE_WINDOW_MS = 2000;  // the steps/s shown: measured over this much of the recent past
const EARLY_FRAMES = 1000;    // frames kept for the panels while Plotly is on its way

const $ = (root, sel) => root.querySelector(sel);

export class Playground extends EventTarget {
  constructor(root, options = {}) {
    super();
    this.root = root;
    this.options = options;
    this.page = options.page || {};  // defaults of this page that differ from the server's (state.js)
    const { state, problems } = fromHash(options.hash ?? location.hash, this.page);
    this.state = Object.assign(state, options.overrides || {});
    this.playing = false;
    this.info = null;
    this.frame = null;           // latest frame, not yet drawn
    this.drawn = null;
    this.watching = null;
    this.stats = { paints: 0, latencies: [], dropFractions: [], frames: 0, bytes: 0,
      // main-thread ms since the page opened: per part, the animation frames, the longest one
      work: { decode: 0, take: 0, caption: 0, network: 0, boundary: 0, loss: 0 }, rafs: 0, longest: 0 };
    this.dropCounts = null;      // per layer: [dropped, seen] since dropSince, under one mode and p
    this.dropKey = null;         // the mode and p the counts were measured under
    this.dropSince = 0;          // the first step they cover
    this.rate = null;
    this.conn = options.connection || new Connection();
    this.controls = new Controls($(root, '[data-role=settings]'), this.state, key => this.changed(key),
      { locked: options.locked || new Set(), hidden: options.hiddenGroups || new Set() });
    this.network = new NetworkView($(root, '[data-role=network]'));
    this.boundary = new BoundaryView($(root, '[data-role=plane]'), $(root, '[data-role=plane-caption]'),
      $(root, '[data-role=plane-title]'));
    this.images = new ImagesView($(root, '[data-role=plane]'), $(root, '[data-role=plane-caption]'));
    this.losses = new LossView($(root, '[data-role=losses]'));
    this.timeline = new TimelineView(root, step => this.replay(step));
    this.bindTransport();
    this.bindKeys();
    this.exporter = new Exporter(this);
    this.custom = new CustomEditor(this);
    if (problems.length) this.notice(`From the link: ${problems.join('; ')}.`, 'warn');
    this.conn.addEventListener('connected', () => { this.connection('connected'); this.configure(); });
    this.conn.addEventListener('disconnected', e => { this.connection(`disconnected (${e.detail}); reconnecting…`); this.setPlaying(false); });
    this.conn.addEventListener('frame', e => this.take(e.detail));
    this.conn.addEventListener('status', e => this.status(e.detail));
    this.conn.addEventListener('broadcast', e => this.notice(`Server: ${e.detail.message}`, 'warn'));
    if (this.conn.socket.connected) { this.connection('connected'); this.configure(); }
    const loop = () => { this.paint(); requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
    // for the browser tests and benchmarks: once Plotly is there (every panel can draw)
    withPlotly(() => { window.__dp = this; }).catch(() => this.notice('The charts did not load (plotly.js): reload the page.', 'error'));
  }

  // ---- settings -----------------------------------------------------------------------
  changed(key) {
    this.writeHash();
    this.dispatchEvent(new CustomEvent('changed', { detail: key }));
    if (key === 'speed') this.showSpeed();
    const f = BY_KEY[key];
    if (key === 'view') {
      this.boundaryDirty = true;  // redraw from the last frame now; the server sends only this view
      if (this.info) this.keepReplay(this.setLive({ param: 'view', value: this.state.view }));
      return;
    }
    if (!this.info) return;
    if (f && f.live) {
      if (key === 'p') {  // one message per layer that changed (one slider: one 'set')
        this.state.p.forEach((p, layer) => { if (this.sentP[layer] !== p) this.setLive({ param: 'p', layer, value: p }); });
        this.sentP = [...this.state.p];
      }
      else if (key === 'lr') this.setLive({ param: 'lr', value: this.state.lr });
      else if (key === 'speed') this.setLive({ param: 'speed', value: this.state.speed });
      else if (key === 'mode') this.setLive({ param: 'mode', value: this.state.mode });
      return;  // the caption follows the next frame, which shows the change
    }
    clearTimeout(this.reconfigureTimer);
    this.reconfigureTimer = setTimeout(() => this.configure(), 150);
  }

  writeHash() {
    if (this.options.keepHash) return;
    history.replaceState(null, '', toHash(this.state, this.options.hashExtra || {}, this.page));
  }

  // ---- links ------------------------------------------------------------------------------
  // This setup's link: the page's address with the state's hash.
  link() {
    return location.href.split('#')[0] + toHash(this.state, this.options.hashExtra || {}, this.page);
  }

  // A link opened in this tab while the page runs (the address bar's hash changed). What
  // a run can change as it trains (p, learning rate, speed, mode, view) changes in place;
  // another setup is taken at once, or, when the run has trained, once the visitor says
  // so. Keeping the run puts its own link back in the address bar.
  followLink(hash) {
    const { state, problems } = fromHash(hash, this.page);
    if (toHash(state, {}, this.page) === toHash(this.state, {}, this.page)) return;
    const differ = FIELDS.filter(f => String(state[f.key]) !== String(this.state[f.key]));
    const sameSet = String(state.customPoints) === String(this.state.customPoints);
    if (this.info && sameSet && differ.every(f => f.live || f.change)) {
      for (const f of differ) this.controls.set(f.key, state[f.key]);
      this.showRunControls();
      if (problems.length) this.notice(`From the link: ${problems.join('; ')}.`, 'warn');
      return;
    }
    const step = Math.max(this.timeline.latest || 0, this.drawn ? this.drawn.header.step : 0);
    if (!this.info || step === 0) { this.adopt(state, problems); return; }
    this.ask(`The address now holds another setup (${describe(state)}). Start it? This run, at step ${step.toLocaleString('en')}, would be lost.`,
      'Start the new setup', 'Keep this run', yes => (yes ? this.adopt(state, problems) : this.writeHash()));
  }

  adopt(state, problems = []) {
    Object.assign(this.state, state);  // the same object: the form holds it
    this.controls.sync();
    this.showRunControls();
    if (problems.length) this.notice(`From the link: ${problems.join('; ')}.`, 'warn'); else this.notice('');
    this.dispatchEvent(new CustomEvent('changed', { detail: 'link' }));
    clearTimeout(this.reconfigureTimer);
    if (this.conn.socket.connected) this.configure();
  }

  // A question in the notice area, answered by one of two buttons (the first has focus).
  ask(text, yesText, noText, answer) {
    this.notice(text, 'warn');
    const n = $(this.root, '[data-role=notice]');
    const dismiss = $(n, '.dismiss');
    const buttons = [[yesText, true], [noText, false]].map(([label, yes]) => {
      const b = Object.assign(document.createElement('button'), { type: 'button', className: 'small', textContent: label });
      b.dataset.answer = yes ? 'yes' : 'no';
      b.addEventListener('click', () => { n.hidden = true; answer(yes); });
      return b;
    });
    const group = Object.assign(document.createElement('span'), { className: 'link-answers' });
    group.append(...buttons);
    dismiss.replaceWith(group);
    buttons[0].focus();
  }

  async setLive(change) {
    const ack = await this.conn.call('set', { change });
    if (!ack.ok) this.serverErrors(ack);
    return ack;
  }

  async configure() {
    if (this.state.data === 'custom' && !window.Plotly) await plotlyReady();  // its points are a Plotly plot
    if (!this.custom.allowConfigure()) return null;  // a custom set that cannot train yet
    const wasPlaying = this.playing;
    const ack = await this.conn.call('configure', { config: toConfig(this.state) });
    if (!ack.ok) { this.serverErrors(ack); return ack; }
    this.clearErrors();
    this.info = ack;
    this.sentP = [...ack.config.model.p];  // what the run trains with: a p change sends only what differs
    this.dropCounts = null;
    this.dropKey = null;
    this.setupPanels(ack);
    await this.conn.call('set', { change: { param: 'speed', value: this.state.speed } });
    if (this.state.mode !== 'train') await this.conn.call('set', { change: { param: 'mode', value: this.state.mode } });
    if (this.state.view !== 'eval') await this.conn.call('set', { change: { param: 'view', value: this.state.view } });
    this.setPlaying(false);
    if (wasPlaying || this.options.autoplay) await this.play();
    this.dispatchEvent(new CustomEvent('configured', { detail: ack }));
    return ack;
  }

  // The network's picture at once; the panels Plotly draws (the network's axes, names and
  // hover, the plane, the losses, the timeline) once Plotly has arrived. The frames that
  // come meanwhile are shown by the network, and kept for the other panels.
  setupPanels(info) {
    const digits = info.task !== 'binary';
    const model = info.config.model;
    this.network.setup(info.sizes, model);
    this.early = [];
    this.plotted = false;
    if (window.Plotly) this.setupPlots(info);
    else {
      this.plane = null;
      plotlyReady().then(() => { if (this.info === info) this.setupPlots(info); }, () => {});
    }
    // no boundary, neuron maps or two classes for the digits: their controls and key go
    for (const role of ['plane-key', 'view-field', 'watch-field']) {
      const node = $(this.root, `[data-role=${role}]`);
      if (node) node.hidden = digits;
    }
    const title = $(this.root, '[data-role=plane-title]');
    if (title) title.textContent = digits ? (model.kind === 'cnn' ? 'Input and feature maps' : 'Input') : 'Decision boundary';
    const legend = $(this.root, '[data-role=legend]');
    if (legend) legend.innerHTML = networkLegend(model);
    this.fillWatch(info);
    this.rate = null;
    this.rateWindow = [];
    const dev = $(this.root, '[data-role=device]');
    if (dev) setText(dev, `${info.device} · ${info.params.toLocaleString('en')} parameters`);
  }

  setupPlots(info) {
    this.network.plot();
    this.bindHover();
    this.plane = info.task !== 'binary' ? this.images : this.boundary;
    this.plane.setup(info);
    this.losses.setup();
    this.timeline.setup(info);
    this.plotted = true;
    const early = this.early;
    this.early = [];
    for (const frame of early) this.takeFrame(frame, false);
    this.boundaryDirty = true;
    if (!this.playing) this.timeline.visible(true);
  }

  fillWatch(info) {
    const sel = $(this.root, '[data-role=watch]');
    if (!sel) return;
    sel.textContent = '';
    sel.append(new Option('the model (decision boundary)', ''));
    if (info.task === 'binary') {
      info.sizes.slice(1, -1).forEach((n, l) => {
        for (let i = 0; i < n; i++) sel.append(new Option(neuronName(l, i, info.config.model.kind), `${l},${i}`));
      });
    }
    sel.disabled = info.task !== 'binary';
    sel.onchange = () => this.watch(sel.value ? sel.value.split(',').map(Number) : null);
  }

  // One watch call in flight at a time: a mouse sweeping over the network sends the
  // neuron it ends on, not every neuron it crossed. null stops the server computing a map.
  async watch(target) {
    this.watching = target;
    this.boundaryDirty = true;
    // the controls say what the panel is asked to show: the neuron's map, for which
    // "Boundary of" does not apply
    const sel = $(this.root, '[data-role=watch]');
    if (sel) sel.value = target ? target.join(',') : '';
    const view = $(this.root, '[data-role=view]');
    if (view) view.disabled = Boolean(target);
    if (this.watchSending) return;
    this.watchSending = true;
    const replaying = this.timeline.shown;
    try {
      let sent;
      do {
        sent = this.watching;
        const ack = await this.conn.call('set', { change: { param: 'watch', layer: sent ? sent[0] : null, index: sent ? sent[1] : null } });
        if (!ack.ok) { this.serverErrors(ack); break; }
      } while (String(this.watching) !== String(sent));
    } finally {
      this.watchSending = false;
    }
    this.keepReplay(null, replaying);
  }

  // A change of a paused run brings a live frame of its latest step (before the change's
  // answer, or once the client has taken its last frame): a replay on show is asked for
  // again after it, with the change applied (a neuron's map, the boundary asked for).
  async keepReplay(sending, step = this.timeline.shown) {
    if (sending) await sending;
    if (step === null || step === undefined || this.playing) return;
    this.replayAfterLive = step;  // (again after a live frame that comes later)
    this.replay(step);
  }

  // ---- transport ------------------------------------------------------------------------
  bindTransport() {
    const r = this.root;
    const on = (role, fn) => { const b = $(r, `[data-role=${role}]`); if (b) b.addEventListener('click', fn); };
    on('play', () => (this.playing ? this.pause() : this.play()));
    on('step', () => this.step());
    on('reset', () => this.reset());
    const speed = $(r, '[data-role=speed]');
    if (speed) {
      const label = $(r, '[data-role=speed-label]');
      // a log scale over the schema's range
      Object.assign(speed, { min: Math.log10(BY_KEY.speed.min), max: Math.log10(BY_KEY.speed.max) });
      speed.addEventListener('input', () => { label.textContent = speedLabel(10 ** Number(speed.value)); });
      speed.addEventListener('change', () => this.controls.set('speed', Math.round(10 ** Number(speed.value))));
    }
    // Full speed, and back to the speed before it (a gentle one where there was none)
    const full = $(r, '[data-role=full-speed]');
    if (full) {
      full.disabled = (this.options.locked || new Set()).has('speed');
      full.addEventListener('click', () => {
        const max = BY_KEY.speed.max;
        this.controls.set('speed', this.state.speed >= max ? (this.speedBefore ?? Math.min(GENTLE_SPEED, max)) : max);
      });
    }
    this.showSpeed();
    const mode = $(r, '[data-role=mode]');
    if (mode) {
      mode.checked = this.state.mode === 'eval';
      mode.addEventListener('change', () => this.controls.set('mode', mode.checked ? 'eval' : 'train'));
    }
    const view = $(r, '[data-role=view]');
    if (view) {
      view.value = this.state.view;
      view.addEventListener('change', () => this.controls.set('view', view.value));
    }
  }

  // The run controls outside the form show the state (after a link, or the full-speed button).
  showRunControls() {
    this.showSpeed();
    const mode = $(this.root, '[data-role=mode]');
    if (mode) mode.checked = this.state.mode === 'eval';
    const view = $(this.root, '[data-role=view]');
    if (view) view.value = this.state.view;
  }

  showSpeed() {
    const v = this.state.speed, max = BY_KEY.speed.max;
    if (v < max) this.speedBefore = v;
    const speed = $(this.root, '[data-role=speed]');
    if (speed) speed.value = Math.log10(v);
    const label = $(this.root, '[data-role=speed-label]');
    if (label) label.textContent = speedLabel(v);
    const full = $(this.root, '[data-role=full-speed]');
    if (full) full.setAttribute('aria-pressed', String(v >= max));
  }

  // Hovering a hidden neuron shows its output over the input plane (as TF Playground does).
  bindHover() {
    if (this.hoverBound || !this.network.el.on) return;
    this.hoverBound = true;
    this.network.el.on('plotly_hover', ev => {
      const pt = ev.points && ev.points[0];
      if (!pt || pt.curveNumber !== this.network.neuronTrace || this.info.task !== 'binary') return;
      const target = this.network.neuronAt(pt.pointNumber);
      if (target) this.watch(target);
    });
    this.network.el.on('plotly_unhover', () => { if (this.watching) this.watch(null); });
  }

  // ← and → move the paused run's timeline one step (not while typing in a field, nor on
  // the timeline's own slider, which moves by itself)
  bindKeys() {
    if (this.options.keys === false) return;
    document.addEventListener('keydown', e => {
      if ((e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') || e.altKey || e.ctrlKey || e.metaKey || this.playing) return;
      if (e.target.closest && e.target.closest('input, select, textarea, [contenteditable]')) return;
      this.timeline.move(e.key === 'ArrowLeft' ? -1 : 1);
      e.preventDefault();
    });
  }

  // One replay call in flight at a time: a slider dragged across many steps asks for the
  // step it ends on, not every step it crossed.
  async replay(step) {
    this.replayWanted = step;
    if (this.replaySending) return;
    this.replaySending = true;
    try {
      let sent;
      do {
        sent = this.replayWanted;
        const ack = await this.conn.call('replay', { step: sent });
        if (!ack.ok) { this.serverErrors(ack); break; }
      } while (this.replayWanted !== sent);
    } finally {
      this.replaySending = false;
    }
  }

  // until: the server pauses the run at exactly that step (embeds compared on one page)
  async play(until) {
    this.replayAfterLive = null;
    const ack = await this.conn.call('play', until === undefined ? {} : { until });
    if (!ack.ok) this.serverErrors(ack); else this.setPlaying(true);
    return ack;
  }

  async pause() {
    const ack = await this.conn.call('pause', {});
    this.setPlaying(false);
    return ack;
  }

  // One 'step' in flight per run (the server refuses another while one trains): clicks
  // meanwhile add up and go as one 'step' of that many once the first is answered.
  async step() {
    if (this.playing) await this.pause();
    this.stepsAsked = (this.stepsAsked || 0) + 1;
    if (this.stepping) return this.stepping;
    this.stepping = (async () => {
      let ack;
      while (this.stepsAsked > 0) {
        const n = this.stepsAsked;
        this.stepsAsked = 0;
        ack = await this.conn.call('step', { n });
        if (!ack.ok) this.serverErrors(ack);
      }
      return ack;
    })();
    try { return await this.stepping; } finally { this.stepping = null; }
  }

  async reset() {
    const ack = await this.conn.call('reset', {});
    if (ack.ok) { this.losses.clear(); this.dropKey = null; this.rate = null; this.rateWindow = []; }
    return ack;
  }

  setPlaying(playing) {
    const was = this.playing;
    this.playing = playing;
    if (!playing) { this.rate = null; this.rateWindow = []; }  // measured afresh on the next play
    this.timeline.visible(!playing);
    if (was !== playing) this.dispatchEvent(new CustomEvent('playing', { detail: playing }));
    const b = $(this.root, '[data-role=play]');
    if (b) { b.textContent = playing ? 'Pause' : 'Play'; b.setAttribute('aria-pressed', String(playing)); }
  }

  status(s) {
    if (s.state === 'playing') this.setPlaying(true);
    if (s.state === 'paused') this.setPlaying(false);
    if (s.state === 'finished' || s.state === 'ended') { this.setPlaying(false); this.notice(s.reason, 'warn'); }
  }

  // ---- frames ---------------------------------------------------------------------------
  take(frame) {
    const t0 = performance.now();
    this.takeFrame(frame);
    this.stats.work.take += performance.now() - t0;
    this.stats.work.decode += frame.decodeMs || 0;
  }

  // network: false for a frame the network has shown already (taken before Plotly came)
  takeFrame(frame, network = true) {
    const h = frame.header;
    if (network) {
      this.stats.frames++;
      this.stats.bytes += frame.bytes;
    }
    if (!this.info) return;
    if (!this.plotted) {  // Plotly is on its way: the network shows it now, the rest later
      this.network.update(frame);
      this.frame = frame;
      this.early.push(frame);
      if (this.early.length > EARLY_FRAMES) this.early.shift();
      return;
    }
    if (h.replay) {  // a past step: shown, but no curve, count or rate takes it
      this.replayAfterLive = null;
      this.timeline.show(frame);
      this.network.update(frame);
      this.plane.update(frame, this.state.view, this.watching, this.timeline.latest);
      this.frame = frame;
      return;
    }
    this.timeline.live(frame);
    if (this.replayAfterLive !== null && this.replayAfterLive !== undefined && !this.playing) {
      const step = this.replayAfterLive;
      queueMicrotask(() => this.replay(step));
    }
    if (h.step === 0) this.losses.clear();
    this.losses.add(frame);
    this.countDrops(frame);
    // steps per second over the last RATE_WINDOW_MS of frames (an average of per-frame
    // rates would overstate it: 1/dt weighs the short gaps more)
    const w = (this.rateWindow ||= []);
    w.push([h.t, h.step]);
    while (w.length > 2 && h.t - w[1][0] >= RATE_WINDOW_MS) w.shift();
    const [t0, s0] = w[0];
    this.rate = this.playing && h.t - t0 >= 250 && h.step >= s0 ? (h.step - s0) / ((h.t - t0) / 1000) : this.rate;
    if (network) this.network.update(frame);
    this.plane.update(frame, this.state.view, this.watching);
    if (network) this.frame = frame;
  }

  // The measured drop rate covers one mode and one p: a frame that brings a new mode or p
  // starts the count afresh, and is itself left out (its steps may straddle the change),
  // so eval mode reads exactly 0 and a new p is measured on its own.
  countDrops(frame) {
    const h = frame.header, n = h.p.length;
    const key = `${h.mode}|${h.p.join(',')}|${this.info.config.model.dropout_kind}`;
    let counting = true;
    if (key !== this.dropKey || !this.dropCounts || this.dropCounts.length !== n) {
      counting = this.dropKey === null;  // the first frame after configure or reset counts
      this.dropKey = key;
      this.dropCounts = Array.from({ length: n }, () => [0, 0]);
      this.dropSince = counting ? h.step - h.steps + 1 : h.step + 1;
    }
    let shownDropped = 0, shownTotal = 0;
    for (let l = 0; l < n; l++) {
      if (!counting) break;
      const d = frame.arrays[`dropped.${l}`];
      const width = h.sizes[l + 1];
      if (h.masked[l] > 0 && d) {
        let sum = 0; for (const v of d.data) sum += v;
        this.dropCounts[l][0] += sum;
        this.dropCounts[l][1] += h.masked[l] * d.data.length;
      } else if (h.steps > 0) {
        this.dropCounts[l][1] += width;  // steps without a mask: nothing dropped
      }
      const m = frame.arrays[`mask.${l}`];
      if (m) { for (const v of m.data) shownDropped += v ? 0 : 1; shownTotal += m.data.length; } else if (h.steps > 0) shownTotal += width;
    }
    if (shownTotal) {
      this.stats.dropFractions.push(shownDropped / shownTotal);
      if (this.stats.dropFractions.length > 2000) this.stats.dropFractions.splice(0, 1000);
    }
  }

  paint() {
    const now = performance.now(), work = this.stats.work;
    let t = now;
    const spent = part => { const t1 = performance.now(); work[part] += t1 - t; t = t1; };
    const fresh = this.frame;
    this.frame = null;
    if (fresh) this.drawn = fresh;
    // the text panels re-layout the page: ten times a second is plenty for reading
    if (this.drawn && this.drawn !== this.captioned && now - (this.captionAt || 0) >= 100) {
      this.captioned = this.drawn; this.captionAt = now; this.caption();
    }
    spent('caption');
    if (this.network.paint()) {
      this.stats.paints++;
      if (fresh) {
        this.stats.latencies.push(Date.now() - fresh.header.t);
        if (this.stats.latencies.length > 2000) this.stats.latencies.splice(0, 1000);
      }
    }
    spent('network');
    let redrawn = false;  // a Plotly redraw (the boundary's): this animation frame's budget
    if (this.plane && (this.boundaryDirty || now - (this.planeAt || 0) >= PLANE_EVERY_MS)) {
      if (this.boundaryDirty && this.drawn) this.plane.update(this.drawn, this.state.view, this.watching, this.timeline.latest);
      this.boundaryDirty = false;
      if (this.plane.paint()) { this.planeAt = now; redrawn = this.plane.redrew; }
    }
    spent('boundary');
    if (!redrawn && now - (this.lossAt || 0) >= LOSS_EVERY_MS && this.losses.paint()) this.lossAt = now;
    spent('loss');
    this.stats.rafs++;
    this.stats.longest = Math.max(this.stats.longest, t - now);
  }

  caption() {
    const h = this.drawn && this.drawn.header;
    const cap = $(this.root, '[data-role=caption]');
    if (!cap || !this.info) return;
    // (a replayed step is one step: the rate measured on the live run does not describe it)
    const rates = !(h && h.replay) && this.dropCounts && this.dropCounts.some(([, seen]) => seen)
      ? this.dropCounts.map(([d, seen]) => (seen ? d / seen : null)) : null;
    const parts = captionParts({
      step: h ? h.step : 0, mode: h ? h.mode : this.state.mode, p: h ? h.p : this.state.p,
      model: this.info.config.model, rates, since: this.dropSince,
    });
    if (h && h.replay) parts.unshift(`<strong>Replay</strong>: the mask, values and loss of step ${h.step.toLocaleString('en')}; weights as of step ${this.timeline.latest.toLocaleString('en')} (only the latest are kept: edges, boundary and neuron maps use them)`);
    setText(cap, parts.join(' · '), true);
    const dev = $(this.root, '[data-role=device]');
    if (dev && h) {
      // the training rate while playing; a paused run trains at no rate at all
      const rate = this.rate === null || !this.playing ? '' : ` · ${Math.round(this.rate).toLocaleString('en')} steps/s`;
      setText(dev, `${h.device}${rate} · ${this.info.params.toLocaleString('en')} parameters`);
    }
    const stats = $(this.root, '[data-role=stats]');
    if (stats && h && h.eval) {
      const e = h.eval;
      setText(stats, `step ${e.step.toLocaleString('en')}: train loss ${fmt(e.train_loss)}, test loss ${fmt(e.test_loss)}, test accuracy ${e.test_acc === null ? '–' : (100 * e.test_acc).toFixed(1) + '%'}`);
    }
    const note = $(this.root, '[data-role=loss-note]');
    if (note && h) setText(note, lossNote(h.mode, h.p));
  }

  // ---- messages ---------------------------------------------------------------------------
  serverErrors(ack) {
    const errors = ack.errors || [ack.error];
    // named as on screen: the control's label, not the config path
    const named = e => { const key = keyOfPath(e.field); return key ? BY_KEY[key].label : e.field; };
    this.notice(errors.map(e => `${named(e)}: ${e.message}`).join('\n'), 'error');
    for (const e of errors) {
      const key = keyOfPath(e.field);
      if (key) this.controls.showError(key, e.message);
    }
    this.dispatchEvent(new CustomEvent('error', { detail: errors }));
  }

  clearErrors() {
    for (const key of Object.keys(BY_KEY)) this.controls.showError(key, null);
    const n = $(this.root, '[data-role=notice]');
    if (n && n.dataset.kind === 'error') n.hidden = true;
  }

  notice(text, kind = 'info') {
    const n = $(this.root, '[data-role=notice]');
    if (!n) return;
    n.textContent = '';
    const body = document.createElement('span');
    body.textContent = text;
    const close = document.createElement('button');
    Object.assign(close, { type: 'button', className: 'small dismiss', textContent: '×', title: 'Dismiss' });
    close.setAttribute('aria-label', 'Dismiss this message');
    close.addEventListener('click', () => { n.hidden = true; });
    n.append(body, close);
    n.dataset.kind = kind;
    n.hidden = !text;
  }

  connection(text) {
    const c = $(this.root, '[data-role=connection]');
    if (c) c.textContent = text;
  }
}

// Text that is already on screen is not written again: every write re-lays out the page.
function setText(node, text, html = false) {
  if (node.shownText === text) return;
  node.shownText = text;  // a property, not an attribute: no DOM write for the check
  if (html) node.innerHTML = text; else node.textContent = text;
}

// A setup in a few words, for the question about a link.
function describe(s) {
  return `dataset ${s.data}, hidden ${s.hidden.join('×')}, p ${s.p.join(', ')}`;
}

function fmt(v) { return v === null || v === undefined ? '–' : v.toFixed(3); }
