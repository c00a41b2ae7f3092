// Which live view runs each lesson (the `view` field of static/js/lessons.js).
// A view is mount(root, lesson, ctx) -> {stop(): Promise}; ctx gives it a controls box,
// evidence(text) (the measured facts the answer is revealed with), tick() (a redraw with
// live data), done() (all measured: a lesson of one-off experiments), problem(text) and
// warning(text).
import { mount as masks } from './masks.js';
import { trainVsEval, invertedScaling } from './modes.js';
import { placement, batchnorm } from './pairs.js';
import { rateSweep, myths } from './sweep.js';
import { spatial, ensemble } from './maps.js';
import { whenNot, noise } from './regularizers.js';
import { uncertainty } from './uncertainty.js';

export const VIEWS = {
  masks,
  'train-vs-eval': trainVsEval,
  'inverted-scaling': invertedScaling,
  placement,
  'rate-sweep': rateSweep,
  spatial,
  ensemble,
  batchnorm,
  myths,
  'when-not': whenNot,
  noise,
  uncertainty,
};
