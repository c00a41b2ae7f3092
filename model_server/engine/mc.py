"""Monte Carlo dropout on the engine: T passes of each run's network, each a thinned
network (one mask per unit, kept for every input), in one batched forward pass over the
runs and their passes, BatchNorm in eval mode.

The masks come from the counter (model_server.masks) under a key of their own, so they
never repeat a training step's: pass j (from 1) of a run whose masks' key is k draws

    unit_bits(step_bits(pass_key(k), j), places(units of one example))

kept below round((1 - p) * 2^32), p the run's drop probability of the unit's layer now,
layer after layer as a training step places one example's units. A run's T thinned
networks stay the same from refresh to refresh (only its weights change), so its curves
move as it learns, and the exported script's mc_predict draws the same ones.

Dropout acts in train mode in every pass whatever mode the run trains in (that is what
MC dropout is); p = 0 keeps every unit and scales by 1, so each pass is exactly the
eval-mode network.
"""
from __future__ import annotations

import numpy as np
import torch

from .. import masks
from ..layers import SELU_ALPHA_PRIME
from .forward import Network
from .geometry import Shape

PASS_SALT = 0x2545F491   # xored into a run's key: MC passes draw apart from training steps
MAX_CURVES = 20          # thinned networks' curves a frame carries at most
LINE = 96                # points across the plane where a frame's band is computed
ALIGN = 16               # inputs per pass padded to a multiple of this (see passes)


def pass_keys(keys: np.ndarray) -> np.ndarray:
    """(K,) int64: each run's key for its MC passes, from its masks' key (masks.run_key)."""
    return masks.mix((np.asarray(keys, np.int64) ^ PASS_SALT) & masks.MASK32).astype(np.int64)


def pass_keeps(shape: Shape, keys: np.ndarray, p: np.ndarray, T: int) -> list[torch.Tensor]:
    """Per layer, (K, T, *noise) bool: the kept units of passes 1..T of K runs (keys (K,)
    their masks' keys, p (K, L) their drop probabilities)."""
    K = len(keys)
    per_pass = masks.step_bits(np.repeat(pass_keys(keys), T), np.tile(np.arange(1, T + 1, dtype=np.int64), K))
    bits = masks.unit_bits(per_pass, masks.places(sum(shape.mask_sizes))).reshape(K, T, -1)
    thr = np.repeat(masks.keep_threshold(p), shape.mask_sizes, axis=1)[:, None, :]
    kept = torch.from_numpy(bits < thr).to(shape.device)
    at = np.concatenate([[0], np.cumsum(shape.mask_sizes)]).tolist()
    return [kept[..., a:b].reshape(K, T, *s) for a, b, s in zip(at, at[1:], shape.noise_shape)]


class PassTables:
    """What forward.Network's dropout reads (Tables.column) for the passes: per run, the
    eval network (factors of p = 0) and then T passes at the run's p in train mode, one
    row per (run, pass) in that order; the forward's rows pick parameters, these columns
    go by position."""

    def __init__(self, shape: Shape, p: np.ndarray, T: int):
        p = np.insert(np.repeat(p, T, axis=0), np.arange(0, len(p) * T, T), 0.0, axis=0)
        self.cnn = shape.cnn
        if shape.key.dropout_kind == "alpha":   # aten's alpha dropout, as tables.Tables has it
            a = np.where(p < 1, 1 / np.sqrt((SELU_ALPHA_PRIME ** 2 * p + 1) * np.maximum(1 - p, 1e-30)), 0.0)
            a = np.where(p > 0, a, 1.0)
            tabs = {"mul": a, "alpha_a": np.where(p > 0, SELU_ALPHA_PRIME * a, 0.0),
                    "alpha_ap": np.where(p > 0, SELU_ALPHA_PRIME * a * p, 0.0)}
        else:   # 1 / (1 - p) as aten rounds it: float32(1) / float32(1 - p)
            one_minus = (1 - p).astype(np.float32)
            tabs = {"mul": np.where(p < 1, np.float32(1) / np.maximum(one_minus, np.float32(1e-30)), 0.0)}
        self.tab = {name: torch.tensor(v, dtype=torch.float32, device=shape.device) for name, v in tabs.items()}

    def column(self, name: str, rows, l: int, ndim: int) -> torch.Tensor:
        col = self.tab[name][:, l]
        return col.view(1, -1, 1, 1, 1) if self.cnn else col.view(-1, *([1] * (ndim - 1)))


