"""Embedding: the /embed page and its flags, the postMessage API from a course page on
another origin, oEmbed, the security headers, and no cookies.

The course-page tests serve templates/course_example.html from small HTTP servers on
other loopback ports (other origins) and frame the playground server started by live().
"""
from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jinja2
import pytest
import requests

from conftest import ARTIFACTS, ROOT, live

PREFIX = "dropout-playground:"
CSP_WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


# ---- helpers -----------------------------------------------------------------------------
class CoursePage:
    """templates/course_example.html, rendered for a playground server by render(), served
    from its own loopback port: another origin than the playground's."""

    def __init__(self):
        page = self
        self.body = b""

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                self.wfile.write(page.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = self.origin + "/course.html"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def render(self, playground: str) -> None:
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "templates"), autoescape=True)
        self.body = env.get_template("course_example.html").render(playground=playground).encode()

    def serve_html(self, html: str) -> None:
        self.body = html.encode()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def course_pages(n: int):
    """n course-page servers; their origins are known before the playground server starts."""
    pages = []
    try:
        for _ in range(n):
            pages.append(CoursePage())
        yield pages
    finally:
        for p in pages:
            p.close()


def embed_frame(page, needle: str):
    """The frame whose URL contains needle (e.g. 'id=a')."""
    for _ in range(100):
        for f in page.frames:
            if needle in f.url:
                return f
        page.wait_for_timeout(100)
    raise AssertionError(f"no frame with {needle} in {[f.url for f in page.frames]}")


def received(page, name: str, embed_id: str | None = None) -> list[dict]:
    return page.evaluate("([type, id]) => window.__course.received.filter(m => m.type === type && (id === null || m.id === id))",
                         [PREFIX + name, embed_id])


def send(page, embed_id: str, msg: dict) -> dict | None:
    """postMessage from the course page to one embed; the answer to msg['request']."""
    return page.evaluate("""([id, msg]) => new Promise(resolve => {
        const f = document.querySelector(`iframe[data-embed="${id}"]`);
        const done = e => { if (e.data && e.data.request === msg.request) { removeEventListener('message', done); resolve(e.data); } };
        addEventListener('message', done);
        f.contentWindow.postMessage(msg, new URL(f.src).origin);
        setTimeout(() => resolve(null), 8000);
    })""", [embed_id, msg])


def new_tab(browser, width=1700, height=1000):
    context = browser.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    return context, tab


# ---- /embed, its flags, CSP and cookies in the browser ----------------------------------------
def test_embed_loads_with_no_csp_violations_and_sets_no_cookies(live_server, page):
    page.add_init_script(CSP_WATCH)
    page.goto(live_server.url + "/embed?hide=export#data=moons")
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
    page.evaluate("() => window.__dp.play()")
    page.wait_for_function("() => window.__dp.drawn.header.step > 50", timeout=20000)
    page.evaluate("() => window.__dp.pause()")
    page.evaluate("() => window.Plotly.toImage(document.querySelector('[data-role=network]'), {format: 'png'})")
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__csp") == []
    assert not page.errors, page.errors
    assert page.context.cookies() == []
    assert page.evaluate("() => document.cookie") == ""
    assert page.evaluate("() => window.__dp.info.config.data.dataset") == "moons"


def test_embed_works_with_storage_blocked(live_server, page):
    """As in a third-party iframe with cookies and storage blocked: storage throws."""
    page.add_init_script("""
      for (const name of ['sessionStorage', 'localStorage']) {
        Object.defineProperty(window, name, { get() { throw new DOMException('blocked', 'SecurityError'); } });
      }
      Object.defineProperty(document, 'cookie', { get() { throw new DOMException('blocked', 'SecurityError'); },
                                                  set() { throw new DOMException('blocked', 'SecurityError'); } });
    """)
    page.goto(live_server.url + "/embed")
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
    assert page.evaluate("() => window.__dp.step().then(a => a.ok)") is True
    assert not page.errors, page.errors


