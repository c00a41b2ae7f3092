"""Static files under content-hashed URLs, gzipped once, cached for a year; pages compressed.

    /assets/<version>/<path>   our own files (static/). <version> hashes the whole tree, so
                               the ES modules' relative imports ('./state.js') stay inside
                               one version, and any change gives every file a new URL.
    /vendor/<digest>/<name>    an npm package's file; <digest> is that file's own hash, so a
                               change to our code does not make visitors fetch Plotly again.
    /vendor/<name>             the same file under its plain name, revalidated on each use.

Our modules import vendor files by their plain name ('/vendor/socket.io.esm.min.js'); the
copy served under /assets/ names the hashed URL instead. A hashed URL is immutable: a
browser keeps it a year without asking again. The pages name the current version and are
never cached without asking (no-cache). A URL with another version than the current one is
a 404, never another file's content under a URL cached for a year.

Each file is read, rewritten and gzipped once (again only when it changes on disk) and
kept in memory.
"""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, request

bp = Blueprint("assets", __name__)

# name served at /vendor/... -> file inside node_modules (installed by npm ci, never committed).
# Plotly: the official cartesian partial bundle (scatter, bar, heatmap, image, histogram,
# box, contour, pie, violin), a third of the full bundle's bytes.
VENDOR = {
    "plotly-cartesian.min.js": "plotly.js-cartesian-dist-min/plotly-cartesian.min.js",
    "socket.io.esm.min.js": "socket.io-client/dist/socket.io.esm.min.js",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
COMPRESSIBLE = {"text/html", "text/css", "text/javascript", "application/javascript", "application/json",
                "image/svg+xml", "text/plain", "text/csv"}
MIN_COMPRESS = 1024  # below this a gzip header and a round of CPU win nothing
_VENDOR_IMPORT = re.compile(r"""(['"])/vendor/([\w.\-]+)\1""")
_IMPORT = re.compile(r"""(?:^|[;\s])(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|(?:^|[;\s])import\s*['"]([^'"]+)['"]""", re.M)


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None  # None: not worth compressing
    digest: str
    mimetype: str


_cache: dict[tuple, Asset] = {}
_lock = threading.Lock()


def _mimetype(path: Path) -> str:
    if path.suffix in (".js", ".mjs"):
        return "text/javascript"
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _make(body: bytes, mimetype: str) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:16]
    zipped = None
    if mimetype in COMPRESSIBLE and len(body) >= MIN_COMPRESS:
        zipped = gzip.compress(body, 9, mtime=0)
        if len(zipped) >= len(body):
            zipped = None
    return Asset(body, zipped, digest, mimetype)


