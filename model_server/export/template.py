"""The exported script's text: SCRIPT, a str.format template (doubled braces are the
script's own), and the source lines it picks from by config. script_source.py fills it in."""
from __future__ import annotations

# the exported script's optimiser line for each config optimizer
OPTIMIZERS = {
    "adam": "torch.optim.Adam(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)",
    "momentum": "torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9, weight_decay=WEIGHT_DECAY)",
    "sgd": "torch.optim.SGD(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)",
}

DIGITS_SOURCE = '''\
from sklearn.datasets import load_digits


def points():
    """sklearn's 8x8 digits, pixels scaled into [0, 1], shape (N, 1, 8, 8); labels 0..9."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    return x, digits.target.astype(np.int64)
'''


# why an exported CNN or BatchNorm network's numbers drift from the page's
DRIFT_NOTE = """\
The playground trains a CNN and BatchNorm layers as batched kernels (one op over many
runs' rows), which add the same numbers in another order than torch.nn's layers; the
masks and batches are the same, but rounding makes the weights drift apart over
thousands of steps, and the final test losses with them. An MLP without BatchNorm
retraces the page's run to float rounding."""


CLASSIFY_MC = '''\
def mc_predict(net, x, samples=30):
    """(mean, std) of the probabilities over `samples` passes, each with fresh dropout
    masks; only the dropout layers train, and the net is left in eval mode."""
    net.eval()
    for module in net.modules():
        if isinstance(module, DROPOUT_LAYERS):
            module.train()
    try:
        with torch.inference_mode():
            draws = torch.stack([probabilities(net(x)) for _ in range(samples)])
    finally:
        net.eval()
    return draws.mean(0), draws.std(0)


'''

# a regression's mc_predict: the passes are the playground's thinned networks (engine/mc.py)
REGRESSION_MC = '''\
PASS_SALT = {pass_salt!r}  # xored into the run's key: MC passes draw apart from training steps


class PassMasks(PlaygroundMasks):
    """MC dropout's passes as the playground draws them: pass j (set step = j, from 1)
    is one thinned network, one mask per unit kept for every input, from the counter
    under the run's pass key."""

    per_example = False

    def __init__(self, net):
        super().__init__(net)
        self.key = mix(np.array([(run_key(SEED) ^ PASS_SALT) & MASK32], np.int64)).astype(np.int64)


def mc_predict(net, x, samples=30):
    """(mean, std) of the predictions over `samples` passes, pass j the playground's
    thinned network j (the page's band); only the dropout layers train, and the net is
    left in eval mode. std is the passes' own spread (divided by samples)."""
    net.eval()
    masks = PassMasks(net)
    for layer in masks.layers:
        layer.train()
    draws = []
    try:
        with torch.inference_mode():
            for j in range(1, samples + 1):
                masks.step = j
                draws.append(probabilities(net(x)))
    finally:
        masks.remove()
        net.eval()
    draws = torch.stack(draws)
    return draws.mean(0), draws.std(0, correction=0)


'''


