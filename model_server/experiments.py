"""Lesson experiments on a run (a FrozenRun: a copy at one step; a model_server.Run works too): each returns plain lists, dicts and floats (JSON-able).

None of them changes the run's training: forward passes go through net.scratch() (no
recorded masks, counts or outputs), under torch.no_grad(), with the dropout layers drawing
from a generator of their own (seeded by `seed`, so results repeat) instead of the run's,
and every buffer (BatchNorm running statistics) is put back afterwards. Modes are restored.

    train_vs_eval(run)          one input, repeated passes: train mode varies, eval does not
    forgot_eval_boundary(run)   the decision boundary in train mode (flickers) vs eval mode
    inverted_scaling(run)       kept values x / (1 - p); means over passes match eval mode
    mc_dropout(run)             T thinned networks, their average, eval mode, MC uncertainty
    batchnorm_shift(run)        variance entering BatchNorm / the next layer, train vs eval
    myths(run)                  dropout removes no parameters and no neurons
    spatial_dropout(run)        Dropout2d zeroes whole feature maps, Dropout single pixels
    placement_seeds(run)        both placements of the run's config, trained over several seeds

Grids are size rows (y) x size columns (x) over datasets.PLANE, Plotly heatmap order,
values P(class 1) rounded to 1e-4.
"""
from __future__ import annotations

import contextlib
import functools
import math
import statistics

import torch
from torch import nn

from .config import RunConfig
from .datasets import plane_grid
from .layers import RecordingDropout, RecordingDropout2d
from .network import Net, parameter_count
from .pacing import checkpoint
from .sweep import MAX_MODELS, SeedSweep
from .runstate import FrozenRun

MAX_PASSES = 100         # train_vs_eval
MAX_GRIDS = 16           # forgot_eval_boundary
MAX_THINNED = 64         # mc_dropout
MAX_SCALING_PASSES = 4096
MAX_EXAMPLES = 256
MAX_GRID_SIZE = 128
MAX_VALUES = 1 << 24     # inverted_scaling: passes x examples x features, at most (64 MB)
MAX_DRAWS = 16           # mc_dropout
MAX_PLACEMENT_STEPS = 5000


def _bounded(name: str, v: int, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{name} has to be between {lo} and {hi}, but got {v!r}")
    return v


def _layer(run: FrozenRun, layer: int) -> int:
    return _bounded("layer", layer, 0, len(run.net.drops) - 1)


def _example(run: FrozenRun, example: int) -> int:
    return _bounded("example", example, 0, len(run.data.x_train) - 1)


def _binary(run: FrozenRun, what: str) -> None:
    if run.cfg.task != "binary":
        raise ValueError(f"{what} needs a 2D dataset, but got dataset {run.cfg.data.dataset!r}")


def _has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


@contextlib.contextmanager
def _borrowed(run: FrozenRun, train: bool, seed: int):
    """run.net for scratch passes in train or eval mode: its dropout layers draw from a
    generator seeded with `seed`, and generators, buffers and modes are restored after."""
    net = run.net
    gen = torch.Generator(run.device).manual_seed(seed)
    generators = [d.generator for d in net.drops]
    buffers = [(b, b.detach().clone()) for b in net.buffers()]
    for d in net.drops:
        d.generator = gen
    try:
        with torch.no_grad(), net.scratch(train=train):
            yield net, gen
    finally:
        for d, g in zip(net.drops, generators):
            d.generator = g
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)


@contextlib.contextmanager
def _seen(modules: list[nn.Module], outputs: bool = False):
    """Collects, per module, the tensor each call receives (or returns, with outputs=True)."""
    seen: list[list[torch.Tensor]] = [[] for _ in modules]
    if outputs:
        handles = [m.register_forward_hook(lambda _m, _args, out, i=i: seen[i].append(out))
                   for i, m in enumerate(modules)]
    else:
        handles = [m.register_forward_pre_hook(lambda _m, args, i=i: seen[i].append(args[0]))
                   for i, m in enumerate(modules)]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


