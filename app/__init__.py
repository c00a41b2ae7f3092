"""The Flask + Flask-SocketIO server (app/factory.py builds it: create_app).

Loaded lazily: gunicorn's arbiter imports app.gunicorn_worker (its worker class) in the
parent process, which must not pay for torch and the whole server; `from app import
create_app` still works, through this module's __getattr__.
"""
from __future__ import annotations

__all__ = ["create_app", "socketio_of"]


def __getattr__(name: str):
    if name in __all__:
        from . import factory
        return getattr(factory, name)
    raise AttributeError(f"module 'app' has no attribute {name!r}")
