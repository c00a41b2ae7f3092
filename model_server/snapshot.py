"""From a bucket to each run's frame: what its last step looked like.

    frames = take_frames(bucket, states, extras=[True, False], grid_size=48,
                         headers=[{"speed": 30}, {"speed": 1e6}])

One call per bucket and frame tick. gather() collects everything these runs' frames
need on the device and copies it to the host at once (a Snapshot); here each kind of
section is packed for all the runs in one numpy pass (frames.pack_rows), and each run's
frame (the format of docs/protocol.md) is its header plus its rows. `headers` adds what
the caller knows and the engine does not (pacing). replay_frame does the same for one
of a run's past steps, from its timeline.

What frames need is kept cheaply per step and read only here: each step's tensors
(pre-dropout input, mask, block output) stay referenced as that run's last step
(engine/history.py's Records); per-unit kept counts add up in place; per-step losses
are folded into each run's ring and sums.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from .bucket import Bucket
from .config import PLANE
from .engine.mc import LINE as MC_LINE, MAX_CURVES as MC_CURVES
from .frames import Frame, pack_rows
from .runstate import RunState


def take_frames(bucket: Bucket, states: list[RunState], extras: list[bool], grid_size: int,
                headers: list[dict] | None = None) -> list[Frame]:
    return _frames(bucket, gather(bucket, states, extras, grid_size), states, headers)


def replay_frame(bucket: Bucket, state: RunState, step: int, header: dict | None = None) -> Frame:
    """A frame of one of the run's past steps (inside bucket.timeline(state)), from its
    timeline: "replay": true in its header, that step's step, mode, p, lr and loss, and
    the mask, pre and act sections a frame of that step had. Weights, the boundary and a
    watched neuron's map are those of now (weights are kept only for now); the thinned
    boundary applies that step's masks to them."""
    return _frames(bucket, replay_snapshot(bucket, state, step), [state], [header or {}])[0]


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
        for name in BAND_CURVES:
            if name in h:
                packed[name] = pack_rows("q8", h[name])
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
    sh = bucket.shape
    L, params = sh.L, sh.layout.params
    return {"mask": [(sh.mask_sizes[l],) if sh.cnn else sh.noise_shape[l][:1] for l in range(L)],
            "dropped": [(sh.mask_sizes[l],) for l in range(L)],
            "act": [tuple(sh.act_shape[l]) for l in range(L)],
            "input": (int(np.prod(sh.key.input_shape)),),
            "weight": [params[p][1][::-1] if params[p][2] else params[p][1] for p in sh.edge_params]}


def _frame(bucket: Bucket, snap: Snapshot, packed: dict, cols: dict, shapes: dict, i: int, state: RunState,
           extra_header: dict, now_ms: float) -> Frame:
    cfg, h = state.cfg, snap.host
    if snap.replay is None:
        step = state.step_count
        of_step = {"step": step, "steps": state.took_frame(step), "mode": state.mode, "p": state.p, "lr": state.lr}
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
        elif cfg.task == "regression":
            header["example"].update(x=cols["x"][i], y=cols["y"][i])
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
        elif cfg.task == "regression":
            _add_band(fr, h, packed, e, state)
    return fr


# a regression's function panel: the curves over the line, each packed as q8 per run
BAND_CURVES = ("band_eval", "band_mean", "band_std", "band_curves")


def _add_band(fr: Frame, h: dict, packed: dict, e: int, state: RunState) -> None:
    """The band sections of a regression run's frame and its header's "band" (docs/protocol.md)."""
    T = state.cfg.train.mc_passes
    curves = min(T, MC_CURVES)
    for name in BAND_CURVES:
        shape = (curves, MC_LINE) if name == "band_curves" else (MC_LINE,)
        data, extra = packed[name][e]
        if name == "band_curves" and curves < h[name].shape[1]:   # this run's passes only
            data, extra = pack_rows("q8", h[name][e:e + 1, :curves])[0]
        fr.add_packed(name.replace("_", "."), "q8", shape, data, extra)
    n_test = len(state.data.x_test)
    fr.add("band.inside", "bits", h["band_inside"][e, :n_test] > 0.5)
    fr.header["band"] = {"x": list(PLANE), "points": MC_LINE, "passes": T, "curves": curves,
                         "coverage": _finite(float(h["band_coverage"][e]))}


