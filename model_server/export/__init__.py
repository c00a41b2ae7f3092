"""A run, taken home: runnable PyTorch code, metrics as CSV/JSON, weights as safetensors.

    script(cfg, steps=2000) -> str      a standalone Python script (torch, numpy, scikit-learn):
                                        trains, then predicts in eval mode or with MC dropout
    metrics_csv(run) / metrics_json(run) -> str
    weights(run) -> bytes               safetensors; never pickle

The script builds the same network with torch.nn modules (nn.Dropout, nn.Dropout2d,
nn.AlphaDropout in place of the recording layers), the same data (generated with the
same code and seeds), the same initialisation and mini-batch order, and the same loss
and optimiser. Its module names match Net's, so the weights file loads into it as is.
While it trains, the script's dropout layers apply the playground's own masks: the
functions of model_server.masks, copied into the script, draw them from (seed, step,
unit), and train() puts them in place with forward hooks. So an exported MLP retraces
the playground's run step for step (to float rounding; the playground uses fused
optimisers); a CNN's masks are drawn alike, but only MLPs are tested. Outside train()
the layers are torch.nn's, with torch's own generator (mc_predict).

    template.py       the script's text, with a place for each part a config decides
    script_source.py  fills it in from a config and the run's live changes
    metrics.py        the history as CSV or JSON, each row with the settings its step had
    weights.py        the state_dict as safetensors
"""
from __future__ import annotations

from .metrics import metrics_csv, metrics_json
from .script_source import script
from .weights import weights

__all__ = ["script", "metrics_csv", "metrics_json", "weights"]
