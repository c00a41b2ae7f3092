"""A bucket: every run of one network shape, trained as stacked tensors in one step.

    bucket = Bucket(key_of(state), state.initial_net())
    bucket.join(state); bucket.join(other)  # continuous batching: at any step boundary
    bucket.step(active, n=4)                # up to 4 optimizer steps of the runs marked active
    views = bucket.snapshot(states, extras) # what frames need, one device-to-host copy
    bucket.leave(state)

Runs stack when their networks have the same shape (BucketKey): kind, layer sizes,
activation, dropout kind and placement, BatchNorm, optimizer, batch size, input shape
and device. Row k of every stacked tensor belongs to one run. Layer l's weights are
    W (K, in, out), b (K, 1, out):   h = baddbmm(b, x, W)        x: (K, B, in)
all of them views into one flat parameter tensor theta (K, P), so the optimizer is a
handful of element-wise ops over theta with each run's own learning rate, weight decay
and step count (Adam's bias correction); a run that sits out a step changes nothing
(its coefficients are 0 and 1, which leave every value exactly as it was). A CNN's 3x3
convolutions run as one grouped convolution (groups = K). A run whose shape is alone
trains in a bucket of one, through the same code. Without BatchNorm, gradients come
from the forward pass's tape (_backward: autograd's kernels, without its graph, which
cost more than the arithmetic on small networks); with it, from autograd.

Each run's randomness is its own. Its masks come from a counter (model_server.masks):
the bits of a unit depend on the run's seed, its step and the unit's place, and every
run's masks of a step are drawn at once, in one batch of integer ops over the bucket;
only where nn.Dropout draws (train mode, 0 < p < 1) do they count. Its batches follow
model_server.datasets.Batches' rules with its own generator (RunState.batch_gen). So a
run's masks and batches depend only on its own config and seed, never on who else
trains in the bucket, and its losses differ from the same run alone only by float
rounding (a batched matmul may sum in another order). An exported script draws the
same masks (model_server/export.py).

Dropout keeps torch's semantics per run and layer (tests compare with torch itself):
    train, p < 1:     out = x * (noise * (1 / (1 - p)))    noise ~ Bernoulli(1 - p), 0 or 1
    train, p = 1:     out = 0                              (zeros, never NaN)
    eval, or p = 0:   out = x                              (exactly)
    dropout2d:        one draw per (example, channel) of a CNN; per neuron on an MLP
    alpha:            out = x * (mask * a) + (mask - 1) * alpha' * a + alpha' * a * p
BatchNorm: batch statistics per run in train mode (running ones updated with momentum
0.1, the variance unbiased), running statistics in eval mode, as torch.nn.BatchNorm.

What frames need is kept cheaply per step and read only when a frame is taken: each
step's tensors (pre-dropout input, mask, block output) stay referenced as that run's
last step; per-unit kept counts add up in place; per-step losses wait in a list and are
folded into each run's ring and sums at most TALLY_FOLD steps later.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from . import masks
from .datasets import plane_grid
from .layers import SELU_ALPHA_PRIME
from .network import Net, block_order
from .activations import ACTIVATIONS
from .torch_internals import aten, fused_adam_

if TYPE_CHECKING:
    from .runstate import RunState

LOSS_RING = 1024          # per-step training losses kept per run
TIMELINE = 1000           # steps a paused run can be replayed from (<= LOSS_RING: their losses)
MAX_PENDING_EVALS = 256   # evaluations waiting for a frame before they are folded in
TALLY_FOLD = 64           # per-step losses are folded into the rings this many at a time
BN_EPS, BN_MOMENTUM = 1e-5, 0.1
FEATURES_FIRST = 256      # passes without gradients over this many examples or more: see _affine
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
MOMENTUM = 0.9
@dataclass(frozen=True)
class BucketKey:
    """What has to agree for runs to train as stacked tensors."""
    kind: str
    input_shape: tuple[int, ...]
    hidden: tuple[int, ...]
    n_out: int
    activation: str
    dropout_kind: str
    placement: str
    batchnorm: str
    optimizer: str
    batch: int
    device: str


def key_of(state: "RunState") -> BucketKey:
    cfg = state.cfg
    m = cfg.model
    return BucketKey(m.kind, tuple(state.data.x_train.shape[1:]), tuple(m.hidden), state.n_out, m.activation,
                     m.dropout_kind, m.placement, m.batchnorm, cfg.train.optimizer, state.batch,
                     str(state.device))


class Layout:
    """Where each parameter of a Net sits in a row of theta. Linear weights are stored
    transposed, (in, out), the way baddbmm takes them."""

    def __init__(self, net: Net):
        self.params: list[tuple[str, tuple[int, ...], bool, int]] = []  # name, stored shape, transposed, offset
        offset = 0
        for name, p in net.named_parameters():
            linear = p.dim() == 2
            self.params.append((name, tuple(p.shape[::-1]) if linear else tuple(p.shape), linear, offset))
            offset += p.numel()
        self.size = offset
        self.sizes = [math.prod(s) for _, s, _, _ in self.params]

    def flatten(self, net: Net) -> torch.Tensor:
        parts = dict(net.named_parameters())
        return torch.cat([(parts[n].detach().T if t else parts[n].detach()).reshape(-1)
                          for n, _, t, _ in self.params])

    def views(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """name -> (K, *shape) views into theta (K, P): no copies, gradients flow (one
        split: its backward is one concatenation, where a slice per parameter would
        cost a zero-filled theta-sized gradient each)."""
        K = theta.shape[0]
        return {n: part.view(K, *s) for (n, s, _, _), part in zip(self.params, theta.split(self.sizes, dim=1))}

    def unflatten(self, row: np.ndarray | torch.Tensor) -> list:
        """One row as the Net's parameters (torch layout), in order."""
        out = []
        for _, s, t, o in self.params:
            v = row[o:o + math.prod(s)].reshape(s)
            out.append(v.T if t else v)
        return out


