"""python -m app: the playground on http://127.0.0.1:5000, one process, no other service.

On SIGTERM or Ctrl-C the process first ends its own clients' runs with a message that
says so (app.broadcast.end_local_runs), gives the sockets a moment to send it, then exits.
"""
import faulthandler
import logging
import os
import signal
import sys
import time

from model_server import memory

from . import create_app, webserver
from .broadcast import end_local_runs
from .metrics import serve_apart
from .watchdog import Watchdog

DRAIN_S = 0.5  # time for the socket threads to send the last 'status' events

app = create_app()
settings = app.config["SETTINGS"]


def stop(signum, _frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second signal ends the process at once
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if end_local_runs(app):
        time.sleep(DRAIN_S)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(0)  # nothing to save; interpreter teardown with torch loaded takes seconds


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
# `kill -USR1 <pid>`: every thread's stack to stderr, so that a server that seems stuck
# says where each thread waits, without stopping it
faulthandler.register(signal.SIGUSR1, all_threads=True)
server = webserver.make(app, settings)  # bounded threads and timeouts (app/webserver.py)
serve_apart(app)  # /metrics on an address of its own, when settings.metrics_port is set
trainer, reader = app.extensions["dropout"]["registry"].trainer, app.extensions["dropout"]["reader"]
# a stalled trainer or Reader writes every thread's stack to stderr (app/watchdog.py)
Watchdog({"trainer": lambda: trainer.beat, "websocket-reader": lambda: reader.beat}).start()
memory.freeze_startup()  # what exists now lives as long as the process
print(f"Dropout Playground on http://{settings.host}:{settings.port}", flush=True)
server.serve_forever()
