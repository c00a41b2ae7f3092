"""A run, taken home: runnable PyTorch code, metrics as CSV/JSON, weights as safetensors.

    script(cfg, steps=2000) -> str      a standalone Python script (torch, numpy, scikit-learn):
                                        trains, then predicts in eval mode or with MC dropout
    metrics_csv(run) / metrics_json(run) -> str
    weights(run) -> bytes               safetensors; never pickle

The script builds the same network with torch.nn modules (nn.Dropout, nn.Dropout2d,
nn.AlphaDropout in place of the recording layers), the same data (generated with the
same code and seeds), the same initialisation and mini-batch order, and the same loss
and optimiser. Its module names match Net's, so the weights file loads into it as is.
While it trains, the script's dropout layers apply the playground's own masks: the
functions of model_server.masks, copied into the script, draw them from (seed, step,
unit), and train() puts them in place with forward hooks. So an exported MLP retraces
the playground's run step for step (to float rounding; the playground uses fused
optimisers); a CNN's masks are drawn alike, but only MLPs are tested. Outside train()
the layers are torch.nn's, with torch's own generator (mc_predict).
"""
from __future__ import annotations

import csv
import inspect
import io
import json
import pprint
import textwrap

import torch
from safetensors.torch import save

from .config import RunConfig
from .network import block_order
from . import datasets, masks
from .layers import SELU_ALPHA_PRIME
from .runstate import FrozenRun

# the exported script's optimiser line for each config optimizer
OPTIMIZERS = {
    "adam": "torch.optim.Adam(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)",
    "momentum": "torch.optim.SGD(net.parameters(), lr=LR, momentum=0.9, weight_decay=WEIGHT_DECAY)",
    "sgd": "torch.optim.SGD(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)",
}
ACTIVATIONS = {"relu": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()", "gelu": "nn.GELU()",
               "selu": "nn.SELU()", "linear": "nn.Identity()"}
HISTORY_FIELDS = ("step", "train_loss", "test_loss", "test_acc")


def _points_source(dataset: str) -> str:
    """The body of points(): the 2D set exactly as model_server.datasets draws it."""
    calls = {
        "circle": "x, y = make_circles(N_POINTS, noise=NOISE, factor=0.5, random_state=SEED)",
        "moons": "x, y = make_moons(N_POINTS, noise=NOISE, random_state=SEED)",
        "gauss": "x, y = make_blobs(N_POINTS, centers=[(-1, -1), (1, 1)], cluster_std=0.4 + 2 * NOISE, random_state=SEED)",
        "xor": "x, y = _xor(N_POINTS, NOISE, np.random.default_rng(SEED))",
        "spiral": "x, y = _spiral(N_POINTS, NOISE, np.random.default_rng(SEED))",
    }
    helper = ""
    if dataset in ("xor", "spiral"):
        helper = inspect.getsource(getattr(datasets, f"_{dataset}")) + "\n\n"
    imports = {"circle": "make_circles", "moons": "make_moons", "gauss": "make_blobs"}
    sk = f"from sklearn.datasets import {imports[dataset]}\n\n\n" if dataset in imports else ""
    return sk + helper + textwrap.dedent(f'''\
        def points():
            """{dataset}: 2D points scaled into [-1, 1], labels 0/1."""
            {calls[dataset]}
            x = x - x.mean(axis=0)
            x = x / (np.abs(x).max() + 1e-9)  # into [-1, 1]
            return x.astype(np.float32), y
        ''')


def _custom_source(cfg: RunConfig) -> str:
    """POINTS (the visitor's own set, as sent) and the body of points() that reads it as
    model_server.datasets.custom_points does."""
    rows = [f"[{p.x!r}, {p.y!r}, {p.label}]," for p in cfg.data.points]
    lines = "\n".join("    " + " ".join(rows[i:i + 4]) for i in range(0, len(rows), 4))
    return f'''\
# the playground's points, drawn or uploaded: x, y (inside the plane [-1.5, 1.5]), label
POINTS = [
{lines}
]


def points():
    """custom: the {len(rows)} points as they came, labels 0/1."""
    rows = np.asarray(POINTS, dtype=np.float32)
    return rows[:, :2].copy(), rows[:, 2].astype(np.int64)
'''


DIGITS_SOURCE = '''\
from sklearn.datasets import load_digits


def points():
    """sklearn's 8x8 digits, pixels scaled into [0, 1], shape (N, 1, 8, 8); labels 0..9."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    return x, digits.target.astype(np.int64)
'''


