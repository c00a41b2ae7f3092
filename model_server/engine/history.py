"""What a bucket remembers of its steps: per-step losses (each run's ring and sums), the
timeline (the shown example of each of a run's last rows.TIMELINE steps), the tensors of
the last step that frames read, and test evaluations.

Per-step losses wait in a list and are folded into each run's ring and sums at most
TALLY_FOLD steps later (before rows move, and before anything reads them).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .forward import Network, losses
from .rows import RowStore
from .tables import Tables

TALLY_FOLD = 64           # per-step losses are folded into the rings this many at a time


class History:
    """Losses and timeline entries of a bucket's steps, on their way into its rows
    (the ring has rows.LOSS_RING columns and a spare one, the timeline rows.TIMELINE)."""

    def __init__(self, store: RowStore):
        self.store = store
        self.tally: list[tuple[torch.Tensor, np.ndarray, tuple]] = []   # per step() call: losses (n, K), act, timeline
        self.tally_steps = 0

    def entries(self, record: list) -> torch.Tensor:
        """(K, entry): what a frame of this step would show of each run's first example:
        per layer its pre-dropout input, then per layer its block output, then per layer
        its mask (a training step has every layer's noise)."""
        K = len(self.store.runs)
        if self.store.shape.cnn:  # (B, K, ...)
            parts = [(out if pre is None else pre)[0].reshape(K, -1) for pre, _, out in record]
            parts += [out[0].reshape(K, -1) for _, _, out in record]
            parts += [mask[0].reshape(K, -1) for _, mask, _ in record]
        else:                     # (K, B, units)
            parts = [(out if pre is None else pre)[:, 0] for pre, _, out in record]
            parts += [out[:, 0] for _, _, out in record]
            parts += [mask[:, 0] for _, mask, _ in record]
        return torch.cat(parts, 1)

    def add(self, losses: list, entries: list, idx: torch.Tensor, act: np.ndarray, every: bool) -> None:
        """The n steps just taken (store.steps counts them): each step's losses (K,) and
        entries(), idx (n, K, B) their examples; folded in later."""
        store = self.store
        n, K, T = len(entries), len(store.runs), store.tl_index.shape[1]
        rows = np.arange(K) if every else np.flatnonzero(act)
        # (n, rows): step j of row k is its step steps[k] - n + 1 + j, at column (step - 1) % T
        at = rows * T + (store.steps[rows] - n + np.arange(n).reshape(n, 1)) % T
        vals = entries[0] if n == 1 else torch.cat(entries)   # (n * K, entry), step after step
        index = idx[:, :, 0].reshape(-1)
        if not every:
            sel = torch.from_numpy((np.arange(n).reshape(n, 1) * K + rows).reshape(-1)).to(store.device)
            vals, index = vals.index_select(0, sel), index.index_select(0, sel)
        self.tally.append((torch.stack(losses), act, (vals, index, at.reshape(-1))))
        self.tally_steps += n
        if self.tally_steps >= TALLY_FOLD:
            self.fold()

    @torch.no_grad()
    def fold(self) -> None:
        """The pending losses into each run's ring and sums, and the timeline entries
        into the timelines."""
        if not self.tally:
            return
        store = self.store
        K, R = len(store.runs), store.ring.shape[1] - 1
        vals, index, at = zip(*(entries for _, _, entries in self.tally))
        at = torch.from_numpy(np.concatenate(at)).to(store.device)
        store.tl_vals.view(-1, store.tl_vals.shape[-1]).index_copy_(0, at, torch.cat(vals).half())
        store.tl_index.view(-1).index_copy_(0, at, torch.cat(index))
        L = torch.cat([loss for loss, _, _ in self.tally])                       # (T, K)
        A = np.concatenate([np.broadcast_to(a, (len(loss), K)) for loss, a, _ in self.tally])
        A = torch.from_numpy(A.astype(np.float32)).to(store.device)
        s, c = (L * A).double().sum(0), A.sum(0)
        store.lsum[:K] += s
        store.lcnt[:K] += c
        store.esum[:K] += s
        store.ecnt[:K] += c
        at = (store.ringn[:K].view(1, K) + A.long().cumsum(0) - 1) % R
        at = torch.where(A > 0, at, torch.full_like(at, R))           # sat out: the spare column
        store.ring[:K].scatter_(1, at.T.contiguous(), L.T.contiguous())
        store.ringn[:K] += c.long()
        self.tally, self.tally_steps = [], 0

    def losses_of(self, row: int, start: int, stop: int) -> torch.Tensor:
        """A row's training losses of steps start..stop-1, oldest first (of its last
        rows.LOSS_RING steps)."""
        self.fold()
        store = self.store
        n, R = int(store.ringn[row]), store.ring.shape[1] - 1
        start, stop = max(start, n - R, 0), min(stop, n)
        idx = torch.arange(start, max(start, stop), device=store.device) % R
        return store.ring[row, idx].detach().clone()


    def timeline(self, row: int) -> tuple[int, int] | None:
        """The steps of a row's run that can be replayed, (first, last), or None before
        its first step."""
        n, T = int(self.store.steps[row]), self.store.tl_index.shape[1]
        return (max(1, n - T + 1), n) if n else None


class Records:
    """The tensors of recent steps that frames read: step id -> (per layer (pre-dropout
    input, mask, block output), each row's shown example (K,), counted (K, L): where its
    mask counted). store.rec_of / rec_row: each row's step id and its row in that step."""

    def __init__(self, store: RowStore):
        self.store = store
        self.by_step: dict[int, tuple] = {}

    def keep(self, sid: int, record: list, idx0: torch.Tensor, counted: np.ndarray, n: int,
             act: np.ndarray, every: bool) -> None:
        store, K = self.store, len(self.store.runs)
        # the last step's masks are views of the whole call's noise: a copy keeps one
        # step's, not n steps' (a 16-step chunk's noise was most of a heavy run's memory)
        self.by_step[sid] = ([(None if pre is None else pre.detach(), mask if n == 1 else mask.clone(),
                               out.detach()) for pre, mask, out in record], idx0, counted)
        if every:  # every row's frames read this step now: the older records go at once
            kept = self.by_step[sid]
            self.by_step.clear()
            self.by_step[sid] = kept
            store.rec_of[:K] = sid
            store.rec_row[:K] = np.arange(K)
        else:
            store.rec_of[:K][act] = sid
            store.rec_row[:K][act] = np.flatnonzero(act)
        if len(self.by_step) > 8:
            self.prune()

    def prune(self) -> None:
        used = set(self.store.rec_of[:len(self.store.runs)].tolist())
        for sid in [s for s in self.by_step if s not in used]:
            del self.by_step[sid]

    def of(self, row: int) -> tuple[tuple | None, int]:
        """(that step's record or None before any step, the row's place in it)."""
        sid = int(self.store.rec_of[row])
        return (None if sid < 0 else self.by_step[sid]), int(self.store.rec_row[row])


@torch.no_grad()
def measure(net: Network, t: Tables, rows: list[int], reset: bool = True, train: bool = False) -> torch.Tensor:
    """(3, K') for these rows, in one batched pass each: the mean training loss since
    the last reset (NaN if none), test loss and test accuracy (eval mode, whole test
    set); with train, (5, K'): also the eval-mode loss and accuracy on the whole
    training set. reset: restart the training-loss mean."""
    store = net.store
    idx = torch.tensor(rows, device=store.device)
    parts = list(_scored(net, t, idx, store.x_test[idx], store.y_test[idx], store.w_test[idx]))
    cnt = store.ecnt[idx]
    mean = torch.where(cnt > 0, (store.esum[idx] / cnt.clamp_min(1)).float(), torch.full_like(cnt, math.nan))
    if reset:
        store.esum[idx] = 0
        store.ecnt[idx] = 0
    if train:
        n = torch.from_numpy(store.n_train[rows]).to(store.device).view(-1, 1)
        w = (torch.arange(store.n_train_max, device=store.device).view(1, -1) < n) / n
        parts += _scored(net, t, idx, store.x_train[idx], store.y_train[idx], w.float())
    return torch.stack([mean, *parts])


def _scored(net: Network, t: Tables, idx: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
            w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode loss and accuracy (K',) of these rows on x, y, weighted by w (1/n on a
    row's own points, 0 on padding). A regression has no accuracy: NaN (frames say none)."""
    logits = net.forward(t, x, rows=idx)
    if net.shape.regression:
        return losses(logits, y, w, regression=True), torch.full_like(logits[:, 0], math.nan)
    hits = ((logits > 0).float() == y) if logits.dim() == 2 else (logits.argmax(-1) == y)
    return losses(logits, y, w), (hits.float() * w).sum(1)


def evaluate(net: Network, t: Tables, rows: list[int]) -> None:
    """Test loss and accuracy of these rows' runs and their mean training loss since
    their previous evaluation (measure()). The numbers stay on the device until a frame
    reads them: each run is handed its column (RunHandle.queue_eval)."""
    stack = measure(net, t, rows)
    store = net.store
    for i, k in enumerate(rows):
        store.runs[k].queue_eval(int(store.steps[k]), stack, i)
