// One lesson embedded whole (/embed?lesson=<id>): its question, the prediction, the live
// experiment and the verdict, with the embed's postMessage API (host.js, the same origin
// rules; docs/embedding.md), so that a course page can record what its students did.
//
// Outgoing (to window.parent): {type: 'dropout-playground:<name>', id, ...}
//   ready {version, lesson, title, commands}, height {height},
//   prediction {lesson, answer}, verdict {lesson, answer, verdict, right, about, evidence},
//   result / error (answers to commands)
// Incoming: get (the lesson, the prediction and the verdict so far)
//
// A prediction is not remembered across visits here (the lessons page keeps one): each
// student of a course page makes their own, and the page hears it.
import { tabConnection } from './connection.js';
import { BY_ID } from './lessons.js';
import { LessonArticle } from './lesson_article.js';
import { HostChannel, VERSION, readConfig } from './host.js';

const COMMANDS = { get: [] };
const $ = sel => document.querySelector(sel);

function start() {
  const config = readConfig();
  const lesson = BY_ID[config.lesson];  // (the server renders this page only for a lesson it has)
  const article = $('[data-role=lesson]');
  const status = $('.embed-foot [data-role=connection]');
  const conn = tabConnection();
  let connection = conn.connected ? 'connected' : 'connecting…', run = '';
  const show = () => { status.textContent = [connection, run].filter(Boolean).join(' · '); };
  conn.addEventListener('connected', () => { connection = 'connected'; show(); });
  conn.addEventListener('disconnected', () => { connection = 'reconnecting…'; show(); });
  show();

  const done = { prediction: null, verdict: null };
  const channel = new HostChannel(config, { commands: COMMANDS,
    run: async () => ({ ok: true, lesson: lesson.id, ...done }) });
  let view = null, opening = Promise.resolve();
  // (re)open the lesson; a restart keeps the prediction made and runs at once
  const open = () => {
    opening = opening.then(async () => {
      if (view) await view.stop();
      view = new LessonArticle(article, lesson, { newTab: true, answer: done.prediction ? done.prediction.answer : null });
      view.addEventListener('prediction', e => { done.prediction = e.detail; channel.post('prediction', e.detail); });
      view.addEventListener('verdict', e => { done.verdict = e.detail; channel.post('verdict', e.detail); });
      view.addEventListener('status', e => { run = e.detail; show(); });
      view.addEventListener('restart', open);
      view.start();
    }).catch(e => console.error(e));
  };
  open();
  channel.post('ready', { version: VERSION, lesson: lesson.id, title: lesson.title, commands: Object.keys(COMMANDS) });
  channel.watchHeight($('[data-role=embed]'));
  window.__embed = { channel, done };  // for the browser tests
}

tabConnection();  // the socket opens at once, while Plotly loads
if (window.Plotly) start(); else window.addEventListener('load', start);