def test_embed_flags_hide_parts_and_lock_settings(live_server, page):
    page.goto(live_server.url + "/embed?hide=data,boundary,loss,transport,nonsense&lock=p,lr,speed,bogus#p=0.4,0.4")
    page.wait_for_function("() => window.__dp && window.__dp.info", timeout=30000)
    for sel in ("[data-group=boundary]", "[data-group=loss]", "[data-group=transport]", "[data-role=play]"):
        assert not page.locator(sel).is_visible(), sel
    assert page.locator("[data-group=network]").is_visible()
    assert page.locator(".group-data").count() == 0          # not built at all
    page.locator(".embed-settings summary").click()
    assert page.locator(".group-model").is_visible() and page.locator(".group-train").is_visible()
    for sel in ("#f-p-0", "#f-p-1", "#f-lr", "[data-role=speed]"):
        assert page.locator(sel).is_disabled(), sel
    for sel in ("#f-batch", "#f-act", "[data-role=mode]"):
        assert page.locator(sel).is_enabled(), sel
    notice = page.locator("[data-role=notice]").inner_text()
    assert "nonsense" in notice and "bogus" in notice
    assert page.evaluate("() => window.__dp.state.p") == [0.4, 0.4]


def test_embed_fits_800_by_600_and_adapts_to_360(live_server, browser):
    for width, height, most in ((800, 600, 600), (360, 640, None)):
        context, tab = new_tab(browser, width, height)
        try:
            tab.goto(live_server.url + "/embed")
            tab.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
            tab.wait_for_timeout(300)
            box = tab.evaluate("() => document.querySelector('[data-role=embed]').getBoundingClientRect().toJSON()")
            scroll_w = tab.evaluate("() => document.documentElement.scrollWidth")
            assert scroll_w <= width, f"horizontal scrolling at {width} px"
            if most:
                assert box["height"] <= most, box
            tab.screenshot(path=str(ARTIFACTS / f"embed-{width}.png"))
        finally:
            context.close()


def test_unknown_lesson_is_reported_and_defaults_apply(live_server, page):
    page.goto(live_server.url + "/embed?lesson=no-such-lesson#p=0.1,0.1")
    page.wait_for_function("() => window.__dp && window.__dp.info", timeout=30000)
    notice = page.locator("[data-role=notice]").inner_text()
    assert "no-such-lesson" in notice and "inverted-scaling" in notice  # the lessons there are
    assert page.evaluate("() => window.__dp.state.p") == [0.1, 0.1]


# ---- a course page on another origin drives two embeds ------------------------------------------
def test_course_page_on_another_origin_drives_one_embed_and_not_the_other(browser):
    with course_pages(3) as (course, stranger, unframed):
        ancestors = f"'self' {course.origin} {stranger.origin}"
        with live({"DP_EMBED_ORIGINS": course.origin, "DP_FRAME_ANCESTORS": ancestors}) as server:
            for p in (course, stranger, unframed):
                p.render(server.url)
            # the headers say who may frame
            csp = requests.get(server.url + "/embed").headers["Content-Security-Policy"]
            assert f"frame-ancestors {ancestors}" in csp

            context, tab = new_tab(browser)
            try:
                drive_from_allowed_origin(tab, course)
            finally:
                context.close()

            context, tab = new_tab(browser)
            try:
                ignored_from_other_origin(tab, stranger)
            finally:
                context.close()

            context, tab = new_tab(browser)
            try:
                tab.goto(unframed.url)  # not in frame-ancestors: the browser refuses to frame it
                tab.wait_for_timeout(1500)
                for f in tab.frames[1:]:
                    assert f.evaluate("() => typeof window.__dp") == "undefined"
                assert any("frame-ancestors" in e for e in tab.errors), tab.errors
            finally:
                context.close()


