"""Pages, vendor files from installed npm packages, and the security headers."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, send_from_directory

bp = Blueprint("pages", __name__)

# name served at /vendor/<name> -> file inside node_modules (installed by npm ci, never committed)
VENDOR = {
    "plotly.min.js": "plotly.js-dist-min/plotly.min.js",
    "socket.io.esm.min.js": "socket.io-client/dist/socket.io.esm.min.js",
}


@bp.get("/")
def playground():
    return render_template("playground.html", page="playground")


@bp.get("/vendor/<name>")
def vendor(name: str):
    path = VENDOR.get(name)
    if path is None:
        abort(404)
    root = current_app.config["SETTINGS"].node_modules
    return send_from_directory(root, path, max_age=86400)


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
