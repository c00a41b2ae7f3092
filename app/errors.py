"""Why an event is refused when the limit is the server's or the run's, not the input's
(bad input is model_server.config.ConfigError): app/events.py answers each with its
message, and with retry_after_s when the same event may well succeed a little later."""
from __future__ import annotations


class Busy(Exception):
    """A limit on runs was reached, or the run cannot do that now; the message says which.
    retry_after_s: the same event may well succeed that much later (the answer says so)."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServerFull(Busy):
    """The server's own run limit (not the visitor's): idle runs may give way."""


class JobCancelled(Exception):
    """Lesson work given up at a checkpoint: whoever asked for it has gone."""


class JobsBusy(Exception):
    """No lesson job can start now (serving.max_jobs run, or the tab's previous one still
    does): the caller retries a little later. field: what the refusal names."""

    def __init__(self, message: str, field: str = "server"):
        super().__init__(message)
        self.field = field
