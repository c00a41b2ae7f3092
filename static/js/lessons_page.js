// The lessons page: the list, and the open lesson (/lessons#<id> or /lessons/<id>).
// Predict, then run: a lesson's experiment starts only once the visitor has answered its
// question (or chosen to skip it), so no evidence is on screen before the prediction. The
// answer is kept in localStorage (a lesson answered before starts at once) and revealed
// with the numbers the run measured. A view may say that the right answer depends on
// what is on screen now (lesson d: the activation), and the verdict follows.
import { LESSONS, BY_ID } from './lessons.js';
import { VIEWS } from './lesson_views/index.js';
import { el } from './lesson_views/common.js';

const STORE = 'dp-lesson-answers';
const $ = sel => document.querySelector(sel);

function loadAnswers() {
  try { return JSON.parse(localStorage.getItem(STORE) || '{}') || {}; } catch (e) { return {}; }
}

function saveAnswer(id, choice) {
  const all = loadAnswers();
  all[id] = choice;
  try { localStorage.setItem(STORE, JSON.stringify(all)); } catch (e) { /* storage blocked: kept for this visit only */ }
  memory[id] = choice;
}
const memory = {};
const answerOf = id => memory[id] ?? loadAnswers()[id] ?? null;

// Text with `code` spans, built as nodes (never innerHTML).
function rich(text) {
  return text.split('`').map((part, i) => (i % 2 ? el('code', { text: part }) : document.createTextNode(part)));
}

// decodeURIComponent throws on a broken escape such as "%E0%A4%A": null then.
function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

class LessonsPage {
  constructor(main) {
    this.main = main;
    this.list = $('[data-role=lesson-list]');
    this.article = $('[data-role=lesson]');
    this.status = $('.top [data-role=connection]');
    this.view = null;
    this.opening = Promise.resolve();
    window.__lesson = null;  // for the browser tests: the open lesson's live state
    this.renderList();
    window.addEventListener('hashchange', () => this.route());
    this.route();
  }

