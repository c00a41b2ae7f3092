"""The gradient of a training pass with respect to theta (K, P).

It comes from the forward pass's tape: autograd's arithmetic with the kernels autograd
itself calls, without its graph (for a small network, recording and walking the graph
cost more than the arithmetic: docs/benchmarks.md, rounds 8 and 14). autograd's own
gradient (taped=False) is kept as the reference: tests/test_run.py holds the two to each
other, BatchNorm included.
"""
from __future__ import annotations

import torch

from ..activations import ACTIVATIONS
from ..torch_internals import aten
from .forward import Network, losses
from .tables import Tables


def gradient(net: Network, t: Tables, x: torch.Tensor, y: torch.Tensor, noise: list, act: torch.Tensor,
             every: bool, record: list, taped: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """A training pass with this step's noise (per layer, (K, B, *units) 0/1): each
    run's loss (K,) and the gradient of sum(act * loss) with respect to theta (K, P).
    taped: from forward's tape (the engine's), else by autograd (the reference)."""
    if taped:
        tape: list = []
        with torch.no_grad():
            logits = net.forward(t, x, noise=noise, record=record, bn_update=act, tape=tape)
            per_run, g = loss_grad(logits, y, None if every else act, net.shape.regression)
            return per_run, backward(net, tape, g)
    theta = net.store.theta
    with torch.enable_grad():
        per_run = losses(net.forward(t, x, noise=noise, record=record, bn_update=act), y,
                         regression=net.shape.regression)
        (per_run.sum() if every else (per_run * act).sum()).backward()
    grad, theta.grad = theta.grad[:len(per_run)], None
    return per_run.detach(), grad


def loss_grad(logits: torch.Tensor, y: torch.Tensor, act: torch.Tensor | None,
              regression: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Each run's mean loss (K,), as forward.losses computes it, and the gradient of the
    sum over runs of (act * that loss) with respect to the logits, (K, B, outputs):
    (sigmoid - y) / B for one logit, (softmax - one-hot) / B for classes (from the
    same log-softmax as the loss: one pass over the logits, not two), 2 (out - y) / B
    for a regression's squared error."""
    B = logits.shape[1]
    if regression:
        diff = logits - y
        per_run = diff.square().mean(1)
        g = diff.mul_(2.0).unsqueeze(-1)
    elif logits.dim() == 2:
        per_run = losses(logits, y)
        g = torch.sigmoid(logits).sub_(y).unsqueeze(-1)
    else:
        logp = torch.log_softmax(logits, -1)
        at = y.unsqueeze(-1)
        per_run = logp.gather(-1, at).squeeze(-1).mean(1).neg_()   # cross-entropy's own values
        g = logp.exp_()
        g.scatter_add_(-1, at, torch.full_like(g[..., :1], -1.0))
    g.mul_(1.0 / B)
    return per_run, (g if act is None else g.mul_(act.view(-1, 1, 1)))


def backward(net: Network, tape: list, g: torch.Tensor) -> torch.Tensor:
    """The gradient of theta, (K, P), from the logits' gradient, walking the tape of
    the forward pass backwards."""
    grads: dict[str, torch.Tensor] = {}
    act_grad = ACTIVATIONS[net.shape.key.activation].grad
    K = g.shape[0]
    for i in range(len(tape) - 1, -1, -1):
        entry = tape[i]
        kind = entry[0]
        if kind == "affine":
            _, name, h, w = entry
            grads[f"{name}.weight"] = torch.bmm(h.transpose(1, 2), g)
            grads[f"{name}.bias"] = g.sum(1)
            if i:  # (the network's input needs no gradient)
                g = torch.bmm(g, w.transpose(1, 2))
        elif kind == "conv":  # h (N, K * c_in, H, W), w (K * c, c_in, 3, 3), groups K
            _, name, h, w, groups = entry
            g_in, grads[f"{name}.weight"], grads[f"{name}.bias"] = aten.convolution_backward(
                g.reshape(h.shape[0], -1, *h.shape[2:]), h, w, [w.shape[0]], [1, 1], [1, 1], [1, 1],
                False, [0, 0], groups, [i > 0, True, True])
            if i:
                g = g_in.view(h.shape[0], groups, -1, *h.shape[2:])
        elif kind == "patches":  # the first layer's (K, c_in * 9, N * H * W); g (N, K, c, H, W)
            _, name, cols = entry
            gr = g.permute(1, 2, 0, 3, 4).reshape(K, g.shape[2], -1)
            grads[f"{name}.weight"], grads[f"{name}.bias"] = torch.bmm(gr, cols.transpose(1, 2)), gr.sum(2)
        elif kind == "flatten":  # a CNN's (N, K, c, H, W) -> the head's (K, N, c * H * W)
            shape = entry[1]
            g = g.view(shape[1], shape[0], *shape[2:]).transpose(0, 1)
        elif kind == "act":
            g = act_grad(g, entry[1], entry[2])
        elif kind == "bn":
            g = _batchnorm_grad(grads, g, K, *entry[1:])
        else:  # dropout: out = x * factor (+ a constant, for alpha dropout)
            g = g * entry[1]
    return torch.cat([grads[name].reshape(K, -1) for name, *_ in net.shape.layout.params], 1)


def _batchnorm_grad(grads: dict, g: torch.Tensor, K: int, at: str, xhat: torch.Tensor, inv: torch.Tensor,
                    gamma: torch.Tensor, use: torch.Tensor | None, dims: tuple) -> torch.Tensor:
    """BatchNorm's gradients: gamma's and beta's into grads, and its input's. A row on
    running statistics is an affine map (g * gamma / std); a row on its batch's also
    carries the gradient through the batch mean and (biased) variance:
    (gx - mean(gx) - xhat * mean(gx * xhat)) / std, with gx = g * gamma."""
    grads[f"{at}.weight"] = (g * xhat).sum(dims).reshape(K, -1)
    grads[f"{at}.bias"] = g.sum(dims).reshape(K, -1)
    gx = g * gamma
    if use is None:
        return gx * inv
    through = gx.mean(dims, keepdim=True) + xhat * (gx * xhat).mean(dims, keepdim=True)
    return (gx - through * use) * inv
