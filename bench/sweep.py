"""Sweep benchmark: 10 models (p = 0, 0.1, ..., 0.9) trained at once vs one model.

    python bench/sweep.py            # one JSON object, under 60 s on 2 CPU cores

one_model_s: the engine's Run training one model of SWEEP_PRESET (p = 0.5) for N steps.
sweep_s: the batched sweep of the same preset, 10 models, the same N steps, with its
loss curves recorded every 10 steps (as the lesson page uses it).
ratio = sweep_s / one_model_s (goal: <= 3). Best of 5, alternating, one thread.
"""
from __future__ import annotations

import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from model_server import Run, parse_config  # noqa: E402
from model_server.sweep import DEFAULT_PS, SWEEP_PRESET, SWEEP_STEPS, Sweep  # noqa: E402


def time_run(cfg, steps: int) -> float:
    run = Run(cfg)
    t0 = time.perf_counter()
    run.step(steps)
    return time.perf_counter() - t0


def time_sweep(cfg, ps, steps: int) -> float:
    sw = Sweep(cfg, ps, every=10)
    t0 = time.perf_counter()
    sw.step(steps)
    sw.result()
    return time.perf_counter() - t0


def main() -> None:
    torch.set_num_threads(1)  # what the server does: one intra-op thread per run
    cfg = parse_config(SWEEP_PRESET)
    steps = SWEEP_STEPS
    time_run(cfg, 100), time_sweep(cfg, DEFAULT_PS, 100)  # warm-up
    one, k1, swept = [], [], []
    for _ in range(5):
        one.append(time_run(cfg, steps))
        k1.append(time_sweep(cfg, [0.5], steps))
        swept.append(time_sweep(cfg, DEFAULT_PS, steps))
    one_s, k1_s, sweep_s = min(one), min(k1), min(swept)
    print(json.dumps({
        "models": len(DEFAULT_PS), "steps": steps, "device": "cpu", "threads": 1,
        "load_1m": round(os.getloadavg()[0], 2),  # other work on this machine skews absolute times
        "one_model_s": round(one_s, 3), "sweep_s": round(sweep_s, 3), "ratio": round(sweep_s / one_s, 3),
        "batched_k1_s": round(k1_s, 3), "ratio_vs_k1": round(sweep_s / k1_s, 3),
        "note": "one_model_s: the engine's Run (one model, p=0.5) for N steps; batched_k1_s: "
                "the sweep code with K=1; sweep_s: K=10 at once, curves every 10 steps; best of 5",
    }), flush=True)


if __name__ == "__main__":
    main()
