"""Lesson b: train mode vs eval mode, and the pitfall of predicting without model.eval()."""
from __future__ import annotations

import torch

from ..datasets import plane_grid
from ..pacing import checkpoint
from ..runstate import FrozenRun
from .common import MAX_GRID_SIZE, borrowed, bounded, example_index, grid, has_batchnorm, lists, need_2d, probs

MAX_PASSES = 100         # train_vs_eval
MAX_GRIDS = 16           # forgot_eval_boundary


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
    example = example_index(run, example)
    passes = bounded("passes", passes, 1, MAX_PASSES)
    p_eval, p_train = _answers(run, example, passes, seed)
    if p_eval.dim() == 1:
        cls = 1
        shown_eval, shown_train = p_eval, p_train
        labels_eval, labels_train = (p_eval > 0.5).long(), (p_train > 0.5).long()
    else:
        cls = int(p_eval[0].argmax())
        shown_eval, shown_train = p_eval[:, cls], p_train[:, cls]
        labels_eval, labels_train = p_eval.argmax(1), p_train.argmax(1)
    out = {
        "example": example, "y": int(run.data.y_train[example]), "class": cls,
        "train": lists(shown_train), "eval": lists(shown_eval),
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
        out["x"] = lists(run.data.x_train[example])
    return out


def _answers(run: FrozenRun, example: int, passes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The example's probabilities over `passes` eval-mode and `passes` train-mode passes:
    (passes,) each for one logit, (passes, C) for C classes."""
    data = run.data
    x = data.x_train[example:example + 1]
    # Each pass's probability is taken alone, never as one element of a tensor of all passes:
    # PyTorch's elementwise kernels (sigmoid) take a vectorised path for the first elements
    # of a tensor and a scalar one for the rest, which differ in the last bit on AVX2 CPUs.
    # Pass by pass, every eval pass runs the very same kernels on the same values.
    with borrowed(run, train=False, seed=seed) as (net, _):
        p_eval = torch.cat([probs(net(x)) for _ in range(passes)])
        net.train(True)
        if has_batchnorm(net):
            others = max(1, run.cfg.train.batch_size - 1)
            rest = torch.cat([data.x_train[:example], data.x_train[example + 1:]])[:others]
            p_train = torch.cat([probs(net(torch.cat([x, rest]))[:1]) for _ in range(passes)])
        else:
            p_train = torch.cat([probs(net(x)) for _ in range(passes)])
    return p_eval, p_train


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
    need_2d(run, "a decision boundary")
    size = bounded("size", size or run.limits.grid_size, 2, MAX_GRID_SIZE)
    grids = bounded("grids", grids, 1, MAX_GRIDS)
    plane = plane_grid(size).to(run.device)
    with borrowed(run, train=False, seed=seed) as (net, _):
        eval_p = torch.sigmoid(net(plane))
        net.train(True)
        train_p = torch.stack([_then_checkpoint(torch.sigmoid(net(plane))) for _ in range(grids)])
    return {
        "size": size,
        "train": [grid(t, size) for t in train_p], "eval": grid(eval_p, size),
        "train_vs_eval": float((train_p - eval_p).abs().mean()),
        "flicker": float((train_p[1:] - train_p[:-1]).abs().mean()) if grids > 1 else None,
    }


def _then_checkpoint(value):
    """value, after letting other work run (one grid is one chunk of a long answer)."""
    checkpoint()
    return value
