"""The batched forward pass: every run's network on its own inputs, as stacked tensors.

Layer l's weights are W (K, in, out), b (K, 1, out): h = baddbmm(b, x, W), x (K, B, in);
a CNN's 3x3 convolutions run as one grouped convolution (groups = K). Dropout keeps
torch's semantics per run and layer (tests compare with torch itself):
    train, p < 1:     out = x * (noise * (1 / (1 - p)))    noise ~ Bernoulli(1 - p), 0 or 1
    train, p = 1:     out = 0                              (zeros, never NaN)
    eval, or p = 0:   out = x                              (exactly)
    dropout2d:        one draw per (example, channel) of a CNN; per neuron on an MLP
    alpha:            out = x * (mask * a) + (mask - 1) * alpha' * a + alpha' * a * p
BatchNorm: batch statistics per run in train mode (running ones updated with momentum
0.1, the variance unbiased), running statistics in eval mode, as torch.nn.BatchNorm.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..activations import ACTIVATIONS
from .geometry import Shape
from .rows import RowStore
from .tables import Tables

BN_EPS, BN_MOMENTUM = 1e-5, 0.1
FEATURES_FIRST = 256      # passes without gradients over this many examples or more: see affine


class Network:
    """The forward pass of one bucket's runs (rows of its store)."""

    def __init__(self, shape: Shape, store: RowStore):
        self.shape, self.store = shape, store
        self.act = ACTIVATIONS[shape.key.activation]

    def forward(self, t: Tables, x: torch.Tensor, rows: torch.Tensor | None = None, noise: list | None = None,
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
        tape: a list to append what backward.py needs (the network is trained without
        autograd)."""
        sh = self.shape
        theta = self._sel(self.store.theta, rows)
        K, N = theta.shape[0], x.shape[1]
        # (views of theta stay valid while it is updated in place; autograd needs its own)
        P = t.views if rows is None and tape is not None else sh.layout.views(theta)
        train_rows = (t.train_t if rows is None else t.train_t[rows]) if noise is not None else None
        h = x.transpose(0, 1).reshape(N, K * x.shape[2], *x.shape[3:]) if sh.cnn else x.flatten(2)
        # a pass without gradients and without a tape: activations in place (every h
        # here is a fresh tensor) and long batches features first (affine)
        scratch = tape is None and not torch.is_grad_enabled()
        for l in range(sh.L):
            h = self._layer(h, l, P, K, N, tape, scratch)
            h = self._block(t, h, l, P, rows, train_rows, bn_update, noise, keeps, record, tape, scratch)
            if hidden is not None:
                hidden.append(h)
            if sh.cnn and l + 1 < sh.L:
                h = h.reshape(N, -1, *h.shape[3:])
        if sh.cnn:
            if tape is not None:
                tape.append(("flatten", h.shape))
            h = h.transpose(0, 1).reshape(K, N, -1)
        if tape is not None:
            tape.append(("affine", "head", h, P["head.weight"]))
        out = affine(h, P["head.weight"], P["head.bias"], scratch)
        return out.squeeze(-1) if sh.key.n_out == 1 else out

    def _layer(self, h, l, P, K, N, tape, scratch):
        """Block l's Linear or Conv2d."""
        w, b = P[f"blocks.{l}.0.weight"], P[f"blocks.{l}.0.bias"]
        if self.shape.cnn and l == 0 and tape is not None:
            # a training pass's first layer: one batched matmul over the input's 3x3
            # patches. Its input needs no gradient, and for its few input channels
            # (one, for digits) oneDNN's convolution and weight gradient cost more
            # on a CPU than this matmul (docs/benchmarks.md, round 9)
            c, hw = w.shape[1], h.shape[2:]
            cols = patches(h, K)                                               # (K, c_in * 9, N * H * W)
            tape.append(("patches", f"blocks.{l}.0", cols))
            h = torch.baddbmm(b.view(K, c, 1), w.reshape(K, c, -1), cols)
            return h.view(K, c, N, *hw).permute(2, 0, 1, 3, 4).contiguous()    # (N, K, c, H, W)
        if self.shape.cnn:
            c, wk = w.shape[1], w.reshape(K * w.shape[1], *w.shape[2:])
            if tape is not None:
                tape.append(("conv", f"blocks.{l}.0", h, wk, K))
            h = F.conv2d(h, wk, b.reshape(K * c), padding=1, groups=K)
            return h.view(N, K, c, *h.shape[2:])
        if tape is not None:
            tape.append(("affine", f"blocks.{l}.0", h, w))
        return affine(h, w, b, scratch)

    def _block(self, t, h, l, P, rows, train_rows, bn_update, noise, keeps, record, tape, scratch):
        """What follows block l's Linear or Conv2d: activation, dropout, BatchNorm."""
        act_fn = self.act.fn_ if scratch else self.act.fn
        pre = mask = None
        for op in self.shape.order:
            if op == "act":
                z, h = h, act_fn(h)
                if tape is not None:
                    tape.append(("act", z, h))
            elif op == "bn":
                h = self._batchnorm(h, l, P, rows, train_rows, bn_update, tape)
            else:
                pre = h
                h, mask, factor = self._dropout(t, h, l, rows, None if noise is None else noise[l],
                                                None if keeps is None else keeps[l])
                if tape is not None and factor is not None:
                    tape.append(("drop", factor))
        if record is not None:
            record.append((pre, mask, h))
        return h

    def _dropout(self, t: Tables, h, l, rows, noise, keep):
        """(output, mask, factor): the mask (1 kept: bool or 0/1) and the factor the input was
        multiplied by, the output's gradient with respect to its input (None: no dropout)."""
        if noise is None and keep is None:
            return h, None, None
        cnn = self.shape.cnn
        if keep is not None:  # one fixed mask per run, broadcast over the examples
            mask = keep.unsqueeze(0) if cnn else keep.unsqueeze(1)
            kept = mask.to(h.dtype)
        else:                 # this step's noise: 1 kept, 0 dropped (the mask too: 1.0 kept)
            mask = kept = noise.transpose(0, 1) if cnn else noise
        factor = kept * t.column("mul", rows, l, h.dim())   # 0 or 1/(1-p): aten's scaled noise
        if self.shape.key.dropout_kind == "alpha":
            # aten: b = (noise - 1) * alpha' * a + alpha' * a * p;  out = x * (noise * a) + b
            b = (kept - 1) * t.column("alpha_a", rows, l, h.dim()) + t.column("alpha_ap", rows, l, h.dim())
            return h * factor + b, mask, factor
        return h * factor, mask, factor

    def _batchnorm(self, h, l, P, rows, train_rows, bn_update, tape=None):
        """Block l's BatchNorm; with a tape, what backward.py needs for its gradient:
        the normalised input, 1 / std, gamma, and which rows used their batch's
        statistics (their gradient flows through the mean and variance too)."""
        store, cnn = self.store, self.shape.cnn
        rm, rv = self._sel(getattr(store, f"bn_mean{l}"), rows), self._sel(getattr(store, f"bn_var{l}"), rows)
        K = rm.shape[0]
        at = f"blocks.{l}.{1 + self.shape.order.index('bn')}"
        gamma, beta = P[f"{at}.weight"], P[f"{at}.bias"]
        if cnn:  # h (N, K, C, H, W): statistics over N, H, W
            dims, shape, n = (0, 3, 4), (1, K, -1, 1, 1), h.shape[0] * h.shape[3] * h.shape[4]
        else:    # h (K, N, C): statistics over N
            dims, shape, n = (1,), (K, 1, -1), h.shape[1]
        mean, var = rm.view(shape), rv.view(shape)
        use = None
        if train_rows is not None:  # train-mode rows normalise with their batch's statistics
            bvar, bmean = torch.var_mean(h, dims, correction=0, keepdim=True)
            use = (train_rows > 0).view((1, K, 1, 1, 1) if cnn else (K, 1, 1))
            mean, var = torch.where(use, bmean, mean), torch.where(use, bvar, var)
            if bn_update is not None:
                with torch.no_grad():
                    upd = (bn_update * train_rows).view(K, 1) * BN_MOMENTUM
                    bv = bvar.detach().reshape(K, -1) * (n / max(n - 1, 1))  # running variance: unbiased
                    target = slice(0, K) if rows is None else rows
                    getattr(store, f"bn_mean{l}")[target] = rm * (1 - upd) + bmean.detach().reshape(K, -1) * upd
                    getattr(store, f"bn_var{l}")[target] = rv * (1 - upd) + bv * upd
        inv, gamma = torch.rsqrt(var + BN_EPS), gamma.view(shape)
        xhat = (h - mean) * inv
        if tape is not None:
            tape.append(("bn", at, xhat, inv, gamma, use, dims))
        return xhat * gamma + beta.view(shape)

    def _sel(self, t: torch.Tensor, rows) -> torch.Tensor:
        return t[:len(self.store.runs)] if rows is None else t[rows]


def losses(logits: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None,
           regression: bool = False) -> torch.Tensor:
    """Each run's mean loss (K',) over its examples (weighted: padded test sets):
    binary cross-entropy for logits (K', N), cross-entropy for (K', N, classes); with
    regression, the squared error of the outputs (K', N), as F.mse_loss."""
    if regression:
        per = F.mse_loss(logits, y, reduction="none")
    elif logits.dim() == 2:
        per = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    else:
        per = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none").view(y.shape)
    return per.mean(1) if weight is None else (per * weight).sum(1)


def affine(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, scratch: bool) -> torch.Tensor:
    """b + h @ w for each run: h (K, N, in), w (K, in, out), b (K, out) -> (K, N, out).
    A long scratch pass (no gradients: a boundary grid, a test set) is computed features
    first, as w^T @ h^T, and handed back as a transposed view: BLAS is several times
    faster on (out x in) @ (in x N) than on (N x in) @ (in x out) when in and out are
    a few units (docs/benchmarks.md, round 7: a 100-run boundary pass). Element-wise ops
    after it keep that layout."""
    if scratch and h.shape[1] >= FEATURES_FIRST:
        return torch.baddbmm(b.unsqueeze(2), w.transpose(1, 2), h.transpose(1, 2)).transpose(1, 2)
    return torch.baddbmm(b.unsqueeze(1), h, w)


def patches(h: torch.Tensor, K: int) -> torch.Tensor:
    """The 3x3 patches (padding 1) of a CNN's input h (N, K * c_in, H, W), as each run's
    columns for a matmul: (K, c_in * 9, N * H * W), rows in a conv weight's (c_in, 3, 3)
    order."""
    N, _, H, W = h.shape
    win = F.pad(h, (1, 1, 1, 1)).unfold(2, 3, 1).unfold(3, 3, 1)       # (N, K * c_in, H, W, 3, 3)
    return win.reshape(N, K, -1, H, W, 3, 3).permute(1, 2, 5, 6, 0, 3, 4).reshape(K, -1, N * H * W)
