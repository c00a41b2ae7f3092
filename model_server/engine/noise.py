"""Every run's dropout noise for its next steps, from the counter (model_server.masks):
the bits of a unit depend on the run's key, its step and the unit's place, and every
run's noise of a step is drawn at once, in one batch of integer ops over the bucket."""
from __future__ import annotations

import numpy as np
import torch

from .. import masks
from .rows import RowStore
from .tables import Tables


def draw(store: RowStore, t: Tables, K: int, n: int) -> torch.Tensor:
    """(n, K, U) float 0/1 (1 kept) for the next n steps of rows 0..K-1, U = every unit of
    a batch, layer after layer (a row that sits out draws too: its step's bits, unused).
    Only where a mask is drawn (train mode, 0 < p) can a unit be 0. A fresh tensor each
    call: the steps' records keep their masks."""
    counts = store.steps[:K] + 1 + np.arange(n).reshape(n, 1)               # (n, K)
    per_step = masks.step_bits(store.mkey[:K], counts).reshape(-1)
    U = store.shape.noise_offsets[-1]
    if store.cpu:
        bits = masks.unit_bits(per_step, store.places).reshape(n, K, U)
        return torch.from_numpy(np.less(bits, t.thresholds, out=np.empty((n, K, U), np.float32)))
    per_step = torch.from_numpy(per_step.astype(np.int64)).to(store.device)
    return (masks.unit_bits(per_step, store.places).view(n, K, U) < t.thresholds).float()
