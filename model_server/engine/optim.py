"""One optimizer step per active row of theta: torch.optim's arithmetic (SGD, SGD with
momentum, Adam) with each run's own learning rate, weight decay and step count. A row
that sits out a step gets coefficients (0 and 1) that leave its weights and optimizer
state exactly as they were. tests/test_run.py holds it to torch.optim."""
from __future__ import annotations

import numpy as np
import torch

from ..torch_internals import fused_adam_
from .rows import RowStore
from .tables import Tables

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
MOMENTUM = 0.9


class Optimizer:
    def __init__(self, name: str, store: RowStore):
        self.name, self.store = name, store
        self._adam_step = torch.zeros((), device=store.device)  # the step count handed to the fused Adam kernel

    def step(self, t: Tables, K: int, act: torch.Tensor, act_np: np.ndarray, every: bool, g: torch.Tensor) -> None:
        """From the gradient g (K, P); act (K,) 0/1 and act_np the rows that step. Called
        before the step is counted (store.steps: steps each row has taken before it)."""
        theta, m, v = t.opt_rows
        if t.wd_t is not None:
            g = g + t.wd_t * theta
        if self.name == "adam":
            self._adam(t, K, act, act_np, every, g)
            return
        a = act.view(K, 1)
        if self.name == "momentum":
            if every:
                m.mul_(MOMENTUM).add_(g)
            else:
                m.mul_(1 - a * (1 - MOMENTUM)).add_(g * a)
            g = m
        theta.sub_(g * (t.lr_t if every else t.lr_t * a))

    def _adam(self, t: Tables, K: int, act: torch.Tensor, act_np: np.ndarray, every: bool, g: torch.Tensor) -> None:
        theta, m, v = t.opt_rows
        store = self.store
        steps = store.steps[:K]
        b1, b2 = ADAM_BETAS
        if every and (K == 1 or ((steps == steps[0]).all() and (store.lr[:K] == store.lr[0]).all())):
            # one step count and one learning rate (a lone run, say): the kernel of
            # torch.optim.Adam(fused=True), one op where the arithmetic below takes ten
            fused_adam_([theta], [g], [m], [v], [], [self._adam_step.fill_(float(steps[0] + 1))],
                        lr=float(store.lr[0]), beta1=b1, beta2=b2, weight_decay=0.0,
                        eps=ADAM_EPS, amsgrad=False, maximize=False)
            return
        # the bias corrections in double precision, as torch.optim.Adam computes them,
        # from each row's step count after this step (at least 1: a row that sat out
        # its first steps)
        tt = torch.from_numpy(np.maximum(steps + act_np, 1).astype(np.float64)).to(store.device).view(K, 1)
        if every:
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            step_size = (t.lr64 / (1 - torch.pow(b1, tt))).float()
        else:
            a = act.view(K, 1)
            m.lerp_(g, a * (1 - b1))
            v.mul_(1 - a * (1 - b2)).addcmul_(g, g * (a * (1 - b2)))
            step_size = (t.lr64 * a.double() / (1 - torch.pow(b1, tt))).float()
        bc2_sqrt = torch.sqrt(1 - torch.pow(b2, tt)).float()
        denom = v.sqrt().div_(bc2_sqrt).add_(ADAM_EPS)
        theta.sub_(m * step_size / denom)  # addcdiv's order: (step * m) / denom
