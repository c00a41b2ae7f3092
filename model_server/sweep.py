"""A dropout sweep: K copies of one MLP, one per drop probability p, trained at once.

    sw = Sweep(parse_config(SWEEP_PRESET))       # p = 0, 0.1, ..., 0.9 by default
    sw.step(200); sw.result()                    # a snapshot while it trains
    sweep(parse_config(SWEEP_PRESET), steps=SWEEP_STEPS)   # or all in one call

Model k is a Run of cfg with p_k in every hidden layer, trained on the playground's
engine (model_server.engine.group.Group: rows of one bucket): all K start from the same
initial weights (the ones a Run of the same config draws), see the same batches in the
same order (a Run's batch order) and use the same optimizer; only p differs. Model k's
masks are the counter's for cfg's seed at p_k (model_server.masks), the masks a Run of
that config draws, so a model with p = 0 trains exactly as a Run with p = 0 does
(tests/test_sweep.py checks that the losses agree), and the unit a model at p drops is
dropped by every model at a larger p too (one uniform draw per unit, K thresholds).

Supported: MLPs (any activation, either placement) on any dataset, dropout kind
'dropout' or 'dropout2d' (the same thing on an MLP). Not supported: BatchNorm,
AlphaDropout, CNNs (ValueError naming the field). model.p is ignored: model k uses p_k
in every hidden layer.
"""
from __future__ import annotations

import math

import torch

from .config import Limits, RunConfig
from .datasets import make_dataset
from .engine.group import Group, Member
from .network import Net
from .runstate import Thinned, pick_device

DEFAULT_PS = tuple(round(0.1 * i, 1) for i in range(10))  # 0.0, 0.1, ..., 0.9
MAX_MODELS = 16
MAX_POINTS = 1_000  # curve points kept; thinned 2:1 when full

# Few noisy points (50 to train on), a wide net and Adam: without dropout it memorises the
# noise and its test loss climbs (1.17 after SWEEP_STEPS steps, on this seed, with the
# default ps); the lowest test loss is at p = 0.5 (0.39), p = 0.9 already underfits (0.62),
# and p = 1 learns nothing. The masks depend on the whole list ps, so other ps move these.
SWEEP_PRESET = {
    "data": {"dataset": "xor", "n_points": 100, "noise": 0.35, "train_fraction": 0.5, "seed": 0},
    "model": {"kind": "mlp", "hidden": [64, 64], "activation": "relu", "p": [0.5, 0.5]},
    "train": {"optimizer": "adam", "lr": 0.003, "batch_size": 50, "device": "cpu"},
}
SWEEP_STEPS = 500  # optimizer steps the preset's lesson trains for


def _check_ps(ps) -> list[float]:
    ps = [float(p) for p in ps]
    if not 1 <= len(ps) <= MAX_MODELS:
        raise ValueError(f"number of models has to be between 1 and {MAX_MODELS}, but got {len(ps)}")
    for p in ps:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return ps


def _check_supported(cfg: RunConfig) -> None:
    m = cfg.model
    for field, value, ok in (("model.kind", m.kind, ("mlp",)),
                             ("model.batchnorm", m.batchnorm, ("none",)),
                             ("model.dropout_kind", m.dropout_kind, ("dropout", "dropout2d"))):
        if value not in ok:
            raise ValueError(f"a sweep supports {field} in {ok}, but got {value!r}")


