"""Copies of one MLP config trained side by side on the engine, each with a recipe of its
own (model_server.regularizers' lessons): its seed, training-set size and regulariser
(engine per-row settings; see model_server/regularizers.py for what each does).

    c = Copies(cfg, [Recipe(0), Recipe(0, p=0.5), Recipe(1, batchnorm=True)], record=True)
    c.step(500); c.result(); c.record_result()
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..config import RunConfig
from ..datasets import Dataset, make_dataset
from ..network import Net
from .group import Group, Member

MAX_COPIES = 64
MAX_STEPS = 2000
BINS = 60                   # histogram bins of the Gaussian factors (record_result)


@dataclass(frozen=True)
class Recipe:
    """One copy: its seed, the first n_train of that seed's training points (None: all),
    and its regulariser. noise: 'dropout' (Bernoulli) or 'gauss' (Gaussian multiplicative
    noise of dropout's mean and variance), at drop probability p, in every hidden layer."""
    seed: int = 0
    n_train: int | None = None
    p: float = 0.0
    noise: str = "dropout"
    weight_decay: float = 0.0
    input_noise: float = 0.0
    batchnorm: bool = False


class Copies:
    """K = len(recipes) copies of cfg's MLP trained side by side. step(n) trains;
    result() measures each copy in eval mode on its own training points and its seed's
    test set. With record=True every factor applied in training is counted (moments,
    histograms): record_result() reports them."""

    def __init__(self, cfg: RunConfig, recipes: list[Recipe], record: bool = False):
        if not 1 <= len(recipes) <= MAX_COPIES:
            raise ValueError(f"number of copies has to be between 1 and {MAX_COPIES}, but got {len(recipes)}")
        if cfg.model.kind != "mlp" or cfg.task != "binary":
            raise ValueError("copies support MLPs on the 2D sets only, "
                             f"but got model.kind {cfg.model.kind!r} on {cfg.data.dataset!r}")
        for r in recipes:
            if not 0.0 <= r.p < 1.0 or r.noise not in ("dropout", "gauss"):
                raise ValueError(f"a copy's noise has to be dropout or gauss with p in [0, 1), but got {r.noise!r}, p={r.p}")
        self.cfg, self.recipes = cfg, list(recipes)
        datas = {s: make_dataset(cfg.data.model_copy(update={"seed": s})) for s in sorted({r.seed for r in recipes})}
        sizes = [len(datas[r.seed].x_train) if r.n_train is None else r.n_train for r in recipes]
        for r, n in zip(recipes, sizes):
            if not 1 <= n <= len(datas[r.seed].x_train):
                raise ValueError(f"training points have to be between 1 and {len(datas[r.seed].x_train)}, but got {n}")
        self.batch = min(cfg.train.batch_size, *sizes)
        self.group = Group([_member(cfg, r, datas[r.seed], n, self.batch) for r, n in zip(recipes, sizes)])
        self.x_test = torch.stack([datas[r.seed].x_test for r in recipes])
        noisy = [r for r in recipes if r.p > 0]
        self.scale = torch.tensor([1 / (1 - r.p) for r in noisy], dtype=torch.float32)
        self.record = Factors([r for r in recipes if r.p > 0]) if record else None

    @property
    def step_count(self) -> int:
        return self.group.step_count

    def step(self, n: int = 1) -> None:
        if not 0 <= n <= MAX_STEPS - self.step_count:
            raise ValueError(f"steps has to be between 0 and {MAX_STEPS - self.step_count}, but got {n}")
        if self.record is None:
            self.group.step(n)
            return
        noisy = [m for m, r in zip(self.group.members, self.recipes) if r.p > 0]
        for _ in range(n):   # one step at a time: each step's factors are read after it
            self.group.step(1)
            self.record.add(noisy)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every copy's eval-mode logits for its own inputs x (K, N, 2): (K, N)."""
        return self.group.logits_of(x)

    def result(self) -> dict:
        """Per copy, in eval mode: {"train_loss", "test_loss", "train_acc", "test_acc": [K]}
        (train: the copy's own training points)."""
        _, test_loss, test_acc, train_loss, train_acc = self.group.measure(reset=False).tolist()
        return {"train_loss": train_loss, "test_loss": test_loss, "train_acc": train_acc, "test_acc": test_acc}

    def record_result(self) -> dict:
        """The factors applied in training so far (Factors.result)."""
        return self.record.result()


def _member(cfg: RunConfig, r: Recipe, data: Dataset, n: int, batch: int) -> Member:
    """The engine row of one recipe: cfg with the recipe's seed, p, weight decay and
    BatchNorm, on the first n training points of its seed's data."""
    model = {"p": [r.p] * len(cfg.model.hidden)}
    if r.batchnorm:
        model.update(batchnorm="before_dropout", placement="before_activation")
    c = cfg.model_copy(update={"model": cfg.model.model_copy(update=model),
                               "data": cfg.data.model_copy(update={"seed": r.seed}),
                               "train": cfg.train.model_copy(update={"weight_decay": r.weight_decay,
                                                                      "batch_size": batch})})
    own = Dataset(data.x_train[:n], data.y_train[:n], data.x_test, data.y_test, data.n_classes)
    net = Net(c.model, (2,), 1)
    net.init_weights(torch.Generator().manual_seed(r.seed))  # what a Run of that seed draws
    return Member(c, own, net, noise=r.noise, input_noise=r.input_noise)


class Factors:
    """Counts of the multiplicative factors noisy copies applied in training (recipes
    with p > 0, in order): moments, the two levels of dropout's factors, a histogram of
    the Gaussian ones."""

    def __init__(self, noisy: list[Recipe]):
        M = len(noisy)
        self.scale = torch.tensor([1 / (1 - r.p) for r in noisy], dtype=torch.float32).view(M, 1)
        self.gauss = torch.tensor([r.noise == "gauss" for r in noisy])
        sd = max([math.sqrt(r.p / (1 - r.p)) for r in noisy], default=0.0)
        # every dropout factor (0 and the largest 1 / (1 - p)) and the Gaussian factors
        # within 4 standard deviations of 1
        self.lo, self.hi = min(0.0, 1 - 4 * sd), max(float(self.scale.max()) if M else 1.0, 1 + 4 * sd)
        self.sums = torch.zeros(3, M, dtype=torch.float64)  # count, sum, sum of squares
        self.levels = torch.zeros(2, M, dtype=torch.float64)  # factors == 0, == 1 / (1 - p)
        self.hist = torch.zeros(BINS, dtype=torch.float64)
        self.outside = torch.zeros(3, dtype=torch.float64)  # below, above the range; negative

    @torch.no_grad()
    def add(self, members: list[Member]) -> None:
        """The factors of the members' last step, every layer (the engine's record of it)."""
        layers = []
        for l in range(len(members[0].cfg.model.hidden)) if members else ():
            rows = []
            for m in members:
                b = m.bucket
                rec, r = b.records.of(m.row)
                mul = b.tables().tab["mul"][m.row, l]
                rows.append(rec[0][l][1][r] * mul)
            layers.append(torch.stack(rows).flatten(1))
        if layers:
            self._count(torch.cat(layers, 1).cpu())

    def _count(self, f: torch.Tensor) -> None:
        """Add the factors (M, n) to the running counts."""
        self.sums += torch.stack([torch.full((len(f),), float(f.shape[1]), dtype=torch.float64),
                                  f.sum(1).double(), (f * f).sum(1).double()])
        self.levels += torch.stack([(f == 0).sum(1), (f == self.scale).sum(1)]).double()
        if self.gauss.any():
            g = f[self.gauss]
            self.hist += torch.histc(g, BINS, self.lo, self.hi).double()
            self.outside += torch.stack([(g < self.lo).sum(), (g > self.hi).sum(), (g < 0).sum()]).double()

    def result(self) -> dict:
        """Per noisy copy (M): {"count", "mean", "var" (over every factor applied, all
        layers and steps), "zeros" (factors == 0), "scaled" (factors == 1 / (1 - p), as a
        float32)}; over all Gaussian copies {"edges": [BINS + 1], "counts": [BINS],
        "below", "above" (outside the edges), "negative" (below 0)}."""
        n, s, ss = self.sums
        mean = s / n.clamp_min(1)
        return {
            "count": n.tolist(), "mean": mean.tolist(), "var": (ss / n.clamp_min(1) - mean * mean).tolist(),
            "zeros": self.levels[0].tolist(), "scaled": self.levels[1].tolist(),
            "edges": torch.linspace(self.lo, self.hi, BINS + 1, dtype=torch.float64).tolist(),
            "counts": self.hist.tolist(), "below": float(self.outside[0]), "above": float(self.outside[1]),
            "negative": float(self.outside[2]),
        }
