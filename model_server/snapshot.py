"""From a bucket's snapshot to each run's frame: what its last step looked like.

    frames = take_frames(bucket, states, extras=[True, False], grid_size=48,
                         headers=[{"speed": 30}, {"speed": 1e6}])

One call per bucket and frame tick. Bucket.snapshot gathers everything these runs'
frames need on the device and copies it to the host at once; here each kind of section
is packed for all the runs in one numpy pass (frames.pack_rows), and each run's frame
(the format of docs/protocol.md) is its header plus its rows. `headers` adds what the
caller knows and the engine does not (pacing).
"""
from __future__ import annotations

import math
import time

import numpy as np

from .bucket import Bucket, Snapshot
from .frames import Frame, pack_rows
from .runstate import RunState


def take_frames(bucket: Bucket, states: list[RunState], extras: list[bool], grid_size: int,
                headers: list[dict] | None = None) -> list[Frame]:
    return _frames(bucket, bucket.snapshot(states, extras, grid_size), states, headers)


def replay_frame(bucket: Bucket, state: RunState, step: int, header: dict | None = None) -> Frame:
    """A frame of one of the run's past steps (inside bucket.timeline(state)), from its
    timeline: "replay": true in its header, that step's step, mode, p, lr and loss, and
    the mask, pre and act sections a frame of that step had. Weights, the boundary and a
    watched neuron's map are those of now (weights are kept only for now); the thinned
    boundary applies that step's masks to them."""
    return _frames(bucket, bucket.replay_snapshot(state, step), [state], [header or {}])[0]


def _frames(bucket: Bucket, snap: Snapshot, states: list[RunState], headers: list[dict] | None) -> list[Frame]:
    h = snap.host
    L = bucket.L
    packed: dict[str, list] = {}
    idx_has = np.flatnonzero(snap.has)
    if len(idx_has):
        for l in range(L):
            for kind in ("act", "pre"):
                packed[f"{kind}{l}"] = _by_row(idx_has, pack_rows("q8", h[f"{kind}{l}"][idx_has]))
            packed[f"mask{l}"] = _by_row(idx_has, pack_rows("bits", h[f"mask{l}"][idx_has] > 0.5))
        if bucket.key.n_out != 1:
            packed["input"] = _by_row(idx_has, pack_rows("q8", h["x"][idx_has]))
    for l in range(L):
        dropped = snap.masked[:, l:l + 1] - np.rint(h[f"kept{l}"]).astype(np.int64)
        packed[f"dropped{l}"] = pack_rows("u32", dropped)
    if "theta" in h:
        for j, w in enumerate(snap.edge_weights()):
            packed[f"weight{j}"] = pack_rows("q8", w)
        if "boundary" in h:
            packed["boundary"] = pack_rows("p8", h["boundary"])
        if "neuron" in h:
            packed["neuron"] = pack_rows("q8", h["neuron"])
    now_ms = time.time() * 1000  # wall clock, for latency
    # what every frame of the pass reads, as Python values once (numpy scalars cost more)
    cols = {"has": snap.has.tolist(), "drew": snap.drew.tolist(), "masked": snap.masked.tolist(),
            "loss": h["train_loss"].tolist(), "index": h["index"].tolist() if "index" in h else None,
            "x": h["x"].tolist() if "x" in h and bucket.key.n_out == 1 else None,
            "y": h["y"].tolist() if "y" in h else None}
    shapes = _shapes(bucket)
    headers = headers or [{}] * len(states)
    return [_frame(bucket, snap, packed, cols, shapes, i, state, headers[i], now_ms) for i, state in enumerate(states)]


def _by_row(rows: np.ndarray, items: list) -> dict:
    return dict(zip(rows.tolist(), items))


def _shapes(bucket: Bucket) -> dict:
    """Each section's shape, per layer (the same in every frame of a bucket)."""
    L, params = bucket.L, bucket.layout.params
    return {"mask": [(bucket.mask_sizes[l],) if bucket.cnn else bucket.noise_shape[l][:1] for l in range(L)],
            "dropped": [(bucket.mask_sizes[l],) for l in range(L)],
            "act": [tuple(bucket.act_shape[l]) for l in range(L)],
            "input": (int(np.prod(bucket.key.input_shape)),),
            "weight": [params[p][1][::-1] if params[p][2] else params[p][1] for p in bucket.edge_params]}


def _frame(bucket: Bucket, snap: Snapshot, packed: dict, cols: dict, shapes: dict, i: int, state: RunState,
           extra_header: dict, now_ms: float) -> Frame:
    cfg, h = state.cfg, snap.host
    if snap.replay is None:
        step = state.step_count
        of_step = {"step": step, "steps": step - state.frame_step, "mode": state.mode, "p": state.p, "lr": state.lr}
        state.frame_step = step
    else:  # a past step: its own settings, no evaluation, and the frame counters stay
        of_step = snap.replay
    loss = cols["loss"][i]
    masked = cols["masked"][i]
    header = {
        **of_step, **state.fixed_header, "finished": state.finished, "t": now_ms, **extra_header,
        "train_loss": loss if of_step["steps"] and math.isfinite(loss) else None,
        "eval": state.latest_eval if snap.replay is None else None,
        "masked": masked,  # examples through each layer's mask since the last frame
    }
    fr = Frame(header)
    has, drew = cols["has"][i], cols["drew"][i]
    for l in range(bucket.L):
        if has and drew[l]:
            fr.add_packed(f"mask.{l}", "bits", shapes["mask"][l], *packed[f"mask{l}"][i])
        if masked[l] > 0:
            fr.add_packed(f"dropped.{l}", "u32", shapes["dropped"][l], *packed[f"dropped{l}"][i])
    if has:
        for kind in ("act", "pre"):
            for l in range(bucket.L):
                fr.add_packed(f"{kind}.{l}", "q8", shapes["act"][l], *packed[f"{kind}{l}"][i])
        header["example"] = {"index": int(cols["index"][i])}
        if cfg.task == "binary":
            header["example"].update(x=cols["x"][i], y=int(cols["y"][i]))
        else:  # the digit itself, for the image panel
            fr.add_packed("input", "q8", shapes["input"], *packed["input"][i])
    e = snap.extras_row.get(id(state))
    if e is not None:
        for j, shape in enumerate(shapes["weight"]):
            fr.add_packed(f"weight.{j}", "q8", shape, *packed[f"weight{j}"][e])
        if cfg.task == "binary":
            header["view"] = state.view
            name = "boundary.thinned" if id(state) in snap.thinned else "boundary.eval"
            fr.add_packed(name, "p8", (len(h["boundary"][e]),), *packed["boundary"][e])
            w = snap.watch_row.get(id(state))
            if w is not None:
                fr.add_packed("neuron", "q8", (len(h["neuron"][w]),), *packed["neuron"][w])
                header["watch"] = list(state.watch)
    return fr
