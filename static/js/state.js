// All user state in one table. Each row: where it lives in the run config (path) or which
// live change sets it (change), its control and label. Ranges, choices and defaults are
// not written here: they come from the server's schema (app/schema.py, this server's
// limits applied), so the form, its checks and the link parsing follow the server.
// The table drives the controls, the URL hash and the config sent to the server, so a
// link reproduces a setup exactly.

import { decodePoints, encodePoints, fitsLink } from './custom_data.js';
import { SCHEMA } from './schema.js';

export { SCHEMA };
export const GRID = SCHEMA.grid;
export const PRESETS = SCHEMA.presets;
const GENERATED = s => s.data !== 'digits' && s.data !== 'custom';  // sets drawn from n_points and noise

const REGRESSION = s => s.task === 'regression';

const ROWS = [
  // group, key (in the URL), path (in the config) or change (a live change), label, step;
  // `applies`: the control shows only when it means something (the digits set is fixed)
  { group: 'data', key: 'task', path: 'data.task', label: 'Task' },
  { group: 'data', key: 'data', path: 'data.dataset', label: 'Dataset', optionsFor: s => setsOf(s.task) },
  { group: 'data', key: 'points', path: 'data.n_points', label: 'Points', step: 50, applies: GENERATED },
  { group: 'data', key: 'noise', path: 'data.noise', label: 'Noise', step: 0.05, applies: GENERATED },
  { group: 'data', key: 'trainfrac', path: 'data.train_fraction', label: 'Train fraction', step: 0.1 },
  { group: 'data', key: 'seed', path: 'data.seed', label: 'Seed', step: 1 },
  { group: 'model', key: 'kind', path: 'model.kind', label: 'Network' },
  { group: 'model', key: 'hidden', path: 'model.hidden', label: 'Hidden widths' },
  { group: 'model', key: 'p', path: 'model.p', label: 'Drop probability p', step: 0.05, live: true },
  { group: 'model', key: 'act', path: 'model.activation', label: 'Activation' },
  { group: 'model', key: 'dk', path: 'model.dropout_kind', label: 'Dropout kind' },
  { group: 'model', key: 'place', path: 'model.placement', label: 'Dropout placement' },
  { group: 'model', key: 'bn', path: 'model.batchnorm', label: 'BatchNorm' },
  { group: 'train', key: 'opt', path: 'train.optimizer', label: 'Optimizer' },
  { group: 'train', key: 'lr', path: 'train.lr', label: 'Learning rate', step: 0.001, live: true },
  { group: 'train', key: 'wd', path: 'train.weight_decay', label: 'Weight decay', step: 0.0001 },
  { group: 'train', key: 'batch', path: 'train.batch_size', label: 'Batch size', step: 1 },
  { group: 'train', key: 'evalk', path: 'train.eval_every', label: 'Test every k steps (0 = auto)', step: 1 },
  { group: 'train', key: 'device', path: 'train.device', label: 'Device' },
  { group: 'train', key: 'passes', path: 'train.mc_passes', label: 'MC passes T (the band)', step: 1, applies: REGRESSION },
  // view state: not part of the run config, but part of the link
  { group: 'run', key: 'speed', change: 'speed', label: 'Speed (steps/s)', type: 'speed', live: true },
  { group: 'run', key: 'mode', change: 'mode', label: 'Mode', live: true },
  { group: 'run', key: 'view', change: 'view', label: 'Boundary of' },
];

const deref = (root, node) => (node.$ref ? node.$ref.split('/').slice(1).reduce((o, k) => o[k], root) : node);

function schemaOf(row) {
  if (row.change) {
    const def = Object.values(SCHEMA.live.$defs).find(d => d.properties.param.const === row.change);
    return def.properties.value;
  }
  const [part, name] = row.path.split('.');
  const config = SCHEMA.config;
  return deref(config, config.properties[part]).properties[name];
}