class Sweep:
    """K = len(ps) models of cfg's MLP trained side by side, model k with drop probability
    ps[k] in every hidden layer. step(n) trains; result() reports. Every `every` steps the
    curves get a point: each model's eval-mode loss on the whole training and test sets
    and its mean dropout-mode batch loss since the previous point."""

    def __init__(self, cfg: RunConfig, ps=DEFAULT_PS, every: int = 10, limits: Limits | None = None):
        _check_supported(cfg)
        if not 1 <= every <= 10_000:
            raise ValueError(f"every has to be between 1 and 10000, but got {every}")
        self.cfg, self.ps, self.every = cfg, _check_ps(ps), every
        self.limits = limits or Limits()
        self.device = pick_device(cfg.train.device)
        self.data = make_dataset(cfg.data).to(self.device)
        self.x_train, self.x_test = self.data.x_train.flatten(1), self.data.x_test.flatten(1)
        net = _initial(cfg, self.data)
        L = len(cfg.model.hidden)
        self.group = Group([Member(_with(cfg, p=[p] * L), self.data, net, self.limits) for p in self.ps])
        self.n_out = net.n_out
        # model k's copy of each Linear, views into its engine row: W[l][k] = weight.T
        # (in, out), b[l][k] = bias (1, out)
        (bucket,) = self.group.buckets.values()
        views = bucket.layout.views(bucket.theta[:len(self.ps)].detach())
        names = [f"blocks.{l}.0" for l in range(L)] + ["head"]
        self.W = [views[f"{n}.weight"] for n in names]
        self.b = [views[f"{n}.bias"].unsqueeze(1) for n in names]
        self._points = Thinned(MAX_POINTS)  # (step, (5, K) metrics), on the device
        self._record()

    @property
    def step_count(self) -> int:
        return self.group.step_count

    def logits(self, x: torch.Tensor, train: bool = False, hidden: list | None = None) -> torch.Tensor:
        """Every model's logits for x (N, *input): (K, N) for one output, (K, N, C) for
        classes. train=True applies dropout with the masks each model draws at its next
        step. If `hidden` is a list, each hidden layer's output (K, N, width) is appended
        to it."""
        return self.group.logits(x, noise=train, hidden=hidden)

    def step(self, n: int = 1) -> None:
        """n optimizer steps for all K models (one batched forward/backward each)."""
        if n < 0:
            raise ValueError(f"number of steps has to be at least 0, but got {n}")
        if self.step_count + n > self.limits.max_steps:
            raise ValueError(f"a sweep may train {self.limits.max_steps} steps, "
                             f"but got {self.step_count} + {n}")
        while n > 0:
            chunk = min(n, self.every - self.step_count % self.every)
            self.group.step(chunk)
            n -= chunk
            if self.step_count % self.every == 0:
                self._record()

    def _metrics(self, reset: bool = False) -> torch.Tensor:
        """(5, K): eval-mode train loss, test loss, test accuracy, train accuracy, and the
        mean dropout-mode batch loss since the last point (NaN if none)."""
        batch, test_loss, test_acc, train_loss, train_acc = self.group.measure(reset=reset)
        return torch.stack([train_loss, test_loss, test_acc, train_acc, batch])

    def _record(self) -> None:
        self._latest = point = (self.step_count, self._metrics(reset=True))
        self._points.add(point)

    # ---- reporting -----------------------------------------------------------------------
    @torch.no_grad()
    def boundaries(self, size: int | None = None) -> list[list[list[float]]]:
        """Each model's eval-mode P(class 1) over the size x size input plane: K grids of
        size rows (y) x size columns (x), Plotly heatmap order. 2D datasets only."""
        if self.n_out != 1:
            raise ValueError(f"decision boundaries need a 2D dataset, but got {self.cfg.data.dataset!r}")
        return self.group.boundaries(size or self.limits.grid_size).cpu().tolist()

    def result(self, boundaries: bool = False) -> dict:
        """A JSON-able snapshot (K = len(ps), M curve points):
            {"step", "ps": [K], "train_loss": [K], "test_loss": [K], "test_acc": [K],
             "train_acc": [K], "batch_loss": [K] (mean dropout-mode loss of the steps
             since the previous curve point; None at step 0), "best_p" (lowest test loss),
             "curve": {"step": [M], "train_loss": [K][M], "test_loss": [K][M],
                       "test_acc": [K][M], "batch_loss": [K][M]},
             "boundaries": [K][size][size] (only with boundaries=True)}
        Losses and accuracies are measured in eval mode on the whole split, except
        batch_loss. Measuring changes nothing in the training."""
        latest = self._latest
        if latest[0] != self.step_count:  # steps since the last curve point: measure now
            latest = (self.step_count, self._metrics())
        points = self._points if self._points[-1][0] == latest[0] else self._points + [latest]
        stacked = torch.stack([m for _, m in points]).cpu()  # (M, 5, K)
        curves = [[[_finite(v) for v in row] for row in stacked[:, i, :].T.tolist()] for i in range(5)]
        now = [[_finite(v) for v in row] for row in latest[1].cpu().tolist()]
        test = now[1]
        best = min(range(len(self.ps)), key=lambda k: math.inf if test[k] is None else test[k])
        out = {
            "step": self.step_count, "ps": list(self.ps),
            "train_loss": now[0], "test_loss": now[1], "test_acc": now[2], "train_acc": now[3],
            "batch_loss": now[4], "best_p": self.ps[best],
            "curve": {"step": [s for s, _ in points], "train_loss": curves[0], "test_loss": curves[1],
                      "test_acc": curves[2], "batch_loss": curves[4]},
        }
        if boundaries:
            out["boundaries"] = self.boundaries()
        return out


