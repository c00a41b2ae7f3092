// One lesson on screen, whole: its head and text, the question, the live experiment and
// the verdict. Predict, then run: the experiment starts only once the visitor has
// answered (or chosen to skip), so no evidence is on screen before the prediction. The
// answer is revealed with the numbers the run measured. A view may say that the right
// answer depends on what is on screen now (lesson d: the activation), and the verdict
// follows. The lessons page shows one beside its list; the embed shows one alone.
//
// Events: 'prediction' {lesson, answer} (an option's id, or 'skip'); 'verdict' {lesson,
// answer, verdict ('right', 'wrong', 'skip' or 'undecided'), right (the right option's
// id, null when undecided), about, evidence}, each time the verdict shown changes;
// 'status' (a word on the run: waiting, starting, live, measured); 'restart' (its button:
// the owner opens the lesson afresh).
import { VIEWS } from './lesson_views/index.js';
import { el } from './lesson_views/common.js';

// Text with `code` spans, built as nodes (never innerHTML).
function rich(text) {
  return text.split('`').map((part, i) => (i % 2 ? el('code', { text: part }) : document.createTextNode(part)));
}

export class LessonArticle extends EventTarget {
  // answer: a prediction made before (the experiment starts at once); links open in a new
  // tab where the lesson is embedded (newTab)
  constructor(article, lesson, { answer = null, newTab = false } = {}) {
    super();
    this.article = article;
    this.lesson = lesson;
    this.newTab = newTab;
    this.view = null;
    this.posted = '';
    this.live = { id: lesson.id, updates: 0, evidence: null, judged: null, answer, problems: [], started: false, done: false };
    window.__lesson = this.live;  // for the browser tests: the open lesson's live state
    this.parts = this.render();
  }

  start() {
    this.reveal();
    if (this.live.answer !== null) this.run(); else this.status('waiting for your prediction');
  }

  async stop() {
    this.stopped = true;
    if (this.view) { const v = this.view; this.view = null; await v.stop(); }
  }

  status(text) { this.dispatchEvent(new CustomEvent('status', { detail: text })); }

  // Start the lesson's experiment (once, and only while the lesson is still open).
  run() {
    const { live, parts, lesson } = this;
    if (live.started || this.stopped) return;
    live.started = true;
    parts.waiting.remove();
    parts.restart.hidden = false;
    this.status('starting…');
    const ctx = {
      controls: parts.controls,
      tick: () => { live.updates++; if (live.updates === 1) this.status('live'); },
      // judged: {key, about, answer, explain} when the right answer depends on the setup
      // on screen (lesson d: the activation); key changes redraw the verdict. answer null:
      // what is on screen decides nothing (lesson b: a point whose answers do not vary)
      evidence: (text, judged = null) => { live.evidence = text; live.judged = judged; this.reveal(); },
      problem: text => { live.problems.push(text); this.notice(text); },
      // the experiment has measured all it will (a lesson of one-off measurements)
      done: () => { live.done = true; this.status('measured'); },
      warning: text => { const w = el('p', { className: 'lesson-warning', role: 'note', text }); parts.warnings.append(w); return w; },
    };
    this.view = VIEWS[lesson.view](parts.panels, lesson, ctx);
  }

  choose(answer) {
    this.live.answer = answer;
    this.dispatchEvent(new CustomEvent('prediction', { detail: { lesson: this.lesson.id, answer } }));
    this.reveal();
    this.run();
  }

