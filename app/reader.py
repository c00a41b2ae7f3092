"""Every websocket of the process read on ONE thread, and written whole.

    Reader        reads every websocket connection (app/websocket_internals.py's
                  Connection) where simple-websocket would start a thread per connection
    WholeSends    a connection's socket as simple-websocket and the frame lane write to it
"""
from __future__ import annotations

import contextlib
import logging
import select
import selectors
import socket
import threading
import time

from wsproto.utilities import LocalProtocolError

from .websocket_internals import Connection, connection_of

log = logging.getLogger("dropout.transport")

HOLD_MAX_S = 0.25   # the Reader waits at most this long for a pass of frames to be written


class WholeSends:
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
        self._new: list[Connection] = []
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self.free = threading.Event()  # cleared while the trainer writes a pass of frames (hold)
        self.free.set()
        self.beat = time.monotonic()   # when its loop last came round (app/watchdog.py)
        self.thread = threading.Thread(target=self._loop, name="websocket-reader", daemon=True)
        self.thread.start()

    def thread_class(self, target, **_kwargs) -> "_Reading":
        """simple-websocket's thread_class: the connection joins this thread's selector
        instead of reading on a thread of its own."""
        return _Reading(self, connection_of(target))

    def add(self, ws: Connection) -> None:
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
            self.beat = time.monotonic()
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

    def _read(self, ws: Connection) -> None:
        """One read of one connection: simple-websocket's thread loop, once."""
        try:
            data = ws.sock.recv(ws.receive_bytes)
            if not data:
                raise OSError("closed by the client")
            ws.last_read = time.monotonic()
            ws.read(data)
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

    def _end(self, ws: Connection) -> None:
        """As simple-websocket's thread ends: the handler thread wakes, the socket closes.
        (The registration goes by file number, and only if it is still this connection's:
        a closed socket's number may already belong to a new connection.)"""
        key = self._sel.get_map().get(ws.reader_fd)
        if key is not None and key.data is ws:
            self._sel.unregister(ws.reader_fd)
        ws.ended()
        try:
            ws.sock.close()  # (a socket object closed already stays closed: its number is not touched)
        except OSError:
            pass


class _Reading:
    """What simple-websocket takes for its connection's reading thread (Reader)."""

    def __init__(self, reader: Reader, ws: Connection):
        self.reader, self.ws = reader, ws
        self.name = "websocket-reader"

    def start(self) -> None:
        self.reader.add(self.ws)
