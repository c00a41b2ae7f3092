"""The embedded web server of `python -m app`: werkzeug's threaded server, bounded.

Werkzeug starts one thread per connection with no cap and waits for a request's headers
as long as the client likes, so a crowd of websockets or of half-sent requests holds as
many threads as it opens, for as long as it likes (docs/benchmarks.md). Here:

* at most settings.max_connections connections are open at once, and at most
  settings.max_connections_per_address from one client address (Slots); one more is
  answered 503 "server busy: ..." naming the limit and closed, from the accepting thread,
  without a thread of its own;
* a request's line and headers must arrive within settings.header_timeout_s, in all; a
  client that sent part of them by then is answered 408 and cut;
* every later read or write waits at most settings.read_timeout_s (a websocket's own
  timeout is set by app/transport.py: a healthy client answers a ping every
  ping_interval);
* what werkzeug writes itself (its 400/414/431 pages, a 500 below the app) carries the
  security headers of app/headers.py, and its access log follows settings.log_level.

gunicorn (the Docker image) uses Slots and the same answers from app/gunicorn_worker.py.
"""
from __future__ import annotations

import collections
import errno
import io
import logging
import socket
import sys
import threading
import time

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from . import headers

log = logging.getLogger("dropout.webserver")


class Slots:
    """Open connections, in all and per client address. take() from the accepting thread,
    give() once the connection is closed."""

    def __init__(self, total: int, per_address: int | None, frame_ancestors: str = "*"):
        """per_address None: addresses are not counted (behind a proxy every peer is the proxy)."""
        self.total, self.per_address = total, per_address
        self.frame_ancestors = frame_ancestors
        self.open = 0
        self.by_address: collections.Counter = collections.Counter()
        self.refused = 0
        self.lock = threading.Lock()

    def take(self, address: str) -> bytes | None:
        """None: the connection holds a slot now. Otherwise the 503 answer to send it."""
        with self.lock:
            if self.open >= self.total:
                message = f"server busy: too many connections (at most {self.total} at once), retry soon"
            elif self.per_address is not None and self.by_address[address] >= self.per_address:
                message = (f"server busy: too many connections from your address "
                           f"(at most {self.per_address} at once), retry soon")
            else:
                self.open += 1
                self.by_address[address] += 1
                return None
            self.refused += 1
        return headers.answer("503 Service Unavailable", message, self.frame_ancestors, retry_after=5)

    def give(self, address: str) -> None:
        with self.lock:
            self.open -= 1
            self.by_address[address] -= 1
            if self.by_address[address] <= 0:
                del self.by_address[address]


class _Closer:
    """Closes refused sockets a moment after their answer: closed at once, a socket whose
    request arrives later answers it with a reset, and the client's kernel may drop the
    answer unread. One thread for all of them; at most MAX waiting (more close at once)."""

    LINGER_S, MAX = 1.0, 1024

    def __init__(self):
        self.waiting: collections.deque = collections.deque()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def close_soon(self, sock: socket.socket) -> None:
        with self.lock:
            if len(self.waiting) >= self.MAX:
                _drain_and_close(sock)
                return
            self.waiting.append((time.monotonic() + self.LINGER_S, sock))
            if self.thread is None or not self.thread.is_alive():  # started in the serving process
                self.thread = threading.Thread(target=self._loop, name="refused-closer", daemon=True)
                self.thread.start()
        self.wake.set()

    def _loop(self) -> None:
        while True:
            self.wake.wait(self.LINGER_S)
            self.wake.clear()
            while True:
                with self.lock:
                    if not self.waiting or self.waiting[0][0] > time.monotonic():
                        break
                    _, sock = self.waiting.popleft()
                _drain_and_close(sock)


def _drain_and_close(sock: socket.socket) -> None:
    try:
        sock.setblocking(False)
        while sock.recv(4096):
            pass
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


_closer = _Closer()


def refuse(sock: socket.socket, answer: bytes) -> None:
    """Write answer without waiting (it fits an empty socket buffer), end the write side
    (the client sees the whole answer), and close the socket a moment later."""
    try:
        sock.setblocking(False)
        sock.send(answer)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    _closer.close_soon(sock)


def too_slow(header_timeout: float, frame_ancestors: str) -> bytes:
    return headers.answer("408 Request Timeout",
                          f"request headers took longer than {header_timeout:g} s; connection closed",
                          frame_ancestors)


