// What the playground says to the visitor: notices, the server's errors (named as on
// screen, beside their controls), and the question about a link opened in the tab while
// it runs (the address bar's hash changed), which is taken in place, at once, or once the
// visitor says so.
import { fromHash, toHash, keyOfPath, FIELDS, BY_KEY } from './state.js';
import { showRunControls } from './playground_controls.js';

const $ = (root, sel) => root.querySelector(sel);

// A link opened in this tab while the page runs (the address bar's hash changed). What
// a run can change as it trains (p, learning rate, speed, mode, view) changes in place;
// another setup is taken at once, or, when the run has trained, once the visitor says
// so. Keeping the run puts its own link back in the address bar.
export function followLink(pg, hash) {
  const { state, problems } = fromHash(hash, pg.page);
  if (toHash(state, {}, pg.page) === toHash(pg.state, {}, pg.page)) return;
  const differ = FIELDS.filter(f => String(state[f.key]) !== String(pg.state[f.key]));
  const sameSet = String(state.customPoints) === String(pg.state.customPoints);
  if (pg.info && sameSet && differ.every(f => f.live || f.change)) {
    for (const f of differ) pg.controls.set(f.key, state[f.key]);
    showRunControls(pg);
    if (problems.length) pg.notice(`From the link: ${problems.join('; ')}.`, 'warn');
    return;
  }
  const step = Math.max(pg.timeline.latest || 0, pg.drawn ? pg.drawn.header.step : 0);
  if (!pg.info || step === 0) { adopt(pg, state, problems); return; }
  ask(pg, `The address now holds another setup (${describe(state)}). Start it? This run, at step ${step.toLocaleString('en')}, would be lost.`,
    'Start the new setup', 'Keep this run', yes => (yes ? adopt(pg, state, problems) : pg.writeHash()));
}

export function adopt(pg, state, problems = []) {
  Object.assign(pg.state, state);  // the same object: the form holds it
  pg.controls.sync();
  showRunControls(pg);
  if (problems.length) pg.notice(`From the link: ${problems.join('; ')}.`, 'warn'); else pg.notice('');
  pg.dispatchEvent(new CustomEvent('changed', { detail: 'link' }));
  clearTimeout(pg.reconfigureTimer);
  if (pg.conn.connected) pg.configure();
}

// A question in the notice area, answered by one of two buttons (the first has focus).
function ask(pg, text, yesText, noText, answer) {
  pg.notice(text, 'warn');
  const n = $(pg.root, '[data-role=notice]');
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

// A setup in a few words, for the question about a link.
function describe(s) {
  return `dataset ${s.data}, hidden ${s.hidden.join('×')}, p ${s.p.join(', ')}`;
}

export function serverErrors(pg, ack) {
  const errors = ack.errors || [ack.error];
  // named as on screen: the control's label, not the config path
  const named = e => { const key = keyOfPath(e.field); return key ? BY_KEY[key].label : e.field; };
  pg.notice(errors.map(e => `${named(e)}: ${e.message}`).join('\n'), 'error');
  for (const e of errors) {
    const key = keyOfPath(e.field);
    if (key) pg.controls.showError(key, e.message);
  }
  pg.dispatchEvent(new CustomEvent('error', { detail: errors }));
}

export function clearErrors(pg) {
  for (const key of Object.keys(BY_KEY)) pg.controls.showError(key, null);
  const n = $(pg.root, '[data-role=notice]');
  if (n && n.dataset.kind === 'error') n.hidden = true;
}

export function notice(pg, text, kind = 'info') {
  const n = $(pg.root, '[data-role=notice]');
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
