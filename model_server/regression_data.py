"""Regression sets: one input x, a float target y, made from a seed like the 2D sets.

    sine_gap        y = sin(2.5 x) on x in DATA_X with no points in GAP: a network has
                    to guess there, which is where MC dropout's band should widen
    hetero          y = x / 2, noise that grows from left to right
    line_outliers   a straight line with a few points far off it
    custom          a visitor's own [x, y] points, as sent

x stays inside DATA_X, narrower than the plane, so the function panel also shows the
network beyond its data on both sides. noise is the targets' standard deviation (for
hetero, at the middle of x). Every y is clipped into the plane. The split is the one
datasets.make_dataset makes: a permutation from seed + 1, the first train_fraction
training.
"""
from __future__ import annotations

import numpy as np
import torch

from .config import PLANE, DataConfig
from .datasets import Dataset

DATA_X = (-1.2, 1.2)       # where the generated sets have points
GAP = (-0.4, 0.4)          # sine_gap has none in here
OUTLIERS = 0.06            # the share of line_outliers' points that are off the line


def _sine_gap(n: int, noise: float, rng: np.random.Generator):
    # x uniform over the two sides of the gap: a side first, then a place on it
    side = DATA_X[1] - GAP[1]
    u = rng.uniform(0, 2 * side, n)
    x = np.where(u < side, DATA_X[0] + u, GAP[1] + (u - side))
    return x, np.sin(2.5 * x) + rng.normal(0, noise, n)


def _hetero(n: int, noise: float, rng: np.random.Generator):
    x = rng.uniform(*DATA_X, n)
    sd = noise * 2 * (x - DATA_X[0]) / (DATA_X[1] - DATA_X[0])   # 0 at the left edge, 2 noise at the right
    return x, 0.5 * x + rng.normal(0, 1, n) * sd


def _line_outliers(n: int, noise: float, rng: np.random.Generator):
    x = rng.uniform(*DATA_X, n)
    y = 0.7 * x - 0.1 + rng.normal(0, noise, n)
    off = rng.random(n) < OUTLIERS
    y[off] += rng.choice([-1.0, 1.0], off.sum()) * rng.uniform(0.6, 1.0, off.sum())
    return x, y


SETS = {"sine_gap": _sine_gap, "hetero": _hetero, "line_outliers": _line_outliers}


def points(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """The whole set before the split: x float32 (N, 1), y float32 (N,)."""
    if cfg.dataset == "custom":
        x = np.asarray([p.x for p in cfg.points], dtype=np.float64)
        y = np.asarray([p.y for p in cfg.points], dtype=np.float64)
    else:
        x, y = SETS[cfg.dataset](cfg.n_points, cfg.noise, np.random.default_rng(cfg.seed))
    y = np.clip(y, *PLANE)
    return x.astype(np.float32).reshape(-1, 1), y.astype(np.float32)


def make_dataset(cfg: DataConfig) -> Dataset:
    """The regression set named by cfg, split as datasets.make_dataset splits: the same
    cfg gives the same tensors. One output (n_classes 1), float targets."""
    x, y = points(cfg)
    order = np.random.default_rng(cfg.seed + 1).permutation(len(x))
    x, y = x[order], y[order]
    n_train = max(1, int(len(x) * cfg.train_fraction))
    xt, yt = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y))
    return Dataset(xt[:n_train], yt[:n_train], xt[n_train:], yt[n_train:], 1)


def line_grid(size: int) -> torch.Tensor:
    """(size, 1): x from one edge of the plane to the other, the function panel's axis."""
    return torch.linspace(PLANE[0], PLANE[1], size).view(size, 1)


def in_gap(x: torch.Tensor) -> torch.Tensor:
    """Where x lies inside sine_gap's gap."""
    return (x > GAP[0]) & (x < GAP[1])


def on_data(x: torch.Tensor) -> torch.Tensor:
    """Where x lies among sine_gap's points: inside DATA_X, outside the gap."""
    return (x >= DATA_X[0]) & (x <= DATA_X[1]) & ~in_gap(x)
