// Host-page side of the embed API (docs/embedding.md), as used by the example course page.
// A classic script (no module) so a page on any origin can load it. For every
// <iframe data-embed="ID" src=".../embed?id=ID">: size it to the height the playground
// reports, show its state in [data-status=ID], log what it says in [data-role=log], and
// send the command of each <button data-target=ID data-command=... data-key data-value>.
(() => {
  'use strict';
  const PREFIX = 'dropout-playground:';
  const frames = [...document.querySelectorAll('iframe[data-embed]')];
  const log = document.querySelector('[data-role=log]');
  const received = [];  // every message, for the browser tests
  window.__course = { received };

  const frameOf = source => frames.find(f => f.contentWindow === source);
  const originOf = f => new URL(f.src, location.href).origin;

  function note(text) {
    if (!log) return;
    const li = document.createElement('li');
    li.textContent = text;
    log.prepend(li);
    while (log.children.length > 40) log.lastChild.remove();
  }

  window.addEventListener('message', e => {
    const f = frameOf(e.source);
    const m = e.data;
    if (!f || e.origin !== originOf(f) || !m || typeof m.type !== 'string' || !m.type.startsWith(PREFIX)) return;
    const id = f.dataset.embed, name = m.type.slice(PREFIX.length);
    received.push({ id, at: Date.now(), ...m });
    const status = document.querySelector(`[data-status="${id}"]`);
    const say = (text, kind = '') => { if (status) { status.textContent = text; status.dataset.kind = kind; } };
    if (name === 'height') { f.style.height = `${m.height}px`; return; }
    if (name === 'state') say(`${m.playing ? 'playing' : 'paused'} · step ${m.step.toLocaleString('en')}`);
    if (name === 'error') { say(m.error.message, 'error'); note(`${id}: error: ${m.error.message}`); }
    if (name === 'ready') note(`${id}: ready${m.locked.length ? `, locked: ${m.locked.join(', ')}` : ''}`);
    if (name === 'configured') { say('ready'); note(`${id}: configured, ${m.params} parameters, p = ${m.config.model.p.join(', ')}`); }
    if (name === 'changed') note(`${id}: ${m.key} = ${JSON.stringify(m.value)}`);
    if (name === 'result' && m.command !== 'get') note(`${id}: ${m.command} done`);
  });

  for (const button of document.querySelectorAll('button[data-target][data-command]')) {
    button.addEventListener('click', () => {
      const f = frames.find(x => x.dataset.embed === button.dataset.target);
      if (!f) return;
      const msg = { type: PREFIX + button.dataset.command, request: `${button.dataset.command}-${Date.now()}` };
      if (button.dataset.key) { msg.key = button.dataset.key; msg.value = JSON.parse(button.dataset.value); }
      f.contentWindow.postMessage(msg, originOf(f));
    });
  }
})();
