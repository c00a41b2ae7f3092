"""Fixes below Flask-SocketIO that the streaming rules and the public server depend on.

    no_delay            TCP_NODELAY on every connection
    serialize_packets   a Socket.IO packet's Engine.IO messages stay together
    Packet              python-socketio's packet, with a linear check for binary data
    guard               what one client can make the server hold or log: message sizes,
                        malformed packets, its outgoing backlog, its transport at the end;
                        every websocket read on one thread (Reader), a frame's
                        acknowledgement handed to its callback there
    FrameLane           a frame to a websocket client written at once, in one write
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import queue
import re
import select
import selectors
import socket
import struct
import threading
import time
from typing import Callable

import simple_websocket
from engineio import packet as eio_packet
from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
from socketio import packet
from wsproto.utilities import LocalProtocolError

log = logging.getLogger("dropout.transport")

# what a client's JSON may be, checked on the raw text before any parser sees it: deeper
# nesting costs recursion (3,000 levels took the parser past its limit, with a traceback);
# a longer number costs int()'s quadratic conversion. No event of this protocol comes near.
MAX_DEPTH = 32
MAX_DIGITS = 40
HOLD_MAX_S = 0.25   # the Reader waits at most this long for a pass of frames to be written
CLOSE_GRACE_S = 1.0  # a disconnected client's transport is cut this long after the session ends
KEEP_BYTES = 4096    # queued packets up to this size outlive a session's end (statuses, close)

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_LONG_NUMBER = re.compile(r"\d{%d,}" % (MAX_DIGITS + 1))
_NOT_BRACKETS = re.compile(r"[^\[\]{}]")
_EVENT_ID = re.compile(r"^2(\d{1,12})\[")  # a Socket.IO event with an ack id, default namespace
_SHORT_ACK = re.compile(r"^43(\d{1,12})(\[(?:true|false|null)?\])$")  # a frame's acknowledgement (default namespace)


def no_delay(wsgi_app):
    """Set TCP_NODELAY on each connection. A Socket.IO binary event is two WebSocket
    messages; with Nagle's algorithm the second waits for the client's delayed ACK
    (~40 ms on Linux), which capped acknowledged frames at ~20/s."""

    def middleware(environ, start_response):
        sock = environ.get("werkzeug.socket") or environ.get("gunicorn.socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        return wsgi_app(environ, start_response)

    return middleware


def serialize_packets(server) -> None:
    """Keep each Socket.IO packet's Engine.IO messages together.

    A binary event is several messages (a text header, then one per attachment) and
    python-socketio's Server._send_packet queues them one by one with no lock. When another
    thread sends to the same client in between (a status from a handler, an event's
    acknowledgement, a broadcast from the message queue), the client takes that message
    for the attachment and its stream breaks. So the messages of one packet are queued
    under one lock per server. The packet is encoded before the lock: a large
    acknowledgement's JSON (a configure's 2,000 points) takes milliseconds, and the
    trainer's frames, queued from its own thread, must not wait for a dozen of them.
    (This is _send_packet's body; RLock: an emit with a callback can re-enter.)"""
    if getattr(server, "packet_lock", None) is not None:
        return
    lock = server.packet_lock = threading.RLock()

    def send_packet(eio_sid, pkt):
        encoded = pkt.encode()
        with lock:
            for message in encoded if isinstance(encoded, list) else [encoded]:
                server.eio.send(eio_sid, message)

    server._send_packet = send_packet


_SCALARS = frozenset((float, int, str, bool, type(None)))  # what most of a packet's data is


class Packet(packet.Packet):
    """The Socket.IO packet class for our server (its `serializer`). Every packet asks
    whether its data holds binary parts; the stock check builds a list at every level
    and calls itself per item: for a configure's answer with 2,000 points, ~6 ms
    holding the interpreter on a socket thread while the trainer waits for it. This
    one walks the data once, scalars first (~0.7 ms), and stops at the first binary part."""

    @classmethod
    def data_is_binary(cls, data) -> bool:
        stack = [data]
        while stack:
            item = stack.pop()
            if type(item) in _SCALARS:
                continue
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, (bytes, bytearray)):
                return True
        return False


