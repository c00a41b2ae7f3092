"""Lesson c: inverted scaling. Kept values are x / (1 - p), so the mean over passes
matches eval mode; without the rescaling it would be (1 - p) times too small."""
from __future__ import annotations

import torch

from ..pacing import checkpoint
from ..runstate import FrozenRun
from .common import MAX_EXAMPLES, borrowed, bounded, layer_index, lists, ratio, seen

MAX_SCALING_PASSES = 4096
MAX_VALUES = 1 << 24     # passes x examples x features, at most (64 MB of float32)


def inverted_scaling(run: FrozenRun, layer: int = 0, passes: int = 1000, examples: int = 16,
                     seed: int = 0) -> dict:
    """What one dropout layer does to a batch over many train-mode passes.

    The batch is the first `examples` training examples; the values entering dropout layer
    `layer` (x, shape (examples, *features)) come from an eval-mode pass, so they are the
    same in every pass. The layer then runs `passes` times in train mode: each output is
    x * mask / (1 - p) with a fresh mask, so every kept value is x / (1 - p) and the mean
    over passes approaches eval mode's output, x itself. The counterfactual without
    rescaling, x * mask, averages (1 - p) * x: too small by the factor (1 - p).

    scale_* is the least-squares factor s in mean ~ s * x (1 for inverted dropout, 1 - p
    without rescaling); mismatch_* is mean |mean - x| / mean |x|. Returns {"layer", "p",
    "passes", "shape", "input" (= eval output), "eval_output", "first_output",
    "first_mask", "mean_inverted", "mean_no_rescale" (all [examples][*features]),
    "kept_scale" (median of output / input over kept, nonzero entries), "expected_scale"
    (1 / (1 - p), 0 for p = 1), "drop_rate" (fraction dropped), "scale_inverted",
    "scale_no_rescale", "mismatch_inverted", "mismatch_no_rescale"} (the last four None
    when every input value is 0)."""
    if run.cfg.model.dropout_kind == "alpha":
        raise ValueError("inverted scaling is about Dropout and Dropout2d, "
                         "but got dropout_kind 'alpha'")
    layer = layer_index(run, layer)
    passes = bounded("passes", passes, 1, MAX_SCALING_PASSES)
    examples = bounded("examples", examples, 1, min(MAX_EXAMPLES, len(run.data.x_train)))
    p = run.net.drops[layer].p
    x, eval_out, many, scaled_mask = _passes(run, layer, passes, examples, seed)
    checkpoint()  # a big batch's whole-array steps are long: a server may pause between them
    out = (many * scaled_mask).view(passes, *x.shape)
    mask = (scaled_mask != 0).view(passes, *x.shape)
    no_rescale = x * mask
    checkpoint()
    mean_inv, mean_raw = out.double().mean(0), no_rescale.double().mean(0)
    checkpoint()
    xd = x.double()
    kept = mask & (x != 0)
    ratios = (out / x)[kept]
    scale = lambda m: ratio((m * xd).sum(), (xd * xd).sum())  # noqa: E731
    mism = lambda m: ratio((m - xd).abs().mean(), xd.abs().mean())  # noqa: E731
    return {
        "layer": layer, "p": p, "passes": passes, "shape": list(x.shape),
        "input": lists(x), "eval_output": lists(eval_out),
        "first_output": lists(out[0]), "first_mask": mask[0].int().cpu().tolist(),
        "mean_inverted": lists(mean_inv), "mean_no_rescale": lists(mean_raw),
        "kept_scale": float(ratios.median()) if ratios.numel() else None,
        "expected_scale": 1 / (1 - p) if p < 1 else 0.0,
        "drop_rate": float(1 - mask.float().mean()),
        "scale_inverted": scale(mean_inv), "scale_no_rescale": scale(mean_raw),
        "mismatch_inverted": mism(mean_inv), "mismatch_no_rescale": mism(mean_raw),
    }


def _passes(run: FrozenRun, layer: int, passes: int, examples: int, seed: int):
    """(x, eval_out, many, scaled_mask): x (examples, *features) entering the layer in an
    eval-mode pass, the layer's eval-mode output of it, x repeated `passes` times
    (passes * examples, *features), and the layer's train-mode mask / (1 - p) for each."""
    drop = run.net.drops[layer]
    with borrowed(run, train=False, seed=seed) as (net, _):
        with seen([drop]) as calls:
            net(run.data.x_train[:examples])
        x = calls[0][0]
        if passes * x.numel() > MAX_VALUES:
            raise ValueError(f"passes x examples x features has to be at most {MAX_VALUES}, "
                             f"but got {passes} x {examples} x {x[0].numel()}")
        eval_out = drop(x)  # eval mode: the identity
        many = x.unsqueeze(0).expand(passes, *x.shape).reshape(passes * examples, *x.shape[1:])
        drop.train(True)
        # the layer's own draw: on ones its output is the scaled mask mask / (1 - p), and
        # many * that is, bit for bit, what drop(many) returns for the same random state
        scaled_mask = drop(torch.ones_like(many))
        drop.train(False)
    return x, eval_out, many, scaled_mask
