"""Toy datasets: five 2D sets for the input-plane views, a visitor's own 2D points
('custom') and sklearn's 8x8 digits.

Every set is seeded and split into train/test once; the five generated 2D sets are
scaled into roughly [-1, 1] so the plotted plane (PLANE) is the same for all of them.
A custom set is taken as it came (model_server/config/ has kept it inside the plane).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits, make_blobs, make_circles, make_moons

from .config import PLANE, DataConfig


@dataclass(frozen=True)
class Dataset:
    x_train: torch.Tensor
    y_train: torch.Tensor  # float 0/1 for the 2D sets, long class index for digits
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int         # 1 means a single logit (binary cross-entropy)
    image_shape: tuple[int, ...] | None = None

    @property
    def input_dim(self) -> int:
        return math.prod(self.x_train.shape[1:])

    def to(self, device: torch.device) -> "Dataset":
        move = lambda t: t.to(device)  # noqa: E731
        return Dataset(move(self.x_train), move(self.y_train), move(self.x_test),
                       move(self.y_test), self.n_classes, self.image_shape)


def _xor(n: int, noise: float, rng: np.random.Generator):
    x = rng.uniform(-1, 1, size=(n, 2))
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    # keep a margin around the axes so the four quadrants read as clusters
    x = x + np.sign(x) * 0.1 + rng.normal(0, noise, size=x.shape)
    return x, y


def _spiral(n: int, noise: float, rng: np.random.Generator):
    half = n // 2
    r = np.linspace(0.05, 1.0, half)
    xs, ys = [], []
    for label, delta in ((0, 0.0), (1, np.pi)):
        t = 1.75 * r * 2 * np.pi + delta
        pts = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        xs.append(pts + rng.normal(0, noise, size=pts.shape))
        ys.append(np.full(half, label))
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(x) < n:  # odd n: one more point of class 0
        x, y = np.concatenate([x, x[:1]]), np.concatenate([y, y[:1]])
    return x, y


def custom_points(cfg: DataConfig):
    """A visitor's own points as (x float32 (N, 2), y int64 (N,)), in the order sent."""
    rows = np.asarray([(p.x, p.y) for p in cfg.points], dtype=np.float32).reshape(-1, 2)
    return rows, np.asarray([p.label for p in cfg.points], dtype=np.int64)


def _points_2d(cfg: DataConfig):
    if cfg.dataset == "custom":
        return custom_points(cfg)
    n, noise, seed = cfg.n_points, cfg.noise, cfg.seed
    rng = np.random.default_rng(seed)
    if cfg.dataset == "circle":
        x, y = make_circles(n, noise=noise, factor=0.5, random_state=seed)
    elif cfg.dataset == "moons":
        x, y = make_moons(n, noise=noise, random_state=seed)
    elif cfg.dataset == "gauss":
        x, y = make_blobs(n, centers=[(-1, -1), (1, 1)], cluster_std=0.4 + 2 * noise, random_state=seed)
    elif cfg.dataset == "xor":
        x, y = _xor(n, noise, rng)
    else:
        x, y = _spiral(n, noise, rng)
    x = x - x.mean(axis=0)
    x = x / (np.abs(x).max() + 1e-9)  # into [-1, 1]
    return x.astype(np.float32), y


_DIGITS: list = []
_DIGITS_LOCK = threading.Lock()


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """sklearn's digits as (x float32 (N, 1, 8, 8) in [0, 1], y int64), read once by one
    thread: parsing its CSV holds the interpreter for tens of milliseconds, and a crowd of
    configures each parsing it at once made every other visitor's frames wait for all of
    them. Read-only: every run indexes a copy out of them."""
    with _DIGITS_LOCK:
        if not _DIGITS:
            digits = load_digits()
            x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
            y = digits.target.astype(np.int64)
            x.flags.writeable = y.flags.writeable = False
            _DIGITS.extend((x, y))
    return _DIGITS[0], _DIGITS[1]


def make_dataset(cfg: DataConfig) -> Dataset:
    """Build and split the dataset named by cfg; the same cfg gives the same tensors."""
    if cfg.dataset == "digits":
        x, y = _digits()
        n_classes, shape = 10, (1, 8, 8)
    else:
        x, y = _points_2d(cfg)
        n_classes, shape = 1, None
    order = np.random.default_rng(cfg.seed + 1).permutation(len(x))
    x, y = x[order], y[order]
    n_train = max(1, int(len(x) * cfg.train_fraction))
    yt = torch.from_numpy(y if n_classes > 1 else y.astype(np.float32))
    xt = torch.from_numpy(np.ascontiguousarray(x))
    return Dataset(xt[:n_train], yt[:n_train], xt[n_train:], yt[n_train:], n_classes, shape)


class Batches:
    """Mini-batch indices: a fresh permutation from a seeded generator every epoch, cut
    into batches of b (an epoch's short remainder is skipped). next() is None when b
    covers the whole set: full-batch training."""

    def __init__(self, n: int, b: int, seed: int, device: torch.device):
        self.n, self.b, self.device = n, b, device
        self.generator = torch.Generator().manual_seed(seed)
        self.order: torch.Tensor | None = None
        self.pos = 0

    def next(self) -> torch.Tensor | None:
        if self.b >= self.n:
            return None
        if self.order is None or self.pos + self.b > self.n:
            self.order = torch.randperm(self.n, generator=self.generator).to(self.device)
            self.pos = 0
        idx = self.order[self.pos:self.pos + self.b]
        self.pos += self.b
        return idx

    def index_of(self, k: int) -> int:
        """Dataset index of example k of the last batch (syncs a GPU: frames only)."""
        return k if self.order is None else int(self.order[self.pos - self.b + k])


def plane_grid(size: int) -> torch.Tensor:
    """size*size points covering PLANE, row-major with y as the row (Plotly heatmap order)."""
    axis = torch.linspace(PLANE[0], PLANE[1], size)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
