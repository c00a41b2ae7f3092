"""Lesson experiments of model_server/regularizers.py: seconds per answer, at the lessons'
default params, against their cost estimate (regularizers.work).

    python bench/regularizers.py      # one JSON object per experiment, ~1 min on 2 CPU cores

Each experiment is timed uncached (its cache is cleared before every try), best of 3,
one thread (as the server runs it). seconds_per_gmac relates time to work(): what a
scheduler budgeting by work() can expect per 10^9 multiply-adds on this machine.
"""
from __future__ import annotations

import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from model_server import regularizers as reg  # noqa: E402

CASES = {"data_size": (reg.data_size, reg._data_size), "alternatives": (reg.alternatives, reg._alternatives),
         "noise_injection": (reg.noise_injection, reg._noise_injection)}


def main() -> None:
    torch.set_num_threads(1)
    reg.noise_injection(steps=5, seeds=2)  # warm-up: imports, first optimizer
    for name, (fn, cached) in CASES.items():
        times = []
        for _ in range(3):
            cached.cache_clear()
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        work = reg.work(name)
        print(json.dumps({
            "experiment": name, "work_gmac": round(work / 1e9, 3), "max_work_gmac": reg.MAX_WORK / 1e9,
            "seconds": round(min(times), 3), "seconds_per_gmac": round(min(times) / (work / 1e9), 3),
            "threads": 1, "load_1m": round(os.getloadavg()[0], 2),  # other work here skews the times
        }), flush=True)


if __name__ == "__main__":
    main()
