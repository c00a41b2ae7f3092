"""From a bucket's snapshot to each run's frame: what its last step looked like.

    frames = take_frames(bucket, states, extras=[True, False], grid_size=48,
                         headers=[{"speed": 30}, {"speed": 1e6}])

One call per bucket and frame tick: Bucket.snapshot gathers everything these runs'
frames need on the device and copies it to the host at once; this module only arranges
numpy arrays into frames.Frame (the format of docs/protocol.md). It never touches a
tensor. `headers` adds what the caller knows and the engine does not (pacing, the wall
clock for latency).
"""
from __future__ import annotations

import time

import numpy as np

from .bucket import Bucket
from .frames import Frame
from .runstate import RunState


def take_frames(bucket: Bucket, states: list[RunState], extras: list[bool], grid_size: int,
                headers: list[dict] | None = None) -> list[Frame]:
    views = bucket.snapshot(states, extras, grid_size)
    headers = headers or [{} for _ in states]
    return [_frame(bucket, s, v, e, h) for s, v, e, h in zip(states, views, extras, headers)]


def _frame(bucket: Bucket, state: RunState, view: dict, extras: bool, extra_header: dict) -> Frame:
    cfg, step = state.cfg, state.step_count
    steps = step - state.frame_step
    header = {
        "step": step, "steps": steps, "mode": state.mode, "device": state.device.type,
        "p": state.p, "lr": state.lr, "kind": cfg.model.kind, "task": cfg.task,
        "sizes": [state.data.input_dim] + list(cfg.model.hidden) + [state.n_out],
        "params": state.params, "finished": state.finished, "t": time.time() * 1000,  # ms: latency
        **extra_header,
    }
    loss = float(view["train_loss"])
    header["train_loss"] = loss if steps and np.isfinite(loss) else None
    header["eval"] = state.latest_eval
    header["masked"] = [int(m) for m in view["masked"]]  # examples through each mask since the last frame
    fr = Frame(header)
    for i in range(bucket.L):
        if view["mask"][i] is not None:
            fr.add(f"mask.{i}", "bits", view["mask"][i].reshape(-1))
        if header["masked"][i] > 0:
            kept = np.rint(view["kept"][i].reshape(-1)).astype(np.int64)
            fr.add(f"dropped.{i}", "u32", header["masked"][i] - kept)
    if "index" in view:
        for i in range(bucket.L):
            fr.add(f"act.{i}", "q8", view["act"][i])
        for i in range(bucket.L):
            fr.add(f"pre.{i}", "q8", view["pre"][i])
        index = int(view["index"])
        header["example"] = {"index": index}
        if cfg.task == "binary":
            header["example"].update(x=view["x"].tolist(), y=int(view["y"]))
        else:  # the digit itself, for the image panel
            fr.add("input", "q8", view["x"].reshape(-1))
    state.frame_step = step
    if extras:
        for i, w in enumerate(view.get("weights", [])):
            fr.add(f"weight.{i}", "q8", w)
        if cfg.task == "binary":
            header["view"] = state.view
            if "boundary_thinned" in view:
                fr.add("boundary.thinned", "p8", view["boundary_thinned"])
            else:
                fr.add("boundary.eval", "p8", view["boundary_eval"])
            if "neuron" in view and state.watch is not None:
                fr.add("neuron", "q8", view["neuron"])
                header["watch"] = list(state.watch)
    return fr
