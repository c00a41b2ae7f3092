"""Lesson f: spatial dropout. Dropout2d zeroes whole feature maps, Dropout single pixels."""
from __future__ import annotations

import torch

from ..layers import RecordingDropout, RecordingDropout2d
from ..runstate import FrozenRun
from .common import borrowed, example_index, layer_index, lists, seen


def spatial_dropout(run: FrozenRun, example: int = 0, layer: int = 0, p: float | None = None,
                    seed: int = 0) -> dict:
    """The feature maps entering conv block `layer`'s dropout for one digit (C x 8 x 8,
    from an eval-mode pass), put through the engine's Dropout2d and its element-wise
    Dropout, both in train mode with probability p (default: that layer's p). Dropout2d
    zeroes whole channels (its mask is one value per channel); Dropout zeroes scattered
    pixels. Kept values are scaled by 1 / (1 - p) in both. Needs the digits CNN.

    Returns {"example", "label", "layer", "p", "image": [8][8], "input": [C][8][8],
    "dropout2d": {"output", "mask" ([C][8][8], 0/1), "channel_kept": [C] (0/1),
    "zero_fraction"}, "dropout": {"output", "mask", "zero_fraction",
    "channels_fully_dropped"}}."""
    if run.cfg.model.kind != "cnn":
        raise ValueError(f"spatial dropout needs the CNN (model.kind 'cnn'), but got {run.cfg.model.kind!r}")
    example, layer = example_index(run, example), layer_index(run, layer)
    p = run.net.drops[layer].p if p is None else float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    image = run.data.x_train[example:example + 1]
    with borrowed(run, train=False, seed=seed) as (net, gen):
        with seen([net.drops[layer]]) as calls:
            net(image)
        maps = calls[0][0]  # (1, C, H, W)
        results = {}
        for name, kind in (("dropout2d", RecordingDropout2d), ("dropout", RecordingDropout)):
            drop = kind(p).to(run.device)
            drop.generator = gen
            out = drop(maps)  # a fresh module in train mode: .noise is the mask it applied
            keep = torch.ones_like(maps, dtype=torch.bool) if drop.noise is None else (drop.noise != 0).expand_as(maps)
            results[name] = (out[0], keep[0])
    (out2, keep2), (out1, keep1) = results["dropout2d"], results["dropout"]
    zero_frac = lambda k: float(1 - k.float().mean())  # noqa: E731
    return {
        "example": example, "label": int(run.data.y_train[example]), "layer": layer, "p": p,
        "image": lists(image[0, 0]), "input": lists(maps[0]),
        "dropout2d": {"output": lists(out2), "mask": keep2.int().cpu().tolist(),
                      "channel_kept": keep2.flatten(1).all(1).int().cpu().tolist(),
                      "zero_fraction": zero_frac(keep2)},
        "dropout": {"output": lists(out1), "mask": keep1.int().cpu().tolist(),
                    "zero_fraction": zero_frac(keep1),
                    "channels_fully_dropped": int((~keep1.flatten(1).any(1)).sum())},
    }
