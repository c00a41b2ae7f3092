"""Lesson d: dropout before or after the activation, settled over seeds."""
from __future__ import annotations

import functools
import statistics

from ..config import RunConfig
from ..runstate import FrozenRun
from ..sweep import MAX_MODELS, SeedSweep
from .common import bounded

MAX_PLACEMENT_STEPS = 5000


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
    seeds = bounded("seeds", seeds, 2, MAX_MODELS // 2)
    steps = bounded("steps", steps, 1, MAX_PLACEMENT_STEPS)
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
    out["verdict"] = _verdict(diffs, mean, std)
    return out


def _verdict(diffs: list[float], mean: float, std: float) -> str:
    if max(abs(d) for d in diffs) < 1e-6:
        return "identical"
    if abs(mean) > std:
        return "before-worse" if mean > 0 else "after-worse"
    return "no-clear-winner"
