"""Builds the MLP or the small digits CNN described by a ModelConfig.

A network is a list of hidden blocks and a head. A block is
    Linear (or Conv2d 3x3) -> activation -> dropout     (placement after_activation)
    Linear (or Conv2d 3x3) -> dropout -> activation     (placement before_activation)
with an optional BatchNorm just before or just after the dropout. The dropout modules
are the recording ones from layers.py; each block keeps its last output for the frames.
"""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from .activations import ACTIVATIONS
from .config import ModelConfig
from .layers import KINDS, RecordingDropoutMixin


def block_order(cfg: ModelConfig) -> list[str]:
    """What follows a block's Linear or Conv2d, in order: 'act', 'drop' and, with
    BatchNorm, 'bn', from cfg's placement and batchnorm (a ModelConfig, or the engine's
    BucketKey). (model_server/export/ writes its scripts in the same order.)"""
    order = ["drop", "act"] if cfg.placement == "before_activation" else ["act", "drop"]
    i = order.index("drop")
    if cfg.batchnorm == "before_dropout":
        order.insert(i, "bn")
    elif cfg.batchnorm == "after_dropout":
        order.insert(i + 1, "bn")
    return order


class Block(nn.Sequential):
    """One hidden layer. .out holds its last output: (N, width) or (N, C, H, W)."""

    def __init__(self, layer: nn.Module, act: nn.Module, drop: RecordingDropoutMixin,
                 bn: nn.Module | None, cfg: ModelConfig):
        parts = {"act": act, "drop": drop, "bn": bn}
        middle = [parts[name] for name in block_order(cfg)]
        super().__init__(layer, *middle)
        self._drop_at = 1 + middle.index(drop)  # an index, not an attribute: a second
        # registration of the module would make Sequential run it twice
        self.out: torch.Tensor | None = None
        self.record = True

    @property
    def drop(self) -> RecordingDropoutMixin:
        return self[self._drop_at]

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        if keep is None:
            for op in self:
                x = op(x)
        else:
            for i, op in enumerate(self):
                x = op.apply_mask(x, keep) if i == self._drop_at else op(x)
        if self.record:
            self.__dict__["out"] = x  # skips nn.Module.__setattr__ (slow, and per step)
        return x


class Net(nn.Module):
    def __init__(self, cfg: ModelConfig, input_shape: tuple[int, ...], n_out: int):
        super().__init__()
        self.cfg = cfg
        blocks, c_in = [], input_shape[0] if cfg.kind == "cnn" else math.prod(input_shape)
        for width, p in zip(cfg.hidden, cfg.p):
            if cfg.kind == "cnn":
                layer, bn = nn.Conv2d(c_in, width, 3, padding=1), nn.BatchNorm2d(width)
            else:
                layer, bn = nn.Linear(c_in, width), nn.BatchNorm1d(width)
            blocks.append(Block(layer, ACTIVATIONS[cfg.activation].module(), KINDS[cfg.dropout_kind](p),
                                bn if cfg.batchnorm != "none" else None, cfg))
            c_in = width
        self.blocks = nn.ModuleList(blocks)
        # a plain list next to the registered modules: frames read it several times each
        self.drops: list[RecordingDropoutMixin] = [b.drop for b in blocks]
        flat = c_in * math.prod(input_shape[1:]) if cfg.kind == "cnn" else c_in
        self.head = nn.Linear(flat, n_out)
        self.n_out = n_out

    def forward(self, x: torch.Tensor, keeps: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Logits: (N,) for one output, else (N, n_out). With keeps (one bool mask per
        block, one example's shape), every example goes through that one thinned network."""
        if x.dim() > 2 and self.cfg.kind == "mlp":
            x = x.flatten(1)
        for i, block in enumerate(self.blocks):
            # forward(), not block(x): Module.__call__'s hook handling costs more than a
            # small block's arithmetic on every training step (docs/benchmarks.md,
            # "Engine"), and nothing hooks a block (hook the layers inside it: a block's
            # output is its last layer's output)
            x = block.forward(x, None if keeps is None else keeps[i])
        logits = self.head(x if x.dim() == 2 else x.flatten(1))
        return logits.squeeze(-1) if self.n_out == 1 else logits

    def hidden_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each block's output for x (use inside scratch() to leave no trace)."""
        outs = []
        x = x.flatten(1) if self.cfg.kind == "mlp" and x.dim() > 2 else x
        for block in self.blocks:
            x = block.forward(x)
            outs.append(x)
        return outs

    @contextlib.contextmanager
    def scratch(self, train: bool = False):
        """Forward passes inside leave no trace: masks, counts and block outputs of the
        last training step stay as they were. Sets train/eval mode for the duration."""
        was = self.training
        self.train(train)
        for b in self.blocks:
            b.record = b.drop.record = False
        try:
            yield self
        finally:
            for b in self.blocks:
                b.record = b.drop.record = True
            self.train(was)

    def init_weights(self, generator: torch.Generator) -> None:
        """torch's default init (kaiming-uniform weights, uniform biases), drawn from the
        run's own generator so that concurrent runs never share random state."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                bound = 1 / math.sqrt(m.weight[0].numel())
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.reset_parameters()
                m.reset_running_stats()

    def weights(self) -> list[torch.Tensor]:
        """The weight matrix of each layer, blocks then head (for drawing edges)."""
        return [b[0].weight for b in self.blocks] + [self.head.weight]


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
