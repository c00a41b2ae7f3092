"""Regularisers side by side: copies of one MLP trained at once, each with a recipe of its
own, for the lessons "When not to use dropout" and "Dropout as noise".

    data_size(sizes=(50, ..., 2000))   train-test gap with and without dropout, per set size
    alternatives()                     none, dropout, weight decay, BatchNorm, input noise, all
    noise_injection(p=0.5)             dropout's 0-or-1/(1-p) factors vs Gaussian ones N(1, p/(1-p))
    work(name, **params)               an experiment's cost in multiply-adds, from its params

Each is a plain function of its params (no run, no session), bounded by MAX_WORK, and
cached: the same params give the same answer. They train copies of the overfitting preset
(sweep.SWEEP_PRESET: 2-64-64-1 ReLU, Adam, 50 noisy XOR points to train on).

A copy's recipe (Recipe) sets what differs: its seed (data sample, initial weights), its
training-set size, and its regulariser. Copies are one batched computation, as in
sweep.py: layer l's weights of all K copies are W (K, in, out), a hidden layer is

    h = baddbmm(b, x, W)  [-> BatchNorm over the batch]  -> act  -> h * factor

where each copy with p > 0 draws a fresh factor (B, width) at every step: Bernoulli(1 - p)
/ (1 - p) for dropout (mean 1, variance p / (1 - p)), 1 + sqrt(p / (1 - p)) * N(0, 1) for
Gaussian multiplicative noise of the same mean and variance ("Gaussian dropout"); copies
with p = 0 have none. In eval mode there is no factor and BatchNorm uses its running
statistics, as torch.nn's.
Weight decay is Adam's (torch.optim.Adam(weight_decay=wd): wd * theta added to the
gradient), per copy. Input noise adds N(0, sigma^2) to each training batch's inputs.

Copies with the same seed and training-set size see the same batches in the same order
(each batch drawn without replacement, a fresh permutation every epoch), so comparisons
are paired, seed by seed. The random draws (masks, noise, batches) come from generators
seeded by the first seed, so they depend on the whole list of copies.
"""
from __future__ import annotations

import functools
import inspect
import math
import statistics
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .config import RunConfig, parse_config
from .datasets import make_dataset
from .activations import ACTIVATIONS
from .network import Net
from .pacing import checkpoint
from .runstate import make_optimizer
from .sweep import SWEEP_PRESET, SWEEP_STEPS

MAX_COPIES = 64
MAX_STEPS = 2000
MAX_SEEDS = 8
MAX_SEED = 2**31 - 1 - MAX_SEEDS  # the first seed; copies use seed, seed + 1, ...
MAX_SIZE = 2000             # training points of one copy (data_size)
TEST_POINTS = 1000          # data_size: one test set per seed, shared by every size
MAX_WORK = 6 * 10**9        # multiply-adds one experiment may cost (a few seconds on one core)
BINS = 60                   # noise_injection: histogram bins of the Gaussian factors
BN_EPS, BN_MOMENTUM = 1e-5, 0.1  # torch.nn.BatchNorm1d's defaults

# the alternatives' strengths: one common setting each, not tuned to this preset
WEIGHT_DECAY = 0.01
INPUT_NOISE = 0.2           # std, on the plane's scale (the points lie in [-1, 1])


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


def preset(**data) -> RunConfig:
    """The overfitting preset, its data section updated (unvalidated: data_size asks for
    more points than a visitor's config may have)."""
    cfg = parse_config(SWEEP_PRESET)
    return cfg.model_copy(update={"data": cfg.data.model_copy(update=data)})


