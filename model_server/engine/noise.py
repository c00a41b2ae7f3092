"""Every run's noise for its next steps, from the counter (model_server.masks): the bits
of a unit depend on the run's key, its step and the unit's place, and every run's noise
of a step is drawn at once, in one batch of integer ops over the bucket. Dropout's masks
(0/1), Gaussian multiplicative factors for the rows whose noise is 'gauss', Gaussian
noise on the inputs of the rows that ask for it."""
from __future__ import annotations

import numpy as np
import torch

from .. import masks
from .rows import RowStore
from .tables import Tables

TINY = np.finfo(np.float32).tiny   # stands for a Gaussian factor that rounds to 0 (gaussian)


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
        noise = torch.from_numpy(np.less(bits, t.thresholds, out=np.empty((n, K, U), np.float32)))
    else:
        per_step = torch.from_numpy(per_step.astype(np.int64)).to(store.device)
        bits = masks.unit_bits(per_step, store.places).view(n, K, U)
        noise = (bits < t.thresholds).float()
    return noise if t.gauss is None else gaussian(store, t, noise, per_step, bits, n, K)


def draw_for(store: RowStore, shape, K: int, N: int) -> list[torch.Tensor]:
    """Per layer, (K, N, *noise) float 0/1: the masks rows 0..K-1 draw at their next step
    for N examples (for N = the batch, the masks that step applies); for a look at
    dropout on any inputs."""
    per_step = masks.step_bits(store.mkey[:K], store.steps[:K] + 1)
    sizes = [N * m for m in shape.mask_sizes]
    p = store.p[:K]
    drawing = store.train[:K, None] & (p > 0)
    thr = np.repeat(np.where(drawing, masks.keep_threshold(p), 2**32), sizes, axis=1)
    kept = torch.from_numpy((masks.unit_bits(per_step, masks.places(sum(sizes))) < thr).astype(np.float32))
    kept = kept.to(store.device)
    at = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    return [kept[:, a:b].view(K, N, *s) for a, b, s in zip(at, at[1:], shape.noise_shape)]


def gaussian(store: RowStore, t: Tables, noise: torch.Tensor, per_step, bits, n: int, K: int) -> torch.Tensor:
    """noise (n, K, U) with the Gaussian rows' units replaced by their factors
    1 + sqrt(p / (1 - p)) z, z from Box-Muller over the unit's word and the one U places
    on (worked out for the rows with Gaussian units only). A factor is exactly 0 only
    where dropout put it: one that rounds to 0 in single precision (about one in 10^8)
    becomes the smallest positive float, so a zero still means a dropped unit."""
    U = store.shape.noise_offsets[-1]
    sd, at, rows = t.gauss
    if store.cpu:
        step_rows = per_step.reshape(n, K)[:, rows].reshape(-1)
        second = masks.unit_bits(step_rows, masks.places(U, U)).reshape(n, len(rows), U)
        factors = masks.normals(bits[:, rows], second)
        factors *= sd[rows].astype(np.float32)
        factors += np.float32(1.0)
        factors[factors == 0] = TINY
        out = noise.numpy()
        out[:, rows] = np.where(at[rows], factors, out[:, rows])
        return noise
    second = masks.unit_bits(per_step, torch.from_numpy(masks.places(U, U).astype(np.int64)).to(store.device))
    factors = 1 + sd.float() * masks.normals(bits, second.view(n, K, U))
    return torch.where(at, factors.masked_fill(factors == 0, float(TINY)), noise)


def inputs(store: RowStore, t: Tables, K: int, n: int, shape: tuple) -> torch.Tensor:
    """(n, K, B, *input): Gaussian noise of each row's std for its next n steps' batch
    inputs, z from Box-Muller over two words per value, at the places after the step's
    units and their second words."""
    U, V = store.shape.noise_offsets[-1], int(np.prod(shape[2:]))
    per_step = masks.step_bits(store.mkey[:K], store.steps[:K] + 1 + np.arange(n).reshape(n, 1)).reshape(-1)
    words = masks.unit_bits(per_step, masks.places(2 * V, 2 * U)).reshape(n, K, 2, V)
    z = torch.from_numpy(masks.normals(words[:, :, 0], words[:, :, 1])).to(store.device)
    return (z.view(n, K, -1) * t.input_sd).view(shape)