@torch.no_grad()
def passes(net: Network, rows: list[int], x: torch.Tensor, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(eval (K', N), passes (K', T, N)): these rows' eval-mode outputs on their own
    inputs x (K', N, *in) and their T MC passes' outputs, in one batched pass (the eval
    network rides along as a pass that keeps every unit: the same kernels, so a pass at
    p = 0 gives its very bits)."""
    store, shape = net.store, net.shape
    K, N = x.shape[0], x.shape[1]
    # every pass's inputs start on the same alignment in memory: a kernel whose first
    # elements of a row take another path (rounding a multiply-add once or twice) would
    # otherwise make a pass at p = 0 differ from its eval row in the last bit
    x = torch.cat([x, x.new_zeros(K, -N % ALIGN, *x.shape[2:])], 1)
    idx = torch.tensor(rows, device=store.device)
    p = store.p[rows]
    drawn = pass_keeps(shape, store.mkey[rows], p, T)
    keeps = [torch.cat([torch.ones_like(k[:, :1]), k], 1).reshape(K * (T + 1), *k.shape[2:]) for k in drawn]
    xt = x.unsqueeze(1).expand(K, T + 1, *x.shape[1:]).reshape(K * (T + 1), *x.shape[1:])
    out = net.forward(PassTables(shape, p, T), xt, rows=idx.repeat_interleave(T + 1), keeps=keeps)
    out = out.view(K, T + 1, -1)[..., :N]
    return out[:, 0], out[:, 1:]


@torch.no_grad()
def band(net: Network, rows: list[int], grid: torch.Tensor, T: list[int]) -> dict[str, torch.Tensor]:
    """The MC band of these rows' runs over grid (G, 1) and their coverage of their test
    sets, T[i] passes for row i (one batched computation at the largest T):

        eval (K', G)     the eval-mode prediction        mean, std (K', G)  over the passes
        curves (K', C, G)  the first C = min(max T, MAX_CURVES) passes (a run with fewer
                         passes repeats its last one: read T)
        inside (K', n)   1 where a test point lies so (n: the longest test set; past a
                         run's own points, 0)
        coverage (K',)   the share of the run's test points inside

    std is the passes' own spread (divided by T, not T - 1: one pass has spread 0)."""
    store = net.store
    K, G, Tmax = len(rows), len(grid), max(T)
    idx = torch.tensor(rows, device=store.device)
    x = torch.cat([grid.to(store.device).expand(K, G, *grid.shape[1:]), store.x_test[idx]], 1)
    evald, out = passes(net, rows, x, Tmax)
    n = torch.tensor(T, dtype=out.dtype, device=out.device).view(K, 1, 1)
    use = (torch.arange(Tmax, device=out.device).view(1, -1, 1) < n).to(out.dtype)
    # the mean as the eval output plus the passes' mean difference from it: where every
    # pass is the eval network (p = 0) the difference is 0 and the mean is eval's exactly
    mean = evald.unsqueeze(1) + ((out - evald.unsqueeze(1)) * use).sum(1, keepdim=True) / n
    std = ((out - mean).square_().mul_(use).sum(1) / n.view(K, 1)).sqrt_()
    mean = mean.squeeze(1)
    inside = ((store.y_test[idx] - mean[:, G:]).abs() <= 2 * std[:, G:]).to(out.dtype)
    C = min(Tmax, MAX_CURVES)
    last = (n.view(K, 1).long() - 1).clamp_max(C - 1)
    pick = torch.minimum(torch.arange(C, device=out.device).view(1, C), last)
    curves = out[:, :C, :G].gather(1, pick.view(K, C, 1).expand(K, C, G))
    w = store.w_test[idx]
    return {"eval": evald[:, :G], "mean": mean[:, :G], "std": std[:, :G], "curves": curves,
            "inside": inside * (w > 0), "coverage": (inside * w).sum(1).clamp_max_(1.0)}
