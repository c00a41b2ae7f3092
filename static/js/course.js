// Host-page side of the embed API (docs/embedding.md), as used by the example course page.
// A classic script (no module) so a page on any origin can load it. For every
// <iframe data-embed="ID" src=".../embed?id=ID">: size it to the height the playground
// reports, show its state in [data-status=ID], log what it says in [data-role=log], and
// send the command of each <button data-target="ID [ID...]" data-command=... data-key
// data-value data-until>. [data-role=verdict] compares the embeds' test losses, and only
// when all of them are paused at the same step and were evaluated at it.
// Strict mode and a block rather than a function around it all: block-scoped names stay
// out of the host page's globals, and each step below is a function of its own.
'use strict';
{
  const PREFIX = 'dropout-playground:';
  const frames = [...document.querySelectorAll('iframe[data-embed]')];
  const log = document.querySelector('[data-role=log]');
  const received = [];  // every message, for the browser tests
  const states = {};    // id -> the latest state {playing, step, eval}
  const verdict = document.querySelector('[data-role=verdict]');
  window.__course = { received, states };
  const steps = n => n.toLocaleString('en');
  const loss = v => (v === null || v === undefined ? '–' : v.toFixed(3));

  const frameOf = source => frames.find(f => f.contentWindow === source);
  const originOf = f => new URL(f.src, location.href).origin;

  function note(text) {
    if (!log) return;
    const li = document.createElement('li');
    li.textContent = text;
    log.prepend(li);
    while (log.children.length > 40) log.lastChild.remove();
  }

  window.addEventListener('message', onMessage);

  // A message from one of the embeds, checked to come from its frame and origin.
  function onMessage(e) {
    const f = frameOf(e.source);
    const m = e.data;
    if (!f || e.origin !== originOf(f) || !m || typeof m.type !== 'string' || !m.type.startsWith(PREFIX)) return;
    const id = f.dataset.embed, name = m.type.slice(PREFIX.length);
    received.push({ id, at: Date.now(), ...m });
    show(f, id, name, m);
  }

  // What a message says, in its frame's status line and the log.
  function show(f, id, name, m) {
    const status = document.querySelector(`[data-status="${id}"]`);
    const say = (text, kind = '') => { if (status) { status.textContent = text; status.dataset.kind = kind; } };
    if (name === 'height') { f.style.height = `${m.height}px`; return; }
    if (name === 'state') {
      states[id] = m;
      const e = m.eval;
      say(`${m.playing ? 'playing' : 'paused'} · step ${steps(m.step)}` +
        (e && e.test_loss !== null ? ` · test loss ${loss(e.test_loss)} (at step ${steps(e.step)})` : ''));
      compare();
    }
    if (name === 'error') { say(m.error.message, 'error'); note(`${id}: error: ${m.error.message}`); }
    if (name === 'ready') note(`${id}: ready${m.locked.length ? `, locked: ${m.locked.join(', ')}` : ''}`);
    if (name === 'configured') { say('ready'); note(`${id}: configured, ${m.params} parameters, p = ${m.config.model.p.join(', ')}`); }
    if (name === 'changed') note(`${id}: ${m.key} = ${JSON.stringify(m.value)}`);
    if (name === 'result' && m.command !== 'get') note(`${id}: ${m.command} done`);
  }

  // Test losses side by side, only at one and the same step: the embeds train at their
  // own speeds, so while playing (or paused apart) their numbers are of different steps.
  function compare() {
    if (!verdict) return;
    const all = frames.map(f => states[f.dataset.embed]);
    const label = f => f.dataset.embed.toUpperCase();
    let text, at = '';
    if (all.some(s => !s || s.playing)) {
      text = 'Training: each network at its own speed, so at different steps; they are compared once both have stopped at the same step.';
    } else if (new Set(all.map(s => s.step)).size > 1) {
      text = `Not compared: paused at different steps (${frames.map((f, i) => `${label(f)} at ${steps(all[i].step)}`).join(', ')}).`;
    } else if (all.every(s => s.eval && s.eval.step === s.step && s.eval.test_loss !== null)) {
      at = String(all[0].step);
      const parts = frames.map((f, i) => `${label(f)} ${loss(all[i].eval.test_loss)}`);
      const best = all.reduce((k, s, i) => (s.eval.test_loss < all[k].eval.test_loss ? i : k), 0);
      text = `Both stopped at step ${steps(all[0].step)}. Test loss there: ${parts.join(', ')}; lower: ${label(frames[best])}.`;
    } else {
      text = all[0].step === 0 ? 'Not compared yet: both networks are at step 0.' : `Both at step ${steps(all[0].step)}; waiting for their test evaluations at that step.`;
    }
    verdict.textContent = text;
    verdict.dataset.step = at;
  }

  // Each button sends its command to every embed it names.
  for (const button of document.querySelectorAll('button[data-target][data-command]')) {
    button.addEventListener('click', () => {
      for (const id of button.dataset.target.split(' ')) {
        const f = frames.find(x => x.dataset.embed === id);
        if (!f) continue;
        const msg = { type: PREFIX + button.dataset.command, request: `${button.dataset.command}-${Date.now()}` };
        if (button.dataset.key) { msg.key = button.dataset.key; msg.value = JSON.parse(button.dataset.value); }
        if (button.dataset.until) msg.until = Number(button.dataset.until);
        f.contentWindow.postMessage(msg, originOf(f));
      }
    });
  }
}
