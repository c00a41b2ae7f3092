"""Server settings, each from the environment (DP_ prefix), with safe defaults.

What one run may be (layers, widths, steps) is the engine's: model_server.config.Limits.
What serving visitors may cost and how they are paced is Serving; how the web server
runs is Settings.
"""
from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic import field_validator
from typing import Annotated

ROOT = Path(__file__).resolve().parent.parent


class Serving(BaseSettings):
    """Limits of serving visitors, each from the environment (DP_<NAME>)."""

    model_config = SettingsConfigDict(env_prefix="DP_", extra="ignore")

    max_runs: int = 300            # runs held at once by this process's clients
    max_runs_per_client: int = 3   # runs one visitor (token) may hold (compare mode uses 3)
    max_runs_per_address: int = Field(100, ge=1)  # runs from one client address (a classroom behind one NAT)
    max_run_seconds: float = 1800  # wall time a run may play
    events_per_s: float = 20       # token-bucket refill per client
    event_burst: int = 40          # token-bucket size per client
    max_message_bytes: int = 65_536  # room for a configure with a full custom set (docs/limits.md)
    idle_timeout_s: float = 600    # a run nobody played or touched for this long is ended
    # a run nobody played or touched for this long gives its place back when a newcomer's
    # run would otherwise be refused (the server's run or memory budget, or its address's)
    evict_idle_s: float = Field(60, ge=0)
    max_speed: float = 1_000_000   # steps/s; the top of the range means "as fast as possible"
    frame_rate: float = 30         # frames per second per run, at most
    # a frame unacknowledged this long is presumed lost, and the next may go (so that an
    # acknowledgement a client dropped does not stall its run for good)
    ack_timeout_s: float = Field(10, ge=0)
    # a run at full speed below this many frames a second gets its bucket the next turns,
    # if one step of it costs at most frame_floor_macs (multiply-adds, forward and backward:
    # app/turns.py, "Floor")
    frame_floor: float = Field(24, ge=0)
    frame_floor_macs: float = Field(3e7, ge=0)
    boundary_rate: float = 6       # decision-boundary grids per second per run, at most
    # how many proxies in front of this server to trust for X-Forwarded-For (0: none: the
    # client address is the socket's peer, and a forwarded header is ignored)
    trusted_proxies: int = 0
    # the cost budget (app/budget.py; estimates: model_server/costs.py)
    max_bytes: float = Field(1024 * 2**20, gt=0)                 # held by all runs, sweeps, experiments
    max_bytes_per_address: float = Field(256 * 2**20, gt=0)      # ... from one client address (a quarter)
    max_step_macs_per_address: float = Field(2e9, gt=0)          # multiply-adds per step of one address's runs
    # one step of one run, and one step (or frame pass) of one bucket of runs of one shape:
    # neither is interruptible, so this bounds how long everyone else waits (1.5e8 keeps
    # that within a few of a bystander's frame periods: docs/limits.md, max_run_step_macs)
    max_run_step_macs: float = Field(1.5e8, gt=0)
    max_bucket_step_macs: float = Field(1.5e8, gt=0)
    # the rows of one bucket, in bytes (it grows by copying them between two steps)
    max_bucket_bytes: float = Field(64 * 2**20, gt=0)
    max_jobs: int = Field(2, ge=1)                               # experiments / sweep events at once, server-wide
    max_job_bytes: float = Field(128 * 2**20, gt=0)              # held by one experiment or sweep event
    max_job_macs: float = Field(2e10, gt=0)                      # multiply-adds of one experiment or sweep event
    # an answer bigger than this is "large": a client gets one more only once it has read
    # the last (a sweep's boundaries, an experiment's grids, an export; frames stay far
    # below: docs/limits.md, large_reply_bytes)
    large_reply_bytes: int = Field(131_072, ge=1)
    max_backlog_bytes: int = Field(4_194_304, ge=1)  # unread bytes held for one client, in all


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
    # The address visitors use (scheme://host[:port]). Set: the Socket.IO origin check and
    # oEmbed answers use it instead of the request's Host header (which a visitor's DNS
    # can make anything: a rebinding page would pass a Host-based check).
    public_origin: str | None = None
    # /metrics: with a token, only requests with "Authorization: Bearer <token>" or
    # ?token=<token> get it; with metrics_port, it is served there (on metrics_host) and
    # not on the public port at all.
    metrics_token: str | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # both web servers: python -m app (app/webserver.py) and gunicorn (app/gunicorn_worker.py)
    max_connections: int = Field(256, ge=1)  # open connections at once; more are answered 503
    # open connections from one client address (the socket's peer); more are answered 503.
    # Not counted when trusted_proxies > 0: the peer is then the proxy (nginx counts them)
    max_connections_per_address: int = Field(64, ge=1)
    header_timeout_s: float = Field(10, gt=0)  # to send a request's line and headers
    read_timeout_s: float = Field(30, gt=0)    # python -m app: for each read or write once connected

    @field_validator("public_origin", mode="before")
    @classmethod
    def _origin(cls, v):
        if v in (None, ""):
            return None
        v = str(v).strip().rstrip("/")
        if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", v):
            raise ValueError(f"public_origin has to be scheme://host[:port] (http or https), but got {v[:80]!r}")
        return v.lower()

    @field_validator("cors_origins", "embed_origins", mode="before")
    @classmethod
    def _split(cls, v):
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        return v
