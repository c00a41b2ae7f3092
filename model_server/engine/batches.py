"""Each run's batch order, by model_server.datasets.Batches' rules, row by row: a fresh
permutation from the run's own generator when the next batch would run past the end
(an epoch's remainder is skipped); a batch as large as the training set is the whole
set, in order."""
from __future__ import annotations

import numpy as np
import torch

from .rows import RowStore
from .tables import Tables


def next_batches(store: RowStore, t: Tables, act: np.ndarray, every: bool, n: int) -> torch.Tensor:
    """(n, K, B): each run's examples for its next n steps (rows sitting out: any)."""
    K, B = len(act), store.shape.key.batch
    n_tr = store.n_train[:K]
    pos, drawn = store.pos, store.drawn
    step = t.pos_step if every else np.where(act, t.pos_step, 0)
    parts, left = [], n
    while left:
        due = (pos[:K] + B > n_tr) | ~drawn[:K]
        if due.any():
            for k in np.flatnonzero(due & act & (n_tr > B)):
                gen = store.runs[k].batch_gen
                store.perm[k, :n_tr[k]] = torch.randperm(int(n_tr[k]), generator=gen).to(store.device)
                pos[k], drawn[k] = 0, True
        # as many steps as every active run's epoch has left (at least one, now)
        m = left
        if m > 1:
            big = act & (n_tr > B)
            if big.any():
                m = min(m, int(((n_tr[big] - pos[:K][big]) // B).min()))
        first = pos[:K] if every else np.where(act, pos[:K], 0)    # idle rows: any batch
        at = torch.from_numpy(first.reshape(K, 1) + np.arange(m) * step.reshape(K, 1))
        at = (at if store.cpu else at.to(store.device)).view(K, m, 1) + store.ar_batch       # (K, m, B)
        parts.append(store.perm[:K].gather(1, at.view(K, m * B)).view(K, m, B).transpose(0, 1))
        pos[:K] += m * step
        left -= m
    return parts[0] if len(parts) == 1 else torch.cat(parts)
