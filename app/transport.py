"""Two fixes below Flask-SocketIO that the streaming rules depend on."""
from __future__ import annotations

import functools
import socket
import threading


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
    for the attachment and its stream breaks. Every send goes through _send_packet, and it
    only puts messages on per-client queues, so one lock per server costs nothing
    measurable. (RLock: an emit with a callback can re-enter.)"""
    if getattr(server, "_packets_serialized", False):
        return
    send, lock = server._send_packet, threading.RLock()

    @functools.wraps(send)
    def locked(*args, **kwargs):
        with lock:
            return send(*args, **kwargs)

    server._send_packet = locked
    server._packets_serialized = True


def limit_incoming(server, max_bytes: int) -> None:
    """Bound what one client can make the server hold, below python-socketio.

    * The WebSocket layer gets max_message_size: otherwise simple-websocket buffers a
      whole message (hundreds of MB if a client sends that) before engineio checks
      max_http_buffer_size.
    * Binary events and binary acks from clients are dropped unread: this app's clients
      send none, and python-socketio would collect every attachment a binary packet's
      header announces (up to 10**10 of them)."""
    eio = server.eio
    eio._async = {**eio._async, "websocket": functools.partial(eio._async["websocket"], max_message_size=max_bytes)}
    handle = server._handle_eio_message

    def text_events_only(eio_sid, data):
        if isinstance(data, (bytes, bytearray)) or (isinstance(data, str) and data[:1] in ("5", "6")):
            return None
        return handle(eio_sid, data)

    eio.on("message", text_events_only)