class _Moments:
    """Per-channel running sums of what modules receive (or return), so that variances over
    many passes need no stored activations. Channels: dim 1; reduced over all others."""

    def __init__(self, modules: list[nn.Module], outputs: bool = False):
        self.modules, self.outputs = modules, outputs
        self.sums: list[list] = [[0, 0, 0] for _ in modules]  # n, sum, sum of squares

    def _add(self, i: int, x: torch.Tensor) -> None:
        x = x.detach().double()
        dims = [0] + list(range(2, x.dim()))
        acc = self.sums[i]
        acc[0] += x.numel() // x.shape[1]
        acc[1] = acc[1] + x.sum(dims)
        acc[2] = acc[2] + (x * x).sum(dims)

    def var(self, i: int) -> torch.Tensor:
        n, s, ss = self.sums[i]
        mean = s / n
        return (ss / n - mean * mean).clamp_min(0)

    def __enter__(self):
        if self.outputs:
            hook = lambda i: (lambda _m, _args, out: self._add(i, out))  # noqa: E731
            self.handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(self.modules)]
        else:
            hook = lambda i: (lambda _m, args: self._add(i, args[0]))  # noqa: E731
            self.handles = [m.register_forward_pre_hook(hook(i)) for i, m in enumerate(self.modules)]
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


def _then_checkpoint(value):
    checkpoint()
    return value


def _f(v) -> float | None:
    """A JSON-safe float: None for NaN or infinity."""
    v = float(v)
    return v if math.isfinite(v) else None


def _ratio(a, b) -> float | None:
    return _f(a / b) if float(b) != 0 else None


def _probs(logits: torch.Tensor) -> torch.Tensor:
    """P(class 1) for one logit (N,), class probabilities (N, C) otherwise."""
    return torch.sigmoid(logits) if logits.dim() == 1 else torch.softmax(logits, -1)


def _grid(values: torch.Tensor, size: int) -> list[list[float]]:
    return values.reshape(size, size).double().round(decimals=4).cpu().tolist()


def _lists(t: torch.Tensor) -> list:
    return t.detach().double().cpu().tolist()


# ---- b. train mode vs eval mode ---------------------------------------------------------
def train_vs_eval(run: FrozenRun, example: int = 0, passes: int = 20, seed: int = 0) -> dict:
    """One training example through the network `passes` times in train mode and `passes`
    times in eval mode. Train mode draws a fresh mask each pass, so the output varies;
    eval mode is deterministic, every pass identical.

    The value per pass is P(class 1) for 2D sets, else the probability of the class eval
    mode predicts. Each train-mode pass is a separate forward pass of this one example; in
    a network with BatchNorm (which needs a batch in train mode) the example goes in with
    batch_size - 1 other training examples (at least one), as in a training step.

    The train-mode answers are not centred on the eval-mode answer: the network is
    nonlinear, so the average over masks of its output is not the output of the eval-mode
    network (for a point the network is sure about, the average is less sure).

    Returns {"example", "y", "x" (2D sets: [2]), "class" (the class whose probability is
    shown), "train": [passes], "eval": [passes], "train_labels": [passes], "eval_labels":
    [passes], "train_std", "eval_std", "train_distinct", "eval_distinct", "train_mean",
    "below", "above" (train-mode answers below / above the eval-mode answer)}."""
    example = _example(run, example)
    passes = _bounded("passes", passes, 1, MAX_PASSES)
    data = run.data
    x = data.x_train[example:example + 1]
    # Each pass's probability is taken alone, never as one element of a tensor of all passes:
    # PyTorch's elementwise kernels (sigmoid) take a vectorised path for the first elements
    # of a tensor and a scalar one for the rest, which differ in the last bit on AVX2 CPUs.
    # Pass by pass, every eval pass runs the very same kernels on the same values.
    with _borrowed(run, train=False, seed=seed) as (net, _):
        p_eval = torch.cat([_probs(net(x)) for _ in range(passes)])
        net.train(True)
        if _has_batchnorm(net):
            others = max(1, run.cfg.train.batch_size - 1)
            rest = torch.cat([data.x_train[:example], data.x_train[example + 1:]])[:others]
            p_train = torch.cat([_probs(net(torch.cat([x, rest]))[:1]) for _ in range(passes)])
        else:
            p_train = torch.cat([_probs(net(x)) for _ in range(passes)])
    if p_eval.dim() == 1:
        cls = 1
        shown_eval, shown_train = p_eval, p_train
        labels_eval, labels_train = (p_eval > 0.5).long(), (p_train > 0.5).long()
    else:
        cls = int(p_eval[0].argmax())
        shown_eval, shown_train = p_eval[:, cls], p_train[:, cls]
        labels_eval, labels_train = p_eval.argmax(1), p_train.argmax(1)
    out = {
        "example": example, "y": int(data.y_train[example]), "class": cls,
        "train": _lists(shown_train), "eval": _lists(shown_eval),
        "train_labels": labels_train.cpu().tolist(), "eval_labels": labels_eval.cpu().tolist(),
        "train_std": float(shown_train.double().std(unbiased=False)),
        "eval_std": float(shown_eval.double().std(unbiased=False)),
        "train_distinct": len(set(shown_train.cpu().tolist())),
        "eval_distinct": len(set(shown_eval.cpu().tolist())),
        "train_mean": float(shown_train.double().mean()),
        "below": int((shown_train < shown_eval[0]).sum()),
        "above": int((shown_train > shown_eval[0]).sum()),
    }
    if run.cfg.task == "binary":
        out["x"] = _lists(x[0])
    return out