def macs_per_example(cfg: RunConfig, inputs: int = 2) -> int:
    n, macs = inputs, 0
    for width in (*cfg.model.hidden, 1):
        macs, n = macs + n * width, width
    return macs


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
        K = len(recipes)
        seeds = sorted({r.seed for r in recipes})
        datas = {s: make_dataset(cfg.data.model_copy(update={"seed": s})) for s in seeds}
        sizes = [len(datas[r.seed].x_train) if r.n_train is None else r.n_train for r in recipes]
        for r, n in zip(recipes, sizes):
            if not 1 <= n <= len(datas[r.seed].x_train):
                raise ValueError(f"training points have to be between 1 and {len(datas[r.seed].x_train)}, but got {n}")
        self.batch = min(cfg.train.batch_size, *sizes)
        # copies of one (seed, size) share a batch stream: a paired comparison
        groups = sorted({(r.seed, n) for r, n in zip(recipes, sizes)})
        self.group = torch.tensor([groups.index((r.seed, n)) for r, n in zip(recipes, sizes)])
        self.n = torch.tensor(sizes)
        n_max = max(sizes)
        pad = lambda t: F.pad(t, (0, 0) * (t.dim() - 1) + (0, n_max - len(t)))  # noqa: E731
        self.x_train = torch.stack([pad(datas[r.seed].x_train[:n]) for r, n in zip(recipes, sizes)])  # (K, N, 2)
        self.y_train = torch.stack([pad(datas[r.seed].y_train[:n]) for r, n in zip(recipes, sizes)])  # (K, N)
        self.x_test = torch.stack([datas[r.seed].x_test for r in recipes])
        self.y_test = torch.stack([datas[r.seed].y_test for r in recipes])
        self.group_n = torch.tensor([n for _, n in groups])
        self.order = torch.zeros(len(groups), n_max, dtype=torch.long)
        self.pos = torch.full((len(groups),), n_max + 1)  # every group starts a new epoch

        nets = {}
        for s in seeds:
            net = Net(cfg.model, (2,), 1)
            net.init_weights(torch.Generator().manual_seed(s))  # what a Run of that seed draws
            nets[s] = [b[0] for b in net.blocks] + [net.head]
        stack = lambda ts: torch.stack(ts).contiguous().requires_grad_()  # noqa: E731
        self.W = [stack([nets[r.seed][i].weight.detach().T for r in recipes]) for i in range(len(cfg.model.hidden) + 1)]
        self.b = [stack([nets[r.seed][i].bias.detach().unsqueeze(0) for r in recipes]) for i in range(len(cfg.model.hidden) + 1)]
        widths = cfg.model.hidden
        self.gamma = [torch.ones(K, 1, w, requires_grad=True) for w in widths]
        self.beta = [torch.zeros(K, 1, w, requires_grad=True) for w in widths]
        self.running = [(torch.zeros(K, 1, w), torch.ones(K, 1, w)) for w in widths]
        self.act = ACTIVATIONS[cfg.model.activation].module()
        col = lambda vals, dtype=torch.float32: torch.tensor(vals, dtype=dtype).view(len(vals), 1, 1)  # noqa: E731
        rows = lambda keep: torch.tensor([k for k, r in enumerate(recipes) if keep(r)], dtype=torch.long)  # noqa: E731
        # the work of a regulariser is done for the copies that have it, not all K
        self.bn_rows = rows(lambda r: r.batchnorm)
        noisy = [r for r in recipes if r.p > 0]
        self.noisy_rows = rows(lambda r: r.p > 0) if noisy else None
        self.keep = col([1 - r.p for r in noisy])
        self.scale = col([1 / (1 - r.p) for r in noisy])
        self.sd = col([math.sqrt(r.p / (1 - r.p)) for r in noisy])
        self.gauss = col([r.noise == "gauss" for r in noisy], torch.bool)
        self.wd = col([r.weight_decay for r in recipes])
        self.sigma = col([r.input_noise for r in recipes])
        self.any_bn, self.any_gauss = len(self.bn_rows) > 0, bool(self.gauss.any())
        self.any_input_noise, self.any_wd = bool(self.sigma.any()), bool(self.wd.any())
        self.gen = torch.Generator().manual_seed(seeds[0] + 1)
        self.batch_gen = torch.Generator().manual_seed(seeds[0] + 2)
        t = cfg.train
        self.params = self.W + self.b + self.gamma + self.beta
        self.opt = make_optimizer(t.optimizer, self.params, t.lr, 0.0)
        self.step_count = 0
        self.record = record
        if record:
            M = len(noisy)
            self._sums = torch.zeros(3, M, dtype=torch.float64)  # count, sum, sum of squares
            self._levels = torch.zeros(2, M, dtype=torch.float64)  # factors == 0, == 1 / (1 - p)
            self._lo, self._hi = self._range()
            self._hist = torch.zeros(BINS, dtype=torch.float64)
            self._outside = torch.zeros(3, dtype=torch.float64)  # below, above the range; negative

    # ---- the batched network ---------------------------------------------------------
    def _batchnorm(self, h: torch.Tensor, layer: int, train: bool) -> torch.Tensor:
        """torch.nn.BatchNorm1d on the copies with batchnorm, h (K, B, F): batch statistics
        (biased variance) in train mode, running ones in eval mode."""
        rows = self.bn_rows
        x = h.index_select(0, rows)
        mean, var = (t.index_select(0, rows) for t in self.running[layer])
        if train:
            mean = x.mean(1, keepdim=True)
            centred = x - mean
            var = (centred * centred).mean(1, keepdim=True)
            with torch.no_grad():
                n = x.shape[1]
                running_mean, running_var = self.running[layer]
                running_mean.index_copy_(0, rows, running_mean.index_select(0, rows).lerp_(mean, BN_MOMENTUM))
                unbiased = var * (n / (n - 1)) if n > 1 else var
                running_var.index_copy_(0, rows, running_var.index_select(0, rows).lerp_(unbiased, BN_MOMENTUM))
        else:
            centred = x - mean
        normed = centred * torch.rsqrt(var + BN_EPS) * self.gamma[layer][rows] + self.beta[layer][rows]
        return h.index_copy(0, rows, normed)

    def factor(self, shape) -> torch.Tensor:
        """The multiplicative noise of the copies with p > 0 for one hidden layer's output:
        (len(noisy_rows), B, F)."""
        f = torch.rand(shape, generator=self.gen).lt_(self.keep).mul_(self.scale)
        if self.any_gauss:
            z = torch.randn(shape, generator=self.gen)
            f = torch.where(self.gauss, z.mul_(self.sd).add_(1), f)
        if self.record:
            self._count(f)
        return f

    def logits(self, x: torch.Tensor, train: bool = False) -> torch.Tensor:
        """Every copy's logits for its own inputs x (K, N, 2): (K, N)."""
        h = x
        for layer, (W, b) in enumerate(zip(self.W[:-1], self.b[:-1])):
            h = torch.baddbmm(b, h, W)
            if self.any_bn:
                h = self._batchnorm(h, layer, train)
            h = self.act(h)
            if train and self.noisy_rows is not None:
                rows = self.noisy_rows
                h = h.index_copy(0, rows, h.index_select(0, rows) * self.factor((len(rows), *h.shape[1:])))
        return torch.baddbmm(self.b[-1], h, self.W[-1]).squeeze(-1)

    # ---- training --------------------------------------------------------------------
    def _batch(self) -> torch.Tensor:
        """(K, B) indices: each group's next B points of its epoch's permutation."""
        B = self.batch
        new = self.pos + B > self.group_n
        for g in new.nonzero().flatten().tolist():
            n = int(self.group_n[g])
            self.order[g, :n] = torch.randperm(n, generator=self.batch_gen)
            self.pos[g] = 0
        idx = self.order.gather(1, self.pos.unsqueeze(1) + torch.arange(B))
        self.pos += B
        return idx[self.group]

    def step(self, n: int = 1) -> None:
        if not 0 <= n <= MAX_STEPS - self.step_count:
            raise ValueError(f"steps has to be between 0 and {MAX_STEPS - self.step_count}, but got {n}")
        for _ in range(n):
            checkpoint()  # a server may give its CPU to others here (model_server/pacing.py)
            idx = self._batch()
            x = self.x_train.gather(1, idx.unsqueeze(2).expand(-1, -1, 2))
            y = self.y_train.gather(1, idx)
            if self.any_input_noise:
                x = x + self.sigma * torch.randn(x.shape, generator=self.gen)
            loss = F.binary_cross_entropy_with_logits(self.logits(x, train=True), y, reduction="none").mean(1)
            self.opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            if self.any_wd:
                with torch.no_grad():
                    for P in self.params:
                        P.grad.add_(P * self.wd)
            self.opt.step()
            self.step_count += 1

    # ---- measuring ------------------------------------------------------------------------
    @torch.no_grad()
    def result(self) -> dict:
        """Per copy, in eval mode: {"train_loss", "test_loss", "train_acc", "test_acc": [K]}
        (train: the copy's own training points)."""
        lt, lv = self.logits(self.x_train), self.logits(self.x_test)
        real = (torch.arange(self.x_train.shape[1]) < self.n.unsqueeze(1)).float()
        per = F.binary_cross_entropy_with_logits(lt, self.y_train, reduction="none")
        hits = lambda lg, y: ((lg > 0).float() == y).float()  # noqa: E731
        return {
            "train_loss": ((per * real).sum(1) / self.n).tolist(),
            "test_loss": F.binary_cross_entropy_with_logits(lv, self.y_test, reduction="none").mean(1).tolist(),
            "train_acc": ((hits(lt, self.y_train) * real).sum(1) / self.n).tolist(),
            "test_acc": hits(lv, self.y_test).mean(1).tolist(),
        }

    def _range(self) -> tuple[float, float]:
        """Histogram range: every dropout factor (0 and the largest 1 / (1 - p)) and the
        Gaussian factors within 4 standard deviations of 1."""
        sd = float(self.sd.max()) if len(self.sd) else 0.0
        return min(0.0, 1 - 4 * sd), max(float(self.scale.max()) if len(self.scale) else 1.0, 1 + 4 * sd)

    @torch.no_grad()
    def _count(self, f: torch.Tensor) -> None:
        """Add one layer's factors (M noisy copies, B, F) to the running counts."""
        per = f[0].numel()
        self._sums += torch.stack([torch.full((len(f),), float(per)), f.sum((1, 2)).double(),
                                   (f * f).sum((1, 2)).double()])
        self._levels += torch.stack([(f == 0).sum((1, 2)), (f == self.scale).sum((1, 2))]).double()
        if self.any_gauss:
            g = f[self.gauss.view(-1)]
            self._hist += torch.histc(g, BINS, self._lo, self._hi).double()
            self._outside += torch.stack([(g < self._lo).sum(), (g > self._hi).sum(), (g < 0).sum()]).double()

    def record_result(self) -> dict:
        """The factors applied in training so far, per copy with p > 0 (M, in the order of
        the recipes): {"count", "mean", "var" (over every factor applied, all layers and
        steps), "zeros" (factors == 0), "scaled" (factors == 1 / (1 - p), as a float32)};
        over all Gaussian copies {"edges": [BINS + 1], "counts": [BINS], "below", "above"
        (outside the edges), "negative" (below 0)}."""
        n, s, ss = self._sums
        mean = s / n.clamp_min(1)
        return {
            "count": n.tolist(), "mean": mean.tolist(), "var": (ss / n.clamp_min(1) - mean * mean).tolist(),
            "zeros": self._levels[0].tolist(), "scaled": self._levels[1].tolist(),
            "edges": torch.linspace(self._lo, self._hi, BINS + 1, dtype=torch.float64).tolist(),
            "counts": self._hist.tolist(), "below": float(self._outside[0]), "above": float(self._outside[1]),
            "negative": float(self._outside[2]),
        }