def sweep(cfg: RunConfig, ps=DEFAULT_PS, steps: int = SWEEP_STEPS, every: int = 10,
          boundaries: bool = False) -> dict:
    """Train len(ps) models of cfg, one per drop probability, for `steps` steps at once;
    returns Sweep.result() (per-p final losses, accuracies and loss curves)."""
    sw = Sweep(cfg, ps, every=every)
    sw.step(steps)
    return sw.result(boundaries=boundaries)


def _finite(v: float) -> float | None:
    return v if v == v and abs(v) != math.inf else None


class SeedSweep:
    """Copies of one MLP config trained at once, one per (placement, seed): copy j*S + k
    (S = len(seeds)) has placement placements[j] and is a Run of cfg with data.seed =
    seeds[k]: its own data sample, initial weights, batch order and masks (the counter's
    for that seed). The copies of one seed see the same data, weights, batches and masks
    whatever their placement, and differ only in it: a paired comparison, seed by seed.

    placements defaults to [cfg.model.placement]. Every copy uses cfg's activation and p
    per layer; one bucket per placement (model_server.engine.group.Group). Same support as
    Sweep: MLPs without BatchNorm, dropout kind 'dropout' or 'dropout2d'."""

    def __init__(self, cfg: RunConfig, seeds, placements=None, limits: Limits | None = None):
        _check_supported(cfg)
        seeds = [int(s) for s in seeds]
        placements = list(placements or [cfg.model.placement])
        for pl in placements:
            if pl not in ("after_activation", "before_activation"):
                raise ValueError(f"placement has to be after_activation or before_activation, but got {pl!r}")
        if not 1 <= len(seeds) * len(placements) <= MAX_MODELS:
            raise ValueError(f"number of models has to be between 1 and {MAX_MODELS}, "
                             f"but got {len(seeds)} seeds x {len(placements)} placements")
        self.cfg, self.seeds, self.placements = cfg, seeds, placements
        self.limits = limits or Limits()
        self.device = dev = pick_device(cfg.train.device)
        per_seed = []
        for s in seeds:
            c = _with(cfg, seed=s)
            data = make_dataset(c.data).to(dev)
            per_seed.append((c, data, _initial(c, data)))
        self.group = Group([Member(_with(c, placement=pl), data, net, self.limits)
                            for pl in placements for c, data, net in per_seed])

    @property
    def step_count(self) -> int:
        return self.group.step_count

    def step(self, n: int = 1) -> None:
        """n optimizer steps for every copy, each on a batch of its own data."""
        if n < 0 or self.step_count + n > self.limits.max_steps:
            raise ValueError(f"number of steps has to be between 0 and {self.limits.max_steps - self.step_count}, "
                             f"but got {n}")
        self.group.step(n)

    @torch.no_grad()
    def result(self) -> dict:
        """Per copy (K = placements x seeds, placement-major), in eval mode on its whole
        splits: {"step", "placement": [K], "seed": [K], "train_loss", "test_loss",
        "test_acc", "train_acc": [K]}."""
        _, test_loss, test_acc, train_loss, train_acc = (
            [_finite(v) for v in r] for r in self.group.measure(reset=False).cpu().tolist())
        return {"step": self.step_count, "placement": [pl for pl in self.placements for _ in self.seeds],
                "seed": self.seeds * len(self.placements), "train_loss": train_loss,
                "test_loss": test_loss, "test_acc": test_acc, "train_acc": train_acc}


def _with(cfg: RunConfig, p: list[float] | None = None, seed: int | None = None,
          placement: str | None = None) -> RunConfig:
    """cfg with another p per layer, data seed or placement."""
    model, data = cfg.model, cfg.data
    if p is not None or placement is not None:
        model = model.model_copy(update={k: v for k, v in (("p", p), ("placement", placement)) if v is not None})
    if seed is not None:
        data = data.model_copy(update={"seed": seed})
    return cfg.model_copy(update={"model": model, "data": data})


def _initial(cfg: RunConfig, data) -> Net:
    """The network a Run of cfg starts from: torch's default init from its seed."""
    net = Net(cfg.model, tuple(data.x_train.shape[1:]), data.n_classes)
    net.init_weights(torch.Generator().manual_seed(cfg.data.seed))
    return net.to(data.x_train.device)
