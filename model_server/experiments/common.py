"""What every lesson experiment shares: checks of its arguments, scratch passes on a
borrowed network, hooks that watch modules, and the JSON-safe forms of its answers."""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from ..runstate import FrozenRun

MAX_EXAMPLES = 256       # training examples one experiment's batch may hold
MAX_GRID_SIZE = 128      # points per side of a grid over the input plane
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)  # the kinds network.Net builds


def bounded(name: str, v: int, lo: int, hi: int) -> int:
    """v itself when it is an int in lo..hi, else a ValueError naming name, range and v."""
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{name} has to be between {lo} and {hi}, but got {v!r}")
    return v


def layer_index(run: FrozenRun, layer: int) -> int:
    """A valid index of one of the run's dropout layers."""
    return bounded("layer", layer, 0, len(run.net.drops) - 1)


def example_index(run: FrozenRun, example: int) -> int:
    """A valid index of one of the run's training examples."""
    return bounded("example", example, 0, len(run.data.x_train) - 1)


def need_2d(run: FrozenRun, what: str) -> None:
    """Refuses a run whose data is not a 2D set (what: the thing that needs the plane)."""
    if run.cfg.task != "binary":
        raise ValueError(f"{what} needs a 2D dataset, but got dataset {run.cfg.data.dataset!r}")


def has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, BATCHNORMS) for m in net.modules())


@contextlib.contextmanager
def borrowed(run: FrozenRun, train: bool, seed: int):
    """run.net for scratch passes in train or eval mode: its dropout layers draw from a
    generator seeded with `seed`, and generators, buffers and modes are restored after.
    Yields (net, generator)."""
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
def seen(modules: list[nn.Module], outputs: bool = False):
    """Collects, per module, the tensor each call receives (or returns, with outputs=True).
    Yields a list with one list of tensors per module."""
    calls: list[list[torch.Tensor]] = [[] for _ in modules]
    if outputs:
        handles = [m.register_forward_hook(lambda _m, _args, out, i=i: calls[i].append(out))
                   for i, m in enumerate(modules)]
    else:
        handles = [m.register_forward_pre_hook(lambda _m, args, i=i: calls[i].append(args[0]))
                   for i, m in enumerate(modules)]
    try:
        yield calls
    finally:
        for h in handles:
            h.remove()


class Moments:
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
        """Module i's per-channel variance over everything it saw, shape (channels,)."""
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


def finite(v) -> float | None:
    """A JSON-safe float: None for NaN or infinity."""
    v = float(v)
    return v if math.isfinite(v) else None


def ratio(a, b) -> float | None:
    """a / b as a JSON-safe float; None where b is 0."""
    return finite(a / b) if float(b) != 0 else None


def probs(logits: torch.Tensor) -> torch.Tensor:
    """P(class 1) for one logit (N,), class probabilities (N, C) otherwise."""
    return torch.sigmoid(logits) if logits.dim() == 1 else torch.softmax(logits, -1)


def grid(values: torch.Tensor, size: int) -> list[list[float]]:
    """size * size values as size rows of size, rounded to 1e-4."""
    return values.reshape(size, size).double().round(decimals=4).cpu().tolist()


def lists(t: torch.Tensor) -> list:
    """A tensor as nested lists of floats."""
    return t.detach().double().cpu().tolist()
