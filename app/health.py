"""Liveness, readiness and Prometheus metrics."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify, request

from model_server import RunConfig
from model_server.costs import run_cost

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
    """Ready to take a newcomer's default run (503 when its configure would be refused:
    the run limit or the memory budget, counting the idle runs that would give way)."""
    registry, serving = _state()["registry"], current_app.config["SERVING"]
    runs = registry.runs()
    ready = registry.ready(run_cost(RunConfig(), current_app.config["LIMITS"]))
    return (jsonify(ready=ready, runs=runs, max_runs=serving.max_runs, free_bytes=round(registry.budget.free())),
            200 if ready else 503)


@bp.get("/metrics")
def metrics():
    """Prometheus metrics, unless they are served on an address of their own
    (settings.metrics_port); with settings.metrics_token, only for its bearer."""
    settings = current_app.config["SETTINGS"]
    if settings.metrics_port is not None:
        abort(404)
    return prometheus.response(_state()["metrics"], request, settings.metrics_token)
