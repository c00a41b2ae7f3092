"""Every internal of python-engineio the server relies on, in one place. Importing this
module checks that the installed python-engineio is the one requirements.txt pins, and
the server does not start on another (tests/test_internals.py holds each use below to
the library's public behaviour: a websocket client connects and talks, the server's
queues are ours).

    WebSocketDriver  engineio's websocket driver for the threading mode
                     (async_drivers._websocket_wsgi.SimpleWebSocketWSGI), whose __call__
                     builds the connection with connect(environ) (a subclass gives it)
    install          a server's drivers (Server._async): its websockets and its sockets'
                     outgoing queues
"""
from __future__ import annotations

from importlib.metadata import version

from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI

from model_server.pins import check_pinned

check_pinned("python-engineio", version("python-engineio"), "app/engineio_internals.py")


class WebSocketDriver(SimpleWebSocketWSGI):
    """One websocket of an Engine.IO socket. engineio builds it with the socket's handler
    (a bound method of the socket: eio_socket) and calls it with the upgrade request."""

    def __init__(self, handler, eio_server, **kwargs):
        super().__init__(handler, eio_server, **kwargs)
        self.eio_socket = getattr(handler, "__self__", None)

    def connect(self, environ):
        """The websocket connection for this request (what the stock __call__ builds)."""
        raise NotImplementedError

    def __call__(self, environ, start_response):
        # SimpleWebSocketWSGI.__call__, with the connection from connect()
        self.ws = self.connect(environ)
        ret = self.app(self)
        if self.ws.mode == "gunicorn":
            raise StopIteration()
        if self.ws.mode == "werkzeug":
            raise ConnectionError()
        return ret


def install(eio, websocket: type[WebSocketDriver], queue: type) -> None:
    """eio's websocket driver and the queue class of its sockets' outgoing packets."""
    eio._async = {**eio._async, "websocket": websocket, "queue": queue}