def forgot_eval_boundary(run: FrozenRun, size: int | None = None, grids: int = 3, seed: int = 0) -> dict:
    """The pitfall of predicting without model.eval(): the input plane's P(class 1) computed
    in train mode, `grids` times (each grid point gets its own fresh mask, and a new one
    each time, so the picture flickers), next to the eval-mode boundary. In a network with
    BatchNorm, train mode also normalises with the grid's own batch statistics, as PyTorch
    would. 2D datasets only.

    Returns {"size", "train": [grids][size][size], "eval": [size][size],
    "train_vs_eval": mean |train - eval| over grids and points, "flicker": mean |grid i -
    grid i+1| over points and consecutive grids, what changes from one call to the next
    (None for one grid)}."""
    _binary(run, "a decision boundary")
    size = _bounded("size", size or run.limits.grid_size, 2, MAX_GRID_SIZE)
    grids = _bounded("grids", grids, 1, MAX_GRIDS)
    grid = plane_grid(size).to(run.device)
    with _borrowed(run, train=False, seed=seed) as (net, _):
        eval_p = torch.sigmoid(net(grid))
        net.train(True)
        train_p = torch.stack([_then_checkpoint(torch.sigmoid(net(grid))) for _ in range(grids)])
    return {
        "size": size,
        "train": [_grid(t, size) for t in train_p], "eval": _grid(eval_p, size),
        "train_vs_eval": float((train_p - eval_p).abs().mean()),
        "flicker": float((train_p[1:] - train_p[:-1]).abs().mean()) if grids > 1 else None,
    }


# ---- c. inverted scaling ------------------------------------------------------------------
def inverted_scaling(run: FrozenRun, layer: int = 0, passes: int = 1000, examples: int = 16,
                     seed: int = 0) -> dict:
    """What one dropout layer does to a batch over many train-mode passes.

    The batch is the first `examples` training examples; the values entering dropout layer
    `layer` (x, shape (examples, *features)) come from an eval-mode pass, so they are the
    same in every pass. The layer then runs `passes` times in train mode: each output is
    x * mask / (1 - p) with a fresh mask, so every kept value is x / (1 - p) and the mean
    over passes approaches eval mode's output, x itself. The counterfactual without
    rescaling, x * mask, averages (1 - p) * x: too small by the factor (1 - p).

    scale_* is the least-squares factor s in mean ~ s * x (1 for inverted dropout, 1 - p
    without rescaling); mismatch_* is mean |mean - x| / mean |x|. Returns {"layer", "p",
    "passes", "shape", "input" (= eval output), "eval_output", "first_output",
    "first_mask", "mean_inverted", "mean_no_rescale" (all [examples][*features]),
    "kept_scale" (median of output / input over kept, nonzero entries), "expected_scale"
    (1 / (1 - p), 0 for p = 1), "drop_rate" (fraction dropped), "scale_inverted",
    "scale_no_rescale", "mismatch_inverted", "mismatch_no_rescale"} (the last four None
    when every input value is 0)."""
    if run.cfg.model.dropout_kind == "alpha":
        raise ValueError("inverted scaling is about Dropout and Dropout2d, "
                         "but got dropout_kind 'alpha'")
    layer = _layer(run, layer)
    passes = _bounded("passes", passes, 1, MAX_SCALING_PASSES)
    examples = _bounded("examples", examples, 1, min(MAX_EXAMPLES, len(run.data.x_train)))
    drop = run.net.drops[layer]
    p = drop.p
    with _borrowed(run, train=False, seed=seed) as (net, _):
        with _seen([drop]) as seen:
            net(run.data.x_train[:examples])
        x = seen[0][0]
        if passes * x.numel() > MAX_VALUES:
            raise ValueError(f"passes x examples x features has to be at most {MAX_VALUES}, "
                             f"but got {passes} x {examples} x {x[0].numel()}")
        eval_out = drop(x)  # eval mode: the identity
        many = x.unsqueeze(0).expand(passes, *x.shape).reshape(passes * examples, *x.shape[1:])
        drop.train(True)
        # the layer's own draw: on ones its output is the scaled mask mask / (1 - p), and
        # many * that is, bit for bit, what drop(many) returns for the same random state
        scaled_mask = drop(torch.ones_like(many))
        drop.train(False)
    checkpoint()  # (whole-array steps of tens of ms on a big batch: a server may pause between them)
    out = (many * scaled_mask).view(passes, *x.shape)
    mask = (scaled_mask != 0).view(passes, *x.shape)
    no_rescale = x * mask
    checkpoint()
    mean_inv, mean_raw = out.double().mean(0), no_rescale.double().mean(0)
    checkpoint()
    xd = x.double()
    kept = mask & (x != 0)
    ratios = (out / x)[kept]
    scale = lambda m: _ratio((m * xd).sum(), (xd * xd).sum())  # noqa: E731
    mism = lambda m: _ratio((m - xd).abs().mean(), xd.abs().mean())  # noqa: E731
    return {
        "layer": layer, "p": p, "passes": passes, "shape": list(x.shape),
        "input": _lists(x), "eval_output": _lists(eval_out),
        "first_output": _lists(out[0]), "first_mask": mask[0].int().cpu().tolist(),
        "mean_inverted": _lists(mean_inv), "mean_no_rescale": _lists(mean_raw),
        "kept_scale": float(ratios.median()) if ratios.numel() else None,
        "expected_scale": 1 / (1 - p) if p < 1 else 0.0,
        "drop_rate": float(1 - mask.float().mean()),
        "scale_inverted": scale(mean_inv), "scale_no_rescale": scale(mean_raw),
        "mismatch_inverted": mism(mean_inv), "mismatch_no_rescale": mism(mean_raw),
    }


