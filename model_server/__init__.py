"""Pure-PyTorch training engine of the Dropout Playground. Never imports Flask."""
from .config import ConfigError, Limits, RunConfig, parse_config
from .run import Run

__all__ = ["ConfigError", "Limits", "Run", "RunConfig", "parse_config"]
