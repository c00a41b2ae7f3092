"""A run's weights as safetensors: plain tensors and text metadata, never pickle."""
from __future__ import annotations

import json

from safetensors.torch import save

from ..runstate import FrozenRun


def weights(run: FrozenRun) -> bytes:
    """The state_dict as safetensors (CPU copies; the config rides along as metadata)."""
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in run.net.state_dict().items()}
    meta = {"format": "pt", "producer": "dropout-playground", "step": str(run.step_count),
            "config": json.dumps(run.cfg.model_dump())}
    return save(state, metadata=meta)
