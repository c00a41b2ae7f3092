"""RunHandle: everything the engine reads of a run, and the only calls it makes on one.

The engine never assigns a run's fields: it reads the values below, and tells the run
what happened through the methods at the end (model_server.runstate.RunState is
the product's implementation). A run's row in a bucket is the engine's; the run keeps
where it sits only through placed().
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass(frozen=True)
class RowSettings:
    """What a row's next step reads of its run, as values (RowStore.set_hyper): the
    engine never reads the run back for them."""
    p: list[float]
    lr: float
    weight_decay: float
    train: bool          # train mode: masks drawn
    gauss: bool          # Gaussian factors instead of dropout's masks
    input_noise: float   # std of the noise on its training inputs


class ConfigSettings:
    """A run's p per layer, learning rate and weight decay, read from its config (RunState
    and a lesson's Member both keep them there), and the settings its row reads."""
    cfg: Any
    mode: str
    noise: str
    input_noise: float
    bucket: Any
    row: int

    @property
    def p(self) -> list[float]:
        return list(self.cfg.model.p)

    @property
    def lr(self) -> float:
        return self.cfg.train.lr

    @property
    def weight_decay(self) -> float:
        return self.cfg.train.weight_decay

    def row_settings(self) -> RowSettings:
        return RowSettings(self.p, self.lr, self.weight_decay, self.mode == "train", self.noise == "gauss",
                           self.input_noise)

    def settings_changed(self) -> None:
        """Hand the row its new settings, read from the next step on (a run in no bucket
        gets them when it joins one)."""
        if self.bucket is not None:
            self.bucket.store.set_hyper(self.row, self.row_settings())


class RunHandle(Protocol):
    cfg: Any                       # model_server.config.RunConfig
    data: Any                      # model_server.datasets.Dataset, on the run's device
    n_out: int
    batch: int
    device: torch.device
    batch_gen: torch.Generator     # the run's batch order (a fresh permutation per epoch)
    row: int                       # where placed() put it
    mode: str                      # 'train' or 'eval'
    view: str                      # which decision boundary frames carry: 'eval' or 'thinned'
    watch: tuple[int, int] | None  # a hidden neuron whose map frames carry
    limits: Any                    # model_server.config.Limits
    noise: str                     # 'dropout' (masks), or 'gauss': factors 1 + sqrt(p / (1 - p)) z
    input_noise: float             # std of Gaussian noise added to its training inputs (0: none)

    @property
    def p(self) -> list[float]: ...

    @property
    def lr(self) -> float: ...

    @property
    def weight_decay(self) -> float: ...

    def row_settings(self) -> RowSettings: ...

    def initial_net(self) -> torch.nn.Module: ...

    def settings_at(self, step: int) -> tuple[int, list[float], float, str]: ...

    # ---- what the engine tells the run -------------------------------------------------------
    def placed(self, bucket: Any, row: int) -> None:
        """The run now sits in this row of this bucket (None, -1: in none)."""

    def queue_eval(self, step: int, stack: torch.Tensor, column: int) -> None:
        """An evaluation at this step: column `column` of stack (3, K'), (train loss,
        test loss, test accuracy), still on the device until a frame reads it."""

    def take_evals(self) -> list:
        """The queued evaluations (step, stack, column), oldest first; the queue empties."""

    def add_history(self, point: dict) -> None:
        """One evaluation, on the host: {step, train_loss, test_loss, test_acc}."""
