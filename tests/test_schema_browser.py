"""The page follows the server's schema: a server started with other limits gets a form,
link parsing and a decision boundary that follow them (headless Chromium)."""
from __future__ import annotations

import pytest

from conftest import live
from model_server.sweep import SWEEP_PRESET, SWEEP_STEPS

pytestmark = pytest.mark.browser

ENV = {"DP_MAX_WIDTH": "32", "DP_MAX_LAYERS": "3", "DP_GRID_SIZE": "32", "DP_MAX_SPEED": "1000"}


@pytest.fixture(scope="module")
def small_server():
    with live(ENV) as server:
        yield server


def open_page(page, url: str, hash_: str = ""):
    page.goto(url + "/" + hash_)
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
    return page


def test_form_and_link_follow_the_servers_limits(page, small_server):
    open_page(page, small_server.url, "#hidden=64,64&p=0.5,0.5")
    # the link asked for more than this server allows: refused, with the field and the range
    notice = page.locator("[data-role=notice]").inner_text()
    assert "Hidden widths has to be 1 to 3 values between 1 and 32, but got 64,64" in notice
    assert "link setting hidden" in notice
    assert page.evaluate("window.__dp.info.config.model.hidden") == [8, 8]
    # the width control's range is the server's
    assert page.get_attribute("#f-hidden-0", "max") == "32"
    page.fill("#f-hidden-0", "33")
    page.press("#f-hidden-0", "Tab")
    assert "between 1 and 32, but got 33" in page.locator("#f-hidden-err").inner_text()
    page.fill("#f-hidden-0", "32")
    page.press("#f-hidden-0", "Tab")
    page.wait_for_function("() => window.__dp.info.config.model.hidden[0] === 32")
    # at most 3 layers: the add button stops there
    page.click("#layer-add")
    page.wait_for_function("() => window.__dp.state.hidden.length === 3")
    assert page.is_disabled("#layer-add")
    # speed: the slider's top is DP_MAX_SPEED (log scale), and means as fast as possible; the
    # page opens at a gentle speed, and Full speed takes it to the top
    assert page.get_attribute("[data-role=speed]", "max") == "3"
    assert page.locator("[data-role=speed-label]").inner_text() == "30 steps/s"
    page.click("[data-role=full-speed]")
    assert page.locator("[data-role=speed-label]").inner_text() == "as fast as possible"
    assert page.evaluate("window.__dp.state.speed") == 1000
    assert not [e for e in page.errors if "favicon" not in e]


def test_boundary_is_drawn_on_the_servers_grid(page, small_server):
    open_page(page, small_server.url, "#data=xor&points=400&hidden=16,16&p=0.1,0.1&speed=1000")
    page.click("[data-role=play]")
    page.wait_for_function("() => window.__dp.drawn.header.step > 1500", timeout=60000)
    page.click("[data-role=play]")  # pause: the boundary stands still
    page.wait_for_timeout(600)
    result = page.evaluate("""() => {
        const v = window.__dp.plane, info = window.__dp.info, [lo, hi] = info.plane, n = v.n;
        const px = v.ctx.getImageData(0, 0, n, n).data;
        // the class the image shows at each training point: blue (class 1) or vermillion
        let agree = 0;
        for (const [x, y, label] of info.points.train) {
            const c = Math.round((x - lo) / (hi - lo) * (n - 1)), r = n - 1 - Math.round((y - lo) / (hi - lo) * (n - 1));
            const o = 4 * (r * n + c);
            agree += (px[o + 2] > px[o] ? 1 : 0) === label ? 1 : 0;
        }
        const img = v.below.querySelector('.imagelayer image');
        const area = v.below.querySelector('.bglayer rect.bg').getBoundingClientRect();  // the plot area
        const box = img.getBoundingClientRect();
        return { n, frameGrid: window.__dp.drawn.arrays['boundary.eval'].data.length, agree: agree / info.points.train.length,
                 href: img.getAttribute('href') || img.getAttributeNS('http://www.w3.org/1999/xlink', 'href'),
                 canvas: v.canvas.toDataURL('image/png'),
                 area: [area.left, area.top, area.width, area.height], box: [box.left, box.top, box.width, box.height],
                 acc: window.__dp.drawn.header.eval.test_acc };
    }""")
    assert result["n"] == 32 and result["frameGrid"] == 32 * 32
    # the image shown is the grid's, and it shows what the network learnt where the points are
    assert result["href"] == result["canvas"]
    assert result["acc"] > 0.85 and result["agree"] > 0.85, result
    # pixel centres on the grid points: the image spans the plot area plus half a cell each side
    left, top, width, height = result["area"]
    bl, bt, bw, bh = result["box"]
    assert abs(bw - width * 32 / 31) < 1.5 and abs(bh - height * 32 / 31) < 1.5
    assert abs((bl + bw / 2) - (left + width / 2)) < 1.5 and abs((bt + bh / 2) - (top + height / 2)) < 1.5


def test_ring_moved_by_hand_stands_where_plotly_draws_it(page, small_server):
    open_page(page, small_server.url, "#data=moons")
    page.click("[data-role=play]")
    page.wait_for_function("() => window.__dp.plane.paints > 8", timeout=30000)
    page.click("[data-role=play]")
    page.wait_for_timeout(600)
    moved, drawn = page.evaluate("""async () => {
        const v = window.__dp.plane, box = () => {
            const r = v.below.querySelector('.shapelayer path').getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2]; };
        const moved = box();
        await Plotly.relayout(v.below, { shapes: v.layout.shapes });  // Plotly places it afresh
        return [moved, box()];
    }""")
    assert abs(moved[0] - drawn[0]) < 1.5 and abs(moved[1] - drawn[1]) < 1.5, (moved, drawn)


def test_lessons_and_compare_start_from_the_servers_sweep_preset(page, live_server):
    page.goto(live_server.url + "/compare")
    page.wait_for_function("() => window.__compare")
    got = page.evaluate("""async () => {
        const { LESSONS } = await import('/static/js/lessons.js');
        const { fromHash, toConfig } = await import('/static/js/state.js');
        const { parseCompare } = await import('/static/js/compare.js');
        const lesson = LESSONS.find(l => l.id === 'rate-sweep');
        return { lesson: toConfig(fromHash(lesson.hash).state), steps: lesson.sweep.steps,
                 compare: parseCompare('').shared };
    }""")
    for part, fields in SWEEP_PRESET.items():
        for name, value in fields.items():
            assert got["lesson"][part][name] == value, (part, name)
    assert got["steps"] == SWEEP_STEPS
    assert got["compare"] == {"data": "xor", "points": "100", "noise": "0.35", "hidden": "64,64",
                              "lr": "0.003", "batch": "50"}
