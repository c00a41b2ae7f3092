// A visitor's own set (dataset 'custom'): the editor on the boundary panel (a regression's:
// the function panel), CSV in and out, and the compact form the set takes in the URL hash.
//
// Points are [x, y, label] with x, y inside the plane and label 0 or 1; a regression's are
// [x, y], y the target (so a set's rows say its task). Coordinates are
// kept to 2 decimals everywhere (the editor, the link, the CSV download, the config sent),
// so a link brings back exactly the set that trained. The server checks every point again
// (model_server/config/); the rules here only spare a round trip and say it sooner.
import { download } from './export.js';
import { SCHEMA } from './schema.js';

export const PLANE = SCHEMA.plane;
export const LIMITS = { min: SCHEMA.custom_points[0], max: SCHEMA.custom_points[1] };
const SCALE = 100;                                  // 2 decimals
const LEVELS = (PLANE[1] - PLANE[0]) * SCALE;       // 300: a coordinate is an integer 0..300
const BITS = 9;                                     // enough for 0..300
const POINT_BITS = 2 * BITS + 1;                    // x, y, label (a regression's: x, y)
// A link carries the set in at most this many characters (about 630 points): links
// much longer than 2,000 characters get cut by mail and chat programs.
export const LINK_CHARS = 2000;
export const LINK_POINTS = Math.floor(((LINK_CHARS - 1) * 6) / POINT_BITS);
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';  // base64url
const VERSION = '1', VERSION_XY = '2';              // the first character: [x, y, label] or [x, y] rows
const ERASE_RADIUS = 0.25;                          // plane units: an eraser click this close removes

export const round2 = v => Math.round(v * SCALE) / SCALE;
const inPlane = v => Number.isFinite(v) && v >= PLANE[0] && v <= PLANE[1];

// ---- the link form: VERSION, then 19 bits per point (x, y as 0..300, label), base64url;
// VERSION_XY, then 18 bits per point (x, y) ----
export const isXY = points => points.length > 0 && points[0].length === 2;
export function encodePoints(points) {
  const xy = isXY(points);
  let out = xy ? VERSION_XY : VERSION, acc = 0, n = 0;
  const put = (v, bits) => {
    for (let b = bits - 1; b >= 0; b--) {
      acc = (acc << 1) | ((v >> b) & 1);
      if (++n === 6) { out += ALPHABET[acc]; acc = 0; n = 0; }
    }
  };
  const q = v => Math.min(LEVELS, Math.max(0, Math.round((v - PLANE[0]) * SCALE)));
  for (const [x, y, label] of points) { put(q(x), BITS); put(q(y), BITS); if (!xy) put(label ? 1 : 0, 1); }
  if (n) out += ALPHABET[acc << (6 - n)];
  return out;
}

// -> { points, problem }: problem names what is wrong with a damaged link (points: [])
export function decodePoints(text) {
  const bad = why => ({ points: [], problem: `the link's points could not be read (${why})` });
  const xy = text.startsWith(VERSION_XY), width = xy ? POINT_BITS - 1 : POINT_BITS;
  if (!xy && !text.startsWith(VERSION)) return bad(`unknown format '${text.slice(0, 1)}'`);
  const bits = [];
  for (const ch of text.slice(1)) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return bad(`character '${ch}'`);
    for (let b = 5; b >= 0; b--) bits.push((v >> b) & 1);
  }
  // the last character's spare bits (under 6) are never a whole point
  const n = Math.floor(bits.length / width);
  if (n > LIMITS.max) return bad(`${n} points, at most ${LIMITS.max}`);
  let pos = 0;
  const take = k => { let v = 0; for (let i = 0; i < k; i++) v = (v << 1) | bits[pos++]; return v; };
  const points = [];
  for (let i = 0; i < n; i++) {
    const qx = take(BITS), qy = take(BITS), label = xy ? null : take(1);
    if (qx > LEVELS || qy > LEVELS) return bad(`point ${i + 1} lies outside the plane`);
    const at = [round2(PLANE[0] + qx / SCALE), round2(PLANE[0] + qy / SCALE)];
    points.push(xy ? at : [...at, label]);
  }
  return { points, problem: null };
}

// The link holds the set only while it is small enough.
export const fitsLink = points => encodePoints(points).length <= LINK_CHARS;

// ---- CSV ----------------------------------------------------------------------------------
export function toCSV(points) {
  return (isXY(points) ? 'x,y\n' : 'x,y,label\n') + points.map(p => p.join(',')).join('\n') + '\n';
}

