// The lessons: one per idea of dropout, each with a question to answer before watching
// the experiment, and a preset. Plain data: the lessons page renders it, the embed page
// imports it to open ?lesson=<id> with the lesson's settings. The sweep's preset is the
// server's (state.js PRESETS, from model_server/sweep.py); the others are written once here.
//
// Each lesson: {id, letter, title, hash, covers, text, question: {prompt, options: [{id,
// text}], answer, explain}, look, view, ...view options}.
//   hash  the playground URL hash of the lesson's preset (state.js keys); the lesson's
//         runs are configured from it, and "Open in the playground" links to /#hash.
//   view  which live view (static/js/lesson_views/) runs the experiment; it starts only
//         once the visitor has answered the question (predict, then run).
// Text may mark code with `backticks`. p is always the DROP probability.
import { PRESETS, presetHash } from './state.js';

// a few noisy moons and a dropout net: most lessons start here
const MOONS = '#data=moons&points=300&noise=0.2&p=0.5,0.5';
const SWEEP = { ps: [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1], steps: PRESETS.sweep.steps };

export const LESSONS = [
  {
    id: 'thinned',
    letter: 'a',
    title: 'A new thinned network at every step',
    hash: '#hidden=12,12&p=0.5,0.25&speed=10',
    covers: ['build-up 1: what dropout is', 'expert note: a fresh mask for every batch'],
    text: [
      'In train mode a dropout layer tosses a biased coin for each neuron of each example: with probability p it sets that output to zero for this one step, otherwise it keeps it. At the next step it tosses again.',
      'So the network that processes a batch is never quite the same twice. It is one of the many "thinned" sub-networks that share the same weights, and no neuron can rely on a particular partner being present. That discourages fragile teams of neurons that only work together (co-adaptation).',
      'Here the network trains slowly, 10 steps a second, so that every step\'s mask reaches the page.',
    ],
    question: {
      prompt: 'Layer 1 has p = 0.5. Which of its neurons are dropped from one step to the next?',
      options: [
        { id: 'same', text: 'The same half every step: dropout picks its neurons once.' },
        { id: 'fresh', text: 'A fresh random set at every step; over time each neuron is kept about half the time.' },
        { id: 'weak', text: 'Mostly the neurons with the smallest weights.' },
      ],
      answer: 'fresh',
      explain: 'Masks are drawn anew at every step, for every example, and they ignore the weights entirely. Every row of the raster flickers, and every neuron\'s measured keep rate settles near 1 − p.',
    },
    look: [
      'Raster: one column per training step, one row per neuron; dark = kept, light = dropped. This is the mask PyTorch applied to the example on display.',
      'No row stays light for long: each neuron is dropped sometimes and kept sometimes.',
      'Bars: each neuron\'s keep rate, counted over every example of every step so far. They gather around the dashed line at 1 − p of their layer (0.5 in layer 1, 0.75 in layer 2).',
    ],
    view: 'masks',
    steps: 3000,
  },
  {
    id: 'train-vs-eval',
    letter: 'b',
    title: 'Train mode, eval mode, and forgetting model.eval()',
    hash: `${MOONS}&hidden=32,32`,
    covers: ['build-up 2: nn.Dropout in PyTorch', 'myth 1: dropout at test time', 'pitfall 1: no model.eval()'],
    text: [
      'Dropout only acts in train mode. After `model.eval()` a dropout layer hands its input on untouched, so one input always gets one answer.',
      'PyTorch never switches the mode for you. Predict without `model.eval()` and each call runs a freshly thinned network: the answers wobble from call to call, and the decision boundary itself flickers.',
      'The network below keeps training while we probe it with its current weights; probing changes nothing in the training.',
    ],
    question: {
      prompt: 'A trained network that is still in train mode gets the same input 30 times in a row. What comes out?',
      options: [
        { id: 'same', text: 'The same answer 30 times: the weights did not change.' },
        { id: 'vary', text: 'Answers that change from pass to pass; the eval-mode answer is not their average.' },
        { id: 'error', text: 'An error: PyTorch will not predict in train mode.' },
      ],
      answer: 'vary',
      explain: 'Every forward pass in train mode draws a new mask, with or without an optimizer step, so the output changes from pass to pass. Eval mode has no randomness left. The train-mode answers are not centred on the eval-mode one: the network is nonlinear (ReLU between the layers, a sigmoid at the end), so averaging its outputs over masks does not give the output of the full network. For a point the network is sure about, a probability cannot rise much further but an unlucky mask can pull it far down, so the scatter leans to the less sure side and its mean is less sure than eval mode.',
    },
    look: [
      'Top: P(class 1) for one training point, 30 passes in each mode. Eval mode draws a flat line; the train-mode dots scatter, unevenly: count how many fall below and above the line, and compare their mean (dotted) with it.',
      'Bottom: the decision boundary computed in train mode, each frame with new masks, beside the steady eval-mode boundary.',
      'The numbers: the spread (standard deviation) of the 30 answers in each mode (in eval mode exactly 0), and two boundary numbers, each with one definition: the flicker (how much the train-mode picture changes from one pass to the next) and the distance of a train-mode picture from the eval-mode one.',
    ],
    view: 'train-vs-eval',
    steps: 4000,
  },
  {
    id: 'inverted-scaling',
    letter: 'c',
    title: 'Why kept values are divided by 1 − p',
    hash: `${MOONS}&hidden=16,16`,
    covers: ['build-up 3: scaling', 'under the hood: the mask and 1/(1 − p)', 'expert note: inverted dropout'],
    text: [
      'When dropout zeroes a fraction p of a layer\'s outputs, the next layer\'s input shrinks: on average to (1 − p) of its size. In eval mode nothing is zeroed, so without a correction the next layer would get bigger inputs at test time than it ever saw in training.',
      'PyTorch corrects during training ("inverted dropout"): each value that survives is divided by 1 − p. Averaged over many masks, the output then equals the input, which is exactly what eval mode passes on. Nothing needs rescaling at test time.',
      'A correction to the explainer this playground grew from: its overview says that at test time all neurons are on "but outputs are scaled", and one of its steps is titled as if dropout scaled outputs during testing. That describes the original recipe, not PyTorch. The first dropout papers (Hinton et al. 2012, Srivastava et al. 2014) trained with plain 0/1 masks and, at test time, multiplied the outgoing weights by the keep probability 1 − p. PyTorch\'s `nn.Dropout` does the inverse: it divides by 1 − p while training, and in eval mode it is the identity. Both give the next layer inputs of the same average size; only the moment of the scaling differs. Below you can measure which one PyTorch does.',
    ],
    question: {
      prompt: 'Train mode, p = 0.5. What happens to a value that is NOT dropped?',
      options: [
        { id: 'same', text: 'It passes through unchanged.' },
        { id: 'double', text: 'It is doubled: divided by 1 − p = 0.5.' },
        { id: 'half', text: 'It is halved, to make up for the dropped ones.' },
      ],
      answer: 'double',
      explain: 'Kept values are multiplied by 1/(1 − p), so their mean over many masks equals the eval-mode value, and eval mode scales nothing. The counterfactual without that factor (the original papers\' training, which then had to scale by 1 − p at test time) averages only (1 − p) times the input.',
    },
    look: [
      'Bars: the 16 values one example brings to the first dropout layer (what eval mode passes on), and one train-mode output: 0 where dropped, ×1/(1 − p) where kept.',
      'Scatter: every value\'s mean over 1000 train-mode passes against its eval-mode value. With inverted dropout the points sit on the diagonal; without rescaling they sink to the line (1 − p)·x.',
      'Move p: the kept factor and the lower line follow.',
    ],
    view: 'inverted-scaling',
    steps: 2000,
  },
  {
    id: 'placement',
    letter: 'd',
    title: 'Dropout before or after the activation?',
    hash: `${MOONS}&hidden=16,16&evalk=20&speed=400`,
    variants: [{ name: 'after activation', hash: '' }, { name: 'before activation', hash: 'place=before_activation' }],
    stride: 20,  // lockstep: both runs take 20 steps, then both frames are compared
    covers: ['build-up 4: placement', 'pitfall 3: dropout before the activation'],
    text: [
      'The usual order is Linear → activation → Dropout. Whether the other order hurts depends on the activation.',
      'ReLU maps 0 to 0 and commutes with positive scaling, so ReLU(dropout(x)) gives exactly the same numbers as dropout(ReLU(x)) for the same mask. A sigmoid maps a zeroed input to 0.5: a "dropped" neuron still sends 0.5 onward, and kept inputs are scaled before the squashing instead of after.',
      'Two networks with the same seed (same weights, batches and masks) train side by side, one per order, in lockstep: both take 20 steps, then both are shown at that same step.',
      'The explainer counts "dropout before the activation" among its pitfalls. Whether it really hurts is a question for measurement: the last panel trains both orders on 8 seeds with the activation you picked and compares their test losses with their spread over seeds.',
    ],
    question: {
      prompt: 'The experiment starts with ReLU. With the same seed, how differently do "dropout after the activation" and "dropout before it" train? (Switch the activation later: the verdict follows it.)',
      options: [
        { id: 'identical', text: 'Identically: both orders compute exactly the same numbers.' },
        { id: 'differ', text: 'Differently, but neither order ends clearly better than the other.' },
        { id: 'before-worse', text: 'Dropout before the activation is clearly worse.' },
        { id: 'after-worse', text: 'Dropout after the activation is clearly worse.' },
      ],
      answer: 'identical',  // for ReLU; for the other activations the seed experiment decides
      explain: 'ReLU maps 0 to 0 and commutes with the positive factor 1/(1 − p), so with the same mask both orders compute the same numbers at every step: the bars of the two runs match, the test-loss curves coincide to the last digit, and so do the results on every seed. The order can matter only for activations with f(0) ≠ 0 or that do not commute with scaling: switch to sigmoid or tanh.',
    },
    look: [
      'Loss chart: solid = after, dashed = before. The largest gap between the two test losses at the same step is printed above the charts.',
      'Layer 1 bars: both runs at the same step, for the same example and mask. Solid bars: kept neurons, in each run\'s colour; hollow hatched bars marked ×: dropped ones.',
      'What a dropped neuron sends on, measured from the live masks and activations: 0 for after; 0.5 for before with sigmoid.',
      'Seeds panel: each seed\'s test loss for both orders (one line per seed) and the mean ± standard deviation. A difference smaller than that spread is no evidence that one order is better.',
    ],
    view: 'placement',
    steps: 1500,
  },
  {
    id: 'rate-sweep',
    letter: 'e',
    title: 'How much dropout? A sweep over p, up to p = 1',
    hash: presetHash('sweep'),
    sweep: SWEEP,
    covers: ['build-up 5: the drop probability', 'myth 2: higher p is always better', 'pitfall 2: p = 1'],
    text: [
      'p trades fitting for robustness. With too little dropout a wide network memorises the noise of a small training set; with too much it cannot even fit its training data.',
      'Eleven copies of one network (64-64 hidden, Adam) train at once on 50 noisy XOR points: identical start, identical batches, each with its own p from 0 to 1. Losses are measured in eval mode on the whole training and test sets. With 50 test points the accuracy hardly moves, so watch the test loss.',
    ],
    question: {
      prompt: 'After 500 steps, which p has the lowest test loss?',
      options: [
        { id: 'zero', text: 'p = 0: dropout only throws information away.' },
        { id: 'middle', text: 'Somewhere in the middle.' },
        { id: 'one', text: 'The bigger the better, all the way to p = 1.' },
      ],
      answer: 'middle',
      explain: 'p = 0 fits the training points almost perfectly while its test loss climbs: overfitting. Large p fits neither set. At p = 1 every hidden value is zero, so no weight gets a gradient; only the output bias learns the class balance and the loss stays near the label entropy, about 0.69.',
    },
    look: [
      'Left: train and test loss after the steps so far, against p; it updates as the sweep trains.',
      'The gap between the two lines is overfitting; it closes as p grows, and at high p both rise.',
      'Right: test loss over training for each p: p = 0 turns upward after a while.',
      'p = 1 (marked): flat near 0.69, the label entropy. It learned nothing but the class balance.',
    ],
    view: 'rate-sweep',
  },
  {
    id: 'spatial',
    letter: 'f',
    title: 'Feature maps: Dropout2d versus element-wise Dropout',
    hash: '#data=digits&kind=cnn&hidden=8,8&p=0.5,0.5&dk=dropout2d&batch=32',
    covers: ['build-up 6: convolutional layers', 'myth 4: plain dropout on conv layers'],
    text: [
      'Neighbouring pixels of a feature map carry nearly the same information. Zeroing single pixels hides little: the neighbours are still there, and the next 3×3 filter reads them.',
      '`nn.Dropout2d` drops whole channels instead: a feature map is either all there (scaled by 1/(1 − p)) or all gone, so the network cannot lean on any single feature detector. Below, the digits CNN trains, and one digit\'s first-layer feature maps go through both kinds of dropout with the same p.',
    ],
    question: {
      prompt: 'nn.Dropout2d(p=0.5) acts on 8 feature maps of 8×8 pixels. What does it zero?',
      options: [
        { id: 'pixels', text: 'About half of the 512 pixels, scattered over all maps.' },
        { id: 'maps', text: 'About half of the maps, each one completely.' },
        { id: 'position', text: 'The same pixel positions in every map.' },
      ],
      answer: 'maps',
      explain: 'Dropout2d draws one coin per channel of each example; element-wise Dropout draws one per pixel. Both zero about a fraction p of the values, but only Dropout2d removes whole features.',
    },
    look: [
      'Top row: the digit and its 8 feature maps entering dropout.',
      'Middle row: after Dropout2d. Whole maps are blank; the others are brighter (×1/(1 − p)).',
      'Bottom row: after element-wise Dropout. Every map has scattered holes; no map is gone.',
      'New masks every couple of seconds, from the training network.',
    ],
    view: 'spatial',
    steps: 3000,
  },
  {
    id: 'ensemble',
    letter: 'g',
    title: 'Many thinned networks: ensembles and MC dropout',
    hash: '#data=moons&points=300&noise=0.25&hidden=32,32&p=0.5,0.5',
    covers: ['build-up 7: ensemble and noise views', 'connection: ensemble learning'],
    text: [
      'Each mask selects one thinned network; training improves all of them at once through the weights they share. Averaging the predictions of many thinned networks would be an ensemble.',
      'Eval mode is the cheap stand-in: one pass with every neuron on (the training-time scaling is already built in) approximates that average. Averaging T train-mode passes on purpose is "MC dropout", and the spread between the passes is an uncertainty estimate: large where the data leave the answer open.',
    ],
    question: {
      prompt: 'How does the eval-mode network (every neuron, one pass) compare with the average of many thinned networks?',
      options: [
        { id: 'close', text: 'It is close to the average: a cheap approximation of the ensemble.' },
        { id: 'one', text: 'It behaves like one random thinned network.' },
        { id: 'exact', text: 'It is exactly the average.' },
      ],
      answer: 'close',
      explain: 'One draw of T masks is one estimate, and its numbers change from draw to draw; so the claim is checked over several draws. In our tests (five training seeds of this preset, six draws each) the eval-mode network was, in every draw, closer to the average of the thinned networks than a typical single thinned network, by more than the spread over draws; the draws panel below checks it again for the network on screen. It is not the average: the network is nonlinear, so the output of the full network is not the average of the thinned outputs. Whether the MC average also predicts better than eval mode is a different question, and it has no single answer: it depends on the network (on some training seeds of this preset it does, on others eval mode is better), so read it off the draws below.',
    },
    look: [
      'Small maps: the boundaries of the first thinned networks of the first draw (each a fixed mask over the whole plane).',
      'Large maps: their average (MC dropout), the eval-mode network, and the standard deviation over the T networks (the uncertainty).',
      'Draws panel: the same numbers for several independent draws of T masks, with their mean ± standard deviation. A margin smaller than that spread proves nothing.',
      'The uncertainty is highest along the boundary and away from the data.',
      'Change T: the draws agree more as T grows.',
    ],
    view: 'ensemble',
    steps: 1500,
  },
  {
    id: 'batchnorm',
    letter: 'h',
    title: 'Dropout and BatchNorm: the variance shift',
    hash: `${MOONS}&hidden=16,16&bn=after_dropout&batch=20&evalk=50`,
    variants: [{ name: 'Dropout → BatchNorm', hash: '' }, { name: 'BatchNorm → Dropout', hash: 'bn=before_dropout' }],
    stride: 50,
    covers: ['expert note: dropout and batch normalisation'],
    text: [
      'BatchNorm learns the variance of its inputs during training (its running variance) and divides by it at test time.',
      'Put dropout right before it and the inputs it learned from were noisier: the scaled mask inflates their variance. In eval mode dropout is off, the inputs are calmer, and BatchNorm divides by a variance that is too large. Putting BatchNorm before dropout spares it most of that noise.',
      'Two networks train side by side, one per order, with the same seed, in lockstep: both are measured at the same step.',
    ],
    question: {
      prompt: 'Dropout → BatchNorm. At test time, how does the variance of BatchNorm\'s inputs compare with the running variance it learned?',
      options: [
        { id: 'same', text: 'About the same.' },
        { id: 'smaller', text: 'Smaller: the training inputs were inflated by dropout.' },
        { id: 'larger', text: 'Larger.' },
      ],
      answer: 'smaller',
      explain: 'Dividing by 1 − p raises the variance of the kept values in training. BatchNorm\'s running variance remembers that, so in eval mode its inputs have a smaller variance than it divides by. With BatchNorm first, its first layer sees no dropout noise at all (ratio about 1).',
    },
    look: [
      'Bars: for each BatchNorm, the variance of its inputs in eval mode divided by its running variance. 1 means no shift.',
      'Dropout → BatchNorm: well below 1 in both layers. BatchNorm → Dropout: about 1 in layer 1; layer 2 still sees layer 1\'s dropout.',
      'Loss chart: both orders (solid and dashed).',
    ],
    view: 'batchnorm',
    steps: 3000,
  },
  {
    id: 'myths',
    letter: 'i',
    title: 'Myths: dropout shrinks the model; more dropout is always better',
    hash: `${MOONS}&hidden=32,32`,
    sweep: SWEEP,
    covers: ['myth 3: dropout makes the model smaller', 'myth 2: too much dropout', 'production: the full model at inference'],
    text: [
      'Dropout removes nothing. The parameters, the layer widths and the saved model are exactly those of the same network without dropout; during training some activations are merely multiplied by zero for one step. At inference the whole network is used.',
      'And more dropout is not more regularisation for free: past some p the network cannot fit even its training data. That is underfitting, and it shows in the training loss.',
    ],
    question: {
      prompt: 'A 2-32-32-1 network with p = 0.5 in both hidden layers. How many parameters does it have, compared with the same network at p = 0?',
      options: [
        { id: 'half', text: 'About half as many.' },
        { id: 'same', text: 'Exactly as many.' },
        { id: 'quarter', text: 'About a quarter (half of each of two layers).' },
      ],
      answer: 'same',
      explain: 'Dropout has no parameters and deletes none; the layer outputs keep their full width in both modes. In train mode some of their values are zero, that is all.',
    },
    look: [
      'Parameters with and without dropout: the same number. Move p: it does not change.',
      'Layer widths in the config, in eval mode and in train mode: identical. Only the share of zero values differs.',
      'Sweep (same network as lesson e): the training loss against p. It climbs at high p: the network underfits.',
    ],
    view: 'myths',
    steps: 3000,
  },
  {
    id: 'when-not',
    letter: 'j',
    title: 'When not to use dropout: plenty of data, and the alternatives',
    hash: presetHash('sweep'),  // the overfitting preset (model_server/sweep.py), as the copies train it
    // the experiments' params (model_server/regularizers.py); the text below describes them
    params: {
      data_size: { sizes: [50, 100, 200, 500, 1000, 2000], p: 0.5, steps: 500, seeds: 3 },
      alternatives: { p: 0.5, weight_decay: 0.01, input_noise: 0.2, steps: 500, seeds: 4 },
    },
    covers: ['when not to use: very large datasets', 'when not to use: the alternatives (weight decay, BatchNorm, augmentation)'],
    text: [
      'Overfitting takes two things: a network big enough to memorise, and too few examples to stop it. Dropout works on the first. Adding data works on the second; does dropout still help then?',
      'Part one: the network of lesson e (64-64 hidden, Adam) learns noisy XOR from 50 up to 2,000 training points, each size once without dropout and once with p = 0.5, on three seeds. All 36 copies train at once for 500 steps of 50 examples. Every size of a seed is tested on the same 1,000 test points.',
      'Part two: the other remedies the explainer names, side by side on the 50-point set where dropout shines: weight decay (0.01, Adam\'s L2 penalty), BatchNorm, augmentation (fresh Gaussian noise of σ = 0.2 added to each batch\'s points), dropout, and dropout with weight decay and augmentation together. One common setting each, not tuned. Four seeds, 24 copies at once.',
      'Lesson k trains the same preset on the same four seeds. Its copies without noise and its dropout copies are exactly the ones here without a regulariser and with dropout: the same data, initial weights and batches, and every mask drawn from a counter of the copy\'s own seed and step, whatever trains beside it. So both lessons give the same numbers for them, to the last digit.',
    ],
    question: {
      prompt: 'On 50 training points the network overfits, and dropout lowers its test loss. What happens to that gain as the training set grows to 2,000 points?',
      options: [
        { id: 'shrinks', text: 'It shrinks: with plenty of data there is little overfitting left to prevent.' },
        { id: 'same', text: 'It stays about the same: a regulariser helps at every size.' },
        { id: 'grows', text: 'It grows: a bigger dataset needs more regularisation.' },
      ],
      answer: 'shrinks',  // what we expect; the verdict shown is the measured trend
      explain: 'The measured trend decides; see the numbers below.',
    },
    look: [
      'Gap chart: test loss minus training loss, per training-set size, with and without dropout. A big gap means memorised training points.',
      'Gain chart: test loss without dropout minus with it, per size; a dot per seed. Blue bars: a gain larger than its spread over seeds.',
      'Alternatives: train and test loss for each remedy on the 50-point set. The lowest test loss is marked.',
      'The last box holds the explainer\'s "when not to use" claims against these measurements, including where they disagree.',
    ],
    view: 'when-not',
  },
  {
    id: 'noise',
    letter: 'k',
    title: 'Dropout as noise: a random factor with mean 1',
    hash: `${presetHash('sweep')}&speed=100`,
    params: { noise_injection: { steps: 500, seeds: 4 } },
    covers: ['connection: noise injection', 'build-up 7: the noise view'],
    text: [
      'Another way to read dropout: it multiplies every value leaving a layer by a random factor. With probability p the factor is 0; otherwise it is 1/(1 − p). On average the factor is exactly 1, so nothing changes on average, and its variance is p/(1 − p): 1 at p = 0.5. Dropout injects noise, of one particular shape.',
      'Is it the shape that matters, the hard zeros that switch neurons off? Swap the 0-or-1/(1 − p) factor for a Gaussian one with the same mean and variance, N(1, p/(1 − p)), and train again ("Gaussian dropout"). It never switches a neuron off; it jitters every value, and sometimes flips its sign.',
      'Left: the factors of a live run of the overfitting preset, counted from the masks it really applied. Right and below: the same preset trained on four seeds three ways at once, without noise, with dropout and with Gaussian noise.',
      'Lesson j trains these seeds too. Its copies without a regulariser and its dropout copies are exactly the ones here without noise and with dropout: the same data, initial weights and batches, and every mask drawn from a counter of the copy\'s own seed and step, not from a stream shared with the copies beside it. So their numbers agree to the last digit.',
    ],
    question: {
      prompt: 'p = 0.5: Gaussian factors with mean 1 and variance 1 instead of dropout\'s 0 or 2. How well do they hold back overfitting on the preset?',
      options: [
        { id: 'as-well', text: 'About as well as dropout, or better: mean and variance are what count.' },
        { id: 'worse', text: 'Clearly less well than dropout: the hard zeros are what regularise.' },
        { id: 'no-help', text: 'Not at all: noise that never drops a neuron does not regularise.' },
      ],
      answer: 'as-well',  // what we expect; the verdict shown follows the measured losses
      explain: 'The measured losses decide; see the numbers below.',
    },
    look: [
      'Left: the share of the live run\'s factors that were 0 and that were 1/(1 − p), against p and 1 − p (black lines). Mean and variance, measured and in theory, are in the tiles above.',
      'Right: every factor the Gaussian copies drew, as a histogram, and the bell curve N(1, p/(1 − p)). The vermillion bars below 0 flip a value\'s sign.',
      'Bottom: train and test loss of the three kinds of copies. No noise memorises (low train, high test loss); both noises close the gap.',
      'Move p: the live run and the copies are measured again at the new p.',
    ],
    view: 'noise',
    steps: 3000,
  },
  {
    id: 'uncertainty',
    letter: 'l',
    title: 'Where the network does not know',
    hash: '#task=regression&data=sine_gap&hidden=32,32&p=0.5,0.5&batch=25&passes=30',
    params: { uncertainty: { seeds: 3, steps: 1500, p: 0.5, low_p: 0.1, passes: 30 } },
    covers: ['beyond the explainer: Monte Carlo dropout', 'myth 1: dropout at test time'],
    text: [
      'Keep dropout switched on when predicting and every call runs another thinned network. Ask T of them about the same x and their answers spread. Monte Carlo dropout reads that spread as the model\'s uncertainty: the mean of the T answers is the prediction, and mean ± 2 standard deviations is a band around it.',
      'The data: a noisy sine with no training points in the middle, and nothing beyond the left and right ends. Above, one network trains live and its band (30 passes with dropout on) is redrawn as it learns.',
      'The verdict comes from a measurement on the server: the same setup trained on three seeds to step 1,500, the band\'s width read in the gap, on the data and beyond it. Beside it, on the same data, a deep ensemble: five networks without dropout, started from different weights, whose disagreement is the other common measure of uncertainty. And the band at p = 0.1 against p = 0.5, with the share of test points each one covers.',
    ],
    question: {
      prompt: 'After training, where will the MC-dropout band be widest?',
      options: [
        { id: 'gap', text: 'In the gap, where there are no training points.' },
        { id: 'edges', text: 'At the edges, beyond the range of the data.' },
        { id: 'same', text: 'About the same everywhere.' },
        { id: 'none', text: 'Nowhere: dropout gives no uncertainty, the passes agree.' },
      ],
      answer: 'gap',  // what the setup is meant to show; the verdict shown is the measured widths'
      explain: 'The measured widths decide; see the numbers below.',
    },
    look: [
      'Dots: training points; rings: test points. Dashed line: the eval-mode prediction (no dropout). Solid blue: the mean of the passes; shaded: mean ± 2 standard deviations; faint lines: single thinned networks.',
      'Ensemble panel: where do the five networks disagree, and is that where the dropout band is wide?',
      'p panel: fewer dropped units make the passes agree more; the coverage says whether the narrower band still holds the test points.',
    ],
    view: 'uncertainty',
    steps: 1500,
  },
];

export const BY_ID = Object.fromEntries(LESSONS.map(l => [l.id, l]));
