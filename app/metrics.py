"""Prometheus counters for one app (its own CollectorRegistry: no global state), and who
may read them: settings.metrics_token (a bearer token or ?token=) and/or a separate
address (settings.metrics_host:metrics_port, serve_apart()) instead of the public port."""
from __future__ import annotations

import hmac
import logging
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from werkzeug.wrappers import Request, Response

log = logging.getLogger("dropout.metrics")
MIMETYPE = "text/plain; version=0.0.4"


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


def allowed(request, token: str | None) -> bool:
    """No token set: anyone. Else the request carries it (compared in constant time)."""
    if not token:
        return True
    auth = request.headers.get("Authorization", "")
    given = auth[7:] if auth[:7].lower() == "bearer " else request.args.get("token", "")
    return hmac.compare_digest(given.encode(), token.encode())


def response(metrics: Metrics, request, token: str | None) -> Response:
    if not allowed(request, token):
        return Response("metrics need a token: Authorization: Bearer <DP_METRICS_TOKEN>\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain")
    return Response(metrics.render(), mimetype=MIMETYPE)


def serve_apart(app) -> threading.Thread | None:
    """Serve /metrics alone on settings.metrics_host:metrics_port (a thread of this
    process), when a port is set; the public port then has no /metrics."""
    settings = app.config["SETTINGS"]
    if settings.metrics_port is None:
        return None
    from werkzeug.serving import make_server

    metrics = app.extensions["dropout"]["metrics"]

    @Request.application
    def only_metrics(request):
        if request.path != "/metrics":
            return Response("not found\n", 404, mimetype="text/plain")
        return response(metrics, request, settings.metrics_token)

    server = make_server(settings.metrics_host, settings.metrics_port, only_metrics, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    log.info("event=metrics_server address=%s:%d", settings.metrics_host, server.port)
    return thread
