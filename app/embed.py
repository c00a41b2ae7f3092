"""Embedding: the compact /embed page, oEmbed, and an example course page.

    /embed?hide=data,model&lock=p,lr&lesson=<id>#p=0.5,0.5   the playground for an iframe
    /oembed?url=<a page of ours>&maxwidth=&maxheight=&format=json
    /course-example                                          two embeds on one page

The embed page needs no cookie and no inline script; which origins may send it
postMessage commands (settings.embed_origins) reaches its script in a JSON block.
The postMessage API is described in docs/embedding.md.
"""
from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from markupsafe import escape

from .settings import ROOT

bp = Blueprint("embed", __name__)

# what ?hide= may name: the settings groups of the form, and the widget's parts
GROUPS = ("data", "model", "train", "controls", "transport", "network", "boundary", "loss", "export", "caption")
EMBED_SIZE = (800, 600)      # the layout is designed for this; it adapts down to 360 px wide
MIN_SIZE = (320, 240)        # oEmbed maxwidth/maxheight below these cannot show a playground
MAX_SIZE = 10_000
PROVIDER = "Dropout Playground"
LESSONS_JS = ROOT / "static" / "js" / "lessons.js"


def split_list(raw: str | None) -> list[str]:
    return [x.strip() for x in (raw or "").split(",") if x.strip()]


@bp.get("/embed")
def embed():
    settings = current_app.config["SETTINGS"]
    asked = split_list(request.args.get("hide"))
    hide = [g for g in GROUPS if g in asked]
    problems = [f"unknown part {g!r} in hide ignored (known: {', '.join(GROUPS)})" for g in asked if g not in GROUPS]
    config = {
        "origins": settings.embed_origins,
        "hide": hide,
        "lock": split_list(request.args.get("lock")),   # checked against the settings table in embed.js
        "lesson": request.args.get("lesson") or None,
        "lessons": LESSONS_JS.exists(),                 # import lessons.js only where it is there
        "id": (request.args.get("id") or "")[:64] or None,
        "autoplay": request.args.get("autoplay") in ("1", "true", "yes"),
        "problems": problems,
    }
    return render_template("embed.html", page="embed", embed=config)


def _bad(field: str, message: str, allowed: str = "", received=None, status: int = 400):
    entry = {"field": field, "message": message, "allowed": allowed, "received": received}
    resp = jsonify({"error": entry, "errors": [entry]})
    resp.status_code = status
    return resp


def _size(name: str, lo: int):
    """An optional positive integer query argument: (value or None, error response or None)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None, None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not lo <= value <= MAX_SIZE:
        return None, _bad(name, f"{name} has to be a whole number of pixels between {lo} and {MAX_SIZE}, "
                                f"but got {raw[:40]!r}", f"{lo}..{MAX_SIZE}", raw[:40])
    return value, None


def own_origin() -> str:
    """This server's origin: settings.public_origin when set, else the request's own (its
    Host header, which whoever sends the request chooses)."""
    return current_app.config["SETTINGS"].public_origin or f"{request.scheme}://{request.host}".lower()


def embed_src(url: str) -> str | None:
    """The /embed address that shows the page at url, or None if url is not one of ours."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    base = own_origin()
    if parts.scheme not in ("http", "https") or f"{parts.scheme}://{parts.netloc}".lower() != base:
        return None
    path = parts.path or "/"
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    if path == "/embed":
        return f"{base}/embed{'?' + parts.query if parts.query else ''}{fragment}"
    if path == "/":
        return f"{base}/embed{fragment}"
    if path.rstrip("/") == "/lessons":
        return f"{base}/embed{fragment}"
    if path.startswith("/lessons/"):
        lesson = path[len("/lessons/"):].strip("/")
        if not lesson or "/" in lesson:
            return None
        return f"{base}/embed?{urlencode({'lesson': lesson})}{fragment}"
    return None


@bp.get("/oembed")
def oembed():
    fmt = request.args.get("format", "json")
    if fmt != "json":
        return _bad("format", f"format has to be json, but got {fmt[:40]!r}", "json", fmt[:40], status=501)
    url = request.args.get("url")
    if not url:
        return _bad("url", "url is required: the address of a playground page on this server",
                    "a URL of this server's /, /embed or /lessons pages", url)
    maxwidth, err = _size("maxwidth", MIN_SIZE[0])
    if err:
        return err
    maxheight, err = _size("maxheight", MIN_SIZE[1])
    if err:
        return err
    src = embed_src(url)
    if src is None:
        return _bad("url", "not a playground page of this server", f"{own_origin()}/, /embed or /lessons/...",
                    url[:200], status=404)
    width = min(EMBED_SIZE[0], maxwidth or EMBED_SIZE[0])
    height = min(EMBED_SIZE[1], maxheight or EMBED_SIZE[1])
    html = (f'<iframe src="{escape(src)}" width="{width}" height="{height}" title="{PROVIDER}" loading="lazy" '
            f'style="border:0;max-width:100%" sandbox="allow-scripts allow-same-origin allow-downloads allow-popups allow-popups-to-escape-sandbox"></iframe>')
    return jsonify({
        "version": "1.0", "type": "rich", "provider_name": PROVIDER, "provider_url": own_origin() + "/",
        "title": PROVIDER, "html": html, "width": width, "height": height, "cache_age": 86400,
    })


@bp.get("/course-example")
def course_example():
    """A course page that embeds two playgrounds (same origin here; tests serve the
    same template from another origin)."""
    return render_template("course_example.html", playground="")


@bp.app_context_processor
def oembed_discovery():
    """oembed_url(): the discovery link for the page being rendered (None where the
    page cannot be embedded)."""

    def oembed_url():
        page = own_origin() + request.full_path.rstrip("?")
        if embed_src(page) is None:
            return None
        return own_origin() + url_for("embed.oembed", url=page, format="json")

    return {"oembed_url": oembed_url}
