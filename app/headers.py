"""Security headers on every response, including those Flask never sees.

Socket.IO's polling answers (/socket.io/?transport=polling) are written by python-engineio
below Flask, so app/pages.py's after_request hook does not reach them. This WSGI
middleware adds what a response lacks: pages keep their own (fuller) policy, and the
rest get one that allows nothing to load from them.

The web servers write a few answers themselves, below any WSGI middleware: "server busy"
(503), request headers too slow (408), and their own error pages (werkzeug's and
gunicorn's 400/414/431). app/webserver.py and app/gunicorn_worker.py give those the same
headers, from defaults() and answer() here.
"""
from __future__ import annotations


def defaults(frame_ancestors: str) -> list[tuple[str, str]]:
    """The headers every response carries unless it has its own."""
    return [
        ("Content-Security-Policy", f"default-src 'none'; frame-ancestors {frame_ancestors}"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ]


def answer(status: str, message: str, frame_ancestors: str, retry_after: int | None = None) -> bytes:
    """A whole plain-text HTTP/1.1 answer that closes the connection, e.g.
    answer("503 Service Unavailable", "server busy: ...", "*")."""
    body = (message.rstrip("\n") + "\n").encode()
    lines = [f"HTTP/1.1 {status}", "Content-Type: text/plain; charset=utf-8", "Connection: close",
             f"Content-Length: {len(body)}"]
    if retry_after is not None:
        lines.append(f"Retry-After: {retry_after}")
    lines += [f"{k}: {v}" for k, v in defaults(frame_ancestors)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def add_to_head(head: bytes, frame_ancestors: str) -> bytes:
    """A response head written by a server's own code (b"HTTP/1.1 400 ...\\r\\n...\\r\\n\\r\\n
    <body>"), with the headers it lacks added after its status line."""
    if not head.startswith(b"HTTP/"):
        return head
    end = head.find(b"\r\n\r\n")
    present = {line.split(b":", 1)[0].strip().lower() for line in head[:end].split(b"\r\n")[1:]}
    extra = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in defaults(frame_ancestors)
                     if k.lower().encode() not in present)
    first = head.find(b"\r\n") + 2
    return head[:first] + extra + head[first:]


def secure(wsgi_app, frame_ancestors: str):
    added = defaults(frame_ancestors)

    def middleware(environ, start_response):
        def start(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            headers = list(headers) + [(k, v) for k, v in added if k.lower() not in present]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return wsgi_app(environ, start)

    return middleware