# ---- g. ensembles of thinned networks, MC dropout ----------------------------------------
def mc_dropout(run: FrozenRun, thinned: int = 16, size: int | None = None, seed: int = 0,
               draws: int = 1) -> dict:
    """`thinned` networks sampled from the run's network: network t keeps neuron j of layer
    l where mask_t[l][j] = 1, Bernoulli(1 - p_l), one mask per network shared by every
    input (Net's keeps), evaluated with the layers' own arithmetic (apply_mask) and in
    eval mode otherwise. Their average is the MC-dropout prediction; the eval-mode network
    (all neurons, no masks) is the cheap approximation of that average. The per-point
    standard deviation over the thinned networks is MC dropout's uncertainty. 2D datasets.

    One draw of T masks is one estimate; its numbers change from draw to draw. With
    draws > 1 the whole estimate is repeated with fresh masks (same weights), and
    "draws" lists each draw's numbers, so that a margin can be held against its spread.
    The maps and masks are those of the first draw.

    Returns {"size", "thinned", "masks": [thinned][layers][width] (0/1), "boundaries":
    [thinned][size][size], "mean": [size][size], "eval": [size][size], "std":
    [size][size], and the first draw's numbers: "mc_vs_eval": mean |mean - eval|,
    "single_vs_mean": mean over t of mean |boundary_t - mean|, "single_vs_eval": the
    same against eval, "first_vs_eval", "mc_vs_first": mean |mean - boundary_0|,
    "mean_std", and on the test set "test_loss": {"eval", "mc", "single"} (single: the
    thinned networks' mean loss); "draws": [draws] of {"mc_vs_eval", "single_vs_mean",
    "single_vs_eval", "test_loss"}}."""
    _binary(run, "a decision boundary")
    T = _bounded("thinned", thinned, 1, MAX_THINNED)
    D = _bounded("draws", draws, 1, MAX_DRAWS)
    size = _bounded("size", size or run.limits.grid_size, 2, MAX_GRID_SIZE)
    grid = plane_grid(size).to(run.device)
    data = run.data
    widths = list(run.cfg.model.hidden)
    diff = lambda a, b: float((a - b).abs().mean())  # noqa: E731
    bce = lambda q: float(nn.functional.binary_cross_entropy(q.clamp(1e-7, 1 - 1e-7), data.y_test))  # noqa: E731
    out, rows = {}, []
    with _borrowed(run, train=False, seed=seed) as (net, gen):
        eval_p = torch.sigmoid(net(grid))
        eval_test = torch.sigmoid(net(data.x_test))
        for d in range(D):
            checkpoint()
            masks = [torch.rand(T, w, generator=gen, device=run.device) >= drop.p
                     for drop, w in zip(net.drops, widths)]  # keep with probability 1 - p
            keeps = [[m[t] for m in masks] for t in range(T)]
            thin = torch.stack([torch.sigmoid(net(grid, k)) for k in keeps])          # (T, size^2)
            thin_test = torch.stack([torch.sigmoid(net(data.x_test, k)) for k in keeps])
            mean = thin.mean(0)
            rows.append({"mc_vs_eval": diff(mean, eval_p),
                         "single_vs_mean": float((thin - mean).abs().mean()),
                         "single_vs_eval": float((thin - eval_p).abs().mean()),
                         "test_loss": {"eval": bce(eval_test), "mc": bce(thin_test.mean(0)),
                                       "single": sum(bce(q) for q in thin_test) / T}})
            if d == 0:
                out = {
                    "size": size, "thinned": T,
                    "masks": [[m[t].int().cpu().tolist() for m in masks] for t in range(T)],
                    "boundaries": [_grid(b, size) for b in thin],
                    "mean": _grid(mean, size), "eval": _grid(eval_p, size),
                    "std": _grid(thin.std(0, unbiased=False), size),
                    "first_vs_eval": diff(thin[0], eval_p),
                    "mc_vs_first": diff(mean, thin[0]),
                    "mean_std": float(thin.std(0, unbiased=False).mean()),
                    **rows[0],
                }
    out["draws"] = rows
    return out


