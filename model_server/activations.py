"""The activation table: every activation a config may name, in each form a part of the
product needs it.

    act = ACTIVATIONS["relu"]
    act.fn(x)             functional op                  (the stacked engine's forward)
    act.fn_(x)            the same, in place             (passes without gradients)
    act.grad(g, z, out)   gradient of its input          (the engine's taped backward), from
                          the output's gradient g, its input z and its output
    act.module()          the torch.nn module            (network.Net)
    act.source            that module as source text     (exported scripts)

The gradient kernels are the ones autograd itself calls for these functions, so the
taped backward equals autograd's (tests/test_run.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .torch_internals import aten

SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946

Op = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Activation:
    fn: Op
    fn_: Op
    grad: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    module: type[nn.Module]
    source: str


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(torch.relu, torch.relu_, lambda g, z, out: aten.threshold_backward(g, out, 0),
                       nn.ReLU, "nn.ReLU()"),
    "tanh": Activation(torch.tanh, torch.tanh_, lambda g, z, out: aten.tanh_backward(g, out),
                       nn.Tanh, "nn.Tanh()"),
    "sigmoid": Activation(torch.sigmoid, torch.sigmoid_, lambda g, z, out: aten.sigmoid_backward(g, out),
                          nn.Sigmoid, "nn.Sigmoid()"),
    # gelu has no in-place form in torch
    "gelu": Activation(F.gelu, F.gelu, lambda g, z, out: aten.gelu_backward(g, z), nn.GELU, "nn.GELU()"),
    "selu": Activation(torch.selu, torch.selu_,
                       lambda g, z, out: aten.elu_backward(g, SELU_ALPHA, SELU_SCALE, 1.0, False, z),
                       nn.SELU, "nn.SELU()"),
    "linear": Activation(_identity, _identity, lambda g, z, out: g, nn.Identity, "nn.Identity()"),
}