class Bucket:
    """All runs of one BucketKey. Not thread-safe: one thread (the scheduler's, or a
    Run's caller) does everything with a bucket."""

    def __init__(self, key: BucketKey, template: Net):
        self.key = key
        self.device = torch.device(key.device)
        self.layout = Layout(template)
        self.order = block_order(template.cfg)
        self.L = len(key.hidden)
        self.cnn = key.kind == "cnn"
        # trained without autograd (forward's tape, _backward): a network without BatchNorm
        self.taped = key.batchnorm == "none"
        self.runs: list["RunState"] = []
        self.shard = 0   # a server may keep several buckets of one shape (it bounds a step's cost)
        # rows it grows to at most in one go (a server bounds a bucket's bytes: growing
        # copies every row, between two steps)
        self.max_rows = 1 << 30
        self.steps_taken = 0
        B = key.batch
        if self.cnn:
            h, w = key.input_shape[1:]
            self.act_shape = [(c, h, w) for c in key.hidden]
            feature = key.dropout_kind == "dropout2d"
            self.noise_shape = [(c, 1, 1) if feature else (c, h, w) for c in key.hidden]
        else:
            self.act_shape = [(c,) for c in key.hidden]
            self.noise_shape = [(c,) for c in key.hidden]
        self.mask_sizes = [math.prod(s) for s in self.noise_shape]   # mask units, one example
        self.act_sizes = [math.prod(s) for s in self.act_shape]
        sizes = [B * n for n in self.mask_sizes]
        self.noise_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.n_train_max = self.n_test_max = 1
        self.cap = 0
        self._tally: list[tuple[torch.Tensor, np.ndarray, tuple]] = []   # per step() call: losses (n, K), act, timeline
        self._tally_steps = 0
        self._records: dict[int, tuple] = {}   # step id -> that step's tensors (see step())
        self._grids: dict[int, torch.Tensor] = {}
        self._tables_dirty = True
        # the parameters the network panel draws as edges: each block's Linear/Conv2d weight, the head's
        self.edge_params = [i for i, (name, *_rest) in enumerate(self.layout.params)
                            if name == "head.weight" or (name.startswith("blocks.") and name.endswith(".0.weight"))]
        self._alloc(1)

    # ---- rows ------------------------------------------------------------------------------
    def _row_specs(self) -> dict[str, tuple[tuple, float, torch.dtype]]:
        """Every per-run device tensor: name -> (shape of one row, initial value, dtype)."""
        key = self.key
        ydt = torch.float32 if key.n_out == 1 else torch.long
        specs = {
            "theta": ((self.layout.size,), 0.0, torch.float32),
            "m": ((self.layout.size,), 0.0, torch.float32),     # Adam's first moment / SGD's momentum
            "v": ((self.layout.size,), 0.0, torch.float32),     # Adam's second moment
            "lsum": ((), 0.0, torch.float32), "lcnt": ((), 0.0, torch.float32),  # since the last frame
            "esum": ((), 0.0, torch.float32), "ecnt": ((), 0.0, torch.float32),  # since the last evaluation
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
            "tl_vals": ((TIMELINE, 2 * sum(self.act_sizes) + sum(self.mask_sizes)), 0.0, torch.float16),
            "tl_index": ((TIMELINE,), 0, torch.long),
        }
        # times each unit of each example slot was kept since the last frame (in the
        # noise's layout), where its mask counted
        specs["kept"] = ((self.noise_offsets[-1],), 0.0, torch.float32)
        if key.batchnorm != "none":
            for l, c in enumerate(key.hidden):
                specs[f"bn_mean{l}"] = ((c,), 0.0, torch.float32)
                specs[f"bn_var{l}"] = ((c,), 1.0, torch.float32)
        return specs

    def _host_specs(self) -> dict[str, tuple[tuple, type, object]]:
        """Every per-run host array: name -> (shape of one row, dtype, initial value)."""
        L = self.L
        return {
            "pos": ((), np.int64, 0), "n_train": ((), np.int64, 0), "drawn": ((), bool, False),
            "steps": ((), np.int64, 0), "eval_every": ((), np.int64, 0), "lr": ((), np.float64, 0.0),
            "wd": ((), np.float64, 0.0), "train": ((), bool, True), "rec_of": ((), np.int64, -1),
            "rec_row": ((), np.int64, 0), "mkey": ((), np.int64, 0),  # mkey: its masks' key (masks.run_key)
            "p": ((L,), np.float64, 0.0), "masked_l": ((L,), np.int64, 0),
        }

    def row_bytes(self, n_train: int = 0, n_test: int = 0) -> int:
        """Bytes of one run's row of every stacked tensor, with data padded to at least
        these sizes (a heavy row, a CNN's timeline, makes growing the bucket costly)."""
        saved = self.n_train_max, self.n_test_max
        self.n_train_max, self.n_test_max = max(n_train, saved[0]), max(n_test, saved[1])
        try:
            return sum(math.prod(shape) * torch.empty((), dtype=dtype).element_size()
                       for shape, _, dtype in self._row_specs().values())
        finally:
            self.n_train_max, self.n_test_max = saved

    def _alloc(self, cap: int) -> None:
        """(Re)allocate every per-run tensor for cap rows (or larger data), keeping the
        rows in use."""
        K, dev = len(self.runs), self.device
        with torch.no_grad():
            for name, (shape, fill, dtype) in self._row_specs().items():
                t = torch.full((cap, *shape), fill, device=dev, dtype=dtype)
                old = getattr(self, name, None)
                if old is not None and K:
                    t[(slice(0, K),) + tuple(slice(0, s) for s in old.shape[1:])] = old[:K].detach()
                setattr(self, name, t)
        self.theta.requires_grad_(True)
        for name, (shape, dtype, fill) in self._host_specs().items():
            arr = np.full((cap, *shape), fill, dtype)
            old = getattr(self, name, None)
            if old is not None and K:
                arr[:K] = old[:K]
            setattr(self, name, arr)
        places = masks.places(self.noise_offsets[-1])  # a step's noise units, layer after layer
        self._places = places if dev.type == "cpu" else torch.from_numpy(places.astype(np.int64)).to(dev)
        self._x_flat = self.x_train.view(-1, *self.key.input_shape)
        self._y_flat = self.y_train.view(-1)
        self._row_base = (torch.arange(cap, device=dev) * self.n_train_max).view(cap, 1)
        self._ar_batch = torch.arange(self.key.batch, device=dev).view(1, 1, -1)
        self._cpu = dev.type == "cpu"
        self._adam_step = torch.zeros((), device=dev)  # the step count handed to the fused Adam kernel
        self.cap = cap
        self._tables_dirty = True

    def join(self, state: "RunState") -> None:
        """Add a run (between two steps): its own weights, data and optimizer state."""
        self._fold()
        n_tr, n_te = len(state.data.x_train), len(state.data.x_test)
        if len(self.runs) == self.cap or n_tr > self.n_train_max or n_te > self.n_test_max:
            self.n_train_max, self.n_test_max = max(self.n_train_max, n_tr), max(self.n_test_max, n_te)
            grown = max(len(self.runs) + 1, min(self.max_rows, max(self.cap, 4, 2 * len(self.runs))))
            self._alloc(grown if len(self.runs) == self.cap else self.cap)
        state.bucket, state.row = self, len(self.runs)
        self.runs.append(state)
        self.load(state)

    def load(self, state: "RunState") -> None:
        """(Re)start a run's row from its config: fresh weights, optimizer state, data,
        batch order and counters. Used by join and by reset."""
        self._fold()
        k, d = state.row, state.data
        with torch.no_grad():
            for name, (shape, fill, dtype) in self._row_specs().items():
                getattr(self, name)[k] = fill
            self.theta[k] = self.layout.flatten(state.initial_net()).to(self.device)
            n, m = len(d.x_train), len(d.x_test)
            self.x_train[k, :n], self.y_train[k, :n] = d.x_train, d.y_train
            self.x_test[k, :m], self.y_test[k, :m] = d.x_test, d.y_test
            self.w_test[k, :m] = 1.0 / m
            self.perm[k, :n] = torch.arange(n, device=self.device)
        for name, (_, _, fill) in self._host_specs().items():
            getattr(self, name)[k] = fill
        self.n_train[k] = n
        self.eval_every[k] = state.cfg.train.eval_every
        self.mkey[k] = masks.run_key(state.cfg.data.seed)
        self.set_hyper(state)

    def set_hyper(self, state: "RunState") -> None:
        """A run's p per layer, learning rate, weight decay and mode, from its state
        (they act from the next step)."""
        k = state.row
        self.p[k] = state.p
        self.lr[k], self.wd[k] = state.lr, state.weight_decay
        self.train[k] = state.mode == "train"
        self._tables_dirty = True
        # the settings of every step from the run's first on: from which step they hold
        # (replays read them; an export replays them all). One entry per step that changed
        # something: a later change within the same step replaces it.
        first = int(self.steps[k]) + 1
        log, entry = state.settings_log, (first, list(state.p), state.lr, state.mode)
        if log and log[-1][0] == first:
            log.pop()
        if not log or log[-1][1:] != entry[1:]:
            log.append(entry)

    def leave(self, state: "RunState") -> None:
        """Remove a run between two steps; the last row moves into its place."""
        self._fold()
        k, last = state.row, len(self.runs) - 1
        if k != last:
            with torch.no_grad():
                for name in self._row_specs():
                    t = getattr(self, name)
                    t[k] = t[last]
            for name in self._host_specs():
                arr = getattr(self, name)
                arr[k] = arr[last]
            moved = self.runs[last]
            self.runs[k], moved.row = moved, k
        self.runs.pop()
        state.bucket, state.row = None, -1
        self._tables_dirty = True
        self._prune_records()

    def shrink(self) -> None:
        """Give memory back once most rows are empty (after runs left)."""
        K = len(self.runs)
        if self.cap > 8 and K <= self.cap // 4:
            self._fold()
            self._alloc(max(4, 2 * K))

    # ---- per-row tables for the batched network ------------------------------------------
    def _tables(self) -> None:
        """Device tables from the host's per-run settings, rebuilt after a change."""
        if not self._tables_dirty:
            return
        K, dev = len(self.runs), self.device
        p = self.p[:K]
        train = self.train[:K, None]
        drawing = train & (p > 0)
        self.drawing = drawing                                  # (K, L) host: a mask is drawn
        # each unit's keep threshold (model_server.masks): 2^32 (always kept) in eval
        # mode or at p = 0, 0 at p = 1, else round((1 - p) * 2^32); unit by unit, in the
        # order of the noise
        thr = np.repeat(np.where(drawing, masks.keep_threshold(p), 2**32), np.diff(self.noise_offsets), axis=1)
        self._thresholds = thr if self._cpu else torch.from_numpy(thr).to(dev)
        if self.key.dropout_kind == "alpha":
            live = drawing & (p < 1)
            a = np.where(live, 1 / np.sqrt((SELU_ALPHA_PRIME ** 2 * p + 1) * np.maximum(1 - p, 1e-30)), 0.0)
            mul = np.where(drawing, a, 1.0)
            tabs = {"mul": mul, "alpha_a": SELU_ALPHA_PRIME * a, "alpha_ap": SELU_ALPHA_PRIME * a * p}
        else:
            # 1 / (1 - p) rounded as aten rounds it: float32(1) / float32(1 - p)
            one_minus = (1 - p).astype(np.float32)
            scale = np.where(p < 1, np.float32(1) / np.maximum(one_minus, np.float32(1e-30)), 0.0)
            tabs = {"mul": np.where(drawing, scale, 1.0)}
        self.tab = {name: torch.tensor(v, dtype=torch.float32, device=dev) for name, v in tabs.items()}
        self.train_t = torch.tensor(self.train[:K], dtype=torch.float32, device=dev)
        self.lr_t = torch.tensor(self.lr[:K], dtype=torch.float32, device=dev).view(K, 1)
        self.lr64 = torch.tensor(self.lr[:K], dtype=torch.float64, device=dev).view(K, 1)
        self.wd_t = torch.tensor(self.wd[:K], dtype=torch.float32, device=dev).view(K, 1) if self.wd[:K].any() else None
        self._cols: dict = {}
        # what a step with every run active needs, made once per membership or setting
        B = self.key.batch
        self._ones = torch.ones(K, device=dev)
        self._masked_step = drawing.astype(np.int64) * B
        self._pos_step = np.where(self.n_train[:K] > B, B, 0)
        self._all_rows = np.arange(K)
        self._views = self.layout.views(self.theta[:K].detach())  # every run's parameters
        self._opt_rows = (self.theta[:K].detach(), self.m[:K], self.v[:K])
        self._any_eval = bool((self.eval_every[:K] > 0).any())
        self._count_w = torch.from_numpy(np.repeat(drawing, np.diff(self.noise_offsets), axis=1).astype(np.float32)).to(dev)
        self._tables_dirty = False

    def _column(self, name: str, rows, l: int, ndim: int) -> torch.Tensor:
        """Column l of a (K, L) table, shaped to broadcast against a layer's activation:
        (K', 1, ...) for an MLP's (K', N, F), (1, K', 1, 1, 1) for a CNN's (N, K', C, H, W)."""
        if rows is None:
            hit = self._cols.get((name, l, ndim))
            if hit is not None:
                return hit
        col = self.tab[name][:, l] if rows is None else self.tab[name][rows, l]
        col = col.view(1, -1, 1, 1, 1) if self.cnn else col.view(-1, *([1] * (ndim - 1)))
        if rows is None:
            self._cols[(name, l, ndim)] = col
        return col

    def _sel(self, t: torch.Tensor, rows) -> torch.Tensor:
        return t[:len(self.runs)] if rows is None else t[rows]

    # ---- the batched network ---------------------------------------------------------------
    def forward(self, x: torch.Tensor, rows: torch.Tensor | None = None, noise: list | None = None,
                keeps: list | None = None, record: list | None = None, bn_update: torch.Tensor | None = None,
                hidden: list | None = None, tape: list | None = None) -> torch.Tensor:
        """Logits of each run for its own inputs x (K', N, *in); rows: which runs (None:
        all, in row order). Returns (K', N) for one output, else (K', N, classes).

        noise: per layer, (K', N, *noise) 0/1 draws (1 = kept): train mode, i.e. dropout
        with these masks and BatchNorm on batch statistics, for the rows in train mode
        (eval-mode rows' noise is all 1: they pass through). keeps: per layer, (K', *noise) bool masks
        applied to every example (one thinned network per run). Neither: eval mode.
        record: a list to append (pre-dropout input, mask or None, block output) per layer.
        bn_update: (K',) 1 where this batch updates BatchNorm's running statistics.
        hidden: a list to append each block's output to.
        tape: a list to append what _backward needs (a network without BatchNorm,
        trained without autograd: see _gradient)."""
        self._tables()
        theta = self._sel(self.theta, rows)
        K, N = theta.shape[0], x.shape[1]
        # (views of theta stay valid while it is updated in place; autograd needs its own)
        P = self._views if rows is None and tape is not None else self.layout.views(theta)
        train_rows = (self.train_t if rows is None else self.train_t[rows]) if noise is not None else None
        h = x.transpose(0, 1).reshape(N, K * x.shape[2], *x.shape[3:]) if self.cnn else x.flatten(2)
        # a pass without gradients and without a tape: activations in place (every h
        # here is a fresh tensor) and long batches features first (_affine)
        scratch = tape is None and not torch.is_grad_enabled()
        act = ACTIVATIONS[self.key.activation]
        act_fn = act.fn_ if scratch else act.fn
        for l in range(self.L):
            w, b = P[f"blocks.{l}.0.weight"], P[f"blocks.{l}.0.bias"]
            if self.cnn and l == 0 and tape is not None:
                # a training pass's first layer: one batched matmul over the input's 3x3
                # patches. Its input needs no gradient, and for its few input channels
                # (one, for digits) oneDNN's convolution and weight gradient cost more
                # on a CPU than this matmul (docs/benchmarks.md, round 9)
                c, hw = w.shape[1], h.shape[2:]
                cols = _patches(h, K)                                              # (K, c_in * 9, N * H * W)
                tape.append(("patches", f"blocks.{l}.0", cols))
                h = torch.baddbmm(b.view(K, c, 1), w.reshape(K, c, -1), cols)
                h = h.view(K, c, N, *hw).permute(2, 0, 1, 3, 4).contiguous()       # (N, K, c, H, W)
            elif self.cnn:
                c, wk = w.shape[1], w.reshape(K * w.shape[1], *w.shape[2:])
                if tape is not None:
                    tape.append(("conv", f"blocks.{l}.0", h, wk, K))
                h = F.conv2d(h, wk, b.reshape(K * c), padding=1, groups=K)
                h = h.view(N, K, c, *h.shape[2:])
            else:
                if tape is not None:
                    tape.append(("affine", f"blocks.{l}.0", h, w))
                h = _affine(h, w, b, scratch)
            pre = mask = None
            for op in self.order:
                if op == "act":
                    z, h = h, act_fn(h)
                    if tape is not None:
                        tape.append(("act", z, h))
                elif op == "bn":
                    h = self._batchnorm(h, l, P, rows, train_rows, bn_update)
                else:
                    pre = h
                    h, mask, factor = self._dropout(h, l, rows, None if noise is None else noise[l],
                                                    None if keeps is None else keeps[l])
                    if tape is not None and factor is not None:
                        tape.append(("drop", factor))
            if record is not None:
                record.append((pre, mask, h))
            if hidden is not None:
                hidden.append(h)
            if self.cnn and l + 1 < self.L:
                h = h.reshape(N, -1, *h.shape[3:])
        if self.cnn:
            if tape is not None:
                tape.append(("flatten", h.shape))
            h = h.transpose(0, 1).reshape(K, N, -1)
        if tape is not None:
            tape.append(("affine", "head", h, P["head.weight"]))
        out = _affine(h, P["head.weight"], P["head.bias"], scratch)
        return out.squeeze(-1) if self.key.n_out == 1 else out

    def _dropout(self, h, l, rows, noise, keep):
        """(output, mask, factor): the mask (1 kept: bool or 0/1) and the factor the input was
        multiplied by, the output's gradient with respect to its input (None: no dropout)."""
        if noise is None and keep is None:
            return h, None, None
        if keep is not None:  # one fixed mask per run, broadcast over the examples
            mask = keep.unsqueeze(0) if self.cnn else keep.unsqueeze(1)
            kept = mask.to(h.dtype)
        else:                 # this step's noise: 1 kept, 0 dropped (the mask too: 1.0 kept)
            mask = kept = noise.transpose(0, 1) if self.cnn else noise
        factor = kept * self._column("mul", rows, l, h.dim())   # 0 or 1/(1-p): aten's scaled noise
        if self.key.dropout_kind == "alpha":
            # aten: b = (noise - 1) * alpha' * a + alpha' * a * p;  out = x * (noise * a) + b
            b = (kept - 1) * self._column("alpha_a", rows, l, h.dim()) + self._column("alpha_ap", rows, l, h.dim())
            return h * factor + b, mask, factor
        return h * factor, mask, factor

    def _batchnorm(self, h, l, P, rows, train_rows, bn_update):
        rm, rv = self._sel(getattr(self, f"bn_mean{l}"), rows), self._sel(getattr(self, f"bn_var{l}"), rows)
        K = rm.shape[0]
        at = f"blocks.{l}.{1 + self.order.index('bn')}"
        gamma, beta = P[f"{at}.weight"], P[f"{at}.bias"]
        if self.cnn:  # h (N, K, C, H, W): statistics over N, H, W
            dims, shape, n = (0, 3, 4), (1, K, -1, 1, 1), h.shape[0] * h.shape[3] * h.shape[4]
        else:         # h (K, N, C): statistics over N
            dims, shape, n = (1,), (K, 1, -1), h.shape[1]
        mean, var = rm.view(shape), rv.view(shape)
        if train_rows is not None:  # train-mode rows normalise with their batch's statistics
            bmean = h.mean(dims, keepdim=True)
            bvar = h.var(dims, unbiased=False, keepdim=True)
            use = (train_rows > 0).view((1, K, 1, 1, 1) if self.cnn else (K, 1, 1))
            mean, var = torch.where(use, bmean, mean), torch.where(use, bvar, var)
            if bn_update is not None:
                with torch.no_grad():
                    upd = (bn_update * train_rows).view(K, 1) * BN_MOMENTUM
                    bv = bvar.detach().reshape(K, -1) * (n / max(n - 1, 1))  # running variance: unbiased
                    target = slice(0, K) if rows is None else rows
                    getattr(self, f"bn_mean{l}")[target] = rm * (1 - upd) + bmean.detach().reshape(K, -1) * upd
                    getattr(self, f"bn_var{l}")[target] = rv * (1 - upd) + bv * upd
        return (h - mean) / torch.sqrt(var + BN_EPS) * gamma.view(shape) + beta.view(shape)

    def losses(self, logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Each run's mean loss (K',) over its examples (weighted: padded test sets)."""
        if self.key.n_out == 1:
            per = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
        else:
            per = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none").view(y.shape)
        return per.mean(1) if weight is None else (per * weight).sum(1)

    # ---- training ------------------------------------------------------------------------
    @torch.no_grad()  # (gradients: _gradient)
    def step(self, active: np.ndarray, n: int = 1) -> int:
        """Up to n optimizer steps of the runs where active[k] (a bool per row, row
        order); fewer where an active run's test evaluation is due first. Returns the
        number taken. The caller keeps runs at their step limit out, and n within it.

        Several steps in one call draw their masks and batches at once and keep their
        bookkeeping together: that Python is paid once a call, not once a step, and it
        weighs on a lone run's step (docs/benchmarks.md, round 9). Each step's arithmetic
        is the one a single step does."""
        K = len(self.runs)
        act = np.asarray(active[:K], bool)
        if K == 0 or not act.any():
            return 0
        self._tables()
        dev, B = self.device, self.key.batch
        every = bool(act.all())   # the common case: every run of the bucket steps
        n = self._until_eval(act, n)
        # 1. randomness: every run's noise of its next n steps, from its own key (a run
        # that sits out draws too: its step's bits, unused). A fresh tensor each call: the
        # steps' records keep their masks (see _dropout)
        counts = self.steps[:K] + 1 + np.arange(n).reshape(n, 1)               # (n, K)
        per_step = masks.step_bits(self.mkey[:K], counts).reshape(-1)
        U = self.noise_offsets[-1]
        if self._cpu:
            bits = masks.unit_bits(per_step, self._places).reshape(n, K, U)
            noise = torch.from_numpy(np.less(bits, self._thresholds, out=np.empty((n, K, U), np.float32)))
        else:
            per_step = torch.from_numpy(per_step.astype(np.int64)).to(dev)
            noise = (masks.unit_bits(per_step, self._places).view(n, K, U) < self._thresholds).float()
        # 2. each run's batches, in its own order: (n, K, B) example indices
        idx = self._batches(act, every, n)
        flat = (idx + self._row_base[:K].view(1, K, 1)).reshape(-1)
        xs = self._x_flat.index_select(0, flat).view(n, K, B, *self.key.input_shape)
        ys = self._y_flat.index_select(0, flat).view(n, K, B)
        act_t = self._ones if every else torch.from_numpy(act.astype(np.float32)).to(dev)  # (K,) 0/1
        losses, entries = [], []
        for j in range(n):
            # 3. forward and backward; rows sitting out contribute nothing
            noise_views = [noise[j, :, a:b].view(K, B, *sh) for a, b, sh in
                           zip(self.noise_offsets, self.noise_offsets[1:], self.noise_shape)]
            record: list = []
            per_run, grad = self._gradient(xs[j], ys[j], noise_views, act_t, every, record)
            self._update(K, act_t, act, every, grad)
            self.steps[:K] += act
            losses.append(per_run)
            entries.append(self._timeline_entries(record))   # (a copy: this step's tensors can go)
        # 4. what frames will read: the last step's tensors, counts over the n steps
        self.steps_taken += n
        counted = self.drawing if every else self.drawing & act[:, None]   # (K, L): masks that count
        self.masked_l[:K] += n * self._masked_step if every else n * counted * B
        # kept counts: these steps' noise where its masks count
        self.kept[:K].addcmul_(noise.sum(0) if n > 1 else noise[0],
                               self._count_w if every else self._count_w * act_t.view(K, 1))
        self._tally.append((torch.stack(losses), act, self._timeline_rows(entries, idx, act, every)))
        self._tally_steps += n
        if self._tally_steps >= TALLY_FOLD:
            self._fold()
        sid = self.steps_taken - 1
        # the last step's masks are views of the whole call's noise: a copy keeps one
        # step's, not n steps' (a 16-step chunk's noise was most of a heavy run's memory)
        self._records[sid] = ([(None if pre is None else pre.detach(), mask if n == 1 else mask.clone(),
                                out.detach()) for pre, mask, out in record], idx[-1, :, 0], counted)
        if every:  # every row's frames read this step now: the older records go at once
            self._records = {sid: self._records[sid]}
            self.rec_of[:K] = sid
            self.rec_row[:K] = self._all_rows
        else:
            self.rec_of[:K][act] = sid
            self.rec_row[:K][act] = np.flatnonzero(act)
        if len(self._records) > 8:
            self._prune_records()
        if self._any_eval:
            ev = self.eval_every[:K]
            due = act & (ev > 0) & (self.steps[:K] % np.maximum(ev, 1) == 0)
            if due.any():
                self.evaluate(np.flatnonzero(due))
        return n

    def _until_eval(self, act: np.ndarray, n: int) -> int:
        """How many of n steps fit before an active run's test evaluation is due."""
        K = len(act)
        if n > 1 and self._any_eval:
            ev = self.eval_every[:K]
            due = act & (ev > 0)
            if due.any():
                n = min(n, int((ev[due] - self.steps[:K][due] % ev[due]).min()))
        return max(1, n)

    def _timeline_entries(self, record: list) -> torch.Tensor:
        """(K, entry): what a frame of this step would show of each run's first example:
        per layer its pre-dropout input, then per layer its block output, then per layer
        its mask (a training step has every layer's noise)."""
        K = len(self.runs)
        if self.cnn:  # (B, K, ...)
            parts = [(out if pre is None else pre)[0].reshape(K, -1) for pre, _, out in record]
            parts += [out[0].reshape(K, -1) for _, _, out in record]
            parts += [mask[0].reshape(K, -1) for _, mask, _ in record]
        else:         # (K, B, units)
            parts = [(out if pre is None else pre)[:, 0] for pre, _, out in record]
            parts += [out[:, 0] for _, _, out in record]
            parts += [mask[:, 0] for _, mask, _ in record]
        return torch.cat(parts, 1)

    def _timeline_rows(self, entries: list, idx: torch.Tensor, act: np.ndarray, every: bool) -> tuple:
        """The timeline rows of the n steps just taken, for each active run (entries: each
        step's _timeline_entries; idx (n, K, B); self.steps counts them), for column
        (step - 1) % TIMELINE: replay_snapshot reads them back. _fold writes them, many
        steps at once."""
        n, K = len(entries), len(self.runs)
        rows = self._all_rows if every else np.flatnonzero(act)
        # (n, rows): step j of row k is its step steps[k] - n + 1 + j
        at = rows * TIMELINE + (self.steps[rows] - n + np.arange(n).reshape(n, 1)) % TIMELINE
        vals = entries[0] if n == 1 else torch.cat(entries)   # (n * K, entry), step after step
        index = idx[:, :, 0].reshape(-1)
        if not every:
            sel = torch.from_numpy((np.arange(n).reshape(n, 1) * K + rows).reshape(-1)).to(self.device)
            vals, index = vals.index_select(0, sel), index.index_select(0, sel)
        return vals, index, at.reshape(-1)

    def timeline(self, state: "RunState") -> tuple[int, int] | None:
        """The steps of this run that can be replayed, (first, last), or None before its
        first step."""
        n = int(self.steps[state.row])
        return (max(1, n - TIMELINE + 1), n) if n else None

    def _prune_records(self) -> None:
        used = set(self.rec_of[:len(self.runs)].tolist())
        for sid in [s for s in self._records if s not in used]:
            del self._records[sid]

    def _batches(self, act: np.ndarray, every: bool, n: int) -> torch.Tensor:
        """(n, K, B): each run's examples for its next n steps (rows sitting out: any),
        by Datasets.Batches' rules, row by row: a fresh permutation from the run's own
        generator when the next batch would run past the end (an epoch's remainder is
        skipped); a batch as large as the training set is the whole set, in order."""
        K, B = len(act), self.key.batch
        n_tr = self.n_train[:K]
        step = self._pos_step if every else np.where(act, self._pos_step, 0)
        parts, left = [], n
        while left:
            due = (self.pos[:K] + B > n_tr) | ~self.drawn[:K]
            if due.any():
                for k in np.flatnonzero(due & act & (n_tr > B)):
                    self.perm[k, :n_tr[k]] = torch.randperm(int(n_tr[k]), generator=self.runs[k].batch_gen).to(self.device)
                    self.pos[k], self.drawn[k] = 0, True
            # as many steps as every active run's epoch has left (at least one, now)
            m = left
            if m > 1:
                big = act & (n_tr > B)
                if big.any():
                    m = min(m, int(((n_tr[big] - self.pos[:K][big]) // B).min()))
            first = self.pos[:K] if every else np.where(act, self.pos[:K], 0)    # idle rows: any batch
            pos = torch.from_numpy(first.reshape(K, 1) + np.arange(m) * step.reshape(K, 1))
            at = (pos if self._cpu else pos.to(self.device)).view(K, m, 1) + self._ar_batch       # (K, m, B)
            parts.append(self.perm[:K].gather(1, at.view(K, m * B)).view(K, m, B).transpose(0, 1))
            self.pos[:K] += m * step
            left -= m
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def _gradient(self, x: torch.Tensor, y: torch.Tensor, noise: list, act: torch.Tensor, every: bool,
                  record: list, taped: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A training pass with this step's noise (per layer, (K, B, *units) 0/1): each
        run's loss (K,) and the gradient
        of sum(act * loss) with respect to theta (K, P). taped (default: self.taped):
        from forward's tape by _backward, else by autograd (BatchNorm)."""
        if self.taped if taped is None else taped:
            tape: list = []
            with torch.no_grad():
                logits = self.forward(x, noise=noise, record=record, tape=tape)
                per_run, g = self._loss_grad(logits, y, None if every else act)
                return per_run, self._backward(tape, g)
        with torch.enable_grad():
            per_run = self.losses(self.forward(x, noise=noise, record=record, bn_update=act), y)
            (per_run.sum() if every else (per_run * act).sum()).backward()
        grad, self.theta.grad = self.theta.grad[:len(per_run)], None
        return per_run.detach(), grad

    def _loss_grad(self, logits: torch.Tensor, y: torch.Tensor,
                   act: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Each run's mean loss (K,), as losses() computes it, and the gradient of the sum
        over runs of (act * that loss) with respect to the logits, (K, B, outputs):
        (sigmoid - y) / B for one logit, (softmax - one-hot) / B for classes (from the
        same log-softmax as the loss: one pass over the logits, not two)."""
        B = logits.shape[1]
        if self.key.n_out == 1:
            per_run = self.losses(logits, y)
            g = torch.sigmoid(logits).sub_(y).unsqueeze(-1)
        else:
            logp = torch.log_softmax(logits, -1)
            at = y.unsqueeze(-1)
            per_run = logp.gather(-1, at).squeeze(-1).mean(1).neg_()   # cross-entropy's own values
            g = logp.exp_()
            g.scatter_add_(-1, at, torch.full_like(g[..., :1], -1.0))
        g.mul_(1.0 / B)
        return per_run, (g if act is None else g.mul_(act.view(-1, 1, 1)))

    def _backward(self, tape: list, g: torch.Tensor) -> torch.Tensor:
        """The gradient of theta, (K, P), from the logits' gradient, walking the tape of
        the forward pass backwards: autograd's arithmetic with autograd's kernels,
        without its graph (for a small network, recording and walking the graph cost
        more than the arithmetic: docs/benchmarks.md, round 8)."""
        grads: dict[str, torch.Tensor] = {}
        act_grad = ACTIVATIONS[self.key.activation].grad
        K = g.shape[0]
        for i in range(len(tape) - 1, -1, -1):
            entry = tape[i]
            if entry[0] == "affine":
                _, name, h, w = entry
                grads[f"{name}.weight"] = torch.bmm(h.transpose(1, 2), g)
                grads[f"{name}.bias"] = g.sum(1)
                if i:  # (the network's input needs no gradient)
                    g = torch.bmm(g, w.transpose(1, 2))
            elif entry[0] == "conv":  # h (N, K * c_in, H, W), w (K * c, c_in, 3, 3), groups K
                _, name, h, w, groups = entry
                g_in, grads[f"{name}.weight"], grads[f"{name}.bias"] = aten.convolution_backward(
                    g.reshape(h.shape[0], -1, *h.shape[2:]), h, w, [w.shape[0]], [1, 1], [1, 1], [1, 1],
                    False, [0, 0], groups, [i > 0, True, True])
                if i:
                    g = g_in.view(h.shape[0], groups, -1, *h.shape[2:])
            elif entry[0] == "patches":  # the first layer's (K, c_in * 9, N * H * W); g (N, K, c, H, W)
                _, name, cols = entry
                gr = g.permute(1, 2, 0, 3, 4).reshape(K, g.shape[2], -1)
                grads[f"{name}.weight"], grads[f"{name}.bias"] = torch.bmm(gr, cols.transpose(1, 2)), gr.sum(2)
            elif entry[0] == "flatten":  # a CNN's (N, K, c, H, W) -> the head's (K, N, c * H * W)
                shape = entry[1]
                g = g.view(shape[1], shape[0], *shape[2:]).transpose(0, 1)
            elif entry[0] == "act":
                g = act_grad(g, entry[1], entry[2])
            else:  # dropout: out = x * factor (+ a constant, for alpha dropout)
                g = g * entry[1]
        return torch.cat([grads[name].reshape(K, -1) for name, *_ in self.layout.params], 1)

    def _update(self, K: int, act: torch.Tensor, act_np: np.ndarray, every: bool, g: torch.Tensor) -> None:
        """One optimizer step per active row, from the gradient g (K, P): torch.optim's
        arithmetic with per-run hyper-parameters. A row that sat out gets coefficients
        (0 and 1) that leave its weights and optimizer state exactly as they were.
        (Called by step, without gradients, before the step is counted.)"""
        theta, m, v = self._opt_rows
        a = act.view(K, 1)
        if self.wd_t is not None:
            g = g + self.wd_t * theta
        opt = self.key.optimizer
        steps = self.steps[:K]  # optimizer steps each row has taken before this one
        if opt == "adam":
            b1, b2 = ADAM_BETAS
            if every and (K == 1 or ((steps == steps[0]).all() and (self.lr[:K] == self.lr[0]).all())):
                # one step count and one learning rate (a lone run, say): the kernel of
                # torch.optim.Adam(fused=True), one op where the arithmetic below takes ten
                fused_adam_([theta], [g], [m], [v], [], [self._adam_step.fill_(float(steps[0] + 1))],
                                   lr=float(self.lr[0]), beta1=b1, beta2=b2, weight_decay=0.0,
                                   eps=ADAM_EPS, amsgrad=False, maximize=False)
                return
            # the bias corrections in double precision, as torch.optim.Adam computes them,
            # from each row's step count after this step (at least 1: a row that sat out
            # its first steps)
            t = torch.from_numpy(np.maximum(steps + act_np, 1).astype(np.float64)).to(self.device).view(K, 1)
            if every:
                m.lerp_(g, 1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                step_size = (self.lr64 / (1 - torch.pow(b1, t))).float()
            else:
                m.lerp_(g, a * (1 - b1))
                v.mul_(1 - a * (1 - b2)).addcmul_(g, g * (a * (1 - b2)))
                step_size = (self.lr64 * a.double() / (1 - torch.pow(b1, t))).float()
            bc2_sqrt = torch.sqrt(1 - torch.pow(b2, t)).float()
            denom = v.sqrt().div_(bc2_sqrt).add_(ADAM_EPS)
            theta.sub_(m * step_size / denom)  # addcdiv's order: (step * m) / denom
        else:
            if opt == "momentum":
                if every:
                    m.mul_(MOMENTUM).add_(g)
                else:
                    m.mul_(1 - a * (1 - MOMENTUM)).add_(g * a)
                g = m
            theta.sub_(g * (self.lr_t if every else self.lr_t * a))

    def _fold(self) -> None:
        """The last steps' pending losses into each run's ring and sums, and their
        timeline entries into the timelines (before rows move, and before anything reads
        them)."""
        if not self._tally:
            return
        K = len(self.runs)
        with torch.no_grad():
            vals, index, at = zip(*(entries for _, _, entries in self._tally))
            at = torch.from_numpy(np.concatenate(at)).to(self.device)
            self.tl_vals.view(-1, self.tl_vals.shape[-1]).index_copy_(0, at, torch.cat(vals).half())
            self.tl_index.view(-1).index_copy_(0, at, torch.cat(index))
            L = torch.cat([loss for loss, _, _ in self._tally])                       # (T, K)
            A = np.concatenate([np.broadcast_to(a, (len(loss), K)) for loss, a, _ in self._tally])
            A = torch.from_numpy(A.astype(np.float32)).to(self.device)
            LA = L * A
            s, c = LA.sum(0), A.sum(0)
            self.lsum[:K] += s
            self.lcnt[:K] += c
            self.esum[:K] += s
            self.ecnt[:K] += c
            at = (self.ringn[:K].view(1, K) + A.long().cumsum(0) - 1) % LOSS_RING
            at = torch.where(A > 0, at, torch.full_like(at, LOSS_RING))           # sat out: the spare column
            self.ring[:K].scatter_(1, at.T.contiguous(), L.T.contiguous())
            self.ringn[:K] += c.long()
        self._tally, self._tally_steps = [], 0

    # ---- measuring ---------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, rows) -> None:
        """Test loss and accuracy (eval mode, whole test set) of the runs in rows, in one
        batched pass; each run also gets its mean training loss since its previous
        evaluation. The numbers stay on the device until a frame reads them."""
        rows = [int(r) for r in rows]
        if not rows:
            return
        self._fold()
        idx = torch.tensor(rows, device=self.device)
        logits = self.forward(self.x_test[idx], rows=idx)
        y, w = self.y_test[idx], self.w_test[idx]
        loss = self.losses(logits, y, w)
        hits = ((logits > 0).float() == y) if self.key.n_out == 1 else (logits.argmax(-1) == y)
        acc = (hits.float() * w).sum(1)
        cnt = self.ecnt[idx]
        train = torch.where(cnt > 0, self.esum[idx] / cnt.clamp_min(1), torch.full_like(cnt, math.nan))
        self.esum[idx] = 0
        self.ecnt[idx] = 0
        stack = torch.stack([train, loss, acc])  # (3, K')
        for i, k in enumerate(rows):
            state = self.runs[k]
            state.evals.append((int(self.steps[k]), stack, i))
            state.last_eval_step = int(self.steps[k])
            if len(state.evals) > MAX_PENDING_EVALS:  # nobody takes frames: fold them in now
                self.flush_evals(state)

    def flush_evals(self, state: "RunState") -> None:
        """A run's evaluations that no frame has read yet, into its history now."""
        if state.evals:
            self._evals_to_history(state, {id(st): st.cpu().numpy() for _, st, _ in state.evals})

    @staticmethod
    def _evals_to_history(state: "RunState", host: dict) -> None:
        for step, stack, i in state.evals:
            tl, vl, acc = (float(v) for v in host[id(stack)][:, i])
            state.add_history({"step": step, "train_loss": _finite(tl), "test_loss": _finite(vl),
                               "test_acc": _finite(acc)})
        state.evals = []

    def losses_of(self, state: "RunState", start: int, stop: int) -> torch.Tensor:
        """A run's training losses of steps start..stop-1, oldest first (of its last
        LOSS_RING steps)."""
        self._fold()
        n = int(self.ringn[state.row])
        start, stop = max(start, n - LOSS_RING, 0), min(stop, n)
        idx = torch.arange(start, max(start, stop), device=self.device) % LOSS_RING
        return self.ring[state.row, idx].detach().clone()

    @torch.no_grad()
    def materialize(self, state: "RunState") -> Net:
        """The run's network as a torch.nn Net (a copy): its weights and BatchNorm
        statistics now, in the run's mode and with its p."""
        net = Net(state.cfg.model, tuple(self.key.input_shape), self.key.n_out)
        values = self.layout.unflatten(self.theta[state.row].detach())
        for param, v in zip(net.parameters(), values):
            param.copy_(v)
        for l in range(self.L):
            if self.key.batchnorm != "none":
                bn = net.blocks[l][1 + self.order.index("bn")]
                bn.running_mean.copy_(getattr(self, f"bn_mean{l}")[state.row])
                bn.running_var.copy_(getattr(self, f"bn_var{l}")[state.row])
        return net.to(self.device).train(state.mode == "train")

    def grid(self, size: int) -> torch.Tensor:
        if size not in self._grids:
            self._grids[size] = plane_grid(size).to(self.device)
        return self._grids[size]

    # ---- snapshots ---------------------------------------------------------------------------
    @torch.no_grad()
    def snapshot(self, states: list["RunState"], extras: list[bool], grid_size: int) -> "Snapshot":
        """What the frames of these runs need, gathered on the device as a few stacked
        tensors and copied to the host in one piece; the per-frame counters of these runs
        restart. extras[i]: also weights, the decision boundary on screen and a watched
        neuron's map (each kind computed in one batched pass)."""
        self._fold()
        dev, n = self.device, len(states)
        rows = [s.row for s in states]
        rows_t = torch.tensor(rows, device=dev, dtype=torch.long)
        fields: dict[str, torch.Tensor] = {}
        # the shown example of each run's last step, from that step's tensors
        rec_of = self.rec_of[rows]
        has = rec_of >= 0
        drew = np.zeros((n, self.L), bool)
        if has.all() and (rec_of == rec_of[0]).all():  # (the common case: all from one step)
            layers, idx0, counted = self._records[int(rec_of[0])]
            rec_rows = self.rec_row[rows]
            rr = torch.from_numpy(rec_rows).to(dev)
            drew[:] = counted[rec_rows]
            for l, (pre, mask, out) in enumerate(layers):
                fields[f"act{l}"] = self._example(out, rr)
                fields[f"pre{l}"] = self._example(out if pre is None else pre, rr)
                fields[f"mask{l}"] = (self._example(mask, rr) if mask is not None else
                                      torch.zeros(n, self.mask_sizes[l], device=dev))
            fields["index"] = idx0.index_select(0, rr)
        elif has.any():
            for l in range(self.L):
                fields[f"act{l}"] = torch.zeros(n, self.act_sizes[l], device=dev)
                fields[f"pre{l}"] = torch.zeros(n, self.act_sizes[l], device=dev)
                fields[f"mask{l}"] = torch.zeros(n, self.mask_sizes[l], device=dev)
            fields["index"] = torch.zeros(n, device=dev, dtype=torch.long)
            groups: dict[int, list[int]] = {}
            for i, r in enumerate(rows):
                if has[i]:
                    groups.setdefault(int(self.rec_of[r]), []).append(i)
            for sid, members in groups.items():
                layers, idx0, counted = self._records[sid]
                rec_rows = self.rec_row[[rows[i] for i in members]]
                rr = torch.from_numpy(rec_rows).to(dev)
                at = torch.tensor(members, device=dev)
                drew[members] = counted[rec_rows]
                for l, (pre, mask, out) in enumerate(layers):
                    fields[f"act{l}"].index_copy_(0, at, self._example(out, rr))
                    fields[f"pre{l}"].index_copy_(0, at, self._example(out if pre is None else pre, rr))
                    if mask is not None:
                        fields[f"mask{l}"].index_copy_(0, at, self._example(mask, rr))
                fields["index"].index_copy_(0, at, idx0.index_select(0, rr))
        if has.any():
            flat = rows_t * self.n_train_max + fields["index"]
            fields["x"] = self._x_flat.index_select(0, flat).reshape(n, -1)
            fields["y"] = self._y_flat.index_select(0, flat).float()
        kept = self.kept.index_select(0, rows_t)
        for l, (a, b) in enumerate(zip(self.noise_offsets, self.noise_offsets[1:])):
            fields[f"kept{l}"] = kept[:, a:b].view(n, self.key.batch, -1).sum(1)
        cnt = self.lcnt.index_select(0, rows_t)
        fields["train_loss"] = torch.where(cnt > 0, self.lsum.index_select(0, rows_t) / cnt.clamp_min(1),
                                           torch.full_like(cnt, math.nan))
        evals = [(s, [st[:, c] for _, st, c in s.evals]) for s in states if s.evals]
        if evals:
            fields["evals"] = torch.cat([torch.stack(ts) for _, ts in evals]).reshape(-1)
        with_extras = [s for s, e in zip(states, extras) if e]
        if with_extras:
            fields.update(self._extras(with_extras, grid_size))
        if self._cpu:  # every field is a fresh tensor: the host reads it in place
            host = {k: v.float().numpy() for k, v in fields.items()}
        else:          # one copy from the device
            names = list(fields)
            host_all = torch.cat([fields[k].reshape(-1).float() for k in names]).cpu().numpy()
            host, at = {}, 0
            for k in names:
                size = fields[k].numel()
                host[k] = host_all[at:at + size].reshape(fields[k].shape)
                at += size
        # restart the per-frame counters of these runs
        self.lsum[rows_t] = 0
        self.lcnt[rows_t] = 0
        self.kept[rows_t] = 0
        masked = self.masked_l[rows].copy()
        self.masked_l[rows] = 0
        if evals:  # into each run's history, in order
            at = 0
            for s, ts in evals:
                for (step, _, _), e in zip(s.evals, host["evals"][at:at + 3 * len(ts)].reshape(-1, 3)):
                    s.add_history({"step": step, "train_loss": _finite(float(e[0])), "test_loss": _finite(float(e[1])),
                                   "test_acc": _finite(float(e[2]))})
                at += 3 * len(ts)
                s.evals = []
        return Snapshot(self, states, host, has, drew, masked, with_extras)

    @torch.no_grad()
    def replay_snapshot(self, state: "RunState", step: int) -> "Snapshot":
        """A snapshot of one of the run's past steps (inside timeline()), from its
        timeline: that step's masks, the shown example's values and its loss, as a frame
        of that step showed them. Per-frame counters are left alone; the counts it
        carries (kept, masked) are the shown example's, the only one kept. The slow panels
        (weights, boundary, a watched neuron's map) are today's, as only today's weights are
        kept; a thinned boundary is that step's masks applied to them."""
        k, col = state.row, (step - 1) % TIMELINE
        self._fold()
        vals = self.tl_vals[k, col].float().cpu().numpy()
        index = int(self.tl_index[k, col])
        first, p, lr, mode = next(entry for entry in reversed(state.settings_log) if entry[0] <= step)
        drew = (np.array(p) > 0) & (mode == "train")   # where that step drew masks (as _tables)
        host: dict[str, np.ndarray] = {}
        total, a = sum(self.act_sizes), 0
        for l, n in enumerate(self.act_sizes):
            host[f"pre{l}"], host[f"act{l}"] = vals[None, a:a + n], vals[None, total + a:total + a + n]
            a += n
        a = 2 * total
        for l, n in enumerate(self.mask_sizes):
            host[f"mask{l}"] = vals[None, a:a + n]
            host[f"kept{l}"] = vals[None, a:a + n] if drew[l] else np.zeros((1, n), np.float32)
            a += n
        host["index"] = np.array([index])
        host["x"] = self.x_train[k, index].reshape(1, -1).cpu().numpy()
        host["y"] = self.y_train[k, index].reshape(1).float().cpu().numpy()
        host["train_loss"] = self.ring[k, (step - 1) % LOSS_RING].reshape(1).cpu().numpy()
        past = {"step": step, "steps": 1, "mode": mode, "p": list(p), "lr": lr, "replay": True}
        # the slow panels as of now (weights are kept only for now), except the thinned
        # boundary: that step's masks applied to today's weights
        masks = [torch.from_numpy(host[f"mask{l}"][0] > 0.5).reshape(self.noise_shape[l]).to(self.device)
                 if drew[l] else None for l in range(self.L)]
        extras = self._extras([state], state.limits.grid_size, replay=masks)
        host.update({name: v.float().cpu().numpy() for name, v in extras.items()})
        thinned = {id(state)} if state.view == "thinned" and drew.any() and "boundary" in extras else set()
        return Snapshot(self, [state], host, np.ones(1, bool), drew[None], drew[None].astype(np.int64), [state],
                        replay=past, thinned=thinned)

    def _example(self, t: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        """The first example of each of these rows' batches in a step's tensor, flattened:
        MLP tensors are (K, B, ...), CNN ones (B, K, ...)."""
        ex = t[0].index_select(0, rr) if self.cnn else t.index_select(0, rr)[:, 0]
        return ex.reshape(len(rr), -1).float()

    def _extras(self, states: list["RunState"], size: int, replay: list | None = None) -> dict[str, torch.Tensor]:
        """Weights (whole theta rows), the decision boundary each run shows (the eval-mode
        network's, or its thinned network's) and watched neurons' maps: each kind one
        batched pass over the runs that need it. replay: one run's masks of a past step
        (per layer, bool of the mask's shape, None where that step drew none): its thinned
        network is those masks on today's weights."""
        dev = self.device
        fields = {"theta": self.theta.detach().index_select(0, torch.tensor([s.row for s in states], device=dev))}
        if self.key.n_out != 1:
            return fields
        grid = self.grid(size)
        if replay is None:
            thinned = [s for s in states if self.shows_thinned(s)]
        else:
            thinned = [s for s in states if s.view == "thinned" and any(m is not None for m in replay)]
        plain = [s for s in states if s not in thinned or s.watch is not None]
        boundary = torch.zeros(len(states), len(grid), device=dev)
        pos = {id(s): i for i, s in enumerate(states)}
        if plain:
            idx = torch.tensor([s.row for s in plain], device=dev)
            hidden: list = []
            prob = torch.sigmoid(self.forward(grid.expand(len(plain), -1, -1), rows=idx, hidden=hidden))
            shown = [j for j, s in enumerate(plain) if s not in thinned]
            if shown:
                boundary.index_copy_(0, torch.tensor([pos[id(plain[j])] for j in shown], device=dev),
                                     prob.index_select(0, torch.tensor(shown, device=dev)))
            watched = [(j, s) for j, s in enumerate(plain) if s.watch is not None]
            if watched:
                fields["neuron"] = torch.stack([hidden[s.watch[0]][j, :, s.watch[1]] for j, s in watched])
        if thinned:
            idx = torch.tensor([s.row for s in thinned], device=dev)
            keeps = self._keeps(thinned) if replay is None else [
                (torch.ones(self.noise_shape[l], dtype=torch.bool, device=dev) if m is None else m)[None]
                for l, m in enumerate(replay)]
            prob = torch.sigmoid(self.forward(grid.expand(len(thinned), -1, -1), rows=idx, keeps=keeps))
            boundary.index_copy_(0, torch.tensor([pos[id(s)] for s in thinned], device=dev), prob)
        fields["boundary"] = boundary
        return fields

    def last_masks(self, state: "RunState") -> list[torch.Tensor | None]:
        """Each layer's mask in the run's last step, (B, *units) bool (True = kept), or
        None where that step drew none (eval mode, p = 0, or no step yet)."""
        sid = int(self.rec_of[state.row])
        if sid < 0:
            return [None] * self.L
        layers, _, counted = self._records[sid]
        r = int(self.rec_row[state.row])
        return [None if mask is None or not counted[r, l] else (mask[:, r] if self.cnn else mask[r]) > 0
                for l, (_, mask, _) in enumerate(layers)]

    def shows_thinned(self, state: "RunState") -> bool:
        """The run asks for its thinned network's boundary and its last step drew a mask
        (else frames show the eval-mode boundary)."""
        sid = int(self.rec_of[state.row])
        return state.view == "thinned" and sid >= 0 and bool(self._records[sid][2][int(self.rec_row[state.row])].any())

    def _keeps(self, states: list["RunState"]) -> list[torch.Tensor]:
        """Per layer, (K', *noise) bool: each run's mask of its shown example in its last
        step (all kept in a layer that drew none)."""
        masks = [self.last_masks(s) for s in states]
        return [torch.stack([torch.ones(self.noise_shape[l], dtype=torch.bool, device=self.device) if m[l] is None
                             else m[l][0] for m in masks]) for l in range(self.L)]


def _affine(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, scratch: bool) -> torch.Tensor:
    """b + h @ w for each run: h (K, N, in), w (K, in, out), b (K, out) -> (K, N, out).
    A long scratch pass (no gradients: a boundary grid, a test set) is computed features
    first, as w^T @ h^T, and handed back as a transposed view: BLAS is several times
    faster on (out x in) @ (in x N) than on (N x in) @ (in x out) when in and out are
    a few units (docs/benchmarks.md, round 7: a 100-run boundary pass). Element-wise ops
    after it keep that layout."""
    if scratch and h.shape[1] >= FEATURES_FIRST:
        return torch.baddbmm(b.unsqueeze(2), w.transpose(1, 2), h.transpose(1, 2)).transpose(1, 2)
    return torch.baddbmm(b.unsqueeze(1), h, w)


def _patches(h: torch.Tensor, K: int) -> torch.Tensor:
    """The 3x3 patches (padding 1) of a CNN's input h (N, K * c_in, H, W), as each run's
    columns for a matmul: (K, c_in * 9, N * H * W), rows in a conv weight's (c_in, 3, 3)
    order."""
    N, _, H, W = h.shape
    win = F.pad(h, (1, 1, 1, 1)).unfold(2, 3, 1).unfold(3, 3, 1)       # (N, K * c_in, H, W, 3, 3)
    return win.reshape(N, K, -1, H, W, 3, 3).permute(1, 2, 5, 6, 0, 3, 4).reshape(K, -1, N * H * W)


def _finite(v: float) -> float | None:
    return v if v == v and abs(v) != float("inf") else None


class Snapshot:
    """A bucket's snapshot on the host: numpy arrays with one row per run asked for.

    rows: act<l>, pre<l>, mask<l> (1 kept), index, x, y (where has[i]: a step was taken),
    kept<l> (kept examples per unit since the last frame), train_loss; drew (runs x
    layers: the last step drew a mask), masked (examples through each mask since the
    last frame). For the runs with extras (in that order): theta (whole weight rows),
    boundary, and neuron for those that watch one. replay: set when it is a past step of
    one run (Bucket.replay_snapshot). thinned: ids of the runs whose boundary is a thinned
    network's (default: those whose last step drew a mask and that ask for it)."""

    def __init__(self, bucket: Bucket, states: list, host: dict, has: np.ndarray, drew: np.ndarray,
                 masked: np.ndarray, with_extras: list, replay: dict | None = None, thinned: set | None = None):
        self.bucket, self.states, self.host = bucket, states, host
        self.replay = replay  # a past step's header values (Bucket.replay_snapshot), else None
        self.has, self.drew, self.masked = has, drew, masked
        self.extras_row = {id(s): i for i, s in enumerate(with_extras)}
        self.watch_row = {id(s): i for i, s in enumerate(s for s in with_extras if s.watch is not None)}
        self.thinned = thinned if thinned is not None else {id(s) for s in with_extras if bucket.shows_thinned(s)}

    def edge_weights(self) -> list[np.ndarray]:
        """Each edge parameter (a Linear/Conv2d's weight) of the runs with extras:
        (runs, *its torch shape), views into their theta rows."""
        theta, out = self.host["theta"], []
        for i in self.bucket.edge_params:
            _, shape, transposed, offset = self.bucket.layout.params[i]
            block = theta[:, offset:offset + math.prod(shape)].reshape(len(theta), *shape)
            out.append(block.transpose(0, 2, 1) if transposed else block)
        return out
