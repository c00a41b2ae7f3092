"""Lesson i: the misconception that dropout removes parameters or neurons."""
from __future__ import annotations

import torch

from ..network import Net, parameter_count
from ..runstate import FrozenRun
from .common import MAX_EXAMPLES, borrowed, bounded, seen


def myths(run: FrozenRun, examples: int = 32, seed: int = 0) -> dict:
    """Dropout removes nothing. The parameter count equals that of the same network built
    with p = 0; in eval mode and in train mode every hidden layer keeps its full size (the
    block outputs' shapes for the first `examples` training examples). Train mode only
    sets some of the values leaving each dropout layer to zero: zero_fraction_train exceeds
    zero_fraction_eval by the dropped units, about p of the values that were nonzero.
    (AlphaDropout sets dropped units to a constant, not zero: there the zero fractions
    do not show them.)

    Returns {"p": [layers], "params", "params_without_dropout", "params_equal",
    "sizes_config": [layers], "sizes_eval": [layers][shape], "sizes_train": [layers][shape]
    (per example), "zero_fraction_eval": [layers], "zero_fraction_train": [layers]}."""
    examples = bounded("examples", examples, 1, min(MAX_EXAMPLES, len(run.data.x_train)))
    cfg = run.cfg.model
    x = run.data.x_train[:examples]
    n_out = run.net.n_out  # outside the meta device: run.net may be built on first use
    with torch.device("meta"):  # shapes only: no memory, no draw from the global RNG
        plain = Net(cfg.model_copy(update={"p": [0.0] * len(cfg.hidden)}), tuple(x.shape[1:]), n_out)
    with borrowed(run, train=False, seed=seed) as (net, _):
        with seen(net.drops, outputs=True) as eval_drop:
            eval_outs = net.hidden_outputs(x)
        net.train(True)
        with seen(net.drops, outputs=True) as train_drop:
            train_outs = net.hidden_outputs(x)
    zeros = lambda calls: float((calls[0] == 0).float().mean())  # noqa: E731
    n, n0 = parameter_count(run.net), parameter_count(plain)
    return {
        "p": [d.p for d in run.net.drops],
        "params": n, "params_without_dropout": n0, "params_equal": n == n0,
        "sizes_config": list(cfg.hidden),
        "sizes_eval": [list(t.shape[1:]) for t in eval_outs],
        "sizes_train": [list(t.shape[1:]) for t in train_outs],
        "zero_fraction_eval": [zeros(t) for t in eval_drop],
        "zero_fraction_train": [zeros(t) for t in train_drop],
    }
