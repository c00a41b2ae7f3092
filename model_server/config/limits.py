"""What one run may be on this server, and the check of a visitor's config against it."""
from __future__ import annotations

from typing import Any

import torch
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .runconfig import RunConfig, train_size
from .validation import ConfigError, error_entry, from_pydantic


class Limits(BaseSettings):
    """What one run may be: the engine's limits. Each can be set by environment, e.g.
    DP_MAX_WIDTH=32. (What serving visitors may cost is app.settings.Serving.)"""

    model_config = SettingsConfigDict(env_prefix="DP_", extra="ignore")

    max_layers: int = 6            # MLP hidden layers
    max_width: int = 64            # neurons per MLP layer
    max_conv_blocks: int = 3       # CNN conv blocks
    max_channels: int = 16         # channels per conv block
    max_batch: int = 2000          # batch size
    max_steps: int = 200_000       # optimizer steps per run
    grid_size: int = 48            # decision-boundary grid resolution


def parse_config(raw: Any, limits: Limits | None = None) -> RunConfig:
    """Validate a visitor's config (a possibly partial dict; defaults fill the rest)."""
    limits = limits or Limits()
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([error_entry("config", "config has to be an object", "object", raw)])
    try:
        cfg = RunConfig.model_validate(raw, context={"task": _task_sent(raw)})
    except ValidationError as err:
        raise ConfigError(from_pydantic(err)) from None
    errors = check_limits(cfg, limits)
    if errors:
        raise ConfigError(errors)
    return cfg


def _task_sent(raw: dict) -> Any:
    """The task a raw config asks for, so each custom point is read in that task's shape
    ([x, y, label] or [x, y]) and a bad one is named by its index; the task field is
    checked on its own."""
    data = raw.get("data")
    return data.get("task", "classification") if isinstance(data, dict) else "classification"


def check_limits(cfg: RunConfig, limits: Limits) -> list[dict]:
    """ConfigError entries for what cfg asks beyond limits (or beyond this server: CUDA),
    and for the checks that span fields (one p per layer, a CNN needs images, the batch
    fits the training set)."""
    m, errors = cfg.model, []
    cnn = m.kind == "cnn"
    max_layers = limits.max_conv_blocks if cnn else limits.max_layers
    max_width = limits.max_channels if cnn else limits.max_width
    unit = "conv blocks" if cnn else "hidden layers"
    if not 1 <= len(m.hidden) <= max_layers:
        errors.append(error_entry("model.hidden", f"number of {unit} has to be between 1 and {max_layers}, "
                                  f"but got {len(m.hidden)}", f"1..{max_layers} {unit}", m.hidden))
    for i, w in enumerate(m.hidden):
        if not 1 <= w <= max_width:
            what = "channels" if cnn else "neurons"
            errors.append(error_entry(f"model.hidden.{i}", f"{what} per layer has to be between 1 and "
                                      f"{max_width}, but got {w}", f"1..{max_width}", w))
    if len(m.p) != len(m.hidden):
        errors.append(error_entry("model.p", f"needs one dropout probability per layer ({len(m.hidden)}), "
                                  f"but got {len(m.p)}", f"{len(m.hidden)} values in 0..1", m.p))
    if cnn and cfg.data.dataset != "digits":
        errors.append(error_entry("model.kind", "a CNN needs images: use dataset 'digits', "
                                  f"but got dataset {cfg.data.dataset!r}", "mlp, or cnn with digits", m.kind))
    if cfg.train.device == "cuda" and not torch.cuda.is_available():
        errors.append(error_entry("train.device", "device 'cuda' was asked for, but this server has no CUDA "
                                  "device", "auto, cpu", "cuda"))
    hi = min(train_size(cfg.data), limits.max_batch)
    why = "the training-set size" if hi == train_size(cfg.data) else "the server's limit"
    if not 1 <= cfg.train.batch_size <= hi:
        errors.append(error_entry("train.batch_size", f"batch size has to be between 1 and {hi} "
                                  f"({why}), but got {cfg.train.batch_size}",
                                  f"1..{hi}", cfg.train.batch_size))
    return errors
