"""The page weight in a real browser: what / and /embed transfer on a first visit (gzip,
Plotly's partial bundle), that a second visit fetches no file again (immutable, hashed
URLs), and that the bundle holds every trace type the pages draw."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 1_000_000  # bytes on a first visit, headers and all (issue 12)

TRANSFERRED = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const files = performance.getEntriesByType('resource').filter(e => !e.name.includes('/socket.io/'));
  return { total: nav.transferSize + files.reduce((a, e) => a + e.transferSize, 0),
           files: files.map(e => [e.name, e.transferSize, e.encodedBodySize, e.decodedBodySize]) };
}"""


def drawn(page):
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)


@pytest.mark.parametrize("path", ["/", "/embed"])
def test_first_visit_fits_the_budget_and_a_second_fetches_nothing_again(browser, live_server, path):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(live_server.url + path)
        drawn(page)
        first = page.evaluate(TRANSFERRED)
        assert first["total"] <= BUDGET, first
        plotly = next(f for f in first["files"] if "plotly-cartesian" in f[0])
        assert plotly[2] < 0.4 * plotly[3]  # gzip: encoded well under decoded
        page.goto(live_server.url + path)  # a second visit, same browser
        drawn(page)
        again = page.evaluate(TRANSFERRED)
        fetched = [f for f in again["files"] if f[1] > 0]  # transferSize 0: from the cache
        assert fetched == [], fetched
    finally:
        context.close()


def test_the_bundle_has_every_trace_type_the_pages_draw(page, live_server):
    page.goto(live_server.url + "/")
    drawn(page)
    registered = set(page.evaluate("() => Object.keys(Plotly.PlotSchema.get().traces)"))
    source = "\n".join(p.read_text() for p in (ROOT / "static/js").rglob("*.js"))
    # trace objects: {type: '...', then mode, name, x, z or offsetgroup} (not an <input>'s props)
    used = set(re.findall(r"(?<!el\('input', )\{\s*type:\s*'(\w+)',\s*(?:mode|name|x|z|offsetgroup)\b", source))
    assert {"scatter", "heatmap", "bar"} <= used
    assert used <= registered, used - registered
    assert "image" in registered  # a boundary may be drawn as an image
    assert "scatter3d" not in registered and "scattergl" not in registered  # the partial bundle


def test_the_network_is_drawn_before_plotly_has_come_and_where_plotly_then_places_it(browser, live_server):
    """The playground runs Plotly's bundle only once its own files are in, and draws the
    network's first picture without it (issue 23): here Plotly is held back until that
    picture is on the canvas. Then every panel comes, and the first picture's places are
    the ones Plotly's axes give."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    held = []

    def hold(route):
        held.append(route)

    page.route("**/plotly-cartesian.min.js", hold)
    try:
        page.goto(live_server.url + "/", wait_until="domcontentloaded")  # (the load event waits for Plotly)
        page.wait_for_function("() => performance.getEntriesByName('dp:network-drawn').length > 0", timeout=30000)
        assert page.evaluate("() => window.Plotly === undefined && window.__dp === undefined")
        assert held  # asked for from the start (a low-priority preload), not yet here
        for route in held:
            route.continue_()
        page.unroute("**/plotly-cartesian.min.js", hold)
        drawn(page)
        page.wait_for_function("() => window.__dp.losses.series && window.__dp.plane && window.__dp.network.placedBy === 'plotly'")
        gap = page.evaluate("""async () => {
          const { ownPlacement, placement } = await import('/static/js/views/network_layout.js');
          const n = window.__dp.network, own = ownPlacement(n), plotly = placement(n);
          const d = [Math.abs(own.width - plotly.width), Math.abs(own.height - plotly.height)];
          n.x.forEach((x, k) => d.push(Math.abs(own.x(x) - plotly.x(x)), Math.abs(own.y(n.y[k]) - plotly.y(n.y[k]))));
          return Math.max(...d);
        }""")
        assert gap < 1, gap
        # the frame that came before Plotly reaches the other panels too: step 0's boundary
        page.wait_for_function("() => window.__dp.plane.paints > 0 && window.__dp.plane.shown")
        assert page.evaluate("() => window.__dp.stats.frames") >= 1
        assert errors == []
    finally:
        context.close()
