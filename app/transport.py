"""Below Flask-SocketIO: what the streaming rules and the public server depend on.

    no_delay        TCP_NODELAY on every connection
    guard           what one client can make the server hold or log: message sizes,
                    malformed packets (app/packets.py), its outgoing backlog, its
                    transport at the end; every websocket read on one thread
                    (app/reader.py), a frame's acknowledgement handed to its callback
                    there; frames written by app/frame_lane.py
    budget_replies  at most one large answer unread per client, and a bounded backlog
    backlog, release  a client's unsent bytes; freeing its transport once it has gone

The libraries' internals this needs are in app/engineio_internals.py,
app/socketio_internals.py and app/websocket_internals.py.
"""
from __future__ import annotations

import functools
import json
import logging
import queue
import re
import socket
import threading
from typing import Callable

from . import engineio_internals, socketio_internals
from .frame_lane import FrameLane, Framed, Wire
from .packets import OnMalformed, checked_messages
from .reader import Reader, WholeSends
from .websocket_internals import Connection, ConnectionClosed

log = logging.getLogger("dropout.transport")

CLOSE_GRACE_S = 1.0  # a disconnected client's transport is cut this long after the session ends
KEEP_BYTES = 4096    # queued packets up to this size outlive a session's end (statuses, close)

_SHORT_ACK = re.compile(r"^43(\d{1,12})(\[(?:true|false|null)?\])$")  # a frame's acknowledgement (default namespace)


def no_delay(wsgi_app):
    """Set TCP_NODELAY on each connection. A Socket.IO binary event is two WebSocket
    messages; with Nagle's algorithm the second waits for the client's delayed ACK,
    which capped acknowledged frames far below the frame rate (docs/benchmarks.md)."""

    def middleware(environ, start_response):
        sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        return wsgi_app(environ, start_response)

    return middleware


class SendQueue(queue.Queue):
    """An Engine.IO socket's outgoing queue that knows how many bytes it holds for the
    client: queued, plus those its writer has taken and not yet finished writing. (The
    websocket writer takes a batch, writes it, then blocks here for the next; a polling
    client's next GET comes after it read the last answer. Either way, the next blocking
    get means the batch before it is out.)"""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.bytes = 0       # queued or being written
        self.taken = 0       # of those, taken by the writer
        self.over_budget = False  # a large message was refused: the client is being cut off

    @staticmethod
    def size(pkt) -> int:
        data = getattr(pkt, "data", None)
        return len(data) if isinstance(data, (str, bytes, bytearray)) else 0

    def put(self, item, block=True, timeout=None):
        with self.mutex:
            self.bytes += self.size(item)
        super().put(item, block, timeout)

    def get(self, block=True, timeout=None):
        if block:
            with self.mutex:
                self.bytes -= self.taken
                self.taken = 0
        item = super().get(block, timeout)
        with self.mutex:
            self.taken += self.size(item)
        return item

    def drop(self, larger_than: int = KEEP_BYTES) -> int:
        """Forget the queued packets larger than larger_than bytes (the writer's batch in
        hand stays); returns bytes freed. Small ones (a last status, the disconnect and
        close packets) stay, for a client that still reads."""
        with self.mutex:
            kept = [p for p in self.queue if self.size(p) <= larger_than]
            dropped = len(self.queue) - len(kept)
            freed = sum(self.size(p) for p in self.queue) - sum(self.size(p) for p in kept)
            self.queue.clear()
            self.queue.extend(kept)
            self.bytes -= freed
            self.unfinished_tasks = max(0, self.unfinished_tasks - dropped)
            if not self.unfinished_tasks:
                self.all_tasks_done.notify_all()
            self.not_full.notify_all()
        return freed


class WebSocket(engineio_internals.WebSocketDriver):
    """One client's websocket: read by the Reader, written whole (WholeSends), its
    messages at most max_bytes, its socket's reads and whole writes at most
    socket_timeout (what engineio means to set, and cannot on simple-websocket's
    wrapper). guard() gives the class attributes."""

    reader: Reader
    max_bytes: int
    socket_timeout: float
    report: OnMalformed
    take_ack: Callable[[str, str], bool]   # (eio_sid, message): True if it was a frame's acknowledgement

    def __init__(self, handler, eio_server, **kwargs):
        super().__init__(handler, eio_server, max_message_size=self.max_bytes, **kwargs)

    def connect(self, environ) -> Connection:
        key = "werkzeug.socket" if "werkzeug.socket" in environ else "gunicorn.socket"
        raw = environ.get(key)
        if raw is not None:
            raw.settimeout(self.socket_timeout)
            environ = {**environ, key: WholeSends(raw, self.reader)}
        ws = Connection(environ, thread_class=self.reader.thread_class, **self.server_args)
        if self.eio_socket is not None:
            self.eio_socket.transport = self
            ws.on_ack = functools.partial(self.take_ack, self.eio_socket.sid)
        return ws

    def wait(self):
        while True:
            data = super().wait()
            if isinstance(data, str) and (not data or data[0] not in "0123456"):
                # not an Engine.IO packet: engineio would raise out of its read loop
                # (a traceback) or drop it silently
                self.report(getattr(self.eio_socket, "sid", ""), "engineio", "not an Engine.IO packet", None)
                continue
            return data

    def send(self, message):
        if type(message) is Wire:  # the frame lane's: framed already
            if not self.ws.connected:
                raise ConnectionClosed(self.ws.close_reason, self.ws.close_message)
            self.ws.sock.send(message)  # (WholeSends: all of it, after any rest of try_send's)
        else:
            super().send(message)

    def write_now(self, wire: Wire) -> bool:
        """The frame lane: write wire at once, from the caller's thread, when nothing is
        queued or being written for this client (order) and the socket takes it
        without waiting. False: queue it."""
        q = self.eio_socket.queue if self.eio_socket is not None else None
        if not isinstance(q, SendQueue) or q.bytes or not self.ws.connected:
            return False
        sock = self.ws.sock
        if not isinstance(sock, WholeSends):
            return False
        done = sock.try_send(wire)
        if done is None:  # part of it: the writer writes the rest
            self.eio_socket.send(Framed(Wire()))
        return done is not False

    def abort(self) -> None:
        """Cut the connection under everything: a writer blocked on a client that
        does not read wakes with an error, and the read loop ends."""
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass


