// Plotly's bundle: the page's biggest file by far, and slow to start on a slow phone's
// main thread (docs/benchmarks.md, round 10). The playground and the embed load it here,
// after their own modules, so that on a slow link it does not share the link with them:
// the network panel's first picture needs none of it. Pages that name it in a deferred
// <script> (base.html) find that one here instead of a second copy.
const SRC = '/vendor/plotly-cartesian.min.js';  // served under its hashed URL (app/assets.py)

let ready = null;

// Resolves with window.Plotly once it has run; starts loading it if nothing has yet.
export function plotlyReady() {
  if (ready) return ready;
  ready = new Promise((resolve, reject) => {
    if (window.Plotly) { resolve(window.Plotly); return; }
    let tag = document.querySelector('script[data-plotly]');
    if (!tag) {
      tag = document.createElement('script');
      tag.src = SRC;
      tag.dataset.plotly = '';
      document.head.append(tag);
    }
    tag.addEventListener('load', () => resolve(window.Plotly));
    tag.addEventListener('error', () => { ready = null; reject(new Error('Plotly did not load')); });
  });
  return ready;
}

// fn(Plotly) now if Plotly has run, else once it has.
export function withPlotly(fn) {
  if (window.Plotly) return fn(window.Plotly);
  return plotlyReady().then(fn);
}
