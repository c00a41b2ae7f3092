"""Row storage: row k of every stacked tensor belongs to one run.

    store = RowStore(shape)
    store.join(state); store.set_hyper(k, state.row_settings()); store.leave(state)

Device tensors (theta, optimizer moments, data, counters, the timeline) are attributes
named as in device_specs(); host arrays (batch position, step count, per-run settings)
as in host_specs(). Growing reallocates every tensor and copies the rows in use.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .. import masks
from .geometry import Shape
from .handle import RowSettings, RunHandle

LOSS_RING = 1024          # per-step training losses kept per run
TIMELINE = 1000           # steps a paused run can be replayed from (<= LOSS_RING: their losses)


class RowStore:
    """Every per-run tensor and setting of one bucket. Not thread-safe."""

    def __init__(self, shape: Shape, timeline: int = TIMELINE):
        self.shape = shape
        self.timeline = timeline   # steps of each run kept for replays
        self.device = shape.device
        self.cpu = self.device.type == "cpu"
        self.runs: list[RunHandle] = []
        self.n_train_max = self.n_test_max = 1
        self.cap = 0
        self.dirty = True   # settings or membership changed: tables.py rebuilds its tables
        self.alloc(1)

    def device_specs(self) -> dict[str, tuple[tuple, float, torch.dtype]]:
        """Every per-run device tensor: name -> (shape of one row, initial value, dtype)."""
        sh, key = self.shape, self.shape.key
        P = sh.layout.size
        ydt = torch.float32 if key.n_out == 1 else torch.long
        specs = {
            "theta": ((P,), 0.0, torch.float32),
            "m": ((P,), 0.0, torch.float32),     # Adam's first moment / SGD's momentum
            "v": ((P,), 0.0, torch.float32),     # Adam's second moment
            # loss sums in double precision: exact for any grouping of the steps' float32
            # losses, so a mean does not depend on when the sums were folded
            "lsum": ((), 0.0, torch.float64), "lcnt": ((), 0.0, torch.float32),  # since the last frame
            "esum": ((), 0.0, torch.float64), "ecnt": ((), 0.0, torch.float32),  # since the last evaluation
            "ring": ((LOSS_RING + 1,), 0.0, torch.float32),      # the last column takes no-ops
            "ringn": ((), 0, torch.long),
            "x_train": ((self.n_train_max, *key.input_shape), 0.0, torch.float32),
            "y_train": ((self.n_train_max,), 0, ydt),
            "x_test": ((self.n_test_max, *key.input_shape), 0.0, torch.float32),
            "y_test": ((self.n_test_max,), 0, ydt),
            "w_test": ((self.n_test_max,), 0.0, torch.float32),  # 1/n on a run's own test points
            "perm": ((self.n_train_max,), 0, torch.long),
            # the timeline: each of the run's last TIMELINE steps, at column (step - 1) %
            # TIMELINE: its shown example's pre-dropout input and block output per layer,
            # then its masks (1 kept), in half precision (frames send 8 bits); its example
            "tl_vals": ((self.timeline, 2 * sum(sh.act_sizes) + sum(sh.mask_sizes)), 0.0, torch.float16),
            "tl_index": ((self.timeline,), 0, torch.long),
            # times each unit of each example slot was kept since the last frame (in the
            # noise's layout), where its mask counted
            "kept": ((sh.noise_offsets[-1],), 0.0, torch.float32),
        }
        if key.batchnorm != "none":
            for l, c in enumerate(key.hidden):
                specs[f"bn_mean{l}"] = ((c,), 0.0, torch.float32)
                specs[f"bn_var{l}"] = ((c,), 1.0, torch.float32)
        return specs

    def host_specs(self) -> dict[str, tuple[tuple, type, object]]:
        """Every per-run host array: name -> (shape of one row, dtype, initial value)."""
        L = self.shape.L
        return {
            "pos": ((), np.int64, 0), "n_train": ((), np.int64, 0), "drawn": ((), bool, False),
            "steps": ((), np.int64, 0), "eval_every": ((), np.int64, 0), "lr": ((), np.float64, 0.0),
            "wd": ((), np.float64, 0.0), "train": ((), bool, True), "rec_of": ((), np.int64, -1),
            "rec_row": ((), np.int64, 0), "mkey": ((), np.int64, 0),  # mkey: its masks' key (masks.run_key)
            "p": ((L,), np.float64, 0.0), "masked_l": ((L,), np.int64, 0),
            # its noise: dropout's masks, or Gaussian factors 1 + sqrt(p / (1 - p)) z
            # ("gauss"); the std of Gaussian noise added to its training inputs
            "gauss": ((), bool, False), "input_noise": ((), np.float64, 0.0),
        }

    def row_bytes(self, n_train: int = 0, n_test: int = 0) -> int:
        """Bytes of one run's row of every stacked tensor, with data padded to at least
        these sizes (a heavy row, a CNN's timeline, makes growing the bucket costly)."""
        saved = self.n_train_max, self.n_test_max
        self.n_train_max, self.n_test_max = max(n_train, saved[0]), max(n_test, saved[1])
        try:
            return sum(math.prod(shape) * torch.empty((), dtype=dtype).element_size()
                       for shape, _, dtype in self.device_specs().values())
        finally:
            self.n_train_max, self.n_test_max = saved

    def alloc(self, cap: int) -> None:
        """(Re)allocate every per-run tensor for cap rows (or larger data), keeping the
        rows in use. A tensor whose size does not change is kept as it is: a first run's
        larger data must not reallocate a CNN's timeline, whose freed block is a hole the
        heap keeps resident and the next, slightly larger one cannot use."""
        K, dev = len(self.runs), self.device
        with torch.no_grad():
            for name, (shape, fill, dtype) in self.device_specs().items():
                old = getattr(self, name, None)
                if old is not None and old.shape == (cap, *shape):
                    continue
                t = torch.full((cap, *shape), fill, device=dev, dtype=dtype)
                if old is not None and K:
                    t[(slice(0, K),) + tuple(slice(0, s) for s in old.shape[1:])] = old[:K].detach()
                setattr(self, name, t)
        self.theta.requires_grad_(True)
        for name, (shape, dtype, fill) in self.host_specs().items():
            arr = np.full((cap, *shape), fill, dtype)
            old = getattr(self, name, None)
            if old is not None and K:
                arr[:K] = old[:K]
            setattr(self, name, arr)
        places = masks.places(self.shape.noise_offsets[-1])  # a step's noise units, layer after layer
        self.places = places if self.cpu else torch.from_numpy(places.astype(np.int64)).to(dev)
        input_shape = self.shape.key.input_shape
        self.x_flat = self.x_train.view(-1, *input_shape)
        self.y_flat = self.y_train.view(-1)
        self.row_base = (torch.arange(cap, device=dev) * self.n_train_max).view(cap, 1)
        self.ar_batch = torch.arange(self.shape.key.batch, device=dev).view(1, 1, -1)
        self.cap = cap
        self.dirty = True

    def join(self, state: RunHandle, max_rows: int) -> int:
        """Make room for a run and return its row (load() fills it): growing, to at
        most max_rows in one go, unless that is fewer than it needs."""
        n_tr, n_te = len(state.data.x_train), len(state.data.x_test)
        K = len(self.runs)
        if K == self.cap or n_tr > self.n_train_max or n_te > self.n_test_max:
            self.n_train_max, self.n_test_max = max(self.n_train_max, n_tr), max(self.n_test_max, n_te)
            grown = max(K + 1, min(max_rows, max(self.cap, 4, 2 * K)))
            self.alloc(grown if K == self.cap else self.cap)
        self.runs.append(state)
        return K

    def load(self, state: RunHandle, k: int) -> None:
        """(Re)start row k from a run's config: fresh weights, optimizer state, data,
        batch order and counters."""
        d = state.data
        with torch.no_grad():
            for name, (shape, fill, dtype) in self.device_specs().items():
                getattr(self, name)[k] = fill
            self.theta[k] = self.shape.layout.flatten(state.initial_net()).to(self.device)
            n, m = len(d.x_train), len(d.x_test)
            self.x_train[k, :n], self.y_train[k, :n] = d.x_train, d.y_train
            self.x_test[k, :m], self.y_test[k, :m] = d.x_test, d.y_test
            self.w_test[k, :m] = 1.0 / m
            self.perm[k, :n] = torch.arange(n, device=self.device)
        for name, (_, _, fill) in self.host_specs().items():
            getattr(self, name)[k] = fill
        self.n_train[k] = n
        self.eval_every[k] = state.cfg.train.eval_every
        self.mkey[k] = masks.run_key(state.cfg.data.seed)
        self.set_hyper(k, state.row_settings())

    def set_hyper(self, k: int, s: RowSettings) -> None:
        """Row k's p per layer, learning rate, weight decay, mode and noise (they act from
        the next step)."""
        self.p[k] = s.p
        self.lr[k], self.wd[k] = s.lr, s.weight_decay
        self.train[k], self.gauss[k], self.input_noise[k] = s.train, s.gauss, s.input_noise
        self.dirty = True

    def leave(self, state: RunHandle) -> RunHandle | None:
        """Remove a run; the last row moves into its place. Returns the run that moved
        (its row is now state's), or None."""
        k, last = state.row, len(self.runs) - 1
        moved = None
        if k != last:
            with torch.no_grad():
                for name in self.device_specs():
                    t = getattr(self, name)
                    t[k] = t[last]
            for name in self.host_specs():
                arr = getattr(self, name)
                arr[k] = arr[last]
            moved = self.runs[last]
            self.runs[k] = moved
        self.runs.pop()
        self.dirty = True
        return moved

    def shrink(self) -> bool:
        """Give memory back once most rows are empty (after runs left): whether it did."""
        K = len(self.runs)
        if self.cap > 8 and K <= self.cap // 4:
            self.alloc(max(4, 2 * K))
            return True
        return False
