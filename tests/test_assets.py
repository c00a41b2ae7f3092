"""Static and vendor files: content-hashed URLs, immutable caching, gzip (app/assets.py)."""
from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["/", "/embed", "/lessons", "/compare"]


def urls(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/(?:assets|vendor)/[^"]+)"', html)


@pytest.mark.parametrize("path", PAGES)
def test_pages_name_only_hashed_urls_and_are_revalidated(http, path):
    r = http.get(path)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-cache"
    html = r.get_data(as_text=True)
    found = urls(html)
    assert any(u.endswith("/plotly-cartesian.min.js") for u in found)
    assert "/static/" not in html
    for u in found:
        assert re.fullmatch(r"/assets/[0-9a-f]{16}/[\w/.\-]+|/vendor/[0-9a-f]{16}/[\w.\-]+", u), u
    # the entry module is async and its whole import graph is preloaded
    assert re.search(r'<script type="module" src="/assets/[0-9a-f]{16}/js/\w+\.js" async>', html)


def test_module_graph_is_preloaded(http):
    html = http.get("/").get_data(as_text=True)
    preloads = re.findall(r'<link rel="modulepreload" href="([^"]+)"', html)
    names = {u.rsplit("/", 1)[1] for u in preloads}
    # main.js imports playground.js, which imports connection.js, which imports socket.io
    # and frames.js: every level is named in the page
    assert {"main.js", "playground.js", "connection.js", "frames.js", "theme.js", "socket.io.esm.min.js"} <= names
    assert len(preloads) == len(set(preloads))


@pytest.mark.parametrize("path", ["/", "/embed"])
def test_the_playground_fetches_plotly_at_low_priority_and_its_module_runs_it(http, path):
    """Issue 23: the network's first picture does not wait for Plotly's bundle, so these
    pages do not name it in a <script> (which would hold the load until it has run);
    static/js/plotly_ready.js adds the script, under the URL the page preloads."""
    html = http.get(path).get_data(as_text=True)
    plotly = next(u for u in urls(html) if u.endswith("/plotly-cartesian.min.js"))
    assert f'<link rel="preload" as="script" href="{plotly}" fetchpriority="low">' in html
    assert not re.search(r"<script[^>]*plotly", html)
    preloads = re.findall(r'<link rel="modulepreload" href="([^"]+)"', html)
    loader = next(u for u in preloads if u.endswith("/js/plotly_ready.js"))
    assert plotly.encode() in http.get(loader).data  # the same hashed URL: the preload is used


@pytest.mark.parametrize("path", ["/lessons", "/compare"])
def test_other_pages_keep_plotly_as_a_deferred_script(http, path):
    html = http.get(path).get_data(as_text=True)
    assert re.search(r'<script src="/vendor/[0-9a-f]{16}/plotly-cartesian.min.js" data-plotly defer>', html)


def test_hashed_files_are_immutable_gzipped_and_equal_to_the_source(http):
    html = http.get("/").get_data(as_text=True)
    css = next(u for u in urls(html) if u.endswith("css/playground.css"))
    r = http.get(css, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in r.headers["Vary"]
    assert gzip.decompress(r.data) == (ROOT / "static/css/playground.css").read_bytes()
    plain = http.get(css, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert plain.data == (ROOT / "static/css/playground.css").read_bytes()


def test_vendor_file_is_served_compressed_under_its_own_digest(http):
    html = http.get("/").get_data(as_text=True)
    plotly = next(u for u in urls(html) if u.endswith("plotly-cartesian.min.js"))
    r = http.get(plotly, headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
    assert r.headers["Cache-Control"].endswith("immutable")
    body = gzip.decompress(r.data)
    assert len(r.data) < 0.4 * len(body)  # what crosses the wire
    assert plotly.split("/")[2] in r.headers["ETag"]


def test_modules_import_vendor_files_by_their_hashed_url(http):
    html = http.get("/").get_data(as_text=True)
    conn = next(u for u in urls(html) if u.endswith("js/connection.js"))
    sio = next(u for u in urls(html) if u.endswith("socket.io.esm.min.js"))
    js = http.get(conn).get_data(as_text=True)
    assert f"from '{sio}'" in js
    assert "'/vendor/socket.io.esm.min.js'" in (ROOT / "static/js/connection.js").read_text()
    assert http.get(sio).status_code == 200


def test_a_url_of_another_version_is_not_found(http):
    html = http.get("/").get_data(as_text=True)
    css = next(u for u in urls(html) if u.endswith("css/playground.css"))
    version = css.split("/")[2]
    assert http.get(css.replace(version, "0" * 16)).status_code == 404
    assert http.get(f"/assets/{version}/js/no-such.js").status_code == 404
    assert http.get(f"/assets/{version}/../app/settings.py").status_code == 404
    assert http.get("/vendor/0000000000000000/plotly-cartesian.min.js").status_code == 404
    assert http.get("/vendor/no-such.js").status_code == 404


def test_plain_vendor_name_is_revalidated_with_an_etag(http):
    r = http.get("/vendor/socket.io.esm.min.js")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-cache"
    again = http.get("/vendor/socket.io.esm.min.js", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_version_follows_the_content(app, tmp_path):
    from app.assets import Assets
    static = tmp_path / "static"
    (static / "js").mkdir(parents=True)
    (static / "js/a.js").write_text("import { b } from './b.js';\nexport const a = b;\n")
    (static / "js/b.js").write_text("export const b = 1;\n")
    assets = Assets(static, app.config["SETTINGS"].node_modules)
    first = assets.url("js/a.js")
    assert assets.module_graph("js/a.js") == [first, first.replace("a.js", "b.js")]
    (static / "js/b.js").write_text("export const b = 2;  // changed\n")
    assert assets.url("js/a.js") != first