def drive_from_allowed_origin(tab, course: CoursePage):
    tab.goto(course.url)
    tab.wait_for_function("() => window.__course.received.filter(m => m.type === 'dropout-playground:configured').length === 2",
                          timeout=40000)
    a, b = embed_frame(tab, "id=a"), embed_frame(tab, "id=b")
    ready = {m["id"]: m for m in received(tab, "ready")}
    assert ready["a"]["version"] == 2 and ready["b"]["locked"] == ["p", "hidden"]
    assert "p" not in ready["b"]["keys"] and "p" in ready["a"]["keys"]

    # the host sized each iframe to the height the embed reported
    height = received(tab, "height", "a")[-1]["height"]
    assert 300 < height < 2000
    assert tab.evaluate("() => document.querySelector('iframe[data-embed=a]').style.height") == f"{height}px"

    # play A with the page's button, then set its p
    tab.click("button[data-target=a][data-command=play]")
    tab.wait_for_function("""() => window.__course.received.some(m => m.id === 'a' &&
        m.type === 'dropout-playground:state' && m.playing && m.step > 0)""", timeout=20000)
    tab.click("button[data-target=a][data-command=set][data-value='0.2']")
    a.wait_for_function("() => window.__dp.state.p.every(p => p === 0.2)", timeout=10000)
    a.wait_for_function("() => window.__dp.drawn && window.__dp.drawn.header.p.every(p => p === 0.2)", timeout=10000)
    assert [m["value"] for m in received(tab, "changed", "a")][-1] == [0.2, 0.2]
    answer = send(tab, "a", {"type": PREFIX + "set", "key": "p", "value": 0.35, "request": "one-number"})
    assert answer["type"] == PREFIX + "result" and answer["value"] == [0.35, 0.35]
    tab.wait_for_timeout(1200)
    states = received(tab, "state", "a")
    steps = [m["step"] for m in states]
    assert steps == sorted(steps) and steps[-1] > 0
    playing = [m for m in states if m["playing"] and m["step"] > 0]
    span_s = (playing[-1]["at"] - playing[0]["at"]) / 1000
    assert len(playing) >= 3 and len(playing) <= 2 * span_s + 2, "step counts come at a low rate (<= 2/s)"

    # B is unaffected: never played, p unchanged
    assert b.evaluate("() => window.__dp.playing") is False
    assert b.evaluate("() => window.__embed.step") == 0
    assert b.evaluate("() => window.__dp.state.p") == [0, 0]
    assert all(m["step"] == 0 for m in received(tab, "state", "b"))

    # B's p is locked: the host cannot change it either
    tab.click("button[data-target=b][data-command=set]")
    tab.wait_for_function("() => window.__course.received.some(m => m.id === 'b' && m.type === 'dropout-playground:error')")
    error = received(tab, "error", "b")[-1]["error"]
    assert error["field"] == "key" and "locked" in error["message"] and error["received"] == "p"
    assert b.evaluate("() => window.__dp.state.p") == [0, 0]

    # messages that break the schema are refused, with a reason, and change nothing
    bad = [
        ({"type": PREFIX + "explode"}, "type"),
        ({"type": PREFIX + "set", "key": "nope", "value": 1}, "key"),
        ({"type": PREFIX + "set", "key": "p", "value": [2, 2]}, "value"),
        ({"type": PREFIX + "set", "key": "p", "value": [0.1, 0.1, 0.1]}, "value"),
        ({"type": PREFIX + "set", "key": "lr"}, "value"),
        ({"type": PREFIX + "set", "key": "act", "value": {"x": 1}}, "value"),
        ({"type": PREFIX + "play", "run": "other"}, "run"),
        ({"type": PREFIX + "set", "key": "__proto__", "value": 1}, "key"),
    ]
    for i, (msg, field) in enumerate(bad):
        answer = send(tab, "a", {**msg, "request": f"bad-{i}"})
        assert answer and answer["type"] == PREFIX + "error", (msg, answer)
        assert answer["error"]["field"] == field, (msg, answer)
        assert answer["error"]["message"]
    assert a.evaluate("() => window.__dp.state.p") == [0.35, 0.35]

    got = send(tab, "a", {"type": PREFIX + "get", "request": 7})
    assert got["type"] == PREFIX + "result" and got["request"] == 7 and got["playing"] is True
    assert got["state"]["p"] == [0.35, 0.35]
    tab.click("button[data-target=a][data-command=pause]")
    tab.wait_for_function("() => window.__course.received.some(m => m.id === 'a' && m.type === 'dropout-playground:state' && !m.playing && m.step > 0)")
    tab.wait_for_timeout(300)
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "course-example.png"), full_page=True)
    assert b.evaluate("() => window.__embed.step") == 0
    assert not [e for e in tab.errors if "favicon" not in e], tab.errors


def ignored_from_other_origin(tab, stranger: CoursePage):
    """Framing is allowed there, commands are not (DP_EMBED_ORIGINS is the course origin)."""
    tab.goto(stranger.url)
    a = embed_frame(tab, "id=a")
    a.wait_for_function("() => window.__dp && window.__dp.info", timeout=40000)
    assert received(tab, "ready") == []  # nothing is reported to an origin that is not allowed
    tab.click("button[data-target=a][data-command=play]")
    tab.click("button[data-target=a][data-command=set][data-value='0.2']")
    tab.wait_for_function("() => window.__course.received.filter(m => m.type === 'dropout-playground:error').length >= 2")
    errors = [m["error"] for m in received(tab, "error", "a")]
    assert {e["field"] for e in errors} == {"origin"}
    assert errors[0]["received"] == stranger.origin
    tab.wait_for_timeout(1000)
    assert a.evaluate("() => window.__dp.playing") is False
    assert a.evaluate("() => window.__embed.step") == 0
    assert a.evaluate("() => window.__dp.state.p") == [0.5, 0.5]


