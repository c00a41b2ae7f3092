"""Prometheus counters for one app (its own CollectorRegistry: no global state)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.sessions = Gauge("dropout_sessions", "Connected clients", registry=r)
        self.runs = Gauge("dropout_runs_active", "Runs held by connected clients", registry=r)
        self.frames_sent = Counter("dropout_frames_sent", "Frames emitted to clients", registry=r)
        self.frame_bytes = Counter("dropout_frame_bytes", "Bytes of frames emitted", registry=r)
        self.frames_skipped = Counter(
            "dropout_frames_dropped",
            "Frame periods skipped because the client had not taken the previous frame", registry=r)
        self.events = Counter("dropout_events", "Socket events received", ["event"], registry=r)
        self.errors = Counter("dropout_errors", "Errors by kind", ["kind"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
