"""Lesson experiments on a run (a FrozenRun: a copy at one step; a model_server.Run works
too): each returns plain lists, dicts and floats (JSON-able).

None of them changes the run's training: forward passes go through net.scratch() (no
recorded masks, counts or outputs), under torch.no_grad(), with the dropout layers drawing
from a generator of their own (seeded by `seed`, so results repeat) instead of the run's,
and every buffer (BatchNorm running statistics) is put back afterwards. Modes are restored.

    train_vs_eval(run)          one input, repeated passes: train mode varies, eval does not
    forgot_eval_boundary(run)   the decision boundary in train mode (flickers) vs eval mode
    inverted_scaling(run)       kept values x / (1 - p); means over passes match eval mode
    mc_dropout(run)             T thinned networks, their average, eval mode, MC uncertainty
    batchnorm_shift(run)        variance entering BatchNorm / the next layer, train vs eval
    myths(run)                  dropout removes no parameters and no neurons
    spatial_dropout(run)        Dropout2d zeroes whole feature maps, Dropout single pixels
    placement_seeds(run)        both placements of the run's config, trained over several seeds
    uncertainty()               MC dropout's band on the sine with a gap, beside a deep ensemble (no run)

One module per lesson (modes, scaling, placement, spatial, ensembles, batchnorm,
misconceptions); common.py holds what they share. Grids are size rows (y) x size columns
(x) over datasets.PLANE, Plotly heatmap order, values P(class 1) rounded to 1e-4.
"""
from __future__ import annotations

from .batchnorm import batchnorm_shift
from .common import MAX_EXAMPLES
from .ensembles import MAX_DRAWS, MAX_THINNED, mc_dropout
from .misconceptions import myths
from .modes import MAX_GRIDS, MAX_PASSES, forgot_eval_boundary, train_vs_eval
from .placement import MAX_PLACEMENT_STEPS, placement_seeds
from .scaling import MAX_SCALING_PASSES, inverted_scaling
from .spatial import spatial_dropout
from .uncertain import uncertainty

__all__ = ["train_vs_eval", "forgot_eval_boundary", "inverted_scaling", "mc_dropout",
           "batchnorm_shift", "myths", "spatial_dropout", "placement_seeds", "uncertainty",
           "MAX_PASSES", "MAX_GRIDS", "MAX_SCALING_PASSES", "MAX_EXAMPLES", "MAX_THINNED",
           "MAX_DRAWS", "MAX_PLACEMENT_STEPS"]