def guard(server, reader: Reader, max_bytes: int, socket_timeout: float, on_malformed: OnMalformed,
          large_bytes: int, max_backlog: int, on_over: Callable[[str, int, int], None]) -> None:
    """Bound what one client can make the server hold or log, below python-socketio.

    * The WebSocket layer gets max_message_size: otherwise simple-websocket buffers a
      whole message (hundreds of MB if a client sends that) before engineio checks
      max_http_buffer_size. Its socket gets socket_timeout for each read and each whole
      write; the reader reads it.
    * Every incoming message is checked before python-socketio parses it
      (app/packets.py); a malformed one is reported to on_malformed, which counts it
      against the client's event rate.
    * Each client's outgoing queue counts its bytes (backlog()), and what it may hold
      unread is bounded (budget_replies: large_bytes, max_backlog, on_over).
    * Each Socket.IO packet's messages are queued together, and frames to websocket
      clients are written at once (app/frame_lane.py)."""
    eio = server.eio

    def take_ack(eio_sid: str, message: str) -> bool:
        """A short acknowledgement ('43<id>[true]', what clients send for a frame) handed
        to its callback here, on the connection's reading thread; anything else (False)
        goes the usual way."""
        m = _SHORT_ACK.match(message)
        sid = m and server.manager.sid_from_eio_sid(eio_sid, "/")
        if not sid:
            return False
        try:
            server.manager.trigger_callback(sid, int(m[1]), json.loads(m[2]))
        except Exception:  # a bug in a callback must not end the connection's reading thread
            log.exception("event=ack outcome=error")
        return True

    websocket = type("WebSocket", (WebSocket,), {
        "reader": reader, "max_bytes": max_bytes, "socket_timeout": socket_timeout,
        "report": staticmethod(on_malformed), "take_ack": staticmethod(take_ack)})
    engineio_internals.install(eio, websocket, SendQueue)
    eio.on("message", checked_messages(eio.handlers["message"], on_malformed))
    admit = budget_replies(server, large_bytes, max_backlog, on_over)
    socketio_internals.whole_packets(server, FrameLane(server, admit))


def budget_replies(server, large_bytes: int, max_backlog: int,
                   on_over: Callable[[str, int, int], None]) -> Callable[[str, int], bool]:
    """What a client that does not read can make the server hold for it: at most one
    large message (over large_bytes) unread, and max_backlog bytes in all. A message past
    either is not queued, and on_over(eio_sid, bytes waiting, message bytes) is called
    (on a thread of its own: this runs under the send lock) to tell the client and
    disconnect it. Frames stay far below large_bytes (one in flight per run).
    Returns admit(eio_sid, size): whether a message of that size may be queued (FrameLane
    asks it too)."""
    eio = server.eio
    send = eio.send

    def admit(eio_sid: str, size: int) -> bool:
        q = getattr(eio.sockets.get(eio_sid), "queue", None)
        if not isinstance(q, SendQueue):
            return True
        if q.over_budget:  # being cut off: only its last status and the disconnect go out
            return size <= KEEP_BYTES
        if (size > large_bytes and q.bytes > large_bytes) or q.bytes + size > max_backlog:
            q.over_budget = True
            threading.Thread(target=on_over, args=(eio_sid, q.bytes, size), name="reply-budget",
                             daemon=True).start()
            return False
        return True

    def budgeted(eio_sid, data):
        size = len(data) if isinstance(data, (str, bytes, bytearray)) else 0
        return send(eio_sid, data) if admit(eio_sid, size) else None

    eio.send = budgeted
    return admit


def backlog(server, sid: str, namespace: str = "/") -> int:
    """Bytes waiting to reach the client of Socket.IO sid (0 if it is gone)."""
    try:
        eio_sid = server.manager.eio_sid_from_sid(sid, namespace)
        q = server.eio.sockets[eio_sid].queue
    except (KeyError, AttributeError, TypeError):
        return 0
    return max(0, q.bytes) if isinstance(q, SendQueue) else 0


def release(server, eio_sid: str, grace: float = CLOSE_GRACE_S) -> int:
    """Free what a client's transport holds once its session has ended, whatever the client
    does: its queued packets now, and its connection after grace seconds (time to write a
    last status and the close packet to a client that reads). Returns bytes dropped."""
    sock = server.eio.sockets.get(eio_sid)
    if sock is None:
        return 0
    freed = sock.queue.drop() if isinstance(sock.queue, SendQueue) else 0
    transport = getattr(sock, "transport", None)
    if transport is not None:
        timer = threading.Timer(grace, transport.abort)
        timer.daemon = True
        timer.start()
    return freed
