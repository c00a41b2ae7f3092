// All user state in one table. Each row: where it lives in the run config (path), its
// control, its range and default. The table drives the controls, the URL hash and the
// config sent to the server, so a link reproduces a setup exactly.

import { decodePoints, encodePoints, fitsLink } from './custom_data.js';

export const DATASETS = ['circle', 'xor', 'gauss', 'spiral', 'moons', 'digits', 'custom'];
const GENERATED = s => s.data !== 'digits' && s.data !== 'custom';  // sets drawn from n_points and noise

export const FIELDS = [
  // group, key (in the URL), path (in the config), label, type, range/options, default
  { group: 'data', key: 'data', path: 'data.dataset', label: 'Dataset', type: 'select', options: DATASETS, def: 'circle' },
  // `applies`: the control shows only when it means something (the digits set is fixed)
  { group: 'data', key: 'points', path: 'data.n_points', label: 'Points', type: 'int', min: 50, max: 2000, step: 50, def: 500, applies: GENERATED },
  { group: 'data', key: 'noise', path: 'data.noise', label: 'Noise', type: 'float', min: 0, max: 0.5, step: 0.05, def: 0.1, applies: GENERATED },
  { group: 'data', key: 'trainfrac', path: 'data.train_fraction', label: 'Train fraction', type: 'float', min: 0.1, max: 0.9, step: 0.1, def: 0.5 },
  { group: 'data', key: 'seed', path: 'data.seed', label: 'Seed', type: 'int', min: 0, max: 2147483647, step: 1, def: 0 },
  { group: 'model', key: 'kind', path: 'model.kind', label: 'Network', type: 'select', options: ['mlp', 'cnn'], def: 'mlp' },
  { group: 'model', key: 'hidden', path: 'model.hidden', label: 'Hidden widths', type: 'intlist', min: 1, max: 64, minLen: 1, maxLen: 6, def: [8, 8] },
  { group: 'model', key: 'p', path: 'model.p', label: 'Drop probability p', type: 'floatlist', min: 0, max: 1, step: 0.05, def: [0.3, 0.3], live: true },
  { group: 'model', key: 'act', path: 'model.activation', label: 'Activation', type: 'select', options: ['relu', 'tanh', 'sigmoid', 'gelu', 'selu', 'linear'], def: 'relu' },
  { group: 'model', key: 'dk', path: 'model.dropout_kind', label: 'Dropout kind', type: 'select', options: ['dropout', 'dropout2d', 'alpha'], def: 'dropout' },
  { group: 'model', key: 'place', path: 'model.placement', label: 'Dropout placement', type: 'select', options: ['after_activation', 'before_activation'], def: 'after_activation' },
  { group: 'model', key: 'bn', path: 'model.batchnorm', label: 'BatchNorm', type: 'select', options: ['none', 'before_dropout', 'after_dropout'], def: 'none' },
  { group: 'train', key: 'opt', path: 'train.optimizer', label: 'Optimizer', type: 'select', options: ['adam', 'momentum', 'sgd'], def: 'adam' },
  { group: 'train', key: 'lr', path: 'train.lr', label: 'Learning rate', type: 'float', min: 0.00001, max: 10, step: 0.001, def: 0.01, live: true },
  { group: 'train', key: 'wd', path: 'train.weight_decay', label: 'Weight decay', type: 'float', min: 0, max: 1, step: 0.0001, def: 0 },
  { group: 'train', key: 'batch', path: 'train.batch_size', label: 'Batch size', type: 'int', min: 1, max: 2000, step: 1, def: 10 },
  { group: 'train', key: 'evalk', path: 'train.eval_every', label: 'Test every k steps (0 = auto)', type: 'int', min: 0, max: 10000, step: 1, def: 0 },
  { group: 'train', key: 'device', path: 'train.device', label: 'Device', type: 'select', options: ['auto', 'cpu', 'cuda'], def: 'auto' },
  // view state: not part of the run config, but part of the link
  { group: 'run', key: 'speed', label: 'Speed (steps/s)', type: 'speed', min: 1, max: 1000000, def: 1000000, live: true },
  { group: 'run', key: 'mode', label: 'Mode', type: 'select', options: ['train', 'eval'], def: 'train', live: true },
  { group: 'run', key: 'view', label: 'Boundary of', type: 'select', options: ['eval', 'thinned'], def: 'eval' },
];

export const BY_KEY = Object.fromEntries(FIELDS.map(f => [f.key, f]));

// One value, checked against its row. Returns [value, problem or null].
export function check(field, raw) {
  const num = v => (typeof v === 'number' ? v : Number(String(v).trim()));
  const inRange = v => Number.isFinite(v) && v >= field.min && v <= field.max;
  switch (field.type) {
    case 'select':
      return field.options.includes(raw) ? [raw, null] : [field.def, `${field.label} has to be one of ${field.options.join(', ')}, but got ${raw}`];
    case 'int': case 'float': case 'speed': {
      const v = num(raw);
      const ok = inRange(v) && (field.type !== 'int' || Number.isInteger(v));
      return ok ? [v, null] : [field.def, `${field.label} has to be between ${field.min} and ${field.max}, but got ${raw}`];
    }
    case 'intlist': case 'floatlist': {
      const parts = Array.isArray(raw) ? raw : String(raw).split(',');
      const vals = parts.map(num);
      const lenOk = field.minLen === undefined || (vals.length >= field.minLen && vals.length <= field.maxLen);
      const ok = lenOk && vals.every(v => inRange(v) && (field.type !== 'intlist' || Number.isInteger(v)));
      return ok ? [vals, null] : [field.def.slice(), `${field.label} has to be a list of values between ${field.min} and ${field.max}, but got ${raw}`];
    }
  }
  return [field.def, `unknown field ${field.key}`];
}

export function defaults() {
  const state = Object.fromEntries(FIELDS.map(f => [f.key, Array.isArray(f.def) ? f.def.slice() : f.def]));
  state.customPoints = [];  // dataset 'custom': [x, y, label] rows (custom_data.js); 'pts' in the URL
  return state;
}

// Keep p the same length as hidden (a p per hidden layer).
export function fitP(state) {
  const n = state.hidden.length;
  const p = state.p.slice(0, n);
  while (p.length < n) p.push(p.length ? p[p.length - 1] : 0.3);
  state.p = p;
  return state;
}

// URL hash -> state. Anything missing or invalid takes its default; problems are returned
// so the page can say what it ignored.
export function fromHash(hash) {
  const state = defaults();
  const problems = [];
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  for (const [key, raw] of params) {
    const field = BY_KEY[key];
    if (key === 'pts') {
      const { points, problem } = decodePoints(raw);
      state.customPoints = points;
      if (problem) problems.push(problem);
      continue;
    }
    if (!field) { if (key !== 'lesson') problems.push(`unknown setting ${key} ignored`); continue; }
    const [value, problem] = check(field, raw);
    state[key] = value;
    if (problem) problems.push(`${problem} (link setting ${key}; using the default)`);
  }
  if (params.get('p') && state.p.length !== state.hidden.length) problems.push('p needs one value per hidden layer; adjusted');
  fitP(state);
  return { state, problems };
}

export function toHash(state, extra = {}) {
  const params = new URLSearchParams();
  for (const f of FIELDS) {
    const v = state[f.key];
    const same = Array.isArray(v) ? String(v) === String(f.def) : v === f.def;
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
