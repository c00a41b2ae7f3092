"""Device tables made from the rows' settings, once per change of membership or setting
(not once per step): each unit's keep threshold, dropout's scale, per-row learning rates
and weight decay, what a step with every run active needs."""
from __future__ import annotations

import numpy as np
import torch

from .. import masks
from ..layers import SELU_ALPHA_PRIME
from .geometry import Shape
from .rows import RowStore


class Tables:
    """Read-only for the step: built by Tables(shape, store) after store.dirty."""

    def __init__(self, shape: Shape, store: RowStore):
        self.cnn = shape.cnn
        K, dev, B = len(store.runs), store.device, shape.key.batch
        p = store.p[:K]
        drawing = store.train[:K, None] & (p > 0)
        self.drawing = drawing                                  # (K, L) host: noise is drawn
        gauss = drawing & store.gauss[:K, None]                 # ... Gaussian factors, not a mask
        masking = drawing & ~gauss
        per_unit = np.diff(shape.noise_offsets)
        # each unit's keep threshold (model_server.masks): 2^32 (always kept) in eval
        # mode or at p = 0, 0 at p = 1, else round((1 - p) * 2^32); unit by unit, in the
        # order of the noise
        thr = np.repeat(np.where(drawing, masks.keep_threshold(p), 2**32), per_unit, axis=1)
        self.thresholds = thr if store.cpu else torch.from_numpy(thr).to(dev)
        if shape.key.dropout_kind == "alpha":
            live = drawing & (p < 1)
            a = np.where(live, 1 / np.sqrt((SELU_ALPHA_PRIME ** 2 * p + 1) * np.maximum(1 - p, 1e-30)), 0.0)
            tabs = {"mul": np.where(drawing, a, 1.0), "alpha_a": SELU_ALPHA_PRIME * a,
                    "alpha_ap": SELU_ALPHA_PRIME * a * p}
        else:
            # 1 / (1 - p) rounded as aten rounds it: float32(1) / float32(1 - p)
            one_minus = (1 - p).astype(np.float32)
            scale = np.where(p < 1, np.float32(1) / np.maximum(one_minus, np.float32(1e-30)), 0.0)
            tabs = {"mul": np.where(masking, scale, 1.0)}
        self.tab = {name: torch.tensor(v, dtype=torch.float32, device=dev) for name, v in tabs.items()}
        self.train_t = torch.tensor(store.train[:K], dtype=torch.float32, device=dev)
        self.lr_t = torch.tensor(store.lr[:K], dtype=torch.float32, device=dev).view(K, 1)
        self.lr64 = torch.tensor(store.lr[:K], dtype=torch.float64, device=dev).view(K, 1)
        self.wd_t = torch.tensor(store.wd[:K], dtype=torch.float32, device=dev).view(K, 1) if store.wd[:K].any() else None
        self._cols: dict = {}
        # what a step with every run active needs
        self.ones = torch.ones(K, device=dev)
        self.masked_step = masking.astype(np.int64) * B
        self.pos_step = np.where(store.n_train[:K] > B, B, 0)
        self.all_rows = np.arange(K)
        self.views = shape.layout.views(store.theta[:K].detach())  # every run's parameters
        self.opt_rows = (store.theta[:K].detach(), store.m[:K], store.v[:K])
        self.any_eval = bool((store.eval_every[:K] > 0).any())
        self.count_w = torch.from_numpy(np.repeat(masking, per_unit, axis=1).astype(np.float32)).to(dev)
        self.masking = masking
        # Gaussian rows: each unit's sqrt(p / (1 - p)), and where it applies
        self.gauss = None
        if gauss.any():
            sd = np.repeat(np.where(gauss, np.sqrt(p / np.maximum(1 - p, 1e-30)), 0.0), per_unit, axis=1)
            at = np.repeat(gauss, per_unit, axis=1)
            rows = np.flatnonzero(gauss.any(axis=1))
            self.gauss = (sd, at, rows) if store.cpu else (torch.from_numpy(sd).to(dev), torch.from_numpy(at).to(dev), rows)
        sigma = store.input_noise[:K]
        self.input_sd = torch.tensor(sigma, dtype=torch.float32, device=dev).view(1, K, 1) if sigma.any() else None

    def column(self, name: str, rows, l: int, ndim: int) -> torch.Tensor:
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
