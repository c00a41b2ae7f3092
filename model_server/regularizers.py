"""Regularisers side by side: copies of one MLP trained at once, each with a recipe of its
own, for the lessons "When not to use dropout" and "Dropout as noise".

    data_size(sizes=(50, ..., 2000))   train-test gap with and without dropout, per set size
    alternatives()                     none, dropout, weight decay, BatchNorm, input noise, all
    noise_injection(p=0.5)             dropout's 0-or-1/(1-p) factors vs Gaussian ones N(1, p/(1-p))
    work(name, **params)               an experiment's cost in multiply-adds, from its params

Each is a plain function of its params (no run, no session), bounded by MAX_WORK, and
cached: the same params give the same answer. They train copies of the overfitting preset
(sweep.SWEEP_PRESET: 2-64-64-1 ReLU, Adam, 50 noisy XOR points to train on).

A copy's recipe (Recipe) sets what differs: its seed (data sample, initial weights,
batch order, masks), its training-set size, and its regulariser. Each copy is a row of
the playground's engine (model_server.engine.group: one bucket for the copies without
BatchNorm, one for those with it), with the engine's per-row settings:

    p, noise:       dropout's masks from the counter of the copy's seed, factor 0 or
                    1 / (1 - p), or ("gauss") Gaussian multiplicative noise of the same
                    mean and variance, 1 + sqrt(p / (1 - p)) z, z from the counter's bits
    weight_decay:   Adam's L2 (wd * theta added to the gradient)
    input_noise:    N(0, sigma^2) added to each training batch's inputs (counter's bits)
    batchnorm:      BatchNorm after each hidden Linear, before the activation (a block
                    Linear -> BatchNorm -> dropout -> activation: the engine's
                    before_activation placement with BatchNorm before dropout)
    n_train:        its first n_train training points: the row's data is its own

In eval mode there is no noise and BatchNorm uses its running statistics, as torch.nn's.
Copies with the same seed and training-set size see the same batches in the same order
(a Run's batch order for that seed) and, at the same p, the same masks: comparisons are
paired, seed by seed. A copy's draws depend on its own recipe only, not on the others.
"""
from __future__ import annotations

import functools
import inspect
import statistics

from .config import RunConfig, parse_config
from .engine.copies import MAX_COPIES, MAX_STEPS, Copies, Recipe
from .sweep import SWEEP_PRESET, SWEEP_STEPS

MAX_SEEDS = 8
MAX_SEED = 2**31 - 1 - MAX_SEEDS  # the first seed; copies use seed, seed + 1, ...
MAX_SIZE = 2000             # training points of one copy (data_size)
TEST_POINTS = 1000          # data_size: one test set per seed, shared by every size
MAX_WORK = 6 * 10**9        # multiply-adds one experiment may cost (a few seconds on one core)

# the alternatives' strengths: one common setting each, not tuned to this preset
WEIGHT_DECAY = 0.01
INPUT_NOISE = 0.2           # std, on the plane's scale (the points lie in [-1, 1])


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
