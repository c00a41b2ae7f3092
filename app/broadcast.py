"""Operator messages to visitors.

    python -m app.broadcast "server restarting in 1 minute"

sends a 'broadcast' event {"message": ...} to every client of every server instance,
through the Socket.IO message queue they share (SOCKETIO_MESSAGE_QUEUE or DP_MESSAGE_QUEUE,
or --queue redis://host:6379/0). It is a process of its own: it needs the queue, not a
server, and a single `python -m app` without a queue has nothing to publish to.

Also here: what an instance tells its own clients when it stops. end_local_runs() ends
every run of this process with a 'status' {state: "ended", reason} that names the stop, so
a page can say why and reconnect (behind the load balancer, to another instance). Clients
of the other instances notice nothing. `python -m app` calls it on SIGTERM/SIGINT, gunicorn
through deploy/gunicorn.conf.py.
"""
from __future__ import annotations

import argparse
import logging
import sys

EVENT = "broadcast"
MAX_MESSAGE = 500  # characters; a banner, not a document

log = logging.getLogger("dropout.broadcast")


def publish(message: str, queue_url: str) -> None:
    """Emit EVENT {"message": message} to all clients of all instances on queue_url."""
    from flask_socketio import SocketIO

    SocketIO(message_queue=queue_url).emit(EVENT, {"message": message}, namespace="/")


def stopping_reason(instance: str = "") -> str:
    name = f" {instance}" if instance else ""
    return f"server instance{name} stopping: this run has ended; reconnect to continue with a new run"


def end_local_runs(app) -> int:
    """End the runs of this process's clients, each told why. Returns how many runs ended."""
    registry = app.extensions["dropout"]["registry"]
    runs = registry.runs()
    registry.close_all(stopping_reason(app.config["SETTINGS"].instance))
    registry.stop()
    log.info("stopping: ended %d runs of this instance", runs)
    return runs


def main(argv: list[str] | None = None) -> int:
    from .settings import Settings

    parser = argparse.ArgumentParser(prog="python -m app.broadcast", description=__doc__.split("\n\n")[1])
    parser.add_argument("message", help=f"the text every visitor sees (at most {MAX_MESSAGE} characters)")
    parser.add_argument("--queue", help="message queue URL (default: SOCKETIO_MESSAGE_QUEUE or DP_MESSAGE_QUEUE)")
    args = parser.parse_args(argv)
    queue = args.queue or Settings().message_queue
    if not queue:
        parser.error("no message queue: set SOCKETIO_MESSAGE_QUEUE=redis://HOST:6379/0 (the one the "
                     "servers use) or pass --queue; a single server without a queue cannot be reached")
    message = args.message.strip()
    if not message or len(message) > MAX_MESSAGE:
        parser.error(f"message has to be 1 to {MAX_MESSAGE} characters, but got {len(message)}")
    publish(message, queue)
    print(f"sent {EVENT!r} to all instances on the queue: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