  route() {
    const raw = location.hash.replace(/^#/, '');
    const fromHash = safeDecode(raw);
    if (fromHash === null) {  // a broken %-escape (a mangled link): say so, open the first
      this.open(LESSONS[0].id, `The link names no lesson we can read ("${raw.slice(0, 40)}"); here is the first one.`);
      return;
    }
    const id = fromHash || this.main.dataset.lesson || LESSONS[0].id;
    if (!BY_ID[id]) {
      this.open(LESSONS[0].id, `There is no lesson "${id}"; here is the first one.`);
      return;
    }
    this.open(id);
  }

  renderList() {
    this.list.textContent = '';
    for (const l of LESSONS) {
      const done = answerOf(l.id) !== null;
      const a = el('a', { href: `/lessons#${l.id}`, dataset: { lesson: l.id } },
        el('span', { className: 'letter', text: l.letter }), el('span', { className: 'title', text: l.title }),
        el('span', { className: 'done', text: done ? '✓' : '', 'aria-label': done ? 'answered' : '' }),
        el('span', { className: 'from', text: `from: ${l.covers.join('; ')}` }));
      this.list.append(el('li', {}, a));
    }
  }

  markList(id) {
    for (const a of this.list.querySelectorAll('a')) {
      if (a.dataset.lesson === id) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
      const done = answerOf(a.dataset.lesson) !== null;
      a.querySelector('.done').textContent = done ? '✓' : '';
    }
  }

  // Switches run one after another: the old lesson's runs close before new ones start.
  open(id, problem = null) {
    this.opening = this.opening.then(() => this.mount(BY_ID[id], problem)).catch(e => console.error(e));
    return this.opening;
  }

  async mount(lesson, problem) {
    if (this.view) { const v = this.view; this.view = null; await v.stop(); }
    this.markList(lesson.id);
    document.title = `${lesson.title} · Lessons · Dropout Playground`;
    const live = { id: lesson.id, updates: 0, evidence: null, judged: null, answer: answerOf(lesson.id), problems: [], started: false, done: false };
    window.__lesson = live;
    const parts = this.render(lesson, live);
    if (problem) this.notice(parts, problem);
    parts.restart.addEventListener('click', () => this.open(lesson.id));
    this.reveal(lesson, live, parts);
    if (live.answer !== null) this.run(lesson, live, parts);
    else this.setStatus('waiting for your prediction');
  }

  // Start the lesson's experiment (once, and only while the lesson is still open).
  run(lesson, live, parts) {
    if (live.started || window.__lesson !== live) return;
    live.started = true;
    parts.waiting.remove();
    parts.restart.hidden = false;
    this.setStatus('starting…');
    const ctx = {
      controls: parts.controls,
      tick: () => { live.updates++; if (live.updates === 1) this.setStatus('live'); },
      // judged: {key, about, answer, explain} when the right answer depends on the setup
      // on screen (lesson d: the activation); key changes redraw the verdict. answer null:
      // what is on screen decides nothing (lesson b: a point whose answers do not vary)
      evidence: (text, judged = null) => { live.evidence = text; live.judged = judged; this.reveal(lesson, live, parts); },
      problem: text => { live.problems.push(text); this.notice(parts, text); },
      // the experiment has measured all it will (a lesson of one-off measurements)
      done: () => { live.done = true; this.setStatus('measured'); },
      warning: text => { const w = el('p', { className: 'lesson-warning', role: 'note', text }); parts.warnings.append(w); return w; },
    };
    this.view = VIEWS[lesson.view](parts.panels, lesson, ctx);
  }

  render(lesson, live) {
    const a = this.article;
    a.textContent = '';
    a.dataset.lesson = lesson.id;
    const head = el('header', { className: 'lesson-head' },
      el('p', { className: 'lesson-kicker', text: `Lesson ${lesson.letter}` }),
      el('h2', { text: lesson.title }),
      el('ul', { className: 'covers', 'aria-label': 'From the explainer' }, ...lesson.covers.map(c => el('li', { text: c }))));
    const text = el('div', { className: 'lesson-text' }, ...lesson.text.map(t => el('p', {}, ...rich(t))));

    // predict, then run
    const q = lesson.question;
    const name = `q-${lesson.id}`;
    const options = q.options.map(o => {
      const input = el('input', { type: 'radio', name, value: o.id, id: `${name}-${o.id}` });
      input.checked = live.answer === o.id;
      input.addEventListener('change', () => {
        live.answer = o.id;
        saveAnswer(lesson.id, o.id);
        this.markList(lesson.id);
        this.reveal(lesson, live, parts);
        this.run(lesson, live, parts);
      });
      return el('div', { className: 'option' }, input, el('label', { htmlFor: input.id, text: o.text }));
    });
    const skip = el('button', { type: 'button', className: 'link', text: 'Show me the answer without guessing' });
    skip.addEventListener('click', () => {
      live.answer = 'skip'; saveAnswer(lesson.id, 'skip'); this.markList(lesson.id);
      this.reveal(lesson, live, parts); this.run(lesson, live, parts);
    });
    const answer = el('div', { className: 'answer', dataset: { role: 'answer' }, 'aria-live': 'polite' });
    const question = el('section', { className: 'predict', 'aria-labelledby': `${name}-title` },
      el('h3', { id: `${name}-title`, text: 'Predict first, then watch' }),
      el('fieldset', {}, el('legend', { text: q.prompt }), ...options),
      skip, answer);

    const restart = el('button', { type: 'button', className: 'small', text: 'Restart the experiment', hidden: true });
    const actions = el('div', { className: 'lesson-actions' }, restart,
      el('a', { href: `/${lesson.hash}`, target: '_blank', rel: 'noopener', text: 'Open this setup in the playground ↗' }),
      el('a', { href: `/lessons#${lesson.id}`, text: 'Link to this lesson' }));
    const notice = el('div', { className: 'notice', role: 'alert', hidden: true });
    const controls = el('div', { className: 'lesson-controls', 'aria-label': 'Experiment controls' });
    const warnings = el('div', { className: 'lesson-warnings' });
    const panels = el('div', { className: 'lesson-panels', dataset: { role: 'panels' } });
    const waiting = el('p', { className: 'lesson-waiting', dataset: { role: 'waiting' },
      text: 'The experiment starts when you have made your prediction above (or chosen to see the answer without guessing).' });
    panels.append(waiting);
    const look = el('section', { className: 'look' }, el('h3', { text: 'What to look at' }),
      el('ul', {}, ...lesson.look.map(t => el('li', {}, ...rich(t)))));
    a.append(head, text, question, actions, notice, controls, warnings, panels, look);
    const parts = { answer, controls, warnings, panels, restart, notice, skip, waiting };
    return parts;
  }

  reveal(lesson, live, parts) {
    const box = parts.answer, q = lesson.question;
    const judged = live.judged || {};
    const shown = box.querySelector('[data-role=evidence]');
    if (shown && live.evidence && box.dataset.answer === live.answer && box.dataset.key === (judged.key || '')) {
      shown.textContent = live.evidence;  // only the numbers moved
      return;
    }
    box.textContent = '';
    box.dataset.answer = live.answer ?? '';
    box.dataset.key = judged.key || '';
    delete box.dataset.verdict;
    parts.skip.hidden = live.answer !== null;
    if (live.answer === null) {
      box.append(el('p', { className: 'hint', text: 'Pick an answer first: the experiment starts then, and its measurements will show who was right.' }));
      return;
    }
    if (!live.evidence) {
      box.append(el('p', { className: 'hint', text: 'Answer saved. The experiment is running; waiting for it to produce enough data…' }));
      return;
    }
    if (judged.answer === null) {  // what is on screen now decides nothing (lesson b: a point that does not vary)
      box.dataset.verdict = 'undecided';
      box.append(
        el('p', { className: 'verdict' }, el('strong', { text: `${judged.about ? `${judged.about}: ` : ''}no verdict from this.` })),
        el('p', {}, ...rich(judged.explain)),
        el('p', { className: 'evidence', dataset: { role: 'evidence' }, text: live.evidence }));
      return;
    }
    const answer = judged.answer ?? q.answer;
    const right = q.options.find(o => o.id === answer);
    const verdict = live.answer === 'skip' ? 'The answer' : live.answer === answer ? '✓ Right' : '✗ Not quite';
    box.dataset.verdict = live.answer === 'skip' ? 'skip' : live.answer === answer ? 'right' : 'wrong';
    box.append(
      el('p', { className: 'verdict' }, el('strong', { text: `${judged.about ? `${judged.about}: ` : ''}${verdict}: ` }), document.createTextNode(right.text)),
      el('p', {}, ...rich(judged.explain ?? q.explain)),
      el('p', { className: 'evidence', dataset: { role: 'evidence' }, text: live.evidence }));
  }

  notice(parts, text) {
    parts.notice.textContent = text;
    parts.notice.dataset.kind = 'warn';
    parts.notice.hidden = !text;
  }

  setStatus(text) { if (this.status) this.status.textContent = text; }
}

function start() { new LessonsPage($('[data-role=lessons]')); }

if (window.Plotly) start(); else window.addEventListener('load', start);
