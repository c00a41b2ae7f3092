"""Validated run configuration and the server-side limits.

Everything a visitor can set passes through here. A bad value becomes a ConfigError
whose entries name the field, the allowed range and the value received, in PyTorch's
style: "dropout probability has to be between 0 and 1, but got 1.5".

    validation.py   range checks, strict models, ConfigError, parse(model, raw)
    runconfig.py    RunConfig: data, model and training sections (p is the DROP probability)
    limits.py       Limits (what one run may be here) and parse_config(raw, limits)
    live.py         the live changes (SetP, SetLr, ...) and LiveChange, their envelope
    schema.py       json_schema(limits): what the page builds its form from
"""
from __future__ import annotations

from .limits import Limits, parse_config
from .live import LiveChange, RunChange
from .runconfig import (CUSTOM_POINTS, DATASETS, DIGITS_SIZE, MC_PASSES, PLANE, REGRESSION_DATASETS, TASKS, DataConfig,
                        ModelConfig, RunConfig)
from .schema import json_schema
from .validation import MAX_LAYERS, ConfigError, Prob, Strict, in_range, parse, safe_value

__all__ = ["CUSTOM_POINTS", "DATASETS", "DIGITS_SIZE", "MC_PASSES", "PLANE", "REGRESSION_DATASETS", "TASKS",
           "MAX_LAYERS", "ConfigError", "DataConfig", "Limits",
           "LiveChange", "ModelConfig", "Prob", "RunChange", "RunConfig", "Strict", "in_range",
           "json_schema", "parse", "parse_config", "safe_value"]