# ---- h. dropout and BatchNorm --------------------------------------------------------------
def batchnorm_shift(run: FrozenRun, passes: int = 8, seed: int = 0) -> dict:
    """The variance shift between training and inference: the whole training set goes
    through the network `passes` times in train mode (dropout on, BatchNorm on batch
    statistics) and once in eval mode (dropout off, BatchNorm on its running statistics).
    For each hidden block it reports the per-channel variance of the BatchNorm's input
    (None without BatchNorm) and of the block's output, the next layer's input, in both
    modes, averaged over channels. running_var is what BatchNorm divides by in eval mode,
    learned from train-mode inputs: when eval-mode inputs have a different variance, the
    normalised values at test time are off by sqrt(eval_var / running_var).

    Returns {"batchnorm" (the config's placement), "blocks": [{"layer", "p",
    "bn_input": {"train_var", "eval_var", "running_var", "eval_over_train",
    "eval_over_running", "train_var_per_channel", "eval_var_per_channel",
    "running_var_per_channel"} | None, "next_input": {"train_var", "eval_var",
    "eval_over_train"}}]} (a ratio is None where its denominator is 0)."""
    passes = _bounded("passes", passes, 1, 64)
    net = run.net
    bns = [next((m for m in b if isinstance(m, nn.modules.batchnorm._BatchNorm)), None) for b in net.blocks]
    watched = [m for m in bns if m is not None]
    x = run.data.x_train

    def measure(train: bool, n: int):
        with _borrowed(run, train=train, seed=seed) as (net_, _):
            with _Moments(watched) as bn_in, _Moments([b[-1] for b in net.blocks], outputs=True) as block_out:
                for _ in range(n):
                    net_(x)
                    checkpoint()
        return bn_in, block_out

    bn_train, next_train = measure(True, passes)
    bn_eval, next_eval = measure(False, 1)
    blocks, j = [], 0
    for i, (block, bn) in enumerate(zip(net.blocks, bns)):
        entry = {"layer": i, "p": block.drop.p, "bn_input": None}
        if bn is not None:
            vt, ve = bn_train.var(j), bn_eval.var(j)
            vr = bn.running_var.detach().double()
            entry["bn_input"] = {
                "train_var": _f(vt.mean()), "eval_var": _f(ve.mean()), "running_var": _f(vr.mean()),
                "eval_over_train": _ratio(ve.mean(), vt.mean()),
                "eval_over_running": _ratio(ve.mean(), vr.mean()),
                "train_var_per_channel": _lists(vt), "eval_var_per_channel": _lists(ve),
                "running_var_per_channel": _lists(vr),
            }
            j += 1
        nt, ne = next_train.var(i), next_eval.var(i)  # the block's output
        entry["next_input"] = {"train_var": _f(nt.mean()), "eval_var": _f(ne.mean()),
                               "eval_over_train": _ratio(ne.mean(), nt.mean())}
        blocks.append(entry)
    return {"batchnorm": run.cfg.model.batchnorm, "blocks": blocks}


