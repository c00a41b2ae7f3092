"""gunicorn settings for the playground, each from the environment (the image's CMD):

    gunicorn --config deploy/gunicorn.conf.py app.wsgi:app

One worker, many threads: a Socket.IO session and its training runs live in one process
(async_mode 'threading'), and each open WebSocket holds a thread. To serve more visitors,
run more instances behind nginx with a shared message queue (deploy/docker-compose.yml),
never more workers in one instance.
"""
import os
import signal

bind = f"{os.environ.get('DP_HOST', '127.0.0.1')}:{os.environ.get('DP_PORT', '5000')}"
workers = 1
worker_class = "gthread"
threads = int(os.environ.get("DP_THREADS", "64"))  # open WebSockets this instance can hold
# connections at once (open, waiting for a thread, or kept alive); past it gunicorn stops
# accepting until one closes. The embedded server's DP_MAX_CONNECTIONS, here.
worker_connections = int(os.environ.get("DP_MAX_CONNECTIONS", "256"))
# What else bounds a connection here (docs/deploy.md): a pool thread waits 5 s for a new
# connection's first bytes, then hands it back; kept-alive connections close after
# `keepalive` (2 s); request lines and headers are size-limited (limit_request_*).
# On SIGTERM: end this instance's runs (with a message), then this long for the sockets to
# send it before the process exits. Stay under the orchestrator's kill timeout (docker: 10 s).
graceful_timeout = int(os.environ.get("DP_GRACEFUL_TIMEOUT", "3"))
accesslog = os.environ.get("DP_ACCESS_LOG") or None  # "-" logs requests to stdout
loglevel = os.environ.get("DP_LOG_LEVEL", "info").lower()
# No runtime control socket: changing the worker count would split Socket.IO sessions, and
# instances on one host would share its default path.
control_socket_disable = True


def post_worker_init(worker):
    """Before gunicorn's graceful stop begins, tell this worker's clients their runs end.
    And serve /metrics on an address of its own when DP_METRICS_PORT is set."""
    from app.broadcast import end_local_runs
    from app.metrics import serve_apart

    serve_apart(worker.wsgi)

    graceful = worker.handle_exit

    def on_term(signum, frame):
        end_local_runs(worker.wsgi)
        graceful(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def worker_int(worker):
    """SIGINT/SIGQUIT (a quick stop): still say why the runs end."""
    from app.broadcast import end_local_runs

    end_local_runs(worker.wsgi)