def _blocks_source(cfg: RunConfig, input_shape: tuple[int, ...]) -> tuple[list[str], str]:
    """One nn.Sequential line per hidden block (the order of network.Block), and the head."""
    m = cfg.model
    cnn = m.kind == "cnn"
    c_in = input_shape[0] if cnn else int(torch.Size(input_shape).numel())
    lines = []
    for width, p in zip(m.hidden, m.p):
        layer = f"nn.Conv2d({c_in}, {width}, 3, padding=1)" if cnn else f"nn.Linear({c_in}, {width})"
        bn = f"nn.BatchNorm2d({width})" if cnn else f"nn.BatchNorm1d({width})"
        if m.dropout_kind == "alpha":
            drop = f"nn.AlphaDropout(p={p!r})"
        elif m.dropout_kind == "dropout2d" and cnn:
            drop = f"nn.Dropout2d(p={p!r})"
        else:  # Dropout2d on (N, features) drops single features: that is nn.Dropout
            drop = f"nn.Dropout(p={p!r})"
        parts = {"act": ACTIVATIONS[m.activation], "drop": drop, "bn": bn}
        middle = [parts[name] for name in block_order(m)]
        lines.append(f"nn.Sequential({', '.join([layer, *middle])}),")
        c_in = width
    flat = c_in * int(torch.Size(input_shape[1:]).numel()) if cnn else c_in
    return lines, f"nn.Linear({flat}, {{n_out}})"


def _masks_source() -> str:
    """The playground's mask counter (model_server.masks), as the script's own code."""
    constants = "\n".join(f"{name} = {getattr(masks, name)!r}" for name in
                           ("MASK32", "STEP", "PLACE", "ROUNDS", "FINAL_SHIFT"))
    functions = [masks.mix, masks.run_key, masks.step_bits, masks.places, masks.unit_bits, masks.keep_threshold]
    return constants + "\n\n\n" + "\n\n".join(inspect.getsource(f) for f in functions)


MASK_HOOKS = f'''\
class PlaygroundMasks:
    """While training, each dropout layer applies the playground's mask of the step
    (torch's own formula, with the mask drawn by the functions above instead of torch's
    generator): set step before each forward pass; remove() when done."""

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
        shape = (x.shape[0], *self.noise_shape(module, x))
        at, n = sum(self.drawn), math.prod(shape)
        self.drawn.append(n)  # every layer has its places, whether it draws or not
        if not module.training or not 0 < p < 1:
            return output  # eval mode, p = 0 (x itself) or p = 1 (zeros): nothing is drawn
        bits = unit_bits(step_bits(self.key, np.array([self.step], np.int64)), places(at + n))[0, at:]
        keep = torch.from_numpy(bits < keep_threshold(p)).reshape(shape).to(x.dtype)
        if isinstance(module, nn.AlphaDropout):
            alpha = {SELU_ALPHA_PRIME!r}  # alpha' of aten's alpha dropout, as the playground has it
            a = 1 / math.sqrt((alpha ** 2 * p + 1) * (1 - p))
            return x * (keep * a) + (keep - 1) * (alpha * a) + alpha * a * p
        return x * (keep * (1 / (1 - p)))

    def remove(self):
        for handle in self.handles:
            handle.remove()
'''


def _schedule_source(cfg: RunConfig, changes) -> str:
    """SCHEDULE: the run's settings from each step on where they changed (live changes of
    p, learning rate and mode), one entry per line; the config's own when none."""
    rows = changes or [(1, cfg.model.p, cfg.train.lr, "train")]
    lines = "\n".join(f"    ({first}, {list(p)!r}, {lr!r}, {mode!r})," for first, p, lr, mode in rows)
    return f"SCHEDULE = [\n{lines}\n]"


def settings_at(changes, step: int):
    """The (p, lr, mode) a step trained with, from a run's change log."""
    return next((entry[1:] for entry in reversed(changes) if entry[0] <= step), None)


# why an exported CNN or BatchNorm network's numbers drift from the page's
DRIFT_NOTE = """\
The playground trains a CNN and BatchNorm layers as batched kernels (one op over many
runs' rows), which add the same numbers in another order than torch.nn's layers; the
masks and batches are the same, but rounding makes the weights drift apart over
thousands of steps (measured: final test losses 0.007-0.02 apart after 600-1,800
steps). An MLP without BatchNorm retraces the page's run to ~1e-6."""


