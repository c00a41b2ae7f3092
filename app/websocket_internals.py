"""Every internal of simple-websocket the server relies on, in one place. Importing this
module checks that the installed simple-websocket is the one requirements.txt pins, and
the server does not start on another (tests/test_internals.py holds each use below to
the library's public behaviour: a message sent by a client arrives, an oversized one
closes the connection).

    Connection     simple_websocket.Server whose reading is done by app/reader.py's
                   Reader: its thread_class (given target=self._thread) adds the
                   connection to the Reader instead of starting a thread, and
                   read(data) is one pass of _thread's loop (wsproto's receive_data,
                   then _handle_events)
"""
from __future__ import annotations

import threading
from importlib.metadata import version
from typing import Callable

import simple_websocket

from model_server.pins import check_pinned

check_pinned("simple-websocket", version("simple-websocket"), "app/websocket_internals.py")

ConnectionClosed = simple_websocket.ConnectionClosed


class _Inbox(list):
    """simple-websocket's buffer of received messages, which hands a frame's
    acknowledgement to its connection's on_ack on the reading thread (the Reader) instead
    of queueing it and waking the connection's handler thread for it."""

    def __init__(self, ws: "Connection"):
        super().__init__()
        self.ws = ws

    def append(self, message) -> None:
        on_ack = self.ws.on_ack
        if on_ack is not None and type(message) is str and message.startswith("43") and on_ack(message):
            self.ws.quiet = True  # nothing was queued: the wake-up that follows is not needed
            return
        super().append(message)


class _Wake(threading.Event):
    """The reader's wake-up for the handler thread (simple-websocket's event), skipped once
    after an acknowledgement that _Inbox took (both run on the reading thread, one right
    after the other)."""

    def __init__(self, ws: "Connection"):
        super().__init__()
        self.ws = ws

    def set(self) -> None:
        if self.ws.quiet:
            self.ws.quiet = False
            return
        super().set()


class Connection(simple_websocket.Server):
    """A server-side websocket read by the Reader (app/reader.py), not by a thread of its own."""

    on_ack: Callable[[str], bool] | None = None  # takes a message, True if it was an acknowledgement
    quiet = False
    last_read = 0.0  # (Reader) when it last read something
    reader_fd = -1   # (Reader) the file number it is registered under

    def handshake(self):
        super().handshake()  # (before the reading thread starts)
        self.input_buffer, self.event = _Inbox(self), _Wake(self)

    def read(self, data: bytes) -> None:
        """What simple-websocket's reading thread does with the bytes of one recv."""
        self.ws.receive_data(data)
        self.connected = self._handle_events()

    def ended(self) -> None:
        """The reading has ended: the handler thread wakes and sees the connection closed."""
        self.connected = False
        self.quiet = False
        self.event.set()

    def _handle_events(self):
        # simple-websocket sets its event before it marks the connection closed when a
        # message is too big, so a reader waiting on the event can miss the close and
        # sleep until the ping timeout (the runs of a client that sent an oversized
        # message ended late). Mark, then wake it again.
        keep_going = super()._handle_events()
        if not keep_going:
            self.ended()
        return keep_going


def connection_of(target: Callable[[], None]) -> Connection:
    """The connection whose reading thread simple-websocket would start (thread_class's
    target is its bound _thread)."""
    return target.__self__
