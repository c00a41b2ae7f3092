// The lessons page: the list, and the open lesson (/lessons#<id> or /lessons/<id>), shown
// whole by lesson_article.js. The answer is kept in localStorage: a lesson answered
// before starts at once, and the list marks it.
import { LESSONS, BY_ID } from './lessons.js';
import { LessonArticle } from './lesson_article.js';
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
    window.__lesson = null;
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
    const view = new LessonArticle(this.article, lesson, { answer: answerOf(lesson.id) });
    view.addEventListener('prediction', e => { saveAnswer(lesson.id, e.detail.answer); this.markList(lesson.id); });
    view.addEventListener('status', e => this.setStatus(e.detail));
    view.addEventListener('restart', () => this.open(lesson.id));
    if (problem) view.notice(problem);
    this.view = view;
    view.start();
  }

  setStatus(text) { if (this.status) this.status.textContent = text; }
}

function start() { new LessonsPage($('[data-role=lessons]')); }

if (window.Plotly) start(); else window.addEventListener('load', start);
