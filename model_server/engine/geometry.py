"""What stays fixed for a bucket: the key its runs share and the shapes that follow."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..network import Net, block_order


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
    task: str            # 'binary', 'digits' or 'regression' (the loss: BCE, cross-entropy, MSE)


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


class Shape:
    """A bucket's fixed facts: its key, parameter layout, block order and the sizes of
    its activations and dropout noise per layer.

    noise units per example: an MLP's neurons; a CNN's (channel, row, column), or one
    per channel with Dropout2d. noise_offsets: where each layer's noise of a whole batch
    starts in a step's noise row (layer after layer)."""

    def __init__(self, key: BucketKey, template: Net):
        self.key = key
        self.device = torch.device(key.device)
        self.layout = Layout(template)
        self.order = block_order(key)   # (its placement and batchnorm: the template may be any of the shape)
        self.L = len(key.hidden)
        self.regression = key.task == "regression"   # linear output, mean squared error
        self.cnn = key.kind == "cnn"
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
        sizes = [key.batch * n for n in self.mask_sizes]
        self.noise_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        # the parameters the network panel draws as edges: each block's Linear/Conv2d weight, the head's
        self.edge_params = [i for i, (name, *_rest) in enumerate(self.layout.params)
                            if name == "head.weight" or (name.startswith("blocks.") and name.endswith(".0.weight"))]