def malformed_json(text: str) -> tuple[str, str] | None:
    """Why a packet's JSON is refused before parsing, as (kind, detail); None: it may be
    parsed. Linear in the text, in regular expressions: strings are checked and blanked,
    then the structure is measured."""
    if "\\u" in text and any(_not_unicode(s) for s in _STRINGS.findall(text) if "\\u" in s):
        # a lone surrogate escape ("\ud800") decodes to a str that no UTF-8 encoder takes:
        # pydantic's error rendering, the log and the reply all raised on it
        return "not_unicode", "a string that is not valid Unicode (a lone surrogate escape)"
    bare = _STRINGS.sub('""', text)
    if _LONG_NUMBER.search(bare):
        return "long_number", f"a number longer than {MAX_DIGITS} digits"
    brackets = _NOT_BRACKETS.sub("", bare)
    if len(brackets) <= 2 * MAX_DEPTH:  # too few to nest deeper
        return None
    depth = 0
    for c in brackets:
        depth += 1 if c in "[{" else -1
        if depth > MAX_DEPTH:
            return "too_deep", f"nesting deeper than {MAX_DEPTH} levels"
    return None


def _not_unicode(literal: str) -> bool:
    try:
        json.loads(literal).encode("utf-8")
    except (ValueError, UnicodeEncodeError):
        return True
    return False


# the malformed-packet callback: (eio_sid, kind, detail, ack_id or None)
OnMalformed = Callable[[str, str, str, "int | None"], None]


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