// x,y,label per line (a regression's: x,y); a first line with no number in it is a header. -> { points } or
// { errors: [{ row, field, message }], more }: every bad row (its first bad field), up to
// CSV_ERRORS of them, row counted from 1 as an editor shows the file; more: how many bad
// rows past those. A set that breaks a rule as a whole: one error with row null.
export const CSV_ERRORS = 10;
export function parseCSV(text, task = 'classification') {
  const xy = task === 'regression', want = xy ? 'x,y (2 fields)' : 'x,y,label (3 fields)';
  const lines = String(text).split(/\r\n|\n|\r/);
  const points = [], errors = [];
  let more = 0, tooMany = 0;
  const isNum = s => s !== '' && Number.isFinite(Number(s));
  const fail = (row, field, message) => { if (errors.length < CSV_ERRORS) errors.push({ row, field, message }); else more++; };
  const rowProblem = (cells) => {
    if (cells.length !== (xy ? 2 : 3)) return ['row', `a row has to be ${want}, but got ${cells.length}`];
    const [xs, ys, ls] = cells;
    for (const [name, s] of [['x', xs], ['y', ys]]) {
      if (!isNum(s)) return [name, `${name} has to be a number, but got '${s}'`];
      if (!inPlane(Number(s))) return [name, `${name} has to be between ${PLANE[0]} and ${PLANE[1]}, but got ${s}`];
    }
    if (!xy && (!isNum(ls) || ![0, 1].includes(Number(ls)))) return ['label', `label has to be 0 or 1, but got '${ls}'`];
    return null;
  };
  let seenRow = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const row = i + 1;
    const cells = line.split(',').map(c => c.trim());
    if (!seenRow && !cells.some(isNum)) { seenRow = true; continue; }  // the header
    seenRow = true;
    const bad = rowProblem(cells);
    if (bad) { fail(row, ...bad); continue; }
    if (points.length >= LIMITS.max) { tooMany++; continue; }
    const at = [round2(Number(cells[0])), round2(Number(cells[1]))];
    points.push(xy ? at : [...at, Number(cells[2])]);
  }
  if (tooMany) fail(null, 'points', `a set has at most ${LIMITS.max} points, but the file has ${(LIMITS.max + tooMany).toLocaleString('en')} good rows`);
  if (!errors.length) { const problem = checkSet(points); if (problem) fail(null, 'points', problem); }
  return errors.length ? { errors, more } : { points };
}

// What keeps a set from training, or null (the server's rules: model_server/config/).
export function checkSet(points) {
  const n = points.length;
  if (n < LIMITS.min) return `needs at least ${LIMITS.min} points, but has ${n}`;
  if (n > LIMITS.max) return `has at most ${LIMITS.max} points, but has ${n.toLocaleString('en')}`;
  if (isXY(points)) return null;
  const ones = points.filter(p => p[2] === 1).length;
  if (ones === 0 || ones === n) return `needs points of both classes, but all ${n} are class ${points[0][2]}`;
  return null;
}

// Index of the point nearest (x, y) within radius, or -1.
export function nearest(points, x, y, radius = Infinity) {
  let best = -1, bestD = radius * radius;
  points.forEach(([px, py], i) => {
    const d = (px - x) ** 2 + (py - y) ** 2;
    if (d <= bestD) { best = i; bestD = d; }
  });
  return best;
}