def test_the_snippet_in_docs_works_as_pasted(browser):
    doc = (ROOT / "docs" / "embedding.md").read_text()
    snippet = re.search(r"## Ready to paste\n\n```html\n(.*?)```", doc, re.S).group(1)
    with course_pages(1) as (host,), live({"DP_EMBED_ORIGINS": host.origin}) as server:
        host.serve_html("<!doctype html><title>host</title>" + snippet.replace("https://playground.example.org", server.url))
        context, tab = new_tab(browser)
        try:
            tab.goto(host.url)
            frame = embed_frame(tab, "/embed")
            frame.wait_for_function("() => window.__dp && window.__dp.info && window.__embed", timeout=40000)
            tab.wait_for_function("() => document.getElementById('dropout').style.height !== '600px'", timeout=10000)
            assert frame.evaluate("() => window.__dp.state.p") == [0.5, 0.5]
            tab.click("#dropout-play")
            frame.wait_for_function("() => window.__dp.playing && window.__embed.step > 0", timeout=20000)
            assert not tab.errors, tab.errors
        finally:
            context.close()


def test_course_example_route_embeds_two_playgrounds(live_server, page):
    page.add_init_script(CSP_WATCH)
    page.goto(live_server.url + "/course-example")
    page.wait_for_function("() => window.__course.received.filter(m => m.type === 'dropout-playground:configured').length === 2",
                           timeout=40000)
    assert page.evaluate("() => window.__csp") == []
    assert {m["id"] for m in received(page, "configured")} == {"a", "b"}


# ---- oEmbed ----------------------------------------------------------------------------------
@pytest.mark.parametrize("url, src", [
    ("http://localhost/", "http://localhost/embed"),
    ("http://localhost/#p=0.5,0.5", "http://localhost/embed#p=0.5,0.5"),
    ("http://localhost/embed?hide=data&lock=p#data=xor", "http://localhost/embed?hide=data&amp;lock=p#data=xor"),
])
def test_oembed_answers_for_our_pages(http, url, src):
    resp = http.get("/oembed", query_string={"url": url, "format": "json"})
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    doc = resp.get_json()
    assert doc["version"] == "1.0" and doc["type"] == "rich" and doc["provider_name"] == "Dropout Playground"
    assert (doc["width"], doc["height"]) == (800, 600)
    assert f'src="{src}"' in doc["html"] and doc["html"].startswith("<iframe ")
    assert 'width="800"' in doc["html"] and 'height="600"' in doc["html"]


def test_oembed_honours_maxwidth_and_maxheight(http):
    doc = http.get("/oembed?url=http://localhost/embed&maxwidth=500&maxheight=400").get_json()
    assert (doc["width"], doc["height"]) == (500, 400)
    assert 'width="500"' in doc["html"] and 'height="400"' in doc["html"]
    doc = http.get("/oembed?url=http://localhost/embed&maxwidth=5000&maxheight=5000").get_json()
    assert (doc["width"], doc["height"]) == (800, 600)


@pytest.mark.parametrize("query, status, field", [
    ({"url": "http://evil.example/embed"}, 404, "url"),
    ({"url": "http://localhost/healthz"}, 404, "url"),
    ({"url": "http://localhost/lessons/a/b"}, 404, "url"),
    ({"url": "http://localhost/lessons/no-such-lesson"}, 404, "url"),
    ({"url": "http://localhost/lessons#no-such-lesson"}, 404, "url"),
    ({"url": "javascript:alert(1)"}, 404, "url"),
    ({"url": "ftp://localhost/"}, 404, "url"),
    ({"url": "http://localhost/", "format": "xml"}, 501, "format"),
    ({}, 400, "url"),
    ({"url": "http://localhost/", "maxwidth": "wide"}, 400, "maxwidth"),
    ({"url": "http://localhost/", "maxwidth": "10"}, 400, "maxwidth"),
    ({"url": "http://localhost/", "maxheight": "-5"}, 400, "maxheight"),
    ({"url": "http://localhost/", "maxheight": "1e9"}, 400, "maxheight"),
])
def test_oembed_refuses_what_it_cannot_serve(http, query, status, field):
    resp = http.get("/oembed", query_string=query)
    assert resp.status_code == status
    error = resp.get_json()["error"]
    assert error["field"] == field and error["message"]


def test_oembed_size_errors_name_the_field_range_and_value(http):
    error = http.get("/oembed?url=http://localhost/&maxwidth=10").get_json()["error"]
    assert error["message"] == "maxwidth has to be a whole number of pixels between 320 and 10000, but got '10'"
    assert error["allowed"] == "320..10000" and error["received"] == "10"


