"""Lesson g: an ensemble of thinned networks, and MC dropout's average over them."""
from __future__ import annotations

import torch
from torch import nn

from ..datasets import plane_grid
from ..pacing import checkpoint
from ..runstate import FrozenRun
from .common import MAX_GRID_SIZE, borrowed, bounded, grid, need_2d

MAX_THINNED = 64
MAX_DRAWS = 16


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
    need_2d(run, "a decision boundary")
    T = bounded("thinned", thinned, 1, MAX_THINNED)
    D = bounded("draws", draws, 1, MAX_DRAWS)
    size = bounded("size", size or run.limits.grid_size, 2, MAX_GRID_SIZE)
    plane = plane_grid(size).to(run.device)
    out, rows = {}, []
    with borrowed(run, train=False, seed=seed) as (net, gen):
        eval_p = torch.sigmoid(net(plane))
        eval_test = torch.sigmoid(net(run.data.x_test))
        for d in range(D):
            checkpoint()
            masks, thin, row = _draw(run, net, gen, T, plane, eval_p, eval_test)
            rows.append(row)
            if d == 0:
                out = _first_draw(masks, thin, eval_p, size, row)
    out["draws"] = rows
    return out


def _draw(run: FrozenRun, net: nn.Module, gen: torch.Generator, T: int, plane: torch.Tensor,
          eval_p: torch.Tensor, eval_test: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, dict]:
    """One draw of T thinned networks: their masks ([layers] of (T, width) bools), their
    P(class 1) over the plane (T, size^2), and the draw's numbers."""
    y_test = run.data.y_test
    bce = lambda q: float(nn.functional.binary_cross_entropy(q.clamp(1e-7, 1 - 1e-7), y_test))  # noqa: E731
    masks = [torch.rand(T, w, generator=gen, device=run.device) >= drop.p
             for drop, w in zip(net.drops, run.cfg.model.hidden)]  # keep with probability 1 - p
    keeps = [[m[t] for m in masks] for t in range(T)]
    thin = torch.stack([torch.sigmoid(net(plane, k)) for k in keeps])          # (T, size^2)
    thin_test = torch.stack([torch.sigmoid(net(run.data.x_test, k)) for k in keeps])
    mean = thin.mean(0)
    row = {"mc_vs_eval": _diff(mean, eval_p),
           "single_vs_mean": float((thin - mean).abs().mean()),
           "single_vs_eval": float((thin - eval_p).abs().mean()),
           "test_loss": {"eval": bce(eval_test), "mc": bce(thin_test.mean(0)),
                         "single": sum(bce(q) for q in thin_test) / T}}
    return masks, thin, row


def _first_draw(masks: list[torch.Tensor], thin: torch.Tensor, eval_p: torch.Tensor, size: int,
                row: dict) -> dict:
    """The answer's maps and masks, from the first draw."""
    T = len(thin)
    mean = thin.mean(0)
    return {
        "size": size, "thinned": T,
        "masks": [[m[t].int().cpu().tolist() for m in masks] for t in range(T)],
        "boundaries": [grid(b, size) for b in thin],
        "mean": grid(mean, size), "eval": grid(eval_p, size),
        "std": grid(thin.std(0, unbiased=False), size),
        "first_vs_eval": _diff(thin[0], eval_p),
        "mc_vs_first": _diff(mean, thin[0]),
        "mean_std": float(thin.std(0, unbiased=False).mean()),
        **row,
    }


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().mean())