def _load(path: Path, rewrite=None, salt: str = "") -> Asset:
    """The file's Asset, from memory while its size and mtime stay the same."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size, salt)
    asset = _cache.get(key)
    if asset is None:
        body = path.read_bytes()
        if rewrite is not None:
            body = rewrite(body)
        asset = _make(body, _mimetype(path))
        with _lock:
            for old in [k for k in _cache if k[0] == key[0] and k[3] == salt]:
                del _cache[old]
            _cache[key] = asset
    return asset


class Assets:
    """The static tree and the vendor files of one app, with their hashed URLs."""

    def __init__(self, static_dir: Path, node_modules: Path):
        self.static_dir = static_dir
        self.node_modules = node_modules

    def vendor(self, name: str) -> Asset:
        rel = VENDOR.get(name)
        if rel is None:
            abort(404)
        path = self.node_modules / rel
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: install the front-end packages (make setup, or npm ci)")
        return _load(path)

    def vendor_url(self, name: str) -> str:
        return f"/vendor/{self.vendor(name).digest}/{name}"

    def _rewrite(self, body: bytes) -> bytes:
        return _VENDOR_IMPORT.sub(lambda m: f"{m[1]}{self.vendor_url(m[2])}{m[1]}"
                                  if m[2] in VENDOR else m[0], body.decode()).encode()

    def tree(self) -> tuple[str, dict[str, Asset]]:
        """(version, {relative path: Asset}) of every file under static/ as served now."""
        salt = "|".join(f"{n}={self.vendor(n).digest}" for n in sorted(VENDOR))
        files = {}
        for path in sorted(self.static_dir.rglob("*")):
            if path.is_file():
                rel = path.relative_to(self.static_dir).as_posix()
                files[rel] = _load(path, self._rewrite if path.suffix == ".js" else None, salt)
        version = hashlib.sha256("\n".join(f"{r} {a.digest}" for r, a in files.items()).encode()).hexdigest()[:16]
        return version, files

    def url(self, rel: str) -> str:
        version, files = self.tree()
        if rel not in files:
            raise FileNotFoundError(f"static/{rel} does not exist")
        return f"/assets/{version}/{rel}"

    def module_graph(self, entry: str) -> list[str]:
        """URLs of the ES module `entry` and of every module it imports statically, the
        entry first: the page names them all at once (modulepreload) instead of the browser
        finding them one import level (one round trip) at a time."""
        version, files = self.tree()
        seen, todo, urls = set(), [entry], []
        while todo:
            rel = todo.pop(0)
            if rel in seen:
                continue
            seen.add(rel)
            urls.append(f"/assets/{version}/{rel}")
            for m in _IMPORT.finditer(files[rel].body.decode()):
                spec = m[1] or m[2]
                if spec.startswith("/vendor/"):
                    if spec not in urls:
                        urls.append(spec)
                elif spec.startswith("."):
                    target = (Path(rel).parent / spec).as_posix()
                    parts: list[str] = []
                    for part in target.split("/"):
                        if part == "..":
                            parts.pop()
                        elif part not in (".", ""):
                            parts.append(part)
                    if "/".join(parts) in files:
                        todo.append("/".join(parts))
        return urls


def _send(asset: Asset, cache_control: str) -> Response:
    use_gzip = asset.gzipped is not None and request.accept_encodings["gzip"] > 0
    resp = Response(asset.gzipped if use_gzip else asset.body, mimetype=asset.mimetype)
    if use_gzip:
        resp.headers["Content-Encoding"] = "gzip"
    if asset.gzipped is not None:
        resp.vary.add("Accept-Encoding")
    resp.headers["Cache-Control"] = cache_control
    resp.set_etag(asset.digest + ("-gz" if use_gzip else ""))
    return resp.make_conditional(request)


def _assets() -> Assets:
    return current_app.extensions["assets"]


@bp.get("/assets/<version>/<path:rel>")
def static_file(version: str, rel: str):
    current, files = _assets().tree()
    if version != current or rel not in files:
        abort(404)
    return _send(files[rel], IMMUTABLE)


@bp.get("/vendor/<digest>/<name>")
def vendor_hashed(digest: str, name: str):
    asset = _assets().vendor(name)
    if digest != asset.digest:
        abort(404)
    return _send(asset, IMMUTABLE)


@bp.get("/vendor/<name>")
def vendor_plain(name: str):
    return _send(_assets().vendor(name), REVALIDATE)


def _compress_response(resp: Response) -> Response:
    """Pages and JSON: gzip on the way out when the browser takes it; HTML is not kept
    without asking (it names the current asset version)."""
    if resp.mimetype == "text/html":
        resp.headers.setdefault("Cache-Control", REVALIDATE)
    if (resp.direct_passthrough or resp.is_streamed or "Content-Encoding" in resp.headers
            or resp.mimetype not in COMPRESSIBLE or resp.status_code < 200 or resp.status_code in (204, 304)):
        return resp
    body = resp.get_data()
    if len(body) < MIN_COMPRESS:
        return resp
    resp.vary.add("Accept-Encoding")
    if request.accept_encodings["gzip"] <= 0:
        return resp
    resp.set_data(gzip.compress(body, 6))
    resp.headers["Content-Encoding"] = "gzip"
    return resp


def init_app(app: Flask, static_dir: Path, node_modules: Path) -> None:
    assets = app.extensions["assets"] = Assets(static_dir, node_modules)
    app.register_blueprint(bp)
    app.jinja_env.globals.update(asset=assets.url, vendor=assets.vendor_url, modules=assets.module_graph)
    app.after_request(_compress_response)