def test_pages_link_to_oembed_discovery(http):
    for path in ("/", "/embed?hide=data"):
        html = http.get(path).get_data(as_text=True)
        link = re.search(r'<link rel="alternate" type="application/json\+oembed" href="([^"]+)"', html)
        assert link, path
        href = link.group(1).replace("&amp;", "&")
        doc = http.get(href.replace("http://localhost", "", 1)).get_json()
        assert doc["type"] == "rich", path


# ---- headers and cookies ---------------------------------------------------------------------------
PAGES = ["/", "/embed", "/embed?hide=data&lock=p", "/course-example", "/oembed?url=http://localhost/",
         "/static/js/embed.js", "/static/css/embed.css", "/no-such-page", "/healthz"]


@pytest.mark.parametrize("path", PAGES)
def test_every_response_carries_the_csp_and_sets_no_cookie(http, path):
    resp = http.get(path)
    csp = resp.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"          # no inline script, no eval
    assert directives["frame-ancestors"] == "*"          # the default: any site may embed
    assert directives["object-src"] == "'none'"
    assert "X-Frame-Options" not in resp.headers        # it would forbid the embed
    assert "Set-Cookie" not in resp.headers


def test_frame_ancestors_setting_restricts_framing(monkeypatch):
    from app import create_app
    monkeypatch.setenv("DP_FRAME_ANCESTORS", "https://course.example 'self'")
    http = create_app().test_client()
    for path in ("/", "/embed", "/course-example"):
        assert "frame-ancestors https://course.example 'self'" in http.get(path).headers["Content-Security-Policy"]


def test_embed_page_passes_its_settings_as_json_not_script(http):
    html = http.get("/embed?hide=data,network,bogus&lock=p,lr&id=left&autoplay=1").get_data(as_text=True)
    body_class = re.search(r'<body class="([^"]*)"', html).group(1).split()
    assert {"embed", "hide-data", "hide-network"} <= set(body_class) and "hide-bogus" not in body_class
    block = re.search(r'<script type="application/json" id="dp-embed-config">(.*?)</script>', html, re.S).group(1)
    config = json.loads(block)
    assert config["hide"] == ["data", "network"] and config["lock"] == ["p", "lr"]
    assert config["id"] == "left" and config["autoplay"] is True
    assert config["origins"] == ["*"] and "bogus" in config["problems"][0]
    scripts = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
    assert scripts == [], "inline script"


def test_many_unknown_hidden_parts_make_one_short_problem_line(http):
    asked = ",".join(f"part{i}" for i in range(6000)) + ",data"
    html = http.get("/embed?hide=" + asked).get_data(as_text=True)
    block = re.search(r'<script type="application/json" id="dp-embed-config">(.*?)</script>', html, re.S).group(1)
    config = json.loads(block)
    assert config["hide"] == ["data"]
    assert config["problems"] == ["unknown parts 'part0', 'part1', 'part2', 'part3', 'part4' and 5995 more in hide "
                                  "ignored (known: data, model, train, controls, transport, network, boundary, loss, "
                                  "export, caption)"]
    # the query is in the page once (the oEmbed link's address), not once per unknown part
    assert len(html) < len(http.get("/embed").get_data(as_text=True)) + len(asked) + 1_000


def test_socket_handshake_sets_no_cookie(live_server):
    resp = requests.get(live_server.url + "/socket.io/?EIO=4&transport=polling", timeout=5)
    assert resp.ok and "Set-Cookie" not in resp.headers


def test_play_until_reports_paused_only_at_that_step(live_server, page):
    """Before: a state with playing false came at step 1,477-1,490 (the last frame's step
    when the 'paused' status arrived), before the one at 1,500."""
    page.goto(live_server.url + "/course-example")
    page.wait_for_function("() => window.__course.received.filter(m => m.type === 'dropout-playground:configured').length === 2",
                           timeout=40000)
    send(page, "a", {"type": PREFIX + "play", "until": 1500, "request": "until"})
    page.wait_for_function("""() => window.__course.received.some(m => m.id === 'a' &&
        m.type === 'dropout-playground:state' && !m.playing && m.step > 0)""", timeout=60000)
    paused = [m for m in received(page, "state", "a") if not m["playing"] and m["step"] > 0]
    assert paused[0]["step"] == 1500, paused
    embed = embed_frame(page, "id=a")
    embed.wait_for_function("() => window.__dp.drawn && window.__dp.drawn.header.step === 1500")