// ---- the editor ------------------------------------------------------------------------------
// Lives on the boundary panel while the dataset is 'custom': a click adds a point of the
// chosen class, Shift- or Alt-click (or a click in eraser mode) removes the nearest one.
// Every change reconfigures the run (a new set is a new run), as any data setting does.
// While the set cannot train (too few points, one class) no run is configured: the plane
// shows just the points and the transport waits.
export class CustomEditor {
  constructor(pg) {
    this.pg = pg;
    const $ = sel => pg.root.querySelector(sel);
    this.box = $('[data-role=custom-editor]');
    if (!this.box) return;
    this.status = $('[data-role=custom-status]');
    this.link = $('[data-role=custom-link]');
    this.error = $('[data-role=custom-error]');
    this.eraser = $('[data-role=custom-erase]');
    this.transport = [...pg.root.querySelectorAll('[data-role=play], [data-role=step], [data-role=reset]')];
    $('[data-role=custom-clear]').addEventListener('click', () => this.edit([], 'Cleared.'));
    $('[data-role=custom-download]').addEventListener('click', () => this.download());
    const file = $('[data-role=custom-file]');
    file.addEventListener('change', async () => {
      if (file.files[0]) await this.upload(file.files[0].name, await file.files[0].text());
      file.value = '';
    });
    // (both panels share one element: only the one drawn there now hears a click)
    for (const view of [pg.boundary, pg.function]) view.onClick((x, y, e) => this.click(x, y, e));
    pg.addEventListener('changed', e => this.settingChanged(e.detail));
    pg.addEventListener('configured', () => { this.blocked = false; this.hint = ''; this.setTransport(true); this.show(); });
    pg.addEventListener('playing', () => { if (this.hint) { this.hint = ''; this.show(); } });
    this.message = '';   // what the last change of the set did ("Loaded 30 points ...")
    this.hint = '';      // a note on one click ("No point near there ..."): gone with the next action
    this.batchNote = '';
    this.wantedBatch = null;  // the batch size the visitor chose, while fitBatch holds it lower
    this.fitting = false;
    this.show();
  }

  get active() { return this.pg.state.data === 'custom'; }
  get regression() { return this.pg.state.task === 'regression'; }
  get points() { return this.pg.state.customPoints; }
  get cls() { return Number(this.pg.root.querySelector('[data-role=custom-class]:checked')?.value ?? 0); }

  click(x, y, e) {
    if (!this.active) return;
    this.hint = '';
    const pts = this.points;
    if (this.eraser.checked || e.shiftKey || e.altKey) {
      const i = nearest(pts, x, y, ERASE_RADIUS);
      if (i < 0) { this.hint = 'No point near there to remove.'; this.show(); return; }
      this.edit(pts.filter((_, j) => j !== i));
      return;
    }
    if (pts.length >= LIMITS.max) { this.hint = `A set holds at most ${LIMITS.max} points.`; this.show(); return; }
    const clamp = v => Math.min(PLANE[1], Math.max(PLANE[0], round2(v)));
    this.edit([...pts, this.regression ? [clamp(x), clamp(y)] : [clamp(x), clamp(y), this.cls]]);
  }

  async upload(name, text) {
    const r = parseCSV(text, this.pg.state.task);
    this.hint = '';
    if (r.errors) {
      const bad = r.errors.filter(e => e.row).length + r.more;
      const head = bad ? `${bad} bad row${bad === 1 ? '' : 's'}: ` : '';
      const each = r.errors.map(e => (e.row ? `row ${e.row}, field ${e.field}: ${e.message}` : `the file: ${e.message}`));
      if (r.more) each.push(`and ${r.more} more bad row${r.more === 1 ? '' : 's'} not listed`);
      this.showError(`${name}: ${head}${each.join('; ')}. The set was not changed.`);
      this.show();
      return r;
    }
    this.edit(r.points, `Loaded ${r.points.length} points from ${name}.`);
    return r;
  }

  download() {
    download(new Blob([toCSV(this.points)], { type: 'text/csv' }), 'dropout-points.csv');
  }

  // Replace the set; the run follows it.
  edit(points, message = '') {
    this.pg.state.customPoints = points;
    this.message = message;
    this.hint = '';
    this.showError('');
    this.fitBatch();
    this.show();
    if (checkSet(points)) this.block();
    this.pg.changed('customPoints');  // the URL; and a new run, where one was configured
    this.configureIfBlocked();
  }

  settingChanged(key) {
    if (key === 'batch' && !this.fitting) { this.wantedBatch = null; this.batchNote = ''; this.show(); }  // the visitor's own choice
    if (key === 'data') {
      this.message = '';
      this.hint = '';
      if (this.active && !this.points.length) this.startFromShown();
      if (this.active) this.fitBatch();
      if (!this.active) { this.restoreBatch(); this.setTransport(true); this.configureIfBlocked(); }
      this.show();
      this.pg.writeHash();  // with the set just started from
    }
    if (key === 'trainfrac' && this.active) this.fitBatch();
    // a set of the other task's rows cannot train: the new task's set starts empty
    if (key === 'task' && this.active && this.points.length && isXY(this.points) !== this.regression) {
      this.pg.state.customPoints = [];
      this.message = `Your ${this.regression ? 'labelled' : '[x, y]'} points were for the other task: the set starts empty.`;
      this.show();
      this.pg.writeHash();
    }
  }