class Snapshot:
    """A bucket's snapshot on the host: numpy arrays with one row per run asked for.

    rows: act<l>, pre<l>, mask<l> (1 kept), index, x, y (where has[i]: a step was taken),
    kept<l> (kept examples per unit since the last frame), train_loss; drew (runs x
    layers: the last step drew a mask), masked (examples through each mask since the
    last frame). For the runs with extras (in that order): theta (whole weight rows),
    boundary, and neuron for those that watch one. replay: set when it is a past step of
    one run (replay_snapshot). thinned: ids of the runs whose boundary is a thinned
    network's (default: those whose last step drew a mask and that ask for it)."""

    def __init__(self, bucket: Bucket, states: list, host: dict, has: np.ndarray, drew: np.ndarray,
                 masked: np.ndarray, with_extras: list, replay: dict | None = None, thinned: set | None = None):
        self.bucket, self.states, self.host = bucket, states, host
        self.replay = replay  # a past step's header values (replay_snapshot), else None
        self.has, self.drew, self.masked = has, drew, masked
        self.extras_row = {id(s): i for i, s in enumerate(with_extras)}
        self.watch_row = {id(s): i for i, s in enumerate(s for s in with_extras if s.watch is not None)}
        self.thinned = (thinned if thinned is not None else
                        {id(s) for s in with_extras if bucket.views.shows_thinned(s)})

    def edge_weights(self) -> list[np.ndarray]:
        """Each edge parameter (a Linear/Conv2d's weight) of the runs with extras:
        (runs, *its torch shape), views into their theta rows."""
        theta, out, sh = self.host["theta"], [], self.bucket.shape
        for i in sh.edge_params:
            _, shape, transposed, offset = sh.layout.params[i]
            block = theta[:, offset:offset + math.prod(shape)].reshape(len(theta), *shape)
            out.append(block.transpose(0, 2, 1) if transposed else block)
        return out


@torch.no_grad()
def gather(bucket: Bucket, states: list[RunState], extras: list[bool], grid_size: int) -> Snapshot:
    """What the frames of these runs need, gathered on the device as a few stacked
    tensors and copied to the host in one piece; the per-frame counters of these runs
    restart, and their evaluations reach their history. extras[i]: also weights, the
    decision boundary on screen and a watched neuron's map."""
    bucket.history.fold()
    store, dev, n = bucket.store, bucket.device, len(states)
    rows = [s.row for s in states]
    rows_t = torch.tensor(rows, device=dev, dtype=torch.long)
    fields: dict[str, torch.Tensor] = {}
    has, drew = _last_steps(bucket, rows, fields)
    if has.any():
        flat = rows_t * store.n_train_max + fields["index"]
        fields["x"] = store.x_flat.index_select(0, flat).reshape(n, -1)
        fields["y"] = store.y_flat.index_select(0, flat).float()
    kept = store.kept.index_select(0, rows_t)
    offsets = bucket.shape.noise_offsets
    for l, (a, b) in enumerate(zip(offsets, offsets[1:])):
        fields[f"kept{l}"] = kept[:, a:b].view(n, bucket.key.batch, -1).sum(1)
    cnt = store.lcnt.index_select(0, rows_t)
    fields["train_loss"] = torch.where(cnt > 0, (store.lsum.index_select(0, rows_t) / cnt.clamp_min(1)).float(),
                                       torch.full_like(cnt, math.nan))
    evals = [(s, ev) for s, ev in ((s, s.take_evals()) for s in states) if ev]
    if evals:
        fields["evals"] = torch.cat([torch.stack([st[:, c] for _, st, c in ev]) for _, ev in evals]).reshape(-1)
    with_extras = [s for s, e in zip(states, extras) if e]
    if with_extras:
        fields.update(bucket.views.extras(bucket.tables(), with_extras, grid_size))
    host = _to_host(fields, store.cpu)
    # restart the per-frame counters of these runs
    store.lsum[rows_t] = 0
    store.lcnt[rows_t] = 0
    store.kept[rows_t] = 0
    masked = store.masked_l[rows].copy()
    store.masked_l[rows] = 0
    at = 0
    for s, ev in evals:  # into each run's history, in order
        for (step, _, _), e in zip(ev, host["evals"][at:at + 3 * len(ev)].reshape(-1, 3)):
            s.add_history({"step": step, "train_loss": _finite(float(e[0])), "test_loss": _finite(float(e[1])),
                           "test_acc": _finite(float(e[2]))})
        at += 3 * len(ev)
    return Snapshot(bucket, states, host, has, drew, masked, with_extras)