// A JSON Schema property -> the control's kind, range or choices, and default.
function fromSchema(prop) {
  if (prop.enum) return { type: 'select', options: prop.enum, def: prop.default };
  const num = s => ({ min: s.minimum, max: s.maximum });
  if (prop.type === 'array') {
    const list = s => ({ ...num(s.items), minLen: s.minItems, maxLen: s.maxItems });
    const cnn = prop['x-cnn'];
    return { type: prop.items.type === 'integer' ? 'intlist' : 'floatlist', ...list(prop), def: prop.default,
      cnn: cnn ? list(cnn) : undefined };
  }
  return { type: prop.type === 'integer' ? 'int' : 'float', ...num(prop), def: prop.default };
}

export const FIELDS = ROWS.map(row => ({ ...fromSchema(schemaOf(row)), ...row }));
export const DATASETS = FIELDS.find(f => f.key === 'data').options;

// The data sets of each task, as the schema's dataset property lists them (x-tasks:
// {task: [sets]}).
const TASK_SETS = schemaOf({ path: 'data.dataset' })['x-tasks'];
export const setsOf = task => TASK_SETS[task];

// Keep the data set one of the task's; -> a problem when it was not (null when it was).
export function fitData(state) {
  const sets = setsOf(state.task);
  if (sets.includes(state.data)) return null;
  const was = state.data;
  state.data = sets[0];
  return `Dataset ${was} is not one of task ${state.task}'s (${sets.join(', ')}); using ${state.data}`;
}

export const BY_KEY = Object.fromEntries(FIELDS.map(f => [f.key, f]));

// The playground page opens at a speed a learner can follow: 30 steps a second, the
// server's frame rate, so each step gets a frame of its own. The schema's default (the
// server's top speed, DP_MAX_SPEED: as fast as it goes) stays the default of embeds and
// lessons, and is one click away on the page ("Full speed"). A link's speed= wins.
// This is the one place where the page's defaults differ from the server's.
export const GENTLE_SPEED = Math.min(30, BY_KEY.speed.max);
export const PAGE_DEFAULTS = { speed: GENTLE_SPEED };

// A field's default: the server's, unless `page` (a table like PAGE_DEFAULTS) says otherwise.
export const defaultOf = (field, page = {}) => (Object.hasOwn(page, field.key) ? page[field.key] : field.def);

// A field's bounds; a CNN's hidden layers (conv blocks of channels) have their own.
export function bounds(field, state = null) {
  return field.cnn && state && state.kind === 'cnn' ? { ...field, ...field.cnn } : field;
}

// One value, checked against its row (and, for the layers, the network kind in state).
// Returns [value, problem or null].
// An empty value is never a number: Number('') would be 0, so it is refused by name.
export function check(field, raw, state = null) {
  const b = bounds(field, state);
  const blank = v => typeof v !== 'number' && String(v ?? '').trim() === '';
  const num = v => (blank(v) ? NaN : typeof v === 'number' ? v : Number(String(v).trim()));
  const inRange = v => Number.isFinite(v) && v >= b.min && v <= b.max;
  const got = blank(raw) ? 'an empty value' : raw;
  switch (field.type) {
    case 'select':
      return field.options.includes(raw) ? [raw, null] : [field.def, `${field.label} has to be one of ${field.options.join(', ')}, but got ${got}`];
    case 'int': case 'float': case 'speed': {
      const v = num(raw);
      const ok = inRange(v) && (field.type !== 'int' || Number.isInteger(v));
      return ok ? [v, null] : [field.def, `${field.label} has to be between ${b.min} and ${b.max}, but got ${got}`];
    }
    case 'intlist': case 'floatlist': {
      const parts = Array.isArray(raw) ? raw : String(raw).split(',');
      const vals = parts.map(num);
      const lenOk = b.minLen === undefined || (vals.length >= b.minLen && vals.length <= b.maxLen);
      const ok = lenOk && vals.every(v => inRange(v) && (field.type !== 'intlist' || Number.isInteger(v)));
      const count = b.minLen === undefined ? 'a list of values' : `${b.minLen} to ${b.maxLen} values`;
      return ok ? [vals, null] : [field.def.slice(), `${field.label} has to be ${count} between ${b.min} and ${b.max}, but got ${got}`];
    }
  }
  return [field.def, `unknown field ${field.key}`];
}