  // The playground reconfigures on a change only while it has a run: after a block, the
  // first set that can train (or another dataset) configures here.
  configureIfBlocked() {
    if (this.blocked && !this.pg.info && (!this.active || !checkSet(this.points))) this.pg.configure();
  }

  // Switching to 'custom' starts from the points on screen, to edit or clear.
  startFromShown() {
    const info = this.pg.info;
    if (!info || !info.points) return;
    const clamp = v => Math.min(PLANE[1], Math.max(PLANE[0], round2(v)));
    this.pg.state.customPoints = [...info.points.train, ...info.points.test].slice(0, LIMITS.max)
      .map(([x, y, ...c]) => [clamp(x), clamp(y), ...c]);
    this.fitBatch();
    this.message = `Started from the ${this.points.length} points of ${info.config.data.dataset}; Clear empties the set.`;
  }

  // A batch can be no larger than the training set: lowered with the set, and said so;
  // raised again, up to the size the visitor chose, as the set grows.
  fitBatch() {
    const s = this.pg.state;
    if (this.points.length < LIMITS.min) return;
    const n = Math.max(1, Math.floor(this.points.length * s.trainfrac));
    const want = this.wantedBatch ?? s.batch;
    const fit = Math.min(want, n);
    if (fit !== s.batch) this.setBatch(fit);
    this.wantedBatch = fit < want ? want : null;
    this.batchNote = fit < want ? `Batch size lowered to ${fit}, the size of the training set; it goes back up to your ${want} as the set grows.` : '';
  }

  // Leaving the custom set: the batch size the visitor chose comes back.
  restoreBatch() {
    if (this.wantedBatch !== null && this.wantedBatch !== this.pg.state.batch) this.setBatch(this.wantedBatch);
    this.wantedBatch = null;
    this.batchNote = '';
  }

  setBatch(v) {
    this.fitting = true;
    try { this.pg.controls.set('batch', v); } finally { this.fitting = false; }
  }

  // Called by the playground before it configures: false (and the plane shows the bare
  // points) while the set cannot train.
  allowConfigure() {
    if (!this.active || !this.box) return true;
    const problem = checkSet(this.points);
    if (problem) { this.block(); return false; }
    return true;
  }

  block() {
    const pg = this.pg;
    if (pg.playing) pg.pause();
    pg.info = null;  // frames of the previous run are no longer shown
    this.blocked = true;
    this.setTransport(false);
    pg.plane = this.regression ? pg.function : pg.boundary;
    const key = pg.root.querySelector('[data-role=plane-key]');
    if (key) key.hidden = this.regression;  // the classes' colours (hidden while the digits were shown)
    const why = `No network yet: a set needs at least ${LIMITS.min} points${this.regression ? '' : ', of both classes,'} to train.`;
    pg.plane.showPoints(PLANE, this.points, why);
    // the caption says what is on screen (it would still read "Connecting…")
    const caption = pg.root.querySelector('[data-role=caption]');
    if (caption) { caption.textContent = `Your own points: ${why.charAt(0).toLowerCase()}${why.slice(1)} Click on the plane to add them.`; caption.shownText = null; }
    this.show();
  }

  setTransport(on) {
    for (const b of this.transport) {
      b.disabled = !on;
      if (on) b.removeAttribute('title'); else b.title = 'Add points to train on first';
    }
  }

  showError(text) {
    if (!this.error) return;
    this.error.textContent = text;
    this.error.hidden = !text;
  }

  show() {
    if (!this.box) return;
    this.box.hidden = !this.active;
    this.pg.boundary.el.classList.toggle('editing', this.active);
    if (!this.active) return;
    const pts = this.points, n = pts.length;
    const ones = pts.filter(p => p[2] === 1).length;
    const problem = checkSet(pts);
    for (const r of this.box.querySelectorAll('[data-role=custom-class]')) r.closest('label').hidden = this.regression;
    const count = `${n} point${n === 1 ? '' : 's'}${this.regression ? '.' : `: ${n - ones} of class 0, ${ones} of class 1.`}`;
    const parts = [this.hint, this.message, count,
      problem ? `This set ${problem}.` : '', this.batchNote];
    this.status.textContent = parts.filter(Boolean).join(' ');
    const fits = fitsLink(pts);
    this.link.hidden = fits;
    this.link.textContent = fits ? '' : `${n.toLocaleString('en')} points are too many for a link (it holds up to ${LINK_POINTS}): `
      + 'the address no longer carries the set. Download it as CSV to share it.';
  }
}
