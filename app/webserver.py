"""The embedded web server of `python -m app`: werkzeug's threaded server, bounded.

Werkzeug starts one thread per connection with no cap and waits for a request's headers
as long as the client likes (400 websockets made 1,521 threads; 500 half-sent requests
each held a thread for 47 s and more). Here:

* at most settings.max_connections connections are open at once; one more is answered
  503 and closed, from the accepting thread, without a thread of its own;
* a request's line and headers must arrive within settings.header_timeout_s, in all;
* every later read or write waits at most settings.read_timeout_s (a websocket's own
  timeout is set by app/transport.py: a healthy client answers a ping every
  ping_interval).

gunicorn (deploy/) does not use this module: docs/deploy.md says what covers it there.
"""
from __future__ import annotations

import errno
import io
import socket
import threading
import time

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        b"Retry-After: 5\r\nContent-Length: 46\r\n\r\nserver busy: too many connections, retry soon\n")


class _HeaderDeadline(io.RawIOBase):
    """The socket as a raw stream whose reads share one deadline while it is set."""

    def __init__(self, sock: socket.socket, read_timeout: float):
        self.sock, self.read_timeout, self.deadline = sock, read_timeout, None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            if self.deadline is None:
                return self.sock.recv_into(buffer)
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("request headers took too long")
            self.sock.settimeout(min(left, self.read_timeout))
            n = self.sock.recv_into(buffer)
            self.sock.settimeout(self.read_timeout)
            return n
        except OSError as e:
            if e.errno == errno.EBADF:  # closed under us (a websocket that ended): end of input
                return 0
            raise


class Handler(WSGIRequestHandler):
    header_timeout = 10.0
    read_timeout = 30.0

    def setup(self) -> None:
        self.timeout = self.read_timeout  # StreamRequestHandler sets it on the connection
        super().setup()
        self.raw_in = _HeaderDeadline(self.connection, self.read_timeout)
        self.rfile = io.BufferedReader(self.raw_in)

    def handle_one_request(self) -> None:
        self.raw_in.deadline = time.monotonic() + self.header_timeout
        super().handle_one_request()

    def parse_request(self) -> bool:
        ok = super().parse_request()  # has read the headers
        self.raw_in.deadline = None
        return ok


class BoundedServer(ThreadedWSGIServer):
    def __init__(self, *args, max_connections: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(max_connections)
        self.refused = 0

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            self.refused += 1
            try:
                request.setblocking(False)
                request.send(BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


def make(app, settings) -> BoundedServer:
    handler = type("Handler", (Handler,), {"header_timeout": settings.header_timeout_s,
                                           "read_timeout": settings.read_timeout_s})
    return BoundedServer(settings.host, settings.port, app, handler, max_connections=settings.max_connections)
