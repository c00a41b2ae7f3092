"""Pure-PyTorch training engine of the Dropout Playground. Never imports Flask.

Loaded lazily: a module that needs none of the engine (model_server.pins, which
gunicorn's arbiter reads) does not pay for torch; `from model_server import Run` still
works, through this module's __getattr__.
"""
from __future__ import annotations

__all__ = ["Limits", "Run", "RunConfig", "parse_config"]


def __getattr__(name: str):
    if name == "Run":
        from .run import Run
        return Run
    if name in __all__:
        from . import config
        return getattr(config, name)
    raise AttributeError(f"module 'model_server' has no attribute {name!r}")