def script(cfg: RunConfig, steps: int = 2000, filename: str = "dropout_net.py", changes=()) -> str:
    """A standalone training script for cfg (it trains `steps` steps unless told
    otherwise), replaying `changes` (a run's settings_log: (first step, p, lr, mode))."""
    d, m, t = cfg.data, cfg.model, cfg.train
    digits = cfg.task == "digits"
    input_shape = (1, 8, 8) if digits else (2,)
    n_out = 10 if digits else 1
    blocks, head = _blocks_source(cfg, input_shape)
    head = head.format(n_out=n_out)
    arch = " -> ".join(
        [f"input {'1x8x8' if digits else 2}"]
        + [f"{'conv' if m.kind == 'cnn' else 'linear'} {w} (p={p:g})" for w, p in zip(m.hidden, m.p)]
        + [f"{n_out} logit{'s' if n_out > 1 else ''}"])
    kinds = "nn.Dropout2d" if m.dropout_kind == "dropout2d" and m.kind == "cnn" else (
        "nn.AlphaDropout" if m.dropout_kind == "alpha" else "nn.Dropout")
    custom = d.dataset == "custom"
    data_source = DIGITS_SOURCE if digits else _custom_source(cfg) if custom else _points_source(d.dataset)
    y_cast = "y" if digits else "y.astype(np.float32)"
    flatten = "x = x.flatten(1)  # the MLP sees an image as 64 numbers\n        " if digits and m.kind == "mlp" else ""
    squeeze = "" if digits else ".squeeze(-1)  # one logit per example"
    loss = ("F.cross_entropy(logits, y)" if digits else "F.binary_cross_entropy_with_logits(logits, y)")
    hits = "logits.argmax(1) == y" if digits else "(logits > 0).float() == y"
    eval_every = t.eval_every or 100
    # a custom set's points are written once, as POINTS; n_points and noise do not apply
    dump = cfg.model_dump(exclude={"data": {"points", "n_points", "noise"}} if custom else None)
    config = pprint.pformat(dump, indent=1, width=100, sort_dicts=False)
    retrace = (", and its live changes (SCHEDULE: p, learning rate, train/eval mode) at the same steps,"
               " so on a CPU this retraces the playground's run from its step 0")
    drift = "\n\n" + DRIFT_NOTE if m.kind == "cnn" or m.batchnorm != "none" else ""
    data_line = d.dataset if digits else (f"custom, {len(d.points)} points (POINTS, below)" if custom
                                          else f"{d.dataset}, {d.n_points} points, noise {d.noise:g}")
    generated = "" if digits or custom else f"N_POINTS = {d.n_points}\nNOISE = {d.noise!r}\n"
    probs = "logits.softmax(-1)" if digits else "torch.sigmoid(logits)"
    needs = "torch, numpy" + (", scikit-learn" if d.dataset in ("circle", "moons", "gauss", "digits") else "")

    return f'''\
#!/usr/bin/env python3
"""A network exported from the Dropout Playground, as plain PyTorch.

    {arch}
    {m.activation}, {kinds}, dropout {m.placement.replace("_", " ")}, batchnorm {m.batchnorm.replace("_", " ")}
    data: {data_line}, {d.train_fraction:g} for training, seed {d.seed}
    {t.optimizer}, learning rate {t.lr:g}, weight decay {t.weight_decay:g}, batch size {t.batch_size}

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
CONFIG = {textwrap.indent(config, " " * 9).lstrip()}

SEED = {d.seed}
{generated}TRAIN_FRACTION = {d.train_fraction!r}
LR = {t.lr!r}
WEIGHT_DECAY = {t.weight_decay!r}
BATCH_SIZE = {t.batch_size}
STEPS = {steps}
EVAL_EVERY = {eval_every}
# the run's live changes, replayed step for step: (from step, p per dropout layer,
# learning rate, mode); mode "eval" trains with dropout off and BatchNorm on its running
# statistics, as the playground's eval switch does
{_schedule_source(cfg, changes)}


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
{_masks_source()}

{MASK_HOOKS}

# ---- model -----------------------------------------------------------------------------
class Net(nn.Module):
    """{arch}"""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([
{textwrap.indent(chr(10).join(blocks), " " * 12)}
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
    opt = {OPTIMIZERS[t.optimizer]}
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
                f"test loss {{test_loss:.4f}}  test accuracy {{acc:.1%}}")
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


def main(argv=None):
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
    print(f"final: test loss {{test_loss:.4f}}, test accuracy {{acc:.1%}}")
    predict(net, data[2])  # what a server would call
    _, spread = mc_predict(net, data[2])
    print(f"MC dropout, 30 passes: mean spread (std) of the predicted probabilities {{spread.mean():.4f}}")
    return net


if __name__ == "__main__":
    main()
'''


SETTINGS_FIELDS = ("p", "lr", "mode")


def metrics_rows(run: FrozenRun) -> list[dict]:
    """One row per test evaluation, with the settings its step trained with."""
    rows = []
    for point in run.history:
        row = {k: point.get(k) for k in HISTORY_FIELDS}
        settings = settings_at(run.changes, point["step"]) if point.get("step") else None
        if settings is not None:
            p, lr, mode = settings
            row.update(p=" ".join(f"{x:g}" for x in p), lr=lr, mode=mode)
        rows.append(row)
    return rows


def metrics_csv(run: FrozenRun) -> str:
    """step,train_loss,test_loss,test_acc,p,lr,mode: one row per test evaluation (empty =
    not a number); p per layer, space-separated, as the step trained with."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HISTORY_FIELDS + SETTINGS_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in metrics_rows(run):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def metrics_json(run: FrozenRun) -> str:
    """The config, the step reached and the history, as one JSON document."""
    return json.dumps({"config": run.cfg.model_dump(), "step": run.step_count,
                       "fields": list(HISTORY_FIELDS + SETTINGS_FIELDS), "history": metrics_rows(run),
                       "changes": [{"from_step": first, "p": list(p), "lr": lr, "mode": mode}
                                   for first, p, lr, mode in run.changes]}, indent=1)


def weights(run: FrozenRun) -> bytes:
    """The state_dict as safetensors (CPU copies; the config rides along as metadata)."""
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in run.net.state_dict().items()}
    meta = {"format": "pt", "producer": "dropout-playground", "step": str(run.step_count),
            "config": json.dumps(run.cfg.model_dump())}
    return save(state, metadata=meta)
