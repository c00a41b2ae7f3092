"""A bucket: every run of one network shape, trained as stacked tensors in one step.

    bucket = Bucket(key_of(state), state.initial_net())
    bucket.join(state); bucket.join(other)  # continuous batching: at any step boundary
    bucket.step(active, n=4)                # up to 4 optimizer steps of the runs marked active
    frames = snapshot.take_frames(bucket, states, extras, grid_size)   # what frames need
    bucket.leave(state)

Runs stack when their networks have the same shape (BucketKey): kind, layer sizes,
activation, dropout kind and placement, BatchNorm, optimizer, batch size, input shape
and device. Row k of every stacked tensor belongs to one run (engine/rows.py). All of a
run's parameters are views into one flat row of theta (K, P), so the optimizer
(engine/optim.py) is a handful of element-wise ops over theta with each run's own
learning rate, weight decay and step count; a run that sits out a step changes nothing.
A run whose shape is alone trains in a bucket of one, through the same code.

A step (step()): every run's masks of its next steps from the counter (engine/noise.py,
model_server.masks), its batches in its own order (engine/batches.py), the batched
forward pass (engine/forward.py), the gradient (engine/backward.py: the forward pass's
tape walked back), the optimizer, then what frames will read (engine/history.py). So a
run's masks and batches depend only on its own config and seed, never on who else
trains in the bucket, and its losses differ from the same run alone only by float
rounding (a batched matmul may sum in another order). An exported script draws
the same masks (model_server/export/).

The bucket reads a run through engine.handle.RunHandle and tells it what happened only
through that interface's methods.
"""
from __future__ import annotations

import numpy as np
import torch

from .engine.backward import gradient
from .engine.batches import next_batches
from .engine.forward import Network
from .engine.geometry import BucketKey, Shape
from .engine.handle import RunHandle
from .engine.history import History, Records, evaluate
from .engine import noise
from .engine.optim import Optimizer
from .engine.rows import LOSS_RING, TIMELINE, RowStore
from .engine.tables import Tables
from .engine.views import Views
from .network import Net

__all__ = ["Bucket", "BucketKey", "key_of", "LOSS_RING", "TIMELINE"]


def key_of(state: RunHandle) -> BucketKey:
    cfg = state.cfg
    m = cfg.model
    return BucketKey(m.kind, tuple(state.data.x_train.shape[1:]), tuple(m.hidden), state.n_out, m.activation,
                     m.dropout_kind, m.placement, m.batchnorm, cfg.train.optimizer, state.batch,
                     str(state.device), cfg.task)


