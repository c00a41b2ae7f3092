"""Where the network does not know (lesson 'uncertainty'): MC dropout's band on the sine
with a gap, measured over fixed seeds on the engine.

For each seed s of `seeds`, on sine_gap drawn with seed s, one Group (engine/group.py)
trains side by side, as one batched computation:

    the preset at p          (its MC band: T passes, engine/mc.py)
    the preset at low_p      (the same, a lighter dropout)
    an ensemble of ENSEMBLE   the preset without dropout (p = 0), initialised from seeds
                             1000 s + 1 ... 1000 s + ENSEMBLE; its spread is the std of
                             their eval predictions

and reads, over mc.LINE points across the plane: the band's width (4 std: mean +- 2 std)
on average inside the gap (regression_data.GAP), on the data (DATA_X outside the gap)
and beyond the data (|x| > DATA_X's edge), their ratio gap / data, and the coverage of
the seed's test points. Every number is a mean over the seeds with its spread.
"""
from __future__ import annotations

import math

import torch

from ..config import RunConfig, parse_config
from ..costs import Cost, engine_row_values
from ..runstate import step_macs
from ..engine import mc
from ..engine.group import Group, Member
from ..network import Net
from ..regression_data import DATA_X, GAP, in_gap, line_grid, make_dataset, on_data

PRESET = {"data": {"task": "regression", "dataset": "sine_gap"},
          "model": {"hidden": [32, 32], "activation": "relu"},
          "train": {"device": "cpu", "batch_size": 25, "lr": 0.01, "optimizer": "adam"}}
ENSEMBLE = 5                 # networks of the deep ensemble
# the lesson's verdict: a region's band counts as wider when it is this many times the band on
# the data, on every seed (the page reads it from the answer)
MARGIN = 1.1
MAX_SEEDS, MAX_STEPS = 8, 3000


def preset(seed: int, p: float) -> RunConfig:
    return parse_config({**PRESET, "data": {**PRESET["data"], "seed": seed},
                         "model": {**PRESET["model"], "p": [p] * len(PRESET["model"]["hidden"])}})


def _members(seed: int, p: float, low_p: float) -> list[Member]:
    """The seed's rows: MC at p, MC at low_p, then the ensemble's networks."""
    out = []
    for i, (q, init) in enumerate([(p, seed), (low_p, seed)] +
                                  [(0.0, 1000 * seed + k + 1) for k in range(ENSEMBLE)]):
        cfg = preset(seed, q)
        net = Net(cfg.model, (1,), 1)
        net.init_weights(torch.Generator().manual_seed(init))
        out.append(Member(cfg, make_dataset(cfg.data), net))
    return out


def _widths(std: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    """A band's mean width (4 std) inside the gap, on the data and beyond it."""
    beyond = (x < DATA_X[0]) | (x > DATA_X[1])
    gap, data, out = (float(4 * std[m].mean()) for m in (in_gap(x), on_data(x), beyond))
    return {"gap": gap, "data": data, "beyond": out, "ratio": gap / data if data > 0 else math.inf}


def _ensemble(bucket, members: list[Member], grid: torch.Tensor) -> tuple[torch.Tensor, dict, float]:
    """The ensemble's eval predictions over the line (ENSEMBLE, G), its mean and std
    there, and the share of its test points within its mean +- 2 std at their own x."""
    rows = [m.row for m in members]
    line = mc.band(bucket.net, rows, grid, [1] * len(rows))["eval"]
    x_test, y_test = members[0].data.x_test, members[0].data.y_test   # (one data set: the seed's)
    at_test, _ = mc.passes(bucket.net, rows, x_test.expand(len(rows), *x_test.shape), 1)
    mean, std = at_test.mean(0), at_test.std(0, correction=0)
    coverage = float(((y_test - mean).abs() <= 2 * std).float().mean())
    return line, {"mean": line.mean(0), "std": line.std(0, correction=0)}, coverage


def _seed(seed: int, steps: int, p: float, low_p: float, passes: int, grid: torch.Tensor) -> dict:
    """One seed's measurements (and its curves, for drawing)."""
    members = _members(seed, p, low_p)
    group = Group(members)
    group.step(steps)
    bucket = next(iter(group.buckets.values()))
    x = grid[:, 0]
    band = mc.band(bucket.net, [m.row for m in members[:2]], grid, [passes, passes])
    ens, spread, ens_coverage = _ensemble(bucket, members[2:], grid)
    out = {}
    for name, k in (("mc", 0), ("mc_low", 1)):
        out[name] = {**_widths(band["std"][k], x), "coverage": float(band["coverage"][k]),
                     "curves": {"eval": band["eval"][k], "mean": band["mean"][k], "std": band["std"][k]}}
    out["ensemble"] = {**_widths(spread["std"], x), "coverage": ens_coverage, "curves": {"eval": ens, **spread}}
    return out


def _summary(values: list[float]) -> dict:
    t = torch.tensor(values, dtype=torch.float64)
    return {"mean": round(float(t.mean()), 4), "spread": round(float(t.std(correction=0)), 4),
            "min": round(float(t.min()), 4), "max": round(float(t.max()), 4),
            "values": [round(v, 4) for v in values]}


def uncertainty(seeds: int = 3, steps: int = 1500, p: float = 0.5, low_p: float = 0.1, passes: int = 30,
                seed: int = 0) -> dict:
    """The lesson's three measurements over seeds seed..seed+seeds-1 (docs/protocol.md,
    'uncertainty'): MC dropout's band in the gap vs on the data, beside a deep
    ensemble's spread, and at p vs low_p with their coverage."""
    grid = line_grid(mc.LINE)
    per_seed = [_seed(s, steps, p, low_p, passes, grid) for s in range(seed, seed + seeds)]
    answer = {"preset": PRESET, "seeds": list(range(seed, seed + seeds)), "steps": steps, "passes": passes,
              "ensemble_size": ENSEMBLE, "gap": list(GAP), "data_x": list(DATA_X),
              "x": [round(float(v), 4) for v in grid[:, 0]]}
    for name, q in (("mc", p), ("mc_low", low_p), ("ensemble", 0.0)):
        rows = [r[name] for r in per_seed]
        part = {key: _summary([r[key] for r in rows]) for key in ("gap", "data", "beyond", "ratio", "coverage")}
        # the first seed's curves, to draw (the ensemble's eval: one row per network)
        part["curves"] = {k: (torch.round(c * 1e4) / 1e4).tolist() for k, c in rows[0]["curves"].items()}
        answer[name] = {"p": q, **part}
    answer["margin"] = MARGIN
    answer["gap_wider_every_seed"] = {name: all(r[name]["ratio"] > MARGIN for r in per_seed)
                                      for name in ("mc", "mc_low", "ensemble")}
    return answer


def work(seeds: int = 3, steps: int = 1500, passes: int = 30, **_) -> float:
    """Multiply-adds of uncertainty(): forward and backward of every row's steps, and the
    bands' passes over the line and the test points."""
    cfg = preset(0, 0.5)
    per_step = step_macs(cfg, (1,))
    rows = 2 + ENSEMBLE
    band = (2 * (passes + 1) + ENSEMBLE * 2) * (mc.LINE + cfg.data.n_points) * per_step / cfg.train.batch_size
    return seeds * (rows * steps * 3 * per_step + band)


def cost(params: dict) -> Cost:
    """What app/ budgets for one call: its work, and its rows' bytes (one seed at a time)."""
    return Cost(work(**params), 2.0 * 4 * (2 + ENSEMBLE) * engine_row_values(preset(0, 0.5)))