export function defaults(page = {}) {
  const state = Object.fromEntries(FIELDS.map(f => { const d = defaultOf(f, page); return [f.key, Array.isArray(d) ? d.slice() : d]; }));
  state.customPoints = [];  // dataset 'custom': [x, y, label] rows (custom_data.js); 'pts' in the URL
  return state;
}

// Keep p the same length as hidden (a p per hidden layer).
export function fitP(state) {
  const n = state.hidden.length;
  const p = state.p.slice(0, n);
  while (p.length < n) p.push(p.length ? p[p.length - 1] : BY_KEY.p.def[0]);
  state.p = p;
  return state;
}

const shownDefault = d => (Array.isArray(d) ? d.join(',') : String(d));

// URL hash -> state. Anything missing or invalid takes its default (page: PAGE_DEFAULTS
// on the playground page); problems are returned so the page can say what it ignored.
export function fromHash(hash, page = {}) {
  const state = defaults(page);
  const problems = [];
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  // the network kind first: the layers are checked against its limits
  const kindFirst = [...params].sort(([a], [b]) => (b === 'kind') - (a === 'kind'));
  for (const [key, raw] of kindFirst) {
    const field = BY_KEY[key];
    if (key === 'pts') {
      const { points, problem } = decodePoints(raw);
      state.customPoints = points;
      if (problem) problems.push(problem);
      continue;
    }
    if (!field) { if (key !== 'lesson') problems.push(`unknown setting ${key} ignored`); continue; }
    const [value, problem] = check(field, raw, state);
    const def = defaultOf(field, page);
    state[key] = problem ? (Array.isArray(def) ? def.slice() : def) : value;
    if (problem) problems.push(`${problem} (link setting ${key}; using the default, ${shownDefault(def)})`);
  }
  if (params.get('p') && state.p.length !== state.hidden.length) problems.push('p needs one value per hidden layer; adjusted');
  fitP(state);
  const unfit = fitData(state);
  if (unfit && params.has('data')) problems.push(`${unfit} (link setting data)`);
  return { state, problems };
}

// State -> URL hash: only what differs from the defaults (the same `page` table as fromHash).
export function toHash(state, extra = {}, page = {}) {
  const params = new URLSearchParams();
  for (const f of FIELDS) {
    const v = state[f.key], def = defaultOf(f, page);
    const same = Array.isArray(v) ? String(v) === String(def) : v === def;
    if (!same) params.set(f.key, Array.isArray(v) ? v.join(',') : String(v));
  }
  // a custom set rides along while a link can hold it (custom_data.js says when not)
  if (state.data === 'custom' && state.customPoints && state.customPoints.length && fitsLink(state.customPoints)) {
    params.set('pts', encodePoints(state.customPoints));
  }
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  return '#' + params.toString().replace(/%2C/g, ',');
}

// State -> the run config the server validates.
export function toConfig(state) {
  const config = { data: {}, model: {}, train: {} };
  for (const f of FIELDS) {
    if (!f.path) continue;
    const [part, name] = f.path.split('.');
    config[part][name] = state[f.key];
  }
  if (state.data === 'custom') config.data.points = state.customPoints;
  return config;
}

// Which config field a server error names -> the URL key of its control.
export function keyOfPath(path) {
  const base = path.split('.').slice(0, 2).join('.');
  const f = FIELDS.find(x => x.path === base);
  return f ? f.key : null;
}

// The opposite of toConfig: a run config (a server preset, say) -> state. Fields the
// config leaves out keep their defaults.
export function fromConfig(config) {
  const state = defaults();
  for (const f of FIELDS) {
    if (!f.path) continue;
    const [part, name] = f.path.split('.');
    const v = config[part] && config[part][name];
    if (v !== undefined) state[f.key] = Array.isArray(v) ? v.slice() : v;
  }
  fitData(state);
  return fitP(state);
}

// A server preset (SCHEMA.presets) as a playground link hash.
export function presetHash(name) {
  return toHash(fromConfig(PRESETS[name].config));
}
