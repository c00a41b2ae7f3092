"""Server settings, each from the environment (DP_ prefix), with safe defaults.

The training limits (model size, steps, events/s, ...) live with the engine in
model_server.config.Limits; this holds what only the web server cares about.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic import field_validator
from typing import Annotated

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 5000
    # Origins (scheme://host[:port]) allowed to open a Socket.IO connection besides the
    # page's own origin. Empty: same origin only. Comma-separated in the environment.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Who may frame the pages (CSP frame-ancestors). "*" = any site: an open teaching tool.
    frame_ancestors: str = "*"
    # Origins a host page may send postMessage commands from ("*" = any).
    embed_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"])
    # Redis URL to share Socket.IO events between several server processes.
    message_queue: str | None = Field(default=None, validation_alias=AliasChoices(
        "SOCKETIO_MESSAGE_QUEUE", "DP_MESSAGE_QUEUE"))
    node_modules: Path = ROOT / "node_modules"
    ping_interval: float = 10
    ping_timeout: float = 10
    torch_threads: int = 1  # intra-op threads per run: tiny nets lose time to more
    log_level: str = "INFO"
    instance: str = ""  # a name for this process in logs and /healthz (scale-out)

    @field_validator("cors_origins", "embed_origins", mode="before")
    @classmethod
    def _split(cls, v):
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        return v
