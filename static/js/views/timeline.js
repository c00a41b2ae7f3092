// The timeline of a paused run: a slider over its last steps (the server keeps 1,000),
// and for the step on show, the shown example's values before and after each dropout
// layer. The mask itself is drawn by the network panel, from the same replayed frame.
import { COLORS, layoutBase } from './theme.js';
import { SCHEMA } from '../schema.js';
import { perNeuron } from './network.js';

const TIMELINE_STEPS = SCHEMA.timeline;  // steps the server keeps per run

const $ = (root, sel) => root.querySelector(sel);

export class TimelineView {
  // request(step): ask the server for that step's frame (the playground sends 'replay')
  constructor(root, request) {
    this.box = $(root, '[data-role=timeline]');
    this.request = request;
    this.latest = 0;        // the run's last step: the right end of the timeline
    this.shown = null;      // the step on show when it is a past one, else null
    this.info = null;
    if (!this.box) return;
    this.slider = $(this.box, '[data-role=timeline-step]');
    this.label = $(this.box, '[data-role=timeline-label]');
    this.plot = $(this.box, '[data-role=timeline-values]');
    this.slider.addEventListener('input', () => this.go(Number(this.slider.value)));
    $(this.box, '[data-role=timeline-latest]').addEventListener('click', () => this.go(this.latest));
  }

  setup(info) {
    this.info = info;
    this.latest = 0;
    this.shown = null;
    this.plotted = false;
  }

  get first() { return Math.max(1, this.latest - TIMELINE_STEPS + 1); }

  // A live frame: the timeline ends at its step (a reset starts it again).
  live(frame) {
    this.latest = frame.header.step;
    this.shown = null;
    this.lastLive = frame;
    if (this.box && !this.box.hidden) this.render(frame);
  }

  // Shown only while paused with at least one step behind it.
  visible(paused) {
    if (!this.box) return;
    const on = paused && this.latest > 0;
    if (this.box.hidden === !on) return;
    this.box.hidden = !on;
    if (on) this.render(this.lastLive);
  }

  // One step back or ahead (the arrow keys), within the timeline.
  move(delta) {
    const at = (this.shown ?? this.latest) + delta;
    if (this.box && !this.box.hidden && at >= this.first && at <= this.latest) this.go(at);
  }

  go(step) {
    this.slider.value = String(step);
    this.request(step);
  }

  // A replayed frame.
  show(frame) {
    this.shown = frame && frame.header.step !== this.latest ? frame.header.step : null;
    this.render(frame);
  }

  render(frame) {
    if (!this.box) return;
    const { first, latest } = this;
    Object.assign(this.slider, { min: String(first), max: String(latest) });
    this.slider.value = String(this.shown ?? latest);
    this.slider.setAttribute('aria-valuetext', `step ${this.shown ?? latest}`);
    const h = frame && frame.header;
    const kept = `${(latest - first + 1).toLocaleString('en')} steps kept (${first.toLocaleString('en')}–${latest.toLocaleString('en')}), ← → one step`;
    if (!h) { this.label.textContent = kept; return; }
    // a live frame's loss is the mean since the previous frame: its own step's only when it covers one
    const own = h.replay || h.steps === 1;
    const loss = h.train_loss === null || h.train_loss === undefined ? '–'
      : own ? h.train_loss.toFixed(4) : `${h.train_loss.toFixed(4)} (mean of the last ${h.steps} steps)`;
    const mode = h.mode === 'train' ? `train mode, p ${h.p.join(', ')}` : 'eval mode: no dropout';
    const which = h.replay ? 'replayed' : 'the latest';
    this.label.textContent = `Step ${h.step.toLocaleString('en')} (${which}) · loss ${loss} · ${mode} · ${kept}`;
    this.drawValues(frame);
  }

  // Per hidden neuron (CNN: per channel, the mean over its pixels): before dropout and
  // after it, as the next layer received them; a dropped one is marked ✕.
  drawValues(frame) {
    if (!this.plot || typeof Plotly === 'undefined' || !this.info) return;
    const { header, arrays } = frame;
    const sizes = this.info.sizes, cnn = this.info.config.model.kind === 'cnn';
    const x = [], pre = [], post = [], marks = [];
    for (let l = 0; l + 2 < sizes.length; l++) {
      const n = sizes[l + 1];
      const before = perUnit(arrays[`pre.${l}`], n), after = perUnit(arrays[`act.${l}`], n);
      const mask = arrays[`mask.${l}`] ? perUnit(arrays[`mask.${l}`], n) : null;
      for (let i = 0; i < n; i++) {
        x.push(`${cnn ? 'c' : 'n'}${l + 1}.${i + 1}`);
        pre.push(before[i]);
        post.push(after[i]);
        marks.push(mask && mask[i] < 0.5 ? '✕' : '');
      }
    }
    const traces = [
      { type: 'bar', name: 'before dropout', x, y: pre, marker: { color: 'rgba(0,0,0,0)', line: { color: COLORS.muted, width: 1 } } },
      { type: 'bar', name: 'after (what the next layer got)', x, y: post, text: marks, textposition: 'outside',
        marker: { color: post.map((_, i) => (marks[i] ? COLORS.dropped : COLORS.pos)) } },
    ];
    Plotly.react(this.plot, traces, layoutBase({
      barmode: 'group', bargap: 0.15, margin: { l: 40, r: 8, t: 4, b: 36 }, height: 170,
      xaxis: { tickfont: { size: 9 }, automargin: true },
      yaxis: { title: { text: cnn ? 'channel mean' : 'value', font: { size: 10 } }, zeroline: true },
      legend: { orientation: 'h', y: 1.15, font: { size: 10 } },
      title: { text: '' },
    }), { displayModeBar: false, responsive: true });
    this.plotted = true;
    this.values = { step: header.step, pre, post };  // for the browser tests
  }
}

function perUnit(arr, n) {
  return arr ? Array.from(perNeuron(arr.data, n), Number) : new Array(n).fill(0);
}
