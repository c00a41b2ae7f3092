"""Liveness, readiness and Prometheus metrics."""
from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

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
    return Response(_state()["metrics"].render(), mimetype="text/plain; version=0.0.4")
