"""Security headers on every response, including those Flask never sees.

Socket.IO's polling answers (/socket.io/?transport=polling) are written by python-engineio
below Flask, so app/pages.py's after_request hook does not reach them. This WSGI
middleware adds what a response lacks: pages keep their own (fuller) policy, and the
rest get one that allows nothing to load from them.
"""
from __future__ import annotations


def secure(wsgi_app, frame_ancestors: str):
    defaults = [
        ("Content-Security-Policy", f"default-src 'none'; frame-ancestors {frame_ancestors}"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ]

    def middleware(environ, start_response):
        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers = list(headers) + [(k, v) for k, v in defaults if k.lower() not in present]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return wsgi_app(environ, start)

    return middleware
