"""Every name of torch's that is not its documented Python API, in one place. Importing
this module checks that the installed torch is the one requirements.txt pins, and the
server does not start on another (their behaviour is held to torch's public API by
tests/test_run.py: the taped gradients against autograd, the fused Adam step against
torch.optim.Adam).

    aten           torch.ops.aten: the backward kernels autograd itself calls
                   (threshold_backward, tanh_backward, ..., convolution_backward)
    fused_adam_    torch._fused_adam_: the kernel of torch.optim.Adam(fused=True)
"""
from __future__ import annotations

import torch

from .pins import check_pinned

check_pinned("torch", torch.__version__, "model_server/torch_internals.py")

aten = torch.ops.aten
fused_adam_ = torch._fused_adam_
