"""Memory: a run's estimate (model_server/costs.py) against the resident memory it really
adds, and memory given back when runs end (model_server/memory.py, app/scheduler.py).

Each shape is measured in a fresh interpreter (`python tests/test_memory.py '<config>'`),
so nothing an earlier test allocated blurs it: a warm-up run first (torch's lazy
initialisation, the grid), then collected and every free page handed back, then RUNS runs of the shape,
each a bucket as the server's trainer steps them (chunks of costs.chunk_steps steps, a
frame after each call, its slow panels every fifth, as at 30 frames and 6 boundaries a
second), CALLS calls each, interleaved. The growth of RSS over the warm-up, per run, is
the measured cost: it includes what the allocator keeps of the steps' temporaries.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNS, CALLS = 5, 12   # CALLS > costs.RECORDS: the bucket's records reach their most
SMALL_MB, SMALL_RUNS = 20, 100   # at least this much growth for a small run's shape, with at most this many runs


def custom(n: int, seed: int = 0) -> list:
    r = random.Random(seed)
    return [[round(r.uniform(-1.5, 1.5), 2), round(r.uniform(-1.5, 1.5), 2), i % 2] for i in range(n)]


CUSTOM = {"dataset": "custom", "points": custom(2000), "train_fraction": 0.9}   # 1,800 to train
DIGITS = {"dataset": "digits", "train_fraction": 0.9}
WIDE = {"hidden": [64] * 6, "p": [0.5] * 6}
CNN = {"kind": "cnn", "hidden": [16] * 3, "p": [0.3] * 3}
# the extremes Limits allow: widest and deepest MLP on 2,000 custom points at the largest
# batch (the training set), with BatchNorm, every optimizer and dropout kind; the largest
# digits CNN at the largest batch DP_MAX_RUN_STEP_MACS lets it have; a one-layer one
EXTREMES = {
    "mlp 6x64 adam b1800": {"data": CUSTOM, "model": WIDE, "train": {"batch_size": 1800}},
    "mlp 6x64 sgd b1800": {"data": CUSTOM, "model": WIDE, "train": {"batch_size": 1800, "optimizer": "sgd"}},
    "mlp 6x64 momentum bn b1800": {"data": CUSTOM, "model": {**WIDE, "batchnorm": "before_dropout"},
                                   "train": {"batch_size": 1800, "optimizer": "momentum"}},
    "mlp 6x64 alpha selu b1800": {"data": CUSTOM, "model": {**WIDE, "dropout_kind": "alpha", "activation": "selu",
                                                             "placement": "before_activation"},
                                  "train": {"batch_size": 1800}},
    "mlp 1x64 b1800": {"data": CUSTOM, "model": {"hidden": [64], "p": [0.5]}, "train": {"batch_size": 1800}},
    "mlp 6x64 b250": {"data": CUSTOM, "model": WIDE, "train": {"batch_size": 250}},
    # (not an extreme: a middle batch, where a call takes 2 steps and a step's tape outweighs the
    # words its noise is drawn from; it pins costs.call_temporaries between the two kinds above)
    "mlp 6x64 b800": {"data": CUSTOM, "model": WIDE, "train": {"batch_size": 800}},
    "cnn 3x16 b150": {"data": DIGITS, "model": CNN, "train": {"batch_size": 150}},
    "cnn 3x16 dropout2d bn b150": {"data": DIGITS, "model": {**CNN, "dropout_kind": "dropout2d",
                                                              "batchnorm": "after_dropout"},
                                   "train": {"batch_size": 150, "optimizer": "sgd"}},
    "cnn 2x4 b1617": {"data": DIGITS, "model": {"kind": "cnn", "hidden": [4, 4], "p": [0.3, 0.3]},
                      "train": {"batch_size": 1617}},
    # the smallest batch, where the per-run parts (weights, timeline, fixed) are all there is;
    # the smallest network
    "mlp 6x64 b1": {"data": CUSTOM, "model": WIDE, "train": {"batch_size": 1}},
    "cnn 3x16 b1": {"data": DIGITS, "model": CNN, "train": {"batch_size": 1}},
    "mlp 1x8 b1": {"model": {"hidden": [8], "p": [0.5]}, "train": {"batch_size": 1}},
    # (a middle batch: a bucket made before its first run's data was known reallocated the
    # CNN's timeline, and the freed block stayed resident, 0.7x measured, until RowStore.alloc
    # kept tensors whose size does not change)
    "cnn 3x16 b50": {"data": DIGITS, "model": CNN, "train": {"batch_size": 50}},
}


def measure(config: dict) -> dict:
    """(In the fresh interpreter.) RSS growth per run of RUNS runs of config, in MB."""
    import gc

    import numpy as np
    import psutil
    import torch

    from model_server import memory
    from model_server.config import parse_config
    from model_server.costs import chunk_steps, run_cost
    from model_server.run import Run
    from model_server.runstate import preload

    torch.set_num_threads(1)   # as the server runs (DP_TORCH_THREADS)
    preload()
    cfg = parse_config(config)
    n = chunk_steps(cfg)

    def train(runs: list) -> None:
        active = np.ones(1, bool)
        for call in range(CALLS):
            for run in runs:
                run.bucket.step(active, n)
                run.frame(extras=call % 5 == 0)

    train([Run(cfg)])                # warm-up, then gone: its run and bucket refer to each other,
    gc.collect()                     # so only the collector frees them (else at a random later point,
    memory.give_back(force=True)     # its freed room then counted against the runs measured)
    # a small run's growth is a few pages: more of them, so the page-sized noise of RSS
    # stays small beside what they add (the temporaries' share is of RUNS runs, costs.py)
    count = max(RUNS, min(SMALL_RUNS, int(SMALL_MB * 2**20 // run_cost(cfg).bytes)))
    before = psutil.Process().memory_info().rss
    runs = [Run(cfg) for _ in range(count)]
    train(runs)
    grown = (psutil.Process().memory_info().rss - before) / count
    return {"measured_mb": grown / 2**20, "estimate_mb": run_cost(cfg).bytes / 2**20, "chunk": n}


def measured(config: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, json.dumps(config)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", list(EXTREMES))
def test_a_runs_estimate_is_within_a_quarter_of_the_memory_it_adds(name):
    # RSS grows by the pages the allocator hands out, some of them resident already: one
    # reading of the 1 x 64 MLP's runs gave 7.1 MB each (a suite with a CPU hog beside it)
    # where five quiet ones gave 8.8-10.2 against an estimate of 9.8. A reading outside the
    # bounds is taken twice more and the median holds: an estimate really off fails all three.
    readings = [measured(EXTREMES[name])]
    if not 0.8 <= readings[0]["estimate_mb"] / readings[0]["measured_mb"] <= 1.25:
        readings += [measured(EXTREMES[name]) for _ in range(2)]
    m = sorted(readings, key=lambda r: r["estimate_mb"] / r["measured_mb"])[len(readings) // 2]
    ratio = m["estimate_mb"] / m["measured_mb"]
    print(f"{name}: estimate {m['estimate_mb']:.1f} MB, measured {m['measured_mb']:.1f} MB, ratio {ratio:.2f}"
          f" ({len(readings)} readings)")
    assert 0.8 <= ratio <= 1.25, (name, readings)   # issue 23


def test_give_back_is_rate_limited_and_trims_after_the_interval_anyway():
    from model_server import memory
    if not memory.available():
        pytest.skip("not glibc: nothing to give back")
    memory.give_back(force=True)
    assert memory.give_back() is False        # inside the interval: deferred, not now
    assert memory._pending is not None
    time.sleep(memory.MIN_INTERVAL_S + 0.5)
    assert memory._pending is None            # the deferred trim ran
    assert memory.give_back() is False        # ... and counts as the last one
    assert memory.limit_arenas() is True      # glibc took M_ARENA_MAX (the server sets it at start-up)


# runs that came and went: 10 rounds of 10 (four tabs, up to three runs each), each
# a 6 x 64 MLP at batch 250 on 2,000 points (~43 MB estimated), playing for a while
ROUNDS, PER_ROUND = 10, 10
CHURN = {"data": CUSTOM, "model": WIDE, "train": {"batch_size": 250}}


@pytest.mark.parametrize("kind", ["embedded", "gunicorn"])
def test_the_server_gives_memory_back_when_runs_end(kind):
    from conftest import live
    from visitors import Visitor, metric, rss_mb, wait_until

    def round_of_runs(url: str, playing_s: float, config: dict = CHURN, runs: int = PER_ROUND) -> None:
        visitors = [Visitor(url) for _ in range(4)]
        try:
            for i in range(runs):
                v, run = visitors[i % 4], f"r{i // 4}"
                v.ok("configure", {"run": run, "config": config})
                v.ok("play", {"run": run})
            time.sleep(playing_s)
        finally:
            for v in visitors:
                v.close()
        wait_until(lambda: metric(url, "dropout_runs_active") == 0, timeout=20, what="runs to end")

    with live({"DP_MAX_BYTES_PER_ADDRESS": str(2**30)}, kind) as server:   # one address here
        pid = server.pid
        round_of_runs(server.url, 1.0, {}, 4)   # torch, the threads: warm (small runs)
        time.sleep(2)
        before = rss_mb(pid)
        peak = 0.0
        for _ in range(ROUNDS):
            round_of_runs(server.url, 1.5)
            peak = max(peak, rss_mb(pid))
        time.sleep(2)                    # the last leave's trim comes at most 1 s late
        after = rss_mb(pid)
    print(f"RSS before {before:.0f} MB, peak {peak:.0f} MB, after {ROUNDS * PER_ROUND} runs {after:.0f} MB")
    # issue 23's 15%: measured +7.5% and +8.3% (embedded, gunicorn) with two malloc arenas,
    # +10.9% with glibc's default of one per thread, +54% without the trim
    assert after <= 1.15 * before, (before, peak, after)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(measure(json.loads(sys.argv[1]))))