SCRIPT = '''\
#!/usr/bin/env python3
"""A network exported from the Dropout Playground, as plain PyTorch.

    {arch}
    {activation}, {kinds}, dropout {placement}, batchnorm {batchnorm}
    data: {data_line}, {train_fraction:g} for training, seed {seed}
    {optimizer}, learning rate {lr:g}, weight decay {weight_decay:g}, batch size {batch_size}

p is the DROP probability (PyTorch's convention): in training mode each unit is zeroed
with probability p and the kept ones are scaled by 1 / (1 - p); net.eval() turns
dropout off. Same data, initialisation, batch order and dropout masks as the
playground{retrace}.{drift}

    python {filename}                       # train {steps} steps, print test metrics
    python {filename} --steps 500
    python {filename} --weights w.safetensors --steps 0   # evaluate the playground's weights

Needs {needs} (and safetensors for --weights).
"""
import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# the playground's run config, for the record
CONFIG = {config}

SEED = {seed}
{generated}TRAIN_FRACTION = {train_fraction!r}
LR = {lr!r}
WEIGHT_DECAY = {weight_decay!r}
BATCH_SIZE = {batch_size}
STEPS = {steps}
EVAL_EVERY = {eval_every}
# the run's live changes, replayed step for step: (from step, p per dropout layer,
# learning rate, mode); mode "eval" trains with dropout off and BatchNorm on its running
# statistics, as the playground's eval switch does
{schedule}


# ---- data ------------------------------------------------------------------------------
{data_source}

def make_data():
    """Shuffle with SEED + 1 and split: (x_train, y_train, x_test, y_test) tensors."""
    x, y = points()
    order = np.random.default_rng(SEED + 1).permutation(len(x))
    x, y = x[order], y[order]
    n_train = max(1, int(len(x) * TRAIN_FRACTION))
    x, y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy({y_cast})
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


# ---- dropout masks, as the playground draws them -------------------------------------
# Each unit's mask bit comes from a counter: the seed, the step (from 1) and the unit's
# place in the step (layer after layer, example by example), mixed into 32 bits; the
# unit is kept when they fall below (1 - p) * 2^32. train() applies them (PlaygroundMasks);
# drop it there and torch's own generator draws other masks, as good.
{masks}

class PlaygroundMasks:
    """While training, each dropout layer applies the playground's mask of the step
    (torch's own formula, with the mask drawn by the functions above instead of torch's
    generator): set step before each forward pass; remove() when done."""

    per_example = True  # a mask per example and unit (a training step's)

    def __init__(self, net):
        self.layers = [m for m in net.modules() if isinstance(m, DROPOUT_LAYERS)]
        self.key = np.array([run_key(SEED)], np.int64)
        self.step = 1
        self.drawn = []
        self.handles = [m.register_forward_hook(self.apply) for m in self.layers]

    def noise_shape(self, module, x):
        """The units one example draws: a channel for Dropout2d, else every unit."""
        return (x.shape[1], 1, 1) if isinstance(module, nn.Dropout2d) else x.shape[1:]

    def apply(self, module, inputs, output):
        x, p = inputs[0], module.p
        if module is self.layers[0]:  # a forward pass begins: units are placed from 0
            self.drawn = []
        shape = (x.shape[0] if self.per_example else 1, *self.noise_shape(module, x))
        at, n = sum(self.drawn), math.prod(shape)
        self.drawn.append(n)  # every layer has its places, whether it draws or not
        if not module.training or not 0 < p < 1:
            return output  # eval mode, p = 0 (x itself) or p = 1 (zeros): nothing is drawn
        bits = unit_bits(step_bits(self.key, np.array([self.step], np.int64)), places(at + n))[0, at:]
        keep = torch.from_numpy(bits < keep_threshold(p)).reshape(shape).to(x.dtype)
        if isinstance(module, nn.AlphaDropout):
            alpha = {selu_alpha_prime!r}  # alpha' of aten's alpha dropout, as the playground has it
            a = 1 / math.sqrt((alpha ** 2 * p + 1) * (1 - p))
            return x * (keep * a) + (keep - 1) * (alpha * a) + alpha * a * p
        return x * (keep * (1 / (1 - p)))

    def remove(self):
        for handle in self.handles:
            handle.remove()


# ---- model -----------------------------------------------------------------------------
class Net(nn.Module):
    """{arch}"""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([
{blocks}
        ])
        self.head = {head}

    def forward(self, x):
        {flatten}for block in self.blocks:
            x = block(x)
        return self.head(x.flatten(1)){squeeze}


def init_weights(net, generator):
    """PyTorch's default initialisation, drawn from one seeded generator."""
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            bound = 1 / math.sqrt(m.weight[0].numel())
            nn.init.uniform_(m.bias, -bound, bound, generator=generator)


def loss_fn(logits, y):
    return {loss}


@torch.no_grad()
def evaluate(net, x, y):
    """Test loss and accuracy with dropout off (eval mode)."""
    was = net.training
    net.eval()
    logits = net(x)
    net.train(was)
    return loss_fn(logits, y).item(), ({hits}).float().mean().item()


# ---- training --------------------------------------------------------------------------
def train(net, data, steps=STEPS, eval_every=EVAL_EVERY, log=print):
    """steps optimiser steps on mini-batches in the playground's order; returns the
    per-step training losses."""
    x_train, y_train, x_test, y_test = data
    batches = torch.Generator().manual_seed(SEED + 2)
    opt = {optimizer_line}
    n, order, pos, losses = len(x_train), None, 0, []
    net.train()
    masks = PlaygroundMasks(net)
    changes = iter(SCHEDULE)
    change = next(changes, None)
    for step in range(1, steps + 1):
        masks.step = step
        while change is not None and change[0] <= step:  # the settings from this step on
            _, ps, lr, mode = change
            for layer, p in zip(masks.layers, ps):
                layer.p = p
            for group in opt.param_groups:
                group["lr"] = lr
            net.train(mode == "train")
            change = next(changes, None)
        if BATCH_SIZE >= n:
            x, y = x_train, y_train
        else:
            if order is None or pos + BATCH_SIZE > n:
                order, pos = torch.randperm(n, generator=batches), 0
            idx = order[pos:pos + BATCH_SIZE]
            pos += BATCH_SIZE
            x, y = x_train[idx], y_train[idx]
        loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step % eval_every == 0 or step == steps:
            test_loss, acc = evaluate(net, x_test, y_test)
            recent = losses[-eval_every:]
            log(f"step {{step:6d}}  train loss {{sum(recent) / len(recent):.4f}}  "
                f"test loss {{test_loss:.4f}}  {metric}")
    masks.remove()
    return losses


# ---- using the trained network --------------------------------------------------------
# Which one to call:
#   predict()     the production pattern: net.eval() switches every dropout layer off (and
#                 makes BatchNorm use its running statistics) and torch.inference_mode()
#                 skips autograd's bookkeeping. One input, one answer, every time. Use it
#                 to serve predictions and to measure accuracy.
#   mc_predict()  Monte Carlo dropout: only the dropout layers go back to training mode,
#                 so each pass runs a different thinned network; everything else, BatchNorm
#                 included, stays in eval mode (in train mode BatchNorm would normalise with
#                 the batch's statistics and overwrite its running ones). The mean over the
#                 passes is the prediction, their spread a measure of how unsure the network
#                 is. Use it when that uncertainty matters, at `samples` times the cost.
DROPOUT_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                  nn.FeatureAlphaDropout)


def probabilities(logits):
    return {probs}


def predict(net, x):
    """Class probabilities with dropout off; the same x always gives the same output."""
    net.eval()
    with torch.inference_mode():
        return probabilities(net(x))


{mc_predict}def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS, help="optimiser steps (default %(default)s)")
    parser.add_argument("--weights", help="start from these weights (a .safetensors file from the playground)")
    args = parser.parse_args(argv)
    data = make_data()
    net = Net()
    init_weights(net, torch.Generator().manual_seed(SEED))
    if args.weights:
        from safetensors.torch import load_file
        net.load_state_dict(load_file(args.weights))
    print(f"{{sum(p.numel() for p in net.parameters())}} parameters, "
          f"{{len(data[0])}} training and {{len(data[2])}} test examples")
    train(net, data, args.steps)
    test_loss, acc = evaluate(net, data[2], data[3])
    print(f"final: test loss {{test_loss:.4f}}, {metric}")
    predict(net, data[2])  # what a server would call
    _, spread = mc_predict(net, data[2])
    print(f"MC dropout, 30 passes: mean spread (std) of the predicted {outputs} {{spread.mean():.4f}}")
    return net


if __name__ == "__main__":
    main()
'''