def _last_steps(bucket: Bucket, rows: list[int], fields: dict) -> tuple[np.ndarray, np.ndarray]:
    """Into fields: the shown example of each run's last step, from that step's tensors
    (act<l>, pre<l>, mask<l>, index). Returns has (a step was taken) and drew (runs x
    layers: that step's mask counted)."""
    store, dev, n, L = bucket.store, bucket.device, len(rows), bucket.L
    by_step = bucket.records.by_step
    rec_of = store.rec_of[rows]
    has = rec_of >= 0
    drew = np.zeros((n, L), bool)
    groups: dict[int, list[int]] = {}
    if has.all() and (rec_of == rec_of[0]).all():  # (the common case: all from one step)
        groups[int(rec_of[0])] = list(range(n))
    elif has.any():
        for l in range(L):
            for kind, size in (("act", bucket.shape.act_sizes[l]), ("pre", bucket.shape.act_sizes[l]),
                               ("mask", bucket.shape.mask_sizes[l])):
                fields[f"{kind}{l}"] = torch.zeros(n, size, device=dev)
        fields["index"] = torch.zeros(n, device=dev, dtype=torch.long)
        for i, r in enumerate(rows):
            if has[i]:
                groups.setdefault(int(store.rec_of[r]), []).append(i)
    whole = len(groups) == 1 and len(next(iter(groups.values()), [])) == n
    for sid, members in groups.items():
        layers, idx0, counted = by_step[sid]
        rec_rows = store.rec_row[[rows[i] for i in members]]
        rr = torch.from_numpy(rec_rows).to(dev)
        drew[members] = counted[rec_rows]
        at = None if whole else torch.tensor(members, device=dev)
        for l, (pre, mask, out) in enumerate(layers):
            parts = {"act": _example(bucket, out, rr), "pre": _example(bucket, out if pre is None else pre, rr),
                     "mask": (_example(bucket, mask, rr) if mask is not None else
                              torch.zeros(len(members), bucket.shape.mask_sizes[l], device=dev))}
            for kind, v in parts.items():
                _put(fields, f"{kind}{l}", v, at)
        _put(fields, "index", idx0.index_select(0, rr), at)
    return has, drew


def _put(fields: dict, name: str, v: torch.Tensor, at: torch.Tensor | None) -> None:
    if at is None:
        fields[name] = v
    else:
        fields[name].index_copy_(0, at, v)


def _to_host(fields: dict, cpu: bool) -> dict:
    if cpu:  # every field is a fresh tensor: the host reads it in place
        return {k: v.float().numpy() for k, v in fields.items()}
    names = list(fields)   # one copy from the device
    host_all = torch.cat([fields[k].reshape(-1).float() for k in names]).cpu().numpy()
    host, at = {}, 0
    for k in names:
        size = fields[k].numel()
        host[k] = host_all[at:at + size].reshape(fields[k].shape)
        at += size
    return host


@torch.no_grad()
def replay_snapshot(bucket: Bucket, state: RunState, step: int) -> Snapshot:
    """A snapshot of one of the run's past steps (inside bucket.timeline()), from its
    timeline: that step's masks, the shown example's values and its loss, as a frame
    of that step showed them. Per-frame counters are left alone; the counts it
    carries (kept, masked) are the shown example's, the only one kept. The slow panels
    (weights, boundary, a watched neuron's map) are today's, as only today's weights are
    kept; a thinned boundary is that step's masks applied to them."""
    store, sh = bucket.store, bucket.shape
    k = state.row
    bucket.history.fold()
    col = (step - 1) % store.tl_index.shape[1]
    vals = store.tl_vals[k, col].float().cpu().numpy()
    index = int(store.tl_index[k, col])
    first, p, lr, mode = state.settings_at(step)
    drew = (np.array(p) > 0) & (mode == "train")   # where that step drew masks (as Tables)
    host: dict[str, np.ndarray] = {}
    total, a = sum(sh.act_sizes), 0
    for l, n in enumerate(sh.act_sizes):
        host[f"pre{l}"], host[f"act{l}"] = vals[None, a:a + n], vals[None, total + a:total + a + n]
        a += n
    a = 2 * total
    for l, n in enumerate(sh.mask_sizes):
        host[f"mask{l}"] = vals[None, a:a + n]
        host[f"kept{l}"] = vals[None, a:a + n] if drew[l] else np.zeros((1, n), np.float32)
        a += n
    host["index"] = np.array([index])
    host["x"] = store.x_train[k, index].reshape(1, -1).cpu().numpy()
    host["y"] = store.y_train[k, index].reshape(1).float().cpu().numpy()
    host["train_loss"] = store.ring[k, (step - 1) % (store.ring.shape[1] - 1)].reshape(1).cpu().numpy()
    past = {"step": step, "steps": 1, "mode": mode, "p": list(p), "lr": lr, "replay": True}
    # the slow panels as of now (weights are kept only for now), except the thinned
    # boundary: that step's masks applied to today's weights
    masks = [torch.from_numpy(host[f"mask{l}"][0] > 0.5).reshape(sh.noise_shape[l]).to(bucket.device)
             if drew[l] else None for l in range(sh.L)]
    extras = bucket.views.extras(bucket.tables(), [state], state.limits.grid_size, replay=masks)
    host.update({name: v.float().cpu().numpy() for name, v in extras.items()})
    thinned = {id(state)} if state.view == "thinned" and drew.any() and "boundary" in extras else set()
    return Snapshot(bucket, [state], host, np.ones(1, bool), drew[None], drew[None].astype(np.int64), [state],
                    replay=past, thinned=thinned)


def _example(bucket: Bucket, t: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
    """The first example of each of these rows' batches in a step's tensor, flattened:
    MLP tensors are (K, B, ...), CNN ones (B, K, ...)."""
    ex = t[0].index_select(0, rr) if bucket.shape.cnn else t.index_select(0, rr)[:, 0]
    return ex.reshape(len(rr), -1).float()


def _finite(v: float) -> float | None:
    return v if v == v and abs(v) != float("inf") else None