# ---- i. myths ------------------------------------------------------------------------------
def myths(run: FrozenRun, examples: int = 32, seed: int = 0) -> dict:
    """Dropout removes nothing. The parameter count equals that of the same network built
    with p = 0; in eval mode and in train mode every hidden layer keeps its full size (the
    block outputs' shapes for the first `examples` training examples). Train mode only
    sets some of the values leaving each dropout layer to zero: zero_fraction_train exceeds
    zero_fraction_eval by the dropped units, about p of the values that were nonzero.
    (AlphaDropout sets dropped units to a constant, not zero: there the zero fractions
    do not show them.)

    Returns {"p": [layers], "params", "params_without_dropout", "params_equal",
    "sizes_config": [layers], "sizes_eval": [layers][shape], "sizes_train": [layers][shape]
    (per example), "zero_fraction_eval": [layers], "zero_fraction_train": [layers]}."""
    examples = _bounded("examples", examples, 1, min(MAX_EXAMPLES, len(run.data.x_train)))
    cfg = run.cfg.model
    x = run.data.x_train[:examples]
    n_out = run.net.n_out  # outside the meta device: run.net may be built on first use
    with torch.device("meta"):  # shapes only: no memory, no draw from the global RNG
        plain = Net(cfg.model_copy(update={"p": [0.0] * len(cfg.hidden)}), tuple(x.shape[1:]), n_out)
    with _borrowed(run, train=False, seed=seed) as (net, _):
        with _seen(net.drops, outputs=True) as eval_drop:
            eval_outs = net.hidden_outputs(x)
        net.train(True)
        with _seen(net.drops, outputs=True) as train_drop:
            train_outs = net.hidden_outputs(x)
    zeros = lambda seen: float((seen[0] == 0).float().mean())  # noqa: E731
    n, n0 = parameter_count(run.net), parameter_count(plain)
    return {
        "p": [d.p for d in run.net.drops],
        "params": n, "params_without_dropout": n0, "params_equal": n == n0,
        "sizes_config": list(cfg.hidden),
        "sizes_eval": [list(t.shape[1:]) for t in eval_outs],
        "sizes_train": [list(t.shape[1:]) for t in train_outs],
        "zero_fraction_eval": [zeros(t) for t in eval_drop],
        "zero_fraction_train": [zeros(t) for t in train_drop],
    }


# ---- f. spatial dropout --------------------------------------------------------------------
def spatial_dropout(run: FrozenRun, example: int = 0, layer: int = 0, p: float | None = None,
                    seed: int = 0) -> dict:
    """The feature maps entering conv block `layer`'s dropout for one digit (C x 8 x 8,
    from an eval-mode pass), put through the engine's Dropout2d and its element-wise
    Dropout, both in train mode with probability p (default: that layer's p). Dropout2d
    zeroes whole channels (its mask is one value per channel); Dropout zeroes scattered
    pixels. Kept values are scaled by 1 / (1 - p) in both. Needs the digits CNN.

    Returns {"example", "label", "layer", "p", "image": [8][8], "input": [C][8][8],
    "dropout2d": {"output", "mask" ([C][8][8], 0/1), "channel_kept": [C] (0/1),
    "zero_fraction"}, "dropout": {"output", "mask", "zero_fraction",
    "channels_fully_dropped"}}."""
    if run.cfg.model.kind != "cnn":
        raise ValueError(f"spatial dropout needs the CNN (model.kind 'cnn'), but got {run.cfg.model.kind!r}")
    example, layer = _example(run, example), _layer(run, layer)
    p = run.net.drops[layer].p if p is None else float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    image = run.data.x_train[example:example + 1]
    with _borrowed(run, train=False, seed=seed) as (net, gen):
        with _seen([net.drops[layer]]) as seen:
            net(image)
        maps = seen[0][0]  # (1, C, H, W)
        results = {}
        for name, kind in (("dropout2d", RecordingDropout2d), ("dropout", RecordingDropout)):
            drop = kind(p).to(run.device)
            drop.generator = gen
            out = drop(maps)  # a fresh module in train mode: .noise is the mask it applied
            keep = torch.ones_like(maps, dtype=torch.bool) if drop.noise is None else (drop.noise != 0).expand_as(maps)
            results[name] = (out[0], keep[0])
    (out2, keep2), (out1, keep1) = results["dropout2d"], results["dropout"]
    zero_frac = lambda k: float(1 - k.float().mean())  # noqa: E731
    return {
        "example": example, "label": int(run.data.y_train[example]), "layer": layer, "p": p,
        "image": _lists(image[0, 0]), "input": _lists(maps[0]),
        "dropout2d": {"output": _lists(out2), "mask": keep2.int().cpu().tolist(),
                      "channel_kept": keep2.flatten(1).all(1).int().cpu().tolist(),
                      "zero_fraction": zero_frac(keep2)},
        "dropout": {"output": _lists(out1), "mask": keep1.int().cpu().tolist(),
                    "zero_fraction": zero_frac(keep1),
                    "channels_fully_dropped": int((~keep1.flatten(1).any(1)).sum())},
    }


