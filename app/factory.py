"""Flask application factory: pages, vendor files, health, and the Socket.IO endpoint.

The app never does tensor math: it validates (model_server.config), hands configs to
model_server, and sends the bytes of encoded frames to sockets.
"""
from __future__ import annotations

import functools
import logging

import torch
from flask import Flask
from flask_socketio import SocketIO
from werkzeug.middleware.proxy_fix import ProxyFix

from model_server import Limits, memory
from model_server.runstate import preload

from . import assets, embed, exports, headers, lessons
from .events import Playground
from .metrics import Metrics
from .reader import Reader
from .refusals import Refusals
from .registry import Registry
from .settings import ROOT, Serving, Settings
from .socketio_internals import Packet
from .transport import guard, no_delay


def create_app(test_config: dict | None = None) -> Flask:
    """test_config: Settings fields, plus "limits": a dict of Limits and Serving fields."""
    test_config = dict(test_config or {})
    given = test_config.pop("limits", {})
    limits = Limits(**{k: v for k, v in given.items() if k not in Serving.model_fields})
    serving = Serving(**{k: v for k, v in given.items() if k in Serving.model_fields})
    settings = Settings(**test_config)
    logging.basicConfig(level=settings.log_level, format="ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    torch.set_num_threads(settings.torch_threads)
    preload()
    memory.limit_arenas()

    app = Flask(__name__, static_folder=str(ROOT / "static"), template_folder=str(ROOT / "templates"))
    app.config.update(SETTINGS=settings, LIMITS=limits, SERVING=serving)

    def origin_allowed(origin: str | None, environ: dict) -> bool:
        """Our own origin (settings.public_origin when set, else the request's Host), or
        one listed in settings.cors_origins."""
        if origin is None:
            return True
        own = settings.public_origin or f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"
        return origin.lower() == own.lower() or origin in settings.cors_origins or "*" in settings.cors_origins

    socketio = SocketIO(
        app, async_mode="threading", cors_allowed_origins=origin_allowed,
        max_http_buffer_size=serving.max_message_bytes, ping_interval=settings.ping_interval,
        ping_timeout=settings.ping_timeout, message_queue=settings.message_queue,
        manage_session=False, cookie=None, serializer=Packet)
    # every response, Socket.IO's polling answers included (they bypass Flask)
    app.wsgi_app = no_delay(headers.secure(app.wsgi_app, settings.frame_ancestors))
    if serving.trusted_proxies:  # the client address from X-Forwarded-For, set by that many proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=serving.trusted_proxies)
    metrics = Metrics()
    # the registry only ever emits to its own process's clients: with a message queue,
    # publishing their frames to every other instance would be pure waste. (python-socketio's
    # own emit: Flask-SocketIO's wraps callbacks for a request context, which the trainer's
    # frames never have, at a cost paid per frame.)
    emit = functools.partial(socketio.server.emit, ignore_queue=True)
    # every websocket is read on one thread, which waits while the trainer writes a pass
    # of frames (their acknowledgements are then read together)
    reader = Reader()
    registry = Registry(limits, serving, emit, metrics, sending=reader.hold)
    refusals = Refusals(socketio.server, registry)
    socketio.on_namespace(Playground(registry, refusals, {**exports.HANDLERS, **lessons.handlers(registry)}))
    # a websocket's socket timeout: a healthy client answers a ping every ping_interval
    guard(socketio.server, reader, serving.max_message_bytes,
          max(settings.read_timeout_s, settings.ping_interval + settings.ping_timeout), refusals.malformed,
          serving.large_reply_bytes, serving.max_backlog_bytes, refusals.over_reply_budget)
    app.extensions["dropout"] = {"registry": registry, "metrics": metrics, "socketio": socketio, "reader": reader}

    from . import pages, health, schema
    app.register_blueprint(pages.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(embed.bp)
    app.register_blueprint(lessons.bp)
    app.register_blueprint(schema.bp)
    assets.init_app(app, ROOT / "static", settings.node_modules)
    pages.add_security_headers(app, settings)
    return app


def socketio_of(app: Flask) -> SocketIO:
    return app.extensions["dropout"]["socketio"]