class Bucket:
    """All runs of one BucketKey. Not thread-safe: one thread (the scheduler's, or a
    Run's caller) does everything with a bucket."""

    def __init__(self, key: BucketKey, template: Net, timeline: int = TIMELINE):
        """timeline: steps of each run kept for replays (a lesson's copies, never replayed,
        keep one)."""
        self.key = key
        self.shape = Shape(key, template)
        self.layout = self.shape.layout
        self.L = self.shape.L
        self.device = self.shape.device
        self.store = RowStore(self.shape, timeline)
        self.runs: list[RunHandle] = self.store.runs
        self.net = Network(self.shape, self.store)
        self.optimizer = Optimizer(key.optimizer, self.store)
        self.history = History(self.store)
        self.records = Records(self.store)
        self.views = Views(self.net, self.records)
        self._tables: Tables | None = None
        self.shard = 0   # a server may keep several buckets of one shape (it bounds a step's cost)
        # rows it grows to at most in one go (a server bounds a bucket's bytes: growing
        # copies every row, between two steps)
        self.max_rows = 1 << 30
        self.steps_taken = 0

    @property
    def theta(self) -> torch.Tensor:
        """(cap, P): every row's parameters (rows past len(runs) unused)."""
        return self.store.theta

    @property
    def steps(self) -> np.ndarray:
        """(cap,): the optimizer steps each row's run has taken."""
        return self.store.steps

    def tables(self) -> Tables:
        """The device tables of the rows' settings, rebuilt after a change."""
        if self.store.dirty or self._tables is None:
            self._tables = Tables(self.shape, self.store)
            self.store.dirty = False
        return self._tables

    # ---- membership and settings -------------------------------------------------------------
    def join(self, state: RunHandle) -> None:
        """Add a run (between two steps): its own weights, data and optimizer state."""
        self.history.fold()
        k = self.store.join(state, self.max_rows)
        self.store.load(state, k)
        state.placed(self, k)

    def load(self, state: RunHandle) -> None:
        """Restart a run's row from its config (a reset): fresh weights, optimizer state,
        data, batch order and counters."""
        self.history.fold()
        self.store.load(state, state.row)

    def leave(self, state: RunHandle) -> None:
        """Remove a run between two steps; the last row moves into its place."""
        self.history.fold()
        k = state.row
        moved = self.store.leave(state)
        if moved is not None:
            moved.placed(self, k)
        state.placed(None, -1)
        self.records.prune()

    def shrink(self) -> None:
        """Give memory back once most rows are empty (after runs left)."""
        self.history.fold()
        self.store.shrink()

    def row_bytes(self, n_train: int = 0, n_test: int = 0) -> int:
        """Bytes of one run's row of every stacked tensor (engine/rows.py)."""
        return self.store.row_bytes(n_train, n_test)

    # ---- training ----------------------------------------------------------------------------
    @torch.no_grad()  # (gradients: engine/backward.py)
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
        t = self.tables()
        every = bool(act.all())   # the common case: every run of the bucket steps
        n = self._until_eval(t, act, n)
        drawn = noise.draw(self.store, t, K, n)                  # (n, K, units): 0/1, or factors
        idx = next_batches(self.store, t, act, every, n)         # (n, K, B) example indices
        act_t = t.ones if every else torch.from_numpy(act.astype(np.float32)).to(self.device)  # (K,) 0/1
        losses, entries, record = self._train(t, drawn, idx, act_t, act, every)
        self._keep(t, drawn, idx, act_t, act, every, losses, entries, record)
        return n

    def _train(self, t: Tables, drawn: torch.Tensor, idx: torch.Tensor, act_t: torch.Tensor,
               act: np.ndarray, every: bool) -> tuple[list, list, list]:
        """The n steps' forward, backward and optimizer passes; rows sitting out
        contribute nothing. Returns each step's losses (K,), timeline entries, and the
        last step's record (per layer: pre-dropout input, mask, block output)."""
        store, sh = self.store, self.shape
        n, K, B = idx.shape
        flat = (idx + store.row_base[:K].view(1, K, 1)).reshape(-1)
        xs = store.x_flat.index_select(0, flat).view(n, K, B, *self.key.input_shape)
        ys = store.y_flat.index_select(0, flat).view(n, K, B)
        if t.input_sd is not None:   # rows that train on noisy inputs
            xs = xs + noise.inputs(store, t, K, n, xs.shape)
        losses, entries = [], []
        for j in range(n):
            noise_views = [drawn[j, :, a:b].view(K, B, *s) for a, b, s in
                           zip(sh.noise_offsets, sh.noise_offsets[1:], sh.noise_shape)]
            record: list = []
            per_run, grad = gradient(self.net, t, xs[j], ys[j], noise_views, act_t, every, record)
            self.optimizer.step(t, K, act_t, act, every, grad)
            store.steps[:K] += act
            losses.append(per_run)
            entries.append(self.history.entries(record))   # (a copy: this step's tensors can go)
        return losses, entries, record

    def _keep(self, t: Tables, drawn: torch.Tensor, idx: torch.Tensor, act_t: torch.Tensor, act: np.ndarray,
              every: bool, losses: list, entries: list, record: list) -> None:
        """What frames will read of the n steps just taken: the last step's tensors,
        counts over the n steps, losses and timeline entries; then due evaluations."""
        store = self.store
        n, K, B = idx.shape
        self.steps_taken += n
        counted = t.masking if every else t.masking & act[:, None]   # (K, L): masks that count
        store.masked_l[:K] += n * t.masked_step if every else n * counted * B
        # kept counts: these steps' noise where its masks count
        store.kept[:K].addcmul_(drawn.sum(0) if n > 1 else drawn[0],
                                t.count_w if every else t.count_w * act_t.view(K, 1))
        self.history.add(losses, entries, idx, act, every)
        self.records.keep(self.steps_taken - 1, record, idx[-1, :, 0], counted, n, act, every)
        if t.any_eval:
            ev = store.eval_every[:K]
            due = act & (ev > 0) & (store.steps[:K] % np.maximum(ev, 1) == 0)
            if due.any():
                self.evaluate(np.flatnonzero(due))

    def _until_eval(self, t: Tables, act: np.ndarray, n: int) -> int:
        """How many of n steps fit before an active run's test evaluation is due."""
        K = len(act)
        if n > 1 and t.any_eval:
            ev, steps = self.store.eval_every[:K], self.store.steps[:K]
            due = act & (ev > 0)
            if due.any():
                n = min(n, int((ev[due] - steps[due] % ev[due]).min()))
        return max(1, n)

    # ---- measuring ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, rows: torch.Tensor | None = None, **kw) -> torch.Tensor:
        """Logits of these rows' runs for their inputs x (K', N, *in), eval mode unless
        kw says otherwise (engine/forward.py's Network.forward)."""
        return self.net.forward(self.tables(), x, rows=rows, **kw)

    def evaluate(self, rows) -> None:
        """Test loss and accuracy (eval mode, whole test set) of the runs in rows, in one
        batched pass; each run also gets its mean training loss since its previous
        evaluation (engine/history.py)."""
        rows = [int(r) for r in rows]
        if rows:
            self.history.fold()
            evaluate(self.net, self.tables(), rows)

    def losses_of(self, state: RunHandle, start: int, stop: int) -> torch.Tensor:
        """A run's training losses of steps start..stop-1, oldest first (of its last
        LOSS_RING steps)."""
        return self.history.losses_of(state.row, start, stop)

    def timeline(self, state: RunHandle) -> tuple[int, int] | None:
        """The steps of this run that can be replayed, (first, last), or None before its
        first step."""
        return self.history.timeline(state.row)

    def last_masks(self, state: RunHandle) -> list[torch.Tensor | None]:
        """Each layer's mask in the run's last step, (B, *units) bool (True = kept), or
        None where that step drew none (eval mode, p = 0, or no step yet)."""
        return self.views.last_masks(state)

    @torch.no_grad()
    def materialize(self, state: RunHandle) -> Net:
        """The run's network as a torch.nn Net (a copy): its weights and BatchNorm
        statistics now, in the run's mode and with its p."""
        net = Net(state.cfg.model, tuple(self.key.input_shape), self.key.n_out)
        values = self.layout.unflatten(self.store.theta[state.row].detach())
        for param, v in zip(net.parameters(), values):
            param.copy_(v)
        if self.key.batchnorm != "none":
            at = 1 + self.shape.order.index("bn")
            for l in range(self.L):
                bn = net.blocks[l][at]
                bn.running_mean.copy_(getattr(self.store, f"bn_mean{l}")[state.row])
                bn.running_var.copy_(getattr(self.store, f"bn_var{l}")[state.row])
        return net.to(self.device).train(state.mode == "train")