class _WholeSends:
    """A connection's socket as simple-websocket and FrameLane write to it.

    * send() sends everything: simple-websocket calls sock.send() and ignores the count;
      on a socket with a timeout (ours have one) a send may be partial.
    * One message at a time: the writer thread, the Reader's answers (a close, a pong)
      and a frame written at once (try_send) each hold the connection's lock.
    * On the Reader's thread (it reads for every client) a send that would wait is
      refused instead (OSError: the connection ends)."""

    def __init__(self, sock, reader: "Reader | None" = None):
        self._sock, self._reader = sock, reader
        self._lock = threading.Lock()
        self._rest = b""  # what try_send could not write at once: it goes first

    def send(self, data, *flags):
        if self._reader is not None and threading.current_thread() is self._reader.thread:
            if not self._lock.acquire(blocking=False):
                raise OSError("the connection is busy writing")
            try:
                if self._rest or not select.select([], [self._sock], [], 0)[1]:
                    raise OSError("the client does not read")
                self._sock.sendall(data, *flags)
            finally:
                self._lock.release()
            return len(data)
        with self._lock:
            if self._rest:
                rest, self._rest = self._rest, b""
                self._sock.sendall(rest)
            if data:
                self._sock.sendall(data, *flags)
        return len(data)

    def try_send(self, data: bytes) -> bool | None:
        """Write data now, without waiting: True when all of it went; None when part of
        it went (the rest goes before anything else, and the caller must wake the
        writer: send(b"") writes it); False when nothing went (the lock is taken, a rest
        is still waiting, or the socket takes nothing now)."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            try:
                if self._rest or not select.select([], [self._sock], [], 0)[1]:
                    return False
                n = self._sock.send(data, socket.MSG_DONTWAIT)
            except (OSError, ValueError):  # would block, or closed meanwhile (by the Reader)
                return False
            if n < len(data):
                self._rest = bytes(data[n:])
                return None
            return True
        finally:
            self._lock.release()

    def __getattr__(self, name):
        return getattr(self._sock, name)


class Reader:
    """Reads every websocket connection of a server on ONE thread, where simple-websocket
    starts a thread per connection (its thread_class is replaced). An acknowledgement
    per frame and client woke that client's thread: at a hundred clients, thousands of
    thread switches a second, each a hand-over of the interpreter from the trainer,
    and a hundred threads. This thread wakes once for all the connections that
    have something to read, reads each once (as the per-connection thread did in its
    loop: recv, then wsproto's events) and hands acknowledgements to their callbacks
    (_Inbox); other messages go to each connection's handler thread as before. A
    connection that sends nothing for its socket's timeout ends, as its thread's recv
    timed out before."""

    SWEEP_S = 1.0

    def __init__(self):
        self._sel = selectors.DefaultSelector()
        self._new: list["_WebSocket"] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self.free = threading.Event()  # cleared while the trainer writes a pass of frames (hold)
        self.free.set()
        self.thread = threading.Thread(target=self._loop, name="websocket-reader", daemon=True)
        self.thread.start()

    def thread_class(self, target, **_kwargs) -> "_Reading":
        """simple-websocket's thread_class(target=ws._thread): the connection joins this
        thread's selector instead."""
        return _Reading(self, target.__self__)

    def add(self, ws: "_WebSocket") -> None:
        with self._lock:
            self._new.append(ws)
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    @contextlib.contextmanager
    def hold(self):
        """Read nothing meanwhile (the trainer writes a pass of frames): the answers to
        them are read together afterwards, instead of this thread taking the interpreter
        back from the trainer after each of its writes."""
        self.free.clear()
        try:
            yield
        finally:
            self.free.set()

    def _loop(self) -> None:
        next_sweep = time.monotonic() + self.SWEEP_S
        while True:
            try:
                events = self._sel.select(self.SWEEP_S)
                self.free.wait(HOLD_MAX_S)
                for key, _ in events:
                    if key.data is None:
                        self._take_new()
                    else:
                        self._read(key.data)
                now = time.monotonic()
                if now >= next_sweep:
                    next_sweep = now + self.SWEEP_S
                    self._sweep(now)
            except Exception:  # a bug here must not stop every client's reading
                log.exception("event=websocket_reader outcome=error")
                time.sleep(0.01)

    def _take_new(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            new, self._new = self._new, []
        for ws in new:
            ws.last_read = time.monotonic()
            try:
                fd = ws.sock.fileno()
            except OSError:
                fd = -1
            if fd < 0:  # closed already
                self._end(ws)
                continue
            old = self._sel.get_map().get(fd)
            if old is not None:
                # that number's last connection was closed under this thread (by the web
                # server, once its handler returned) and the number is in use again: the
                # old one has ended
                self._sel.unregister(fd)
                self._end(old.data)
            ws.reader_fd = fd
            self._sel.register(fd, selectors.EVENT_READ, ws)

    def _read(self, ws: "_WebSocket") -> None:
        """One read of one connection: simple-websocket's thread loop, once."""
        try:
            data = ws.sock.recv(ws.receive_bytes)
            if not data:
                raise OSError("closed by the client")
            ws.last_read = time.monotonic()
            ws.ws.receive_data(data)
            ws.connected = ws._handle_events()
        except (OSError, LocalProtocolError):
            ws.connected = False
        except Exception:
            log.exception("event=websocket_read outcome=error")
            ws.connected = False
        if not ws.connected:
            self._end(ws)

    def _sweep(self, now: float) -> None:
        for key in list(self._sel.get_map().values()):
            ws = key.data
            if ws is not None:
                timeout = ws.sock.gettimeout()
                if timeout is not None and now - ws.last_read > timeout:
                    self._end(ws)

    def _end(self, ws: "_WebSocket") -> None:
        """As simple-websocket's thread ends: the handler thread wakes, the socket closes.
        (The registration goes by file number, and only if it is still this connection's:
        a closed socket's number may already belong to a new connection.)"""
        key = self._sel.get_map().get(ws.reader_fd)
        if key is not None and key.data is ws:
            self._sel.unregister(ws.reader_fd)
        ws.connected = False
        ws.quiet = False
        ws.event.set()
        try:
            ws.sock.close()  # (a socket object closed already stays closed: its number is not touched)
        except OSError:
            pass


class _Reading:
    """What simple-websocket takes for its connection's reading thread (Reader)."""

    def __init__(self, reader: Reader, ws: "_WebSocket"):
        self.reader, self.ws = reader, ws
        self.name = "websocket-reader"

    def start(self) -> None:
        self.reader.add(self.ws)


class _Inbox(list):
    """simple-websocket's buffer of received messages, which hands a frame's
    acknowledgement to its connection's on_ack on the reading thread (the Reader) instead
    of queueing it and waking the connection's handler thread for it."""

    def __init__(self, ws: "_WebSocket"):
        super().__init__()
        self.ws = ws

    def append(self, message) -> None:
        on_ack = self.ws.on_ack
        if on_ack is not None and type(message) is str and message.startswith("43") and on_ack(message):
            self.ws.quiet = True  # nothing was queued: the wake-up that follows is not needed
            return
        super().append(message)


class _Wake(threading.Event):
    """The reader's wake-up for the handler thread, skipped once after an acknowledgement
    that _Inbox took (both run on the reading thread, one right after the other)."""

    def __init__(self, ws: "_WebSocket"):
        super().__init__()
        self.ws = ws

    def set(self) -> None:
        if self.ws.quiet:
            self.ws.quiet = False
            return
        super().set()


class _WebSocket(simple_websocket.Server):
    on_ack: Callable[[str], bool] | None = None  # takes a message, True if it was an acknowledgement
    quiet = False
    last_read = 0.0  # (Reader) when it last read something
    reader_fd = -1   # (Reader) the file number it is registered under

    def handshake(self):
        super().handshake()  # (before the reading thread starts)
        self.input_buffer, self.event = _Inbox(self), _Wake(self)

    def _handle_events(self):
        # simple-websocket sets its event before it marks the connection closed when a
        # message is too big, so a reader waiting on the event can miss the close and
        # sleep until the ping timeout (the runs of a client that sent an oversized
        # message ended ~20 s late). Mark, then wake it again.
        keep_going = super()._handle_events()
        if not keep_going:
            self.connected = False
            self.quiet = False
            self.event.set()
        return keep_going


class Wire(bytes):
    """One or more WebSocket messages framed already: written to the socket as they are."""


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """A whole, unmasked WebSocket message (a server's): FIN, opcode, length, payload."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class _Framed:
    """An Engine.IO queue item that is WebSocket messages framed already (FrameLane)."""
    __slots__ = ("data",)
    packet_type = eio_packet.MESSAGE

    def __init__(self, wire: Wire):
        self.data = wire

    def encode(self) -> Wire:
        return self.data


def guard(server, max_bytes: int, socket_timeout: float, on_malformed: OnMalformed) -> None:
    """Bound what one client can make the server hold or log, below python-socketio.

    * The WebSocket layer gets max_message_size: otherwise simple-websocket buffers a
      whole message (hundreds of MB if a client sends that) before engineio checks
      max_http_buffer_size. Its socket gets socket_timeout for each read and each whole
      write (what engineio means to set, and cannot on simple-websocket's wrapper).
    * Binary events and binary acks from clients are dropped unread: this app's clients
      send none, and python-socketio would collect every attachment a binary packet's
      header announces (up to 10**10 of them). Like every malformed packet, each is
      reported to on_malformed, which counts it against the client's event rate.
    * A packet whose JSON nests deeper than MAX_DEPTH or holds a number longer than
      MAX_DIGITS is refused before parsing; one that fails to parse or has no event name
      is reported instead of raising (engineio would log a traceback for each).
    * Each client's outgoing queue counts its bytes (backlog())."""
    eio = server.eio
    report = on_malformed
    reader = server.websocket_reader = Reader()

    class WebSocket(SimpleWebSocketWSGI):
        def __init__(self, handler, eio_server, **kwargs):
            super().__init__(handler, eio_server, max_message_size=max_bytes, **kwargs)
            self.eio_socket = getattr(handler, "__self__", None)

        def __call__(self, environ, start_response):
            # SimpleWebSocketWSGI.__call__, with the fixed server class and whole sends
            key = "werkzeug.socket" if "werkzeug.socket" in environ else "gunicorn.socket"
            raw = environ.get(key)
            if raw is not None:
                raw.settimeout(socket_timeout)
                environ = {**environ, key: _WholeSends(raw, reader)}
            self.ws = _WebSocket(environ, thread_class=reader.thread_class, **self.server_args)
            if self.eio_socket is not None:
                self.eio_socket.transport = self
                self.ws.on_ack = functools.partial(take_ack, self.eio_socket.sid)
            ret = self.app(self)
            if self.ws.mode == "gunicorn":
                raise StopIteration()
            if self.ws.mode == "werkzeug":
                raise ConnectionError()
            return ret

        def wait(self):
            while True:
                data = super().wait()
                if isinstance(data, str) and (not data or data[0] not in "0123456"):
                    # not an Engine.IO packet: engineio would raise out of its read loop
                    # (a traceback) or drop it silently
                    sid = getattr(self.eio_socket, "sid", "")
                    report(sid, "engineio", "not an Engine.IO packet", None)
                    continue
                return data

        def send(self, message):
            if type(message) is Wire:  # FrameLane's: framed already
                if not self.ws.connected:
                    raise simple_websocket.ConnectionClosed(self.ws.close_reason, self.ws.close_message)
                self.ws.sock.send(message)  # (_WholeSends: all of it, after any rest of try_send's)
            else:
                super().send(message)

        def write_now(self, wire: Wire) -> bool:
            """FrameLane: write wire at once, from the caller's thread, when nothing is
            queued or being written for this client (order) and the socket takes it
            without waiting. False: queue it."""
            q = self.eio_socket.queue if self.eio_socket is not None else None
            if not isinstance(q, SendQueue) or q.bytes or not self.ws.connected:
                return False
            sock = self.ws.sock
            if not isinstance(sock, _WholeSends):
                return False
            done = sock.try_send(wire)
            if done is None:  # part of it: the writer writes the rest
                self.eio_socket.send(_Framed(Wire()))
            return done is not False

        def abort(self) -> None:
            """Cut the connection under everything: a writer blocked on a client that
            does not read wakes with an error, and the read loop ends."""
            try:
                self.ws.sock.shutdown(socket.SHUT_RDWR)
            except (OSError, AttributeError):
                pass

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

    eio._async = {**eio._async, "websocket": WebSocket, "queue": SendQueue}
    handle = server._handle_eio_message

    def checked(eio_sid, data):
        if isinstance(data, (bytes, bytearray)) or (isinstance(data, str) and data[:1] in ("5", "6")):
            return report(eio_sid, "binary", "binary packets are not accepted", None)
        if not isinstance(data, str):
            return report(eio_sid, "packet", "not a text packet", None)
        problem = malformed_json(data)
        if problem:
            m = _EVENT_ID.match(data)
            return report(eio_sid, *problem, int(m[1]) if m else None)
        if data[:1] == "2" and not _has_event_name(data):
            return report(eio_sid, "no_event", "an event without a name", None)
        try:
            return handle(eio_sid, data)
        except Exception as e:  # a parse failure: one line from on_malformed, no traceback
            return report(eio_sid, "unparsable", f"{type(e).__name__}: {str(e)[:80]}", None)

    eio.on("message", checked)


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


class FrameLane:
    """Frames to websocket clients, written at once from the trainer's thread.

    A frame is a Socket.IO binary event with an acknowledgement: a text header
    ('451-<id>["frame",{"_placeholder":true,"num":0}]') and one binary attachment, two
    WebSocket messages. python-socketio would build a packet, check and encode it and
    queue two Engine.IO packets, and the client's writer thread would wake, frame each
    with wsproto and write each. Here both are framed at once (uncompressed: what the
    client receives is what it always did) and written in one non-blocking write when
    nothing else waits for that client; else (or for the part a full socket did not
    take) they are queued as one item for its writer. At a hundred clients, a writer
    woken per frame handed the interpreter back and forth with the trainer thousands of
    times a second: the trainer's step took three times its CPU time in wall time.
    A client on another transport (long-polling, or Flask-SocketIO's test client) gets
    the frame through fallback(event, data, to=sid, callback=...)."""

    def __init__(self, server, fallback: Callable[..., None], admit: Callable[[str, int], bool]):
        self.server, self.fallback, self.admit = server, fallback, admit

    def __call__(self, sid: str, data: bytes, callback: Callable[..., None]) -> None:
        manager = self.server.manager
        eio_sid = manager.eio_sid_from_sid(sid, "/")
        sock = self.server.eio.sockets.get(eio_sid) if eio_sid else None
        if sock is None or getattr(sock, "transport", None) is None or not sock.upgraded or sock.upgrading:
            self.fallback("frame", data, to=sid, callback=callback)
            return
        ack = manager._generate_ack_id(sid, callback)
        # Engine.IO's message '4', then Socket.IO's binary event '5' with one attachment
        head = b'451-%d["frame",{"_placeholder":true,"num":0}]' % ack
        wire = Wire(ws_frame(0x1, head) + ws_frame(0x2, data))
        with self.server.packet_lock:  # never between another packet's header and attachment
            if self.admit(eio_sid, len(wire)) and not sock.transport.write_now(wire):
                sock.send(_Framed(wire))


def _has_event_name(data: str) -> bool:
    """Socket.IO would index data[0] of an EVENT packet ('2[...]' after namespace and id):
    a string or a number is a name (a number is refused later as an unknown event)."""
    i = data.find("[")
    if i < 0:
        return False
    rest = data[i + 1:].lstrip()
    return bool(rest) and rest[0] not in "]{["


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