class _HeaderDeadline(io.RawIOBase):
    """The socket as a raw stream whose reads share one deadline while it is set."""

    def __init__(self, sock: socket.socket, read_timeout: float):
        self.sock, self.read_timeout, self.deadline = sock, read_timeout, None
        self.got = 0  # bytes read since the deadline was set
        self.expired = False  # a read of the headers timed out

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            if self.deadline is None:
                return self.sock.recv_into(buffer)
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.expired = True
                raise TimeoutError("request headers took too long")
            self.sock.settimeout(min(left, self.read_timeout))
            try:
                n = self.sock.recv_into(buffer)
            except TimeoutError:
                self.expired = True
                raise
            self.sock.settimeout(self.read_timeout)
            self.got += n
            return n
        except OSError as e:
            if e.errno == errno.EBADF:  # closed under us (a websocket that ended): end of input
                return 0
            raise


class Handler(WSGIRequestHandler):
    # http.server answers a request line it cannot read as HTTP/0.9: a body with no status
    # line and no headers at all. Answered as HTTP/1.0, its 400 page carries them.
    default_request_version = "HTTP/1.0"
    header_timeout = 10.0
    read_timeout = 30.0
    frame_ancestors = "*"

    def setup(self) -> None:
        self.timeout = self.read_timeout  # StreamRequestHandler sets it on the connection
        super().setup()
        self.raw_in = _HeaderDeadline(self.connection, self.read_timeout)
        self.rfile = io.BufferedReader(self.raw_in)

    def handle_one_request(self) -> None:
        self.raw_in.deadline = time.monotonic() + self.header_timeout
        self.raw_in.got, self.raw_in.expired = 0, False
        super().handle_one_request()  # a TimeoutError while reading the headers ends it
        if self.raw_in.expired and self.raw_in.got:
            # part of a request came, its headers never completed: say why it is cut
            try:
                self.connection.settimeout(0)
                self.connection.send(too_slow(self.header_timeout, self.frame_ancestors))
            except OSError:
                pass

    def parse_request(self) -> bool:
        ok = super().parse_request()  # has read the headers
        self.raw_in.deadline = None
        return ok

    # What werkzeug and http.server write themselves (send_error's 400/414/431, a 500 below
    # the app) gets the security headers a response lacks; the app's own have them already.
    def send_response_only(self, code, message=None) -> None:
        self._header_names = set()
        super().send_response_only(code, message)

    def send_header(self, keyword, value) -> None:
        getattr(self, "_header_names", set()).add(keyword.lower())
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        names = getattr(self, "_header_names", None)
        if names is not None:
            for k, v in headers.defaults(self.frame_ancestors):
                if k.lower() not in names:
                    super().send_header(k, v)
        super().end_headers()

    def log_error(self, format, *args) -> None:  # a client's timeout or bad request: at INFO
        self.log("info", format, *args)


class BoundedServer(ThreadedWSGIServer):
    def __init__(self, *args, slots: Slots, **kwargs):
        super().__init__(*args, **kwargs)
        self.slots = slots

    def process_request(self, request, client_address) -> None:
        address = client_address[0] if isinstance(client_address, tuple) else ""
        refusal = self.slots.take(address)
        if refusal is not None:
            refuse(request, refusal)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.give(address)
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.give(client_address[0] if isinstance(client_address, tuple) else "")

    def handle_error(self, request, client_address) -> None:
        """A connection's thread ended on an exception. The socket failing under it (reset
        by the client, or closed by the transport that cut the client while http.server
        was answering what came after its websocket) is the client's doing: one line at
        INFO. Anything else is ours: logged with its traceback (socketserver would print
        every one of them to stderr)."""
        error = sys.exc_info()[1]
        address = client_address[0] if isinstance(client_address, tuple) else ""
        if isinstance(error, OSError):
            log.info("event=connection_error peer=%s error=%r", address, error)
        else:
            log.error("event=connection_error peer=%s outcome=error", address, exc_info=error)


def slots_for(settings, serving) -> Slots:
    per_address = None if serving.trusted_proxies else settings.max_connections_per_address
    return Slots(settings.max_connections, per_address, settings.frame_ancestors)


def make(app, settings) -> BoundedServer:
    logging.getLogger("werkzeug").setLevel(settings.log_level)  # werkzeug would pick INFO
    handler = type("Handler", (Handler,), {"header_timeout": settings.header_timeout_s,
                                           "read_timeout": settings.read_timeout_s,
                                           "frame_ancestors": settings.frame_ancestors})
    return BoundedServer(settings.host, settings.port, app, handler,
                         slots=slots_for(settings, app.config["SERVING"]))