# ---- statistics over seeds ------------------------------------------------------------------
def _spread(values: list[float]) -> dict:
    """mean and standard deviation (n - 1 in the denominator) of per-seed values."""
    return {"values": values, "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def _paired(better: list[float], worse: list[float]) -> dict:
    """diff = worse - better, seed by seed: > 0 where `better` has the lower loss.
    verdict: "lower" when the mean diff exceeds the spread of the diffs over seeds,
    "higher" when it is below minus the spread, else "no-clear-difference"."""
    d = _spread([w - b for b, w in zip(better, worse)])
    d["verdict"] = ("lower" if d["mean"] > d["std"] else "higher" if d["mean"] < -d["std"]
                    else "no-clear-difference")
    return d


def _bounded(name: str, v, lo, hi):
    """lo <= v <= hi, v an int where the bounds are ints, else a number."""
    kinds = int if isinstance(lo, int) and isinstance(hi, int) else (int, float)
    if isinstance(v, bool) or not isinstance(v, kinds) or not lo <= v <= hi:
        raise ValueError(f"{name} has to be between {lo} and {hi}, but got {v!r}")
    return v


def _check_work(name: str, params: dict) -> None:
    w = work(name, **params)
    if w > MAX_WORK:
        most = MAX_WORK // (w // params["steps"])
        raise ValueError(f"steps has to be between 1 and {most}, as copies x steps x batch x multiply-adds may "
                         f"be at most {MAX_WORK:.0e}, but got {params['steps']}")


def work(name: str, **params) -> int:
    """Multiply-adds of an experiment's training, forward passes only (backward is about
    twice that): copies x steps x batch x per-example multiply-adds, from its params
    (defaults filled in). What a scheduler can budget before running it."""
    fn = {"data_size": data_size, "alternatives": alternatives, "noise_injection": noise_injection}.get(name)
    if fn is None:
        raise ValueError(f"no experiment {name!r}")
    args = inspect.signature(fn).bind(**params)
    args.apply_defaults()
    a = args.arguments
    copies = {"data_size": lambda: 2 * len(a["sizes"]), "alternatives": lambda: len(ALTERNATIVES),
              "noise_injection": lambda: 3}[name]() * a["seeds"]
    cfg = preset()
    return copies * a["steps"] * cfg.train.batch_size * macs_per_example(cfg)


# ---- i. does dropout's benefit shrink as the data grows? -------------------------------------
DATA_SIZES = (50, 100, 200, 500, 1000, 2000)


def data_size(sizes=DATA_SIZES, p: float = 0.5, steps: int = SWEEP_STEPS, seeds: int = 3, seed: int = 0) -> dict:
    """The preset's network trained on the first n points of a bigger noisy XOR sample,
    for each n in sizes, without dropout and with dropout p, on `seeds` seeds (seed, seed
    + 1, ...: each its own data sample, initial weights and batches); all
    2 x len(sizes) x seeds copies at once, `steps` steps of batch 50 each (the same budget
    for every size: the small sets are seen many times over, the large ones a few). Every
    size of one seed is tested on that seed's TEST_POINTS test points.

    gap = test loss - train loss (eval mode, the copy's own training points). benefit =
    test loss without - test loss with dropout, seed by seed. The trend compares the
    benefit at the smallest size with that at the largest, seed by seed: "shrinks" when
    it is smaller at the largest size on every seed, "grows" when larger on every seed,
    else "no-clear-change". (The benefit on few points varies a lot from seed to seed,
    always in one direction: a sign on every seed says more here than a mean against a
    spread.)

    Returns {"sizes", "p", "steps", "seeds": [S], "none" and "dropout": {"gap",
    "test_loss", "train_loss": [sizes] of {"values": [S], "mean", "std"}},
    "benefit": [sizes] of {"values", "mean", "std", "verdict" ("lower": dropout's test
    loss is lower by more than the spread, "higher", "no-clear-difference")},
    "trend": {"values" (benefit at the smallest - at the largest size, per seed),
    "mean", "std", "verdict"}}."""
    given = list(sizes)
    sizes = sorted({_bounded("sizes", n, 10, MAX_SIZE) for n in given})
    if not 2 <= len(sizes) <= 8:
        raise ValueError(f"sizes has to be between 2 and 8, counting different sizes, but got {len(sizes)} ({given})")
    _bounded("p", p, 0.05, 0.9)
    _bounded("steps", steps, 1, MAX_STEPS)
    _bounded("seeds", seeds, 2, min(MAX_SEEDS, MAX_COPIES // (2 * len(sizes))))  # 2 copies a size and seed
    _bounded("seed", seed, 0, MAX_SEED)
    _check_work("data_size", {"sizes": sizes, "steps": steps, "seeds": seeds})
    return _data_size(tuple(sizes), float(p), steps, seeds, seed)


@functools.lru_cache(maxsize=16)
def _data_size(sizes: tuple, p: float, steps: int, seeds: int, seed: int) -> dict:
    n_max = max(sizes)
    total = n_max + TEST_POINTS
    cfg = preset(n_points=total, train_fraction=(n_max + 0.5) / total)
    seed_list = list(range(seed, seed + seeds))
    recipes = [Recipe(seed=s, n_train=n, p=q) for q in (0.0, p) for n in sizes for s in seed_list]
    c = Copies(cfg, recipes)
    c.step(steps)
    r = c.result()
    S, N = seeds, len(sizes)
    at = lambda key, j, i: r[key][(j * N + i) * S:(j * N + i + 1) * S]  # noqa: E731
    out = {"sizes": list(sizes), "p": p, "steps": steps, "seeds": seed_list}
    for j, name in enumerate(("none", "dropout")):
        out[name] = {
            "train_loss": [_spread(at("train_loss", j, i)) for i in range(N)],
            "test_loss": [_spread(at("test_loss", j, i)) for i in range(N)],
            "gap": [_spread([t - tr for t, tr in zip(at("test_loss", j, i), at("train_loss", j, i))]) for i in range(N)],
        }
    out["benefit"] = [_paired(at("test_loss", 1, i), at("test_loss", 0, i)) for i in range(N)]
    first, last = out["benefit"][0]["values"], out["benefit"][-1]["values"]
    trend = _spread([a - b for a, b in zip(first, last)])
    trend["verdict"] = ("shrinks" if all(v > 0 for v in trend["values"]) else
                        "grows" if all(v < 0 for v in trend["values"]) else "no-clear-change")
    out["trend"] = trend
    return out


# ---- ii. the alternatives on the overfitting preset ---------------------------------------------
ALTERNATIVES = ("none", "dropout", "weight_decay", "batchnorm", "input_noise", "combined")


def _recipe(name: str, seed: int, p: float, weight_decay: float, input_noise: float) -> Recipe:
    return {
        "none": Recipe(seed),
        "dropout": Recipe(seed, p=p),
        "weight_decay": Recipe(seed, weight_decay=weight_decay),
        "batchnorm": Recipe(seed, batchnorm=True),
        "input_noise": Recipe(seed, input_noise=input_noise),
        "combined": Recipe(seed, p=p, weight_decay=weight_decay, input_noise=input_noise),
    }[name]


def alternatives(p: float = 0.5, weight_decay: float = WEIGHT_DECAY, input_noise: float = INPUT_NOISE,
                 steps: int = SWEEP_STEPS, seeds: int = 4, seed: int = 0) -> dict:
    """The preset (50 training points) trained `steps` steps on `seeds` seeds (seed, seed + 1, ...) with each of
    ALTERNATIVES: no regulariser, dropout p, weight decay (Adam's L2), BatchNorm after each
    hidden Linear (before the activation), Gaussian noise of std input_noise added to the
    inputs of every batch (augmentation), and dropout + weight decay + input noise
    combined. All copies at once; copies of one seed share data, initial weights and
    batches.

    Returns {"names", "p", "weight_decay", "input_noise", "steps", "seeds": [S], "runs":
    per name {"train_loss", "test_loss", "test_acc", "gap": {"values": [S], "mean", "std"},
    "vs_none": paired test-loss difference against no regulariser (none's - this one's:
    > 0 is better) with its verdict ("lower", "higher", "no-clear-difference"; None for
    none)}, "best" (the name with the lowest mean test loss)}."""
    _bounded("p", p, 0.05, 0.9)
    _bounded("weight_decay", weight_decay, 0.0, 0.1)
    _bounded("input_noise", input_noise, 0.0, 1.0)
    _bounded("steps", steps, 1, MAX_STEPS)
    _bounded("seeds", seeds, 2, MAX_SEEDS)
    _bounded("seed", seed, 0, MAX_SEED)
    _check_work("alternatives", {"steps": steps, "seeds": seeds})
    return _alternatives(float(p), float(weight_decay), float(input_noise), steps, seeds, seed)


@functools.lru_cache(maxsize=16)
def _alternatives(p: float, weight_decay: float, input_noise: float, steps: int, seeds: int, seed: int) -> dict:
    seed_list = list(range(seed, seed + seeds))
    recipes = [_recipe(a, s, p, weight_decay, input_noise) for a in ALTERNATIVES for s in seed_list]
    c = Copies(preset(), recipes)
    c.step(steps)
    r = c.result()
    S = seeds
    runs = {}
    for j, name in enumerate(ALTERNATIVES):
        part = {k: _spread(r[k][j * S:(j + 1) * S]) for k in ("train_loss", "test_loss", "test_acc")}
        part["gap"] = _spread([t - tr for t, tr in zip(part["test_loss"]["values"], part["train_loss"]["values"])])
        part["vs_none"] = None
        runs[name] = part
    for name in ALTERNATIVES[1:]:
        runs[name]["vs_none"] = _paired(runs[name]["test_loss"]["values"], runs["none"]["test_loss"]["values"])
    return {"names": list(ALTERNATIVES), "p": p, "weight_decay": weight_decay, "input_noise": input_noise,
            "steps": steps, "seeds": seed_list, "runs": runs,
            "best": min(ALTERNATIVES, key=lambda a: runs[a]["test_loss"]["mean"])}


# ---- dropout as multiplicative noise ------------------------------------------------------------
def noise_injection(p: float = 0.5, steps: int = SWEEP_STEPS, seeds: int = 4, seed: int = 0) -> dict:
    """The preset trained `steps` steps on `seeds` seeds (seed, seed + 1, ...) three ways
    at once: without noise, with dropout p (factor mask / (1 - p): 0 or 1 / (1 - p)), and
    with Gaussian multiplicative noise of the same mean and variance (factor 1 + sqrt(p /
    (1 - p)) z, z ~ N(0, 1)). Every factor applied in training, all layers, steps and seeds, is
    counted as it is drawn: the moments measured are those of the real masks and noise.

    Returns {"p", "steps", "seeds", "theory": {"mean": 1, "var": p / (1 - p)},
    "dropout": {"count", "mean", "var", "values": [0, 1 / (1 - p)], "counts": [how many
    factors were 0, how many 1 / (1 - p)], "other" (how many were neither: 0)}, "gauss": {"count", "mean", "var", "edges": [BINS + 1],
    "counts": [BINS], "below", "above", "negative" (the share of factors below 0)}, "runs": {"none", "dropout", "gauss":
    {"train_loss", "test_loss", "test_acc", "gap": spread over seeds}}, "gauss_vs_dropout":
    paired test-loss difference (dropout's - gauss's) and verdict ("lower": Gaussian noise
    is better by more than the spread, "higher": worse, "no-clear-difference"),
    "dropout_vs_none", "gauss_vs_none": the same against no noise}."""
    _bounded("p", p, 0.05, 0.9)
    _bounded("steps", steps, 1, MAX_STEPS)
    _bounded("seeds", seeds, 2, MAX_SEEDS)
    _bounded("seed", seed, 0, MAX_SEED)
    _check_work("noise_injection", {"steps": steps, "seeds": seeds})
    return _noise_injection(float(p), steps, seeds, seed)


@functools.lru_cache(maxsize=16)
def _noise_injection(p: float, steps: int, seeds: int, seed: int) -> dict:
    seed_list = list(range(seed, seed + seeds))
    kinds = ("none", "dropout", "gauss")
    recipes = ([Recipe(s) for s in seed_list] + [Recipe(s, p=p) for s in seed_list]
               + [Recipe(s, p=p, noise="gauss") for s in seed_list])
    c = Copies(preset(), recipes, record=True)
    c.step(steps)
    r, f = c.result(), c.record_result()
    S = seeds

    def pooled(rows: range) -> dict:
        """Moments over all factors of these noisy copies (rows of record_result)."""
        n = sum(f["count"][k] for k in rows)
        mean = sum(f["mean"][k] * f["count"][k] for k in rows) / n
        second = sum((f["var"][k] + f["mean"][k] ** 2) * f["count"][k] for k in rows) / n
        return {"count": n, "mean": mean, "var": second - mean * mean}

    drop, gauss = pooled(range(S)), pooled(range(S, 2 * S))  # the noisy copies: dropout's, then gauss's
    zeros, scaled = (sum(f[k][i] for i in range(S)) for k in ("zeros", "scaled"))
    drop.update(values=[0.0, float(c.scale[0])], counts=[zeros, scaled], other=drop["count"] - zeros - scaled)
    gauss.update(edges=f["edges"], counts=f["counts"], below=f["below"], above=f["above"],
                 negative=f["negative"] / gauss["count"])
    runs = {}
    for j, name in enumerate(kinds):
        part = {k: _spread(r[k][j * S:(j + 1) * S]) for k in ("train_loss", "test_loss", "test_acc")}
        part["gap"] = _spread([t - tr for t, tr in zip(part["test_loss"]["values"], part["train_loss"]["values"])])
        runs[name] = part
    test = {k: runs[k]["test_loss"]["values"] for k in kinds}
    return {"p": p, "steps": steps, "seeds": seed_list, "theory": {"mean": 1.0, "var": p / (1 - p)},
            "dropout": drop, "gauss": gauss, "runs": runs,
            "gauss_vs_dropout": _paired(test["gauss"], test["dropout"]),
            "dropout_vs_none": _paired(test["dropout"], test["none"]),
            "gauss_vs_none": _paired(test["gauss"], test["none"])}


__all__ = ["Copies", "Recipe", "data_size", "alternatives", "noise_injection", "work"]
