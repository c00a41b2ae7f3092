// The live playground: wires the settings, its run on the tab's socket and the panels
// together. Its concerns live beside it: playground_frames.js (frames taken and drawn),
// playground_controls.js (run controls, hover, keys), playground_messages.js (a link opened
// in the tab; notices and errors). The page opens at a gentle speed (state.js, PAGE_DEFAULTS).
import { tabConnection } from './connection.js';
import { Run } from './run.js';
import { Controls } from './controls.js';
import { fromHash, toHash, BY_KEY } from './state.js';
import { networkLegend } from './captions.js';
import { NetworkView } from './views/network.js';
import { BoundaryView } from './views/boundary.js';
import { ImagesView } from './views/images.js';
import { FunctionView } from './views/function.js';
import { LossView } from './views/losses.js';
import { TimelineView } from './views/timeline.js';
import { Exporter } from './export.js';
import { CustomEditor } from './custom_data.js';
import { plotlyReady, withPlotly } from './plotly_ready.js';
import { take, takeFrame, paint, setText } from './playground_frames.js';
import { bindTransport, bindHover, bindKeys, showSpeed, fillWatch, keepReplay, replay } from './playground_controls.js';
import { followLink, notice, serverErrors, clearErrors } from './playground_messages.js';

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
    this.conn = tabConnection();
    // the page's one run; after a reconnect it is configured again as the page would
    this.run = new Run(this.conn, { id: 'main', restore: () => this.configure() });
    this.controls = new Controls($(root, '[data-role=settings]'), this.state, this.run,
      { locked: options.locked || new Set(), hidden: options.hiddenGroups || new Set() });
    this.controls.addEventListener('change', e => this.changed(e.detail));
    this.network = new NetworkView($(root, '[data-role=network]'));
    this.boundary = new BoundaryView($(root, '[data-role=plane]'), $(root, '[data-role=plane-caption]'),
      $(root, '[data-role=plane-title]'));
    this.images = new ImagesView($(root, '[data-role=plane]'), $(root, '[data-role=plane-caption]'));
    this.function = new FunctionView($(root, '[data-role=plane]'), $(root, '[data-role=plane-caption]'),
      $(root, '[data-role=plane-title]'));
    this.losses = new LossView($(root, '[data-role=losses]'));
    this.timeline = new TimelineView(root, step => replay(this, step));
    bindTransport(this);
    bindKeys(this);
    this.exporter = new Exporter(this);
    this.custom = new CustomEditor(this);
    if (problems.length) this.notice(`From the link: ${problems.join('; ')}.`, 'warn');
    this.run.addEventListener('configured', e => this.shaped(e.detail));
    this.run.addEventListener('frame', e => take(this, e.detail));
    this.run.addEventListener('status', e => this.status(e.detail));
    this.run.addEventListener('refused', e => this.serverErrors(e.detail));
    this.conn.addEventListener('connected', () => this.connection('connected'));
    this.conn.addEventListener('disconnected', e => { this.connection(`disconnected (${e.detail}); reconnecting…`); this.setPlaying(false); });
    this.conn.addEventListener('broadcast', e => this.notice(`Server: ${e.detail.message}`, 'warn'));
    this.conn.ready().then(() => { this.connection('connected'); this.configure(); });
    const loop = () => { paint(this); requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
    // for the browser tests and benchmarks: once Plotly is there (every panel can draw)
    withPlotly(() => { window.__dp = this; }).catch(() => this.notice('The charts did not load (plotly.js): reload the page.', 'error'));
  }

  // ---- settings -----------------------------------------------------------------------
  // A setting changed (the controls' 'change' event, or a custom set's points): a live one
  // the controls have sent to the run already, and the caption follows the next frame,
  // which shows it.
  changed(key) {
    this.writeHash();
    this.dispatchEvent(new CustomEvent('changed', { detail: key }));
    if (key === 'speed') showSpeed(this);
    const f = BY_KEY[key];
    if (key === 'view') {
      this.boundaryDirty = true;  // redraw from the last frame now; the server sends only this view
      if (this.info) keepReplay(this, this.run.set({ param: 'view', value: this.state.view }));
      return;
    }
    if (!this.info || (f && f.live)) return;
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

  followLink(hash) { followLink(this, hash); }

  // ---- messages (playground_messages.js) ---------------------------------------------------
  notice(text, kind = 'info') { notice(this, text, kind); }
  serverErrors(ack) { serverErrors(this, ack); }

  async configure() {
    if (this.state.data === 'custom' && !window.Plotly) await plotlyReady();  // its points are a Plotly plot
    if (!this.custom.allowConfigure()) return null;  // a custom set that cannot train yet
    const wasPlaying = this.playing;
    const ack = await this.run.configure(this.state);
    if (!ack) return null;
    if (!ack.ok) { this.serverErrors(ack); return ack; }
    this.setPlaying(false);
    if (wasPlaying || this.options.autoplay) await this.play();
    this.dispatchEvent(new CustomEvent('configured', { detail: ack }));
    return ack;
  }

  // The run has its new shape (its first frame follows): the panels are set up for it.
  shaped(ack) {
    clearErrors(this);
    this.info = ack;
    this.dropCounts = null;
    this.dropKey = null;
    this.setupPanels(ack);
  }

  // The network's picture at once; the panels Plotly draws (the network's axes, names and
  // hover, the plane, the losses, the timeline) once Plotly has arrived. The frames that
  // come meanwhile are shown by the network, and kept for the other panels.
  setupPanels(info) {
    const digits = info.task === 'digits', classes = info.task === 'binary';
    const model = info.config.model;
    this.network.setup(info.sizes, model);
    this.early = [];
    this.plotted = false;
    if (window.Plotly) this.setupPlots(info);
    else {
      this.plane = null;
      plotlyReady().then(() => { if (this.info === info) this.setupPlots(info); }, () => {});
    }
    // no boundary, neuron maps or two classes for the digits or a regression: their
    // controls and key go
    for (const role of ['plane-key', 'view-field', 'watch-field']) {
      const node = $(this.root, `[data-role=${role}]`);
      if (node) node.hidden = !classes;
    }
    const title = $(this.root, '[data-role=plane-title]');
    if (title) {
      title.textContent = classes ? 'Decision boundary' : !digits ? 'Prediction and MC-dropout band'
        : model.kind === 'cnn' ? 'Input and feature maps' : 'Input';
    }
    const legend = $(this.root, '[data-role=legend]');
    if (legend) legend.innerHTML = networkLegend(model);
    fillWatch(this, info);
    this.rate = null;
    this.rateWindow = [];
    const dev = $(this.root, '[data-role=device]');
    if (dev) setText(dev, `${info.device} · ${info.params.toLocaleString('en')} parameters`);
  }

  setupPlots(info) {
    this.network.plot();
    bindHover(this);
    this.plane = { binary: this.boundary, digits: this.images, regression: this.function }[info.task];
    this.plane.setup(info);
    this.losses.setup([{ name: '' }], { accuracy: info.task !== 'regression' });
    this.timeline.setup(info);
    this.plotted = true;
    const early = this.early;
    this.early = [];
    for (const frame of early) takeFrame(this, frame, false);
    this.boundaryDirty = true;
    if (!this.playing) this.timeline.visible(true);
  }

  // until: the server pauses the run at exactly that step (embeds compared on one page)
  async play(until) {
    this.replayAfterLive = null;
    const ack = await this.run.play(until);
    if (!ack.ok) this.serverErrors(ack); else this.setPlaying(true);
    return ack;
  }

  async pause() {
    const ack = await this.run.pause();
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
        ack = await this.run.train(n);
        if (!ack.ok) this.serverErrors(ack);
      }
      return ack;
    })();
    try { return await this.stepping; } finally { this.stepping = null; }
  }

  async reset() {
    const ack = await this.run.reset();
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
  connection(text) {
    const c = $(this.root, '[data-role=connection]');
    if (c) c.textContent = text;
  }
}
