"""Liveness, readiness and Prometheus metrics."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request

from . import metrics as prometheus

bp = Blueprint("health", __name__)


def _state():
    return current_app.extensions["dropout"]


@bp.get("/healthz")
def healthz():
    """The process answers."""
    return jsonify(ok=True, instance=current_app.config["SETTINGS"].instance)


@bp.get("/readyz")
def readyz():
    """Ready to take another run (503 when at the run limit)."""
    registry, serving = _state()["registry"], current_app.config["SERVING"]
    runs = registry.runs()
    ready = runs < serving.max_runs
    return jsonify(ready=ready, runs=runs, max_runs=serving.max_runs), (200 if ready else 503)


@bp.get("/metrics")
def metrics():
    """Prometheus metrics, unless they are served on an address of their own
    (settings.metrics_port); with settings.metrics_token, only for its bearer."""
    settings = current_app.config["SETTINGS"]
    if settings.metrics_port is not None:
        abort(404)
    return prometheus.response(_state()["metrics"], request, settings.metrics_token)