  render() {
    const { article: a, lesson, live } = this;
    a.textContent = '';
    a.dataset.lesson = lesson.id;
    const head = el('header', { className: 'lesson-head' },
      el('p', { className: 'lesson-kicker', text: `Lesson ${lesson.letter}` }),
      el('h2', { text: lesson.title }),
      el('ul', { className: 'covers', 'aria-label': 'From the explainer' }, ...lesson.covers.map(c => el('li', { text: c }))));
    const text = el('div', { className: 'lesson-text' }, ...lesson.text.map(t => el('p', {}, ...rich(t))));
    const q = lesson.question;
    const name = `q-${lesson.id}`;
    const options = q.options.map(o => {
      const input = el('input', { type: 'radio', name, value: o.id, id: `${name}-${o.id}` });
      input.checked = live.answer === o.id;
      input.addEventListener('change', () => this.choose(o.id));
      return el('div', { className: 'option' }, input, el('label', { htmlFor: input.id, text: o.text }));
    });
    const skip = el('button', { type: 'button', className: 'link', text: 'Show me the answer without guessing' });
    skip.addEventListener('click', () => this.choose('skip'));
    const answer = el('div', { className: 'answer', dataset: { role: 'answer' }, 'aria-live': 'polite' });
    const question = el('section', { className: 'predict', 'aria-labelledby': `${name}-title` },
      el('h3', { id: `${name}-title`, text: 'Predict first, then watch' }),
      el('fieldset', {}, el('legend', { text: q.prompt }), ...options),
      skip, answer);
    const restart = el('button', { type: 'button', className: 'small', text: 'Restart the experiment', hidden: true });
    restart.addEventListener('click', () => this.dispatchEvent(new CustomEvent('restart')));
    const away = this.newTab ? { target: '_blank', rel: 'noopener' } : {};
    const actions = el('div', { className: 'lesson-actions' }, restart,
      el('a', { href: `/${lesson.hash}`, target: '_blank', rel: 'noopener', text: 'Open this setup in the playground ↗' }),
      // (its own path, not /lessons#id: a page that embeds links by oEmbed discovery reads
      // the server's page for it, and the server never sees a #)
      el('a', { href: `/lessons/${lesson.id}`, ...away, text: this.newTab ? 'Open this lesson ↗' : 'Link to this lesson' }));
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
    return { answer, controls, warnings, panels, restart, notice, skip, waiting };
  }

  reveal() {
    const { live, parts, lesson } = this;
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
    const about = judged.about ? `${judged.about}: ` : '';
    if (judged.answer === null) {  // what is on screen now decides nothing (lesson b: a point that does not vary)
      box.dataset.verdict = 'undecided';
      box.append(
        el('p', { className: 'verdict' }, el('strong', { text: `${about}no verdict from this.` })),
        el('p', {}, ...rich(judged.explain)),
        el('p', { className: 'evidence', dataset: { role: 'evidence' }, text: live.evidence }));
      this.verdict(null, about);
      return;
    }
    const answer = judged.answer ?? q.answer;
    const right = q.options.find(o => o.id === answer);
    const verdict = live.answer === 'skip' ? 'The answer' : live.answer === answer ? '✓ Right' : '✗ Not quite';
    box.dataset.verdict = live.answer === 'skip' ? 'skip' : live.answer === answer ? 'right' : 'wrong';
    box.append(
      el('p', { className: 'verdict' }, el('strong', { text: `${about}${verdict}: ` }), document.createTextNode(right.text)),
      el('p', {}, ...rich(judged.explain ?? q.explain)),
      el('p', { className: 'evidence', dataset: { role: 'evidence' }, text: live.evidence }));
    this.verdict(answer, about);
  }

  // The verdict on screen, once per change of it (not per new number in its evidence).
  verdict(right, about) {
    const { live } = this;
    const verdict = this.parts.answer.dataset.verdict;
    const key = `${verdict}|${right}|${live.answer}|${about}`;
    if (key === this.posted) return;
    this.posted = key;
    this.dispatchEvent(new CustomEvent('verdict', { detail: {
      lesson: this.lesson.id, answer: live.answer, verdict, right, about: about.replace(/: $/, '') || null, evidence: live.evidence } }));
  }

  notice(text) {
    const n = this.parts.notice;
    n.textContent = text;
    n.dataset.kind = 'warn';
    n.hidden = !text;
  }
}
