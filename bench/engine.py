"""Engine benchmark: a plain PyTorch loop vs a lone run on the shared trainer.

    python bench/engine.py            # one JSON object per line, under 50 s
    BENCH_DEVICE=cuda python bench/engine.py   # the same cases on a GPU

bare: the same network with torch.nn.Dropout, the same data, batches and optimizer
      (torch.optim, fused), in a bare loop. run: one run playing at full speed on the
      server's trainer (app/scheduler.py: a bucket of one, its own thread), i.e.
      training plus a frame (masks, drop counts, activations; boundary grids at their
      own rate) 30 times a second, each frame encoded to bytes as a client would get it.
      ratio = run / bare (goal: >= 0.9): the median of ROUNDS ratios, each of a bare
      window and the run window right after it (this machine's speed drifts by tens of
      percent within seconds, so only neighbouring windows compare); ratio_range: the
      lowest and highest of them. Steps and frames a second: medians.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from app.scheduler import Trainer  # noqa: E402
from app.settings import Serving  # noqa: E402
from model_server import Limits, Run, parse_config  # noqa: E402
from model_server.frames import encode  # noqa: E402
from model_server.runstate import RunState, loss_fn, make_optimizer  # noqa: E402

# The issue names the second case 2-64-64-64-2; the binary sets train one logit with
# binary cross-entropy, so the network here is 2-64-64-64-1.
ROUNDS = 8  # bare and run windows, alternated
CASES = {
    "mlp 2-8-8-1 batch 10": {"model": {"hidden": [8, 8], "p": [0.3, 0.3]}, "train": {"batch_size": 10}},
    "mlp 2-64-64-64-1 batch 256": {"data": {"n_points": 1000, "train_fraction": 0.6},
                                   "model": {"hidden": [64, 64, 64], "p": [0.3, 0.3, 0.3]},
                                   "train": {"batch_size": 256}},
    "digits cnn 8-16 batch 64": {"data": {"dataset": "digits"},
                                 "model": {"kind": "cnn", "hidden": [8, 16], "p": [0.2, 0.2],
                                           "dropout_kind": "dropout2d"},
                                 "train": {"batch_size": 64}},
}


def plain_copy(run: Run) -> nn.Module:
    """The run's network with each recording dropout swapped for torch.nn's own module."""
    plain = {"RecordingDropout": nn.Dropout, "RecordingDropout2d": nn.Dropout2d,
             "RecordingAlphaDropout": nn.AlphaDropout}
    net = run.net
    for block in net.blocks:
        for i, op in enumerate(block):
            if type(op).__name__ in plain:
                block[i] = plain[type(op).__name__](op.p)
    return net


def bare_rate(cfg, seconds: float) -> float:
    run = Run(cfg)  # built the same way, then trained by hand
    net, data = plain_copy(run), run.data
    opt = make_optimizer(cfg.train.optimizer, net.parameters(), cfg.train.lr, cfg.train.weight_decay)
    blocks = list(net.blocks)
    flatten = cfg.model.kind == "mlp"

    def forward(x):
        x = x.flatten(1) if flatten else x
        for b in blocks:
            for op in b:
                x = op(x)
        out = net.head(x.flatten(1))
        return out.squeeze(-1) if net.n_out == 1 else out

    n, b = len(data.x_train), cfg.train.batch_size
    gen = torch.Generator().manual_seed(0)
    steps, order, pos = 0, None, n
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if pos + b > n:
            order, pos = torch.randperm(n, generator=gen).to(run.device), 0
        idx = order[pos:pos + b]
        pos += b
        loss = loss_fn(forward(data.x_train.index_select(0, idx)), data.y_train.index_select(0, idx))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    sync(run.device)
    return steps / (time.perf_counter() - t0)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that the time measured covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Sink:
    """A client that takes every frame at once: encoded, as the server sends it."""

    def __init__(self):
        self.frames = 0

    def ready(self) -> bool:
        return True

    def send(self, frame) -> None:
        encode(frame)
        self.frames += 1

    def status(self, state, reason=None) -> None:
        pass

    def crashed(self) -> None:
        raise RuntimeError("the bucket failed")


def run_rate(cfg, seconds: float) -> tuple[float, float]:
    trainer = Trainer(Limits(), Serving())
    try:
        state, sink = RunState(cfg), Sink()
        trainer.add(state, sink)
        frames0 = sink.frames
        trainer.play(state)
        t0 = time.perf_counter()
        time.sleep(seconds)
        trainer.pause(state)
        elapsed = time.perf_counter() - t0
        sync(state.device)
        return state.step_count / elapsed, (sink.frames - frames0) / elapsed
    finally:
        trainer.stop()


def main() -> None:
    torch.set_num_threads(1)  # what the server does: one intra-op thread per run
    seconds = float(os.environ.get("BENCH_SECONDS", 0.75))
    device = os.environ.get("BENCH_DEVICE", "cpu")
    for name, raw in CASES.items():
        cfg = parse_config({**raw, "train": {**raw.get("train", {}), "device": device}})
        bare_rate(cfg, 0.5)  # warm-up
        bares, runs, fps = [], [], []
        for _ in range(ROUNDS):
            bares.append(bare_rate(cfg, seconds))
            r, f = run_rate(cfg, seconds)
            runs.append(r)
            fps.append(f)
        ratios = [r / b for r, b in zip(runs, bares)]
        print(json.dumps({"case": name, "device": device, "bare_steps_per_s": round(statistics.median(bares), 1),
                          "run_steps_per_s": round(statistics.median(runs), 1),
                          "ratio": round(statistics.median(ratios), 3),
                          "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
                          "frames_per_s": round(statistics.median(fps), 1)}), flush=True)


if __name__ == "__main__":
    main()
