// The settings form, built from the FIELDS table (ranges and choices from the server's
// schema). Every control is a native element (keyboard-usable, labelled); the hidden
// layers get a small editor of their own with a drop-probability slider per layer.
// A live setting goes from here straight to the run (run.js `set`); every change is then
// told as a 'change' event (detail: its key), which the page listens for (URL, captions,
// a new run for a setting that needs one).
import { FIELDS, BY_KEY, bounds, check, fitData, fitP } from './state.js';

const GROUPS = { run: 'Run', data: 'Data', model: 'Model', train: 'Training' };
const fmt = v => (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en') : String(+Number(v).toPrecision(3)));

// the top of the range (the server's DP_MAX_SPEED) means no pacing at all
export function speedLabel(v) { return v >= BY_KEY.speed.max ? 'as fast as possible' : `${fmt(v)} ${v === 1 ? 'step' : 'steps'}/s`; }

// A number field's step: the row's step while the value lies on its grid (min + k·step),
// else the finest the field takes, so that a value from a link (60 points, step 50) is
// valid in the form and ↑ / ↓ move from it by one unit instead of jumping to the grid.
export function stepFor(f, value) {
  if (!f.step) return 'any';
  const k = (Number(value) - f.min) / f.step;
  if (Number.isFinite(k) && Math.abs(k - Math.round(k)) < 1e-9) return f.step;
  return f.type === 'int' ? 1 : 'any';
}

export class Controls extends EventTarget {
  constructor(form, state, run, { locked = new Set(), hidden = new Set() } = {}) {
    super();
    this.form = form; this.state = state; this.run = run;
    this.locked = locked; this.hiddenGroups = hidden;
    this.inputs = {};
    this.sentP = null;  // the p of each layer the run trains with: a p change sends what differs
    run.addEventListener('configured', e => { this.sentP = [...e.detail.config.model.p]; });
    form.addEventListener('submit', e => e.preventDefault());
    this.build();
  }

  build() {
    this.form.textContent = '';
    for (const [group, title] of Object.entries(GROUPS)) {
      if (group === 'run' || this.hiddenGroups.has(group)) continue;
      const fs = el('fieldset', { className: `group group-${group}` });
      fs.append(el('legend', { textContent: title }));
      for (const f of FIELDS.filter(x => x.group === group)) {
        if (f.key === 'p') continue;  // inside the layers editor
        fs.append(f.key === 'hidden' ? this.layersEditor() : this.field(f));
      }
      this.form.append(fs);
    }
  }

  field(f) {
    const id = `f-${f.key}`;
    const wrap = el('div', { className: 'field' });
    wrap.append(el('label', { htmlFor: id, textContent: f.label }));
    let input;
    if (f.type === 'select') {
      input = el('select', { id, name: f.key });
      fillOptions(input, f.optionsFor ? f.optionsFor(this.state) : f.options);
    } else {
      input = el('input', { id, name: f.key, type: 'number', min: f.min, max: f.max, step: stepFor(f, this.state[f.key]), inputMode: 'decimal' });
    }
    input.value = this.state[f.key];
    input.disabled = this.locked.has(f.key);
    input.addEventListener('change', () => this.set(f.key, input.value));
    this.inputs[f.key] = input;
    if (f.applies) (this.conditional ||= []).push([wrap, f.applies]);
    wrap.hidden = f.applies ? !f.applies(this.state) : false;
    wrap.append(input, el('span', { className: 'field-error', id: `${id}-err`, role: 'status' }));
    input.setAttribute('aria-describedby', `${id}-err`);
    return wrap;
  }

  layersEditor() {
    const box = el('div', { className: 'layers', id: 'layers' });
    const render = () => {
      box.textContent = '';
      const head = el('div', { className: 'layers-head' });
      head.append(el('span', { textContent: `${this.state.hidden.length} hidden layer${this.state.hidden.length > 1 ? 's' : ''}` }));
      const add = el('button', { type: 'button', textContent: '+ layer', className: 'small', id: 'layer-add' });
      const del = el('button', { type: 'button', textContent: '− layer', className: 'small', id: 'layer-remove' });
      const layers = bounds(BY_KEY.hidden, this.state), p = BY_KEY.p;
      add.disabled = this.state.hidden.length >= layers.maxLen || this.locked.has('hidden');
      del.disabled = this.state.hidden.length <= layers.minLen || this.locked.has('hidden');
      add.addEventListener('click', () => { const h = this.state.hidden; this.set('hidden', [...h, h[h.length - 1]]); });
      del.addEventListener('click', () => this.set('hidden', this.state.hidden.slice(0, -1)));
      head.append(add, del);
      box.append(head);
      this.state.hidden.forEach((w, l) => {
        const row = el('div', { className: 'layer-row' });
        const wid = el('input', { type: 'number', min: layers.min, max: layers.max, step: 1, value: w, id: `f-hidden-${l}`, className: 'width' });
        wid.disabled = this.locked.has('hidden');
        wid.addEventListener('change', () => { const h = this.state.hidden.slice(); h[l] = Number(wid.value); this.set('hidden', h); });
        const slider = el('input', { type: 'range', min: p.min, max: p.max, step: p.step, value: this.state.p[l], id: `f-p-${l}` });
        slider.disabled = this.locked.has('p');
        const out = el('output', { htmlFor: `f-p-${l}`, textContent: this.state.p[l].toFixed(2) });
        slider.addEventListener('input', () => { out.textContent = Number(slider.value).toFixed(2); });
        slider.addEventListener('change', () => this.setP(l, Number(slider.value)));
        // a CNN layer's width is its number of channels: the label says which
        const unit = this.state.kind === 'cnn' ? 'channels' : 'width';
        // its accessible name says the layer ("p (drop), layer 2"); on screen the row does
        slider.setAttribute('aria-label', `p (drop), layer ${l + 1}`);
        row.append(el('label', { htmlFor: `f-hidden-${l}`, textContent: `Layer ${l + 1} ${unit}` }), wid,
          el('label', { htmlFor: `f-p-${l}`, textContent: 'p (drop)' }), slider, out);
        box.append(row);
      });
      box.append(el('span', { className: 'field-error', id: 'f-hidden-err', role: 'status' }));
    };
    this.renderLayers = render;
    render();
    return box;
  }

  // Change one setting (from a control, a lesson, or the host page).
  set(key, raw) {
    const f = BY_KEY[key];
    const [value, problem] = check(f, raw, this.state);
    this.showError(key, problem);
    if (problem) return false;
    this.state[key] = value;
    if (key === 'hidden') fitP(this.state);
    if (key === 'task') fitData(this.state);
    if (f.live) this.sendLive(key);
    this.changed(key);
    return true;
  }

  // One layer's p, from its slider: the slider's range is the field's (nothing to check),
  // and the run gets this one layer's change.
  setP(layer, value) {
    this.state.p = this.state.p.map((p, l) => (l === layer ? value : p));
    this.showError('p', null);
    this.sendLive('p');
    this.changed('p');
  }

  // A live setting, as it now is, to the run (it keeps its weights); only to a configured
  // run: until then its configure carries the state. p: a `set` per layer that differs.
  sendLive(key) {
    if (!this.run.info) return;
    if (key !== 'p') { this.run.set({ param: key, value: this.state[key] }); return; }
    this.state.p.forEach((value, layer) => { if (this.sentP[layer] !== value) this.run.set({ param: 'p', layer, value }); });
    this.sentP = [...this.state.p];
  }

  changed(key) {
    this.sync();
    this.dispatchEvent(new CustomEvent('change', { detail: key }));
  }

  sync() {
    for (const [wrap, applies] of this.conditional || []) wrap.hidden = !applies(this.state);
    for (const [k, input] of Object.entries(this.inputs)) {
      const f = BY_KEY[k];
      if (f.optionsFor) fillOptions(input, f.optionsFor(this.state));
      if (input.type === 'number') input.step = stepFor(BY_KEY[k], this.state[k]);
      if (document.activeElement !== input) input.value = this.state[k];
    }
    if (this.renderLayers) {
      const focused = document.activeElement && document.activeElement.id;
      this.renderLayers();
      if (focused) { const again = document.getElementById(focused); if (again) again.focus(); }
    }
  }

  showError(key, message) {
    const input = this.inputs[key] || document.getElementById(`f-${key}-0`);
    const err = document.getElementById(`f-${key === 'p' ? 'hidden' : key}-err`);
    if (input) input.setAttribute('aria-invalid', message ? 'true' : 'false');
    if (err) err.textContent = message || '';
  }
}

// A select's choices, written only when they differ from those it shows.
function fillOptions(select, options) {
  if ([...select.options].map(o => o.value).join() === options.join()) return;
  select.textContent = '';
  for (const o of options) select.append(el('option', { value: o, textContent: o.replace(/_/g, ' ') }));
}

export function el(tag, props = {}) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'htmlFor') node.htmlFor = v; else if (k in node) node[k] = v; else node.setAttribute(k, v);
  }
  return node;
}