# ---- d. placement, settled over seeds -------------------------------------------------------
def placement_seeds(run: FrozenRun, seeds: int = 8, steps: int = 1500) -> dict:
    """Does dropout before the activation hurt, for this run's network? Measured, not
    argued: copies of the run's config (its activation, widths, p, optimizer) train for
    `steps` steps with dropout after and with dropout before the activation, on `seeds`
    seeds (the run's seed and the next ones: each its own data sample, initial weights,
    batches and masks, shared by both placements; model_server.sweep.SeedSweep). The
    run itself is only read (its config). Results are cached per config, seeds and steps.

    The difference is paired: diff = test loss before - test loss after, seed by seed.
    verdict: "identical" when every |diff| is below 1e-6 (ReLU: both orders compute the
    same numbers), "before-worse" / "after-worse" when |mean diff| exceeds the spread
    (standard deviation) of the diffs over seeds, otherwise "no-clear-winner".

    Returns {"activation", "steps", "seeds": [S], "after" and "before": {"test_loss",
    "test_acc", "train_loss": [S], "test_loss_mean", "test_loss_std", "test_acc_mean",
    "test_acc_std"}, "diff": {"values": [S], "mean", "std", "before_worse": count of
    seeds with diff > 0}, "verdict"} (std over seeds, n - 1 in the denominator)."""
    if run.cfg.model.kind != "mlp":
        raise ValueError(f"placement_seeds needs an MLP (model.kind 'mlp'), but got {run.cfg.model.kind!r}")
    seeds = _bounded("seeds", seeds, 2, MAX_MODELS // 2)
    steps = _bounded("steps", steps, 1, MAX_PLACEMENT_STEPS)
    return _placement_seeds(run.cfg.model_dump_json(), seeds, steps)


@functools.lru_cache(maxsize=32)
def _placement_seeds(cfg_json: str, seeds: int, steps: int) -> dict:
    cfg = RunConfig.model_validate_json(cfg_json)
    first = cfg.data.seed
    sw = SeedSweep(cfg, range(first, first + seeds), ["after_activation", "before_activation"])
    sw.step(steps)
    r = sw.result()
    out = {"activation": cfg.model.activation, "steps": steps, "seeds": list(range(first, first + seeds))}
    for j, name in enumerate(("after", "before")):
        part = {k: r[k][j * seeds:(j + 1) * seeds] for k in ("test_loss", "test_acc", "train_loss")}
        for k in ("test_loss", "test_acc"):
            part[f"{k}_mean"] = statistics.fmean(part[k])
            part[f"{k}_std"] = statistics.stdev(part[k])
        out[name] = part
    diffs = [b - a for a, b in zip(out["after"]["test_loss"], out["before"]["test_loss"])]
    mean, std = statistics.fmean(diffs), statistics.stdev(diffs)
    out["diff"] = {"values": diffs, "mean": mean, "std": std, "before_worse": sum(d > 0 for d in diffs)}
    if max(abs(d) for d in diffs) < 1e-6:
        out["verdict"] = "identical"
    elif abs(mean) > std:
        out["verdict"] = "before-worse" if mean > 0 else "after-worse"
    else:
        out["verdict"] = "no-clear-winner"
    return out


__all__ = ["train_vs_eval", "forgot_eval_boundary", "inverted_scaling", "mc_dropout",
           "batchnorm_shift", "myths", "spatial_dropout", "placement_seeds"]
