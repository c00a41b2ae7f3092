"""gunicorn settings for the playground, each from the environment (the image's CMD):

    gunicorn --config deploy/gunicorn.conf.py app.wsgi:app

One worker, many threads: a Socket.IO session and its training runs live in one process
(async_mode 'threading'), and each open WebSocket holds a thread. To serve more visitors,
run more instances behind nginx with a shared message queue (deploy/docker-compose.yml),
never more workers in one instance.
"""
import logging
import os
import signal

bind = f"{os.environ.get('DP_HOST', '127.0.0.1')}:{os.environ.get('DP_PORT', '5000')}"
workers = 1
# gunicorn's gthread worker, bounded like `python -m app` (app/gunicorn_worker.py): at most
# DP_MAX_CONNECTIONS connections at once and DP_MAX_CONNECTIONS_PER_ADDRESS from one
# address, one more answered 503 "server busy" at once; a request's headers within
# DP_HEADER_TIMEOUT_S; a thread for every connection, idle threads ended.
worker_class = "app.gunicorn_worker.Worker"
worker_connections = int(os.environ.get("DP_MAX_CONNECTIONS", "256"))
# each open WebSocket holds a thread: as many threads as connections (fewer lowers the cap)
threads = int(os.environ.get("DP_THREADS") or worker_connections)
# What else bounds a connection here (docs/deploy.md): kept-alive connections close after
# `keepalive` (2 s); request lines and headers are size-limited (limit_request_*).
# On SIGTERM: end this instance's runs (with a message), then this long for the sockets to
# send it before the process exits. Stay under the orchestrator's kill timeout (docker: 10 s).
graceful_timeout = int(os.environ.get("DP_GRACEFUL_TIMEOUT", "3"))
loglevel = os.environ.get("DP_LOG_LEVEL", "info").lower()
# "-" logs requests to stdout; access lines are INFO: none at DP_LOG_LEVEL=WARNING or above
_quiet = logging.getLevelName(loglevel.upper()) in (logging.WARNING, logging.ERROR, logging.CRITICAL)
accesslog = None if _quiet else (os.environ.get("DP_ACCESS_LOG") or None)
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
