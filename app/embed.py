"""Embedding: the compact /embed page, oEmbed, and an example course page.

    /embed?hide=data,model&lock=p,lr#p=0.5,0.5   the playground for an iframe
    /embed?lesson=<id>                           one lesson, whole (question, run, verdict)
    /oembed?url=<a page of ours>&maxwidth=&maxheight=&format=json
    /course-example                              two embeds on one page

The embed page needs no cookie and no inline script; which origins may send it
postMessage commands (settings.embed_origins) reaches its script in a JSON block.
The postMessage API is described in docs/embedding.md.
"""
from __future__ import annotations

import functools
import re
from urllib.parse import parse_qs, urlencode, urlsplit

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from markupsafe import escape

from .settings import ROOT

bp = Blueprint("embed", __name__)

# what ?hide= may name: the settings groups of the form, and the widget's parts
GROUPS = ("data", "model", "train", "controls", "transport", "network", "boundary", "loss", "export", "caption")
SHOWN = 5                    # unknown parts of ?hide= named in the page's problem line
EMBED_SIZE = (800, 600)      # the layout is designed for this; it adapts down to 360 px wide
LESSON_SIZE = (700, 900)     # a lesson is one column, designed for 700 px wide (fits 390); it reports its height
MIN_SIZE = (320, 240)        # oEmbed maxwidth/maxheight below these cannot show a playground
MAX_SIZE = 10_000
PROVIDER = "Dropout Playground"
LESSONS_JS = ROOT / "static" / "js" / "lessons.js"
# a lesson's id and title in lessons.js (the page's one list of lessons): the first keys of
# each entry, in this order
LESSON_ENTRY = re.compile(r"^ {4}id: '([a-z0-9-]+)',\n {4}letter: '[a-z]',\n {4}title: '((?:[^'\\\n]|\\.)*)',$", re.M)


def split_list(raw: str | None) -> list[str]:
    return [x.strip() for x in (raw or "").split(",") if x.strip()]


@functools.cache
def lessons() -> dict[str, str]:
    """Every lesson's id and title, in the page's order (read from lessons.js once: the
    static files are those the process started with)."""
    text = LESSONS_JS.read_text(encoding="utf-8") if LESSONS_JS.exists() else ""
    return {m.group(1): re.sub(r"\\(.)", r"\1", m.group(2)) for m in LESSON_ENTRY.finditer(text)}


@bp.get("/embed")
def embed():
    settings = current_app.config["SETTINGS"]
    embed_id = (request.args.get("id") or "")[:64] or None
    lesson = request.args.get("lesson")
    known = lessons()
    if lesson in known:
        config = {"origins": settings.embed_origins, "lesson": lesson, "id": embed_id}
        return render_template("embed_lesson.html", page="embed", embed=config,
                               lesson={"id": lesson, "title": known[lesson]})
    asked = split_list(request.args.get("hide"))
    hide = [g for g in GROUPS if g in asked]
    problems = []
    unknown = list(dict.fromkeys(g for g in asked if g not in GROUPS))
    if unknown:  # one line, however many were asked for (a 64 KB query made a 4 MB page)
        named = ", ".join(repr(g[:40]) for g in unknown[:SHOWN]) + (
            f" and {len(unknown) - SHOWN} more" if len(unknown) > SHOWN else "")
        problems.append(f"unknown part{'s' * (len(unknown) > 1)} {named} in hide ignored (known: {', '.join(GROUPS)})")
    if lesson:
        problems.append(f"there is no lesson {lesson[:64]!r} (lessons: {', '.join(known)}); here is the playground")
    config = {
        "origins": settings.embed_origins,
        "hide": hide,
        "lock": split_list(request.args.get("lock")),   # checked against the settings table in embed.js
        "id": embed_id,
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


def embed_target(url: str) -> tuple[str, str | None] | None:
    """The /embed address that shows the page at url, and the lesson it shows (None for the
    playground); None if url is not one of ours. A lesson's link (/lessons#<id>,
    /lessons/<id>, or /lessons, which opens the first) embeds that lesson whole."""
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
        lesson = (parse_qs(parts.query).get("lesson") or [None])[0]
        return f"{base}/embed{'?' + parts.query if parts.query else ''}{fragment}", lesson if lesson in lessons() else None
    if path == "/":
        return f"{base}/embed{fragment}", None
    if path.rstrip("/") == "/lessons":
        lesson = parts.fragment or next(iter(lessons()), None)
    elif path.startswith("/lessons/"):
        lesson = path[len("/lessons/"):].strip("/")
    else:
        return None
    if lesson not in lessons():
        return None
    return f"{base}/embed?{urlencode({'lesson': lesson})}", lesson


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
    target = embed_target(url)
    if target is None:
        return _bad("url", "not a playground page or lesson of this server",
                    f"{own_origin()}/, /embed, /lessons#<id> or /lessons/<id> (lessons: {', '.join(lessons())})",
                    url[:200], status=404)
    src, lesson = target
    size = LESSON_SIZE if lesson else EMBED_SIZE
    title = lessons()[lesson] if lesson else PROVIDER
    width = min(size[0], maxwidth or size[0])
    height = min(size[1], maxheight or size[1])
    html = (f'<iframe src="{escape(src)}" width="{width}" height="{height}" title="{escape(title)}" loading="lazy" '
            f'style="border:0;max-width:100%" sandbox="allow-scripts allow-same-origin allow-downloads allow-popups allow-popups-to-escape-sandbox"></iframe>')
    return jsonify({
        "version": "1.0", "type": "rich", "provider_name": PROVIDER, "provider_url": own_origin() + "/",
        "title": title, "html": html, "width": width, "height": height, "cache_age": 86400,
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
        if embed_target(page) is None:
            return None
        return own_origin() + url_for("embed.oembed", url=page, format="json")

    return {"oembed_url": oembed_url}
