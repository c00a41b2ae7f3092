"""Pages and the security headers. Static and vendor files: app/assets.py."""
from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("pages", __name__)


@bp.get("/")
def playground():
    return render_template("playground.html", page="playground")


def add_security_headers(app, settings) -> None:
    csp = "; ".join([
        "default-src 'self'",
        "script-src 'self'",                    # no inline script, no eval
        "style-src 'self' 'unsafe-inline'",     # Plotly writes style attributes and <style>
        "img-src 'self' data: blob:",           # Plotly's PNG export
        "connect-src 'self'",                   # the Socket.IO endpoint (ws: included)
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        f"frame-ancestors {settings.frame_ancestors}",
    ])

    @app.after_request
    def headers(resp):
        resp.headers.setdefault("Content-Security-Policy", csp)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "no-referrer")
        return resp
