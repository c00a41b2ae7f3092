"""Lesson h: dropout before BatchNorm shifts the variance between training and inference."""
from __future__ import annotations

from torch import nn

from ..pacing import checkpoint
from ..runstate import FrozenRun
from .common import BATCHNORMS, Moments, borrowed, bounded, finite, lists, ratio

MAX_BN_PASSES = 64


def batchnorm_shift(run: FrozenRun, passes: int = 8, seed: int = 0) -> dict:
    """The variance shift between training and inference: the whole training set goes
    through the network `passes` times in train mode (dropout on, BatchNorm on batch
    statistics) and once in eval mode (dropout off, BatchNorm on its running statistics).
    For each hidden block it reports the per-channel variance of the BatchNorm's input
    (None without BatchNorm) and of the block's output, the next layer's input, in both
    modes, averaged over channels. running_var is what BatchNorm divides by in eval mode,
    learned from train-mode inputs: when eval-mode inputs have a different variance, the
    normalised values at test time are off by sqrt(eval_var / running_var).

    Returns {"batchnorm" (the config's placement), "blocks": [{"layer", "p",
    "bn_input": {"train_var", "eval_var", "running_var", "eval_over_train",
    "eval_over_running", "train_var_per_channel", "eval_var_per_channel",
    "running_var_per_channel"} | None, "next_input": {"train_var", "eval_var",
    "eval_over_train"}}]} (a ratio is None where its denominator is 0)."""
    passes = bounded("passes", passes, 1, MAX_BN_PASSES)
    net = run.net
    bns = [next((m for m in b if isinstance(m, BATCHNORMS)), None) for b in net.blocks]
    watched = [m for m in bns if m is not None]
    bn_train, next_train = _measure(run, watched, True, passes, seed)
    bn_eval, next_eval = _measure(run, watched, False, 1, seed)
    blocks, j = [], 0
    for i, (block, bn) in enumerate(zip(net.blocks, bns)):
        entry = {"layer": i, "p": block.drop.p, "bn_input": None}
        if bn is not None:
            entry["bn_input"] = _bn_input(bn_train.var(j), bn_eval.var(j), bn.running_var.detach().double())
            j += 1
        nt, ne = next_train.var(i), next_eval.var(i)  # the block's output
        entry["next_input"] = {"train_var": finite(nt.mean()), "eval_var": finite(ne.mean()),
                               "eval_over_train": ratio(ne.mean(), nt.mean())}
        blocks.append(entry)
    return {"batchnorm": run.cfg.model.batchnorm, "blocks": blocks}


def _measure(run: FrozenRun, watched: list[nn.Module], train: bool, n: int, seed: int) -> tuple[Moments, Moments]:
    """The moments of the watched BatchNorms' inputs and of every block's output over n
    passes of the whole training set, in train or eval mode."""
    blocks = run.net.blocks
    with borrowed(run, train=train, seed=seed) as (net, _):
        with Moments(watched) as bn_in, Moments([b[-1] for b in blocks], outputs=True) as block_out:
            for _ in range(n):
                net(run.data.x_train)
                checkpoint()
    return bn_in, block_out


def _bn_input(vt, ve, vr) -> dict:
    """One BatchNorm's input variances per channel: train mode, eval mode, running."""
    return {
        "train_var": finite(vt.mean()), "eval_var": finite(ve.mean()), "running_var": finite(vr.mean()),
        "eval_over_train": ratio(ve.mean(), vt.mean()),
        "eval_over_running": ratio(ve.mean(), vr.mean()),
        "train_var_per_channel": lists(vt), "eval_var_per_channel": lists(ve),
        "running_var_per_channel": lists(vr),
    }
