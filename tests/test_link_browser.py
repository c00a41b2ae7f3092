"""Issue 24, items 2 and 13 in a real browser: a link opened in a running tab, Copy link,
and the speed the page opens at (gentle, with full speed one click away)."""
from __future__ import annotations

import json

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

LIVE = 30000
GENTLE = 30  # static/js/state.js, PAGE_DEFAULTS


def open_page(page, url: str, hash_: str = ""):
    page.goto(url + "/" + hash_)
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=LIVE)
    return page


def header(page) -> dict:
    return page.evaluate("window.__dp.drawn.header")


def wait_step(page, at_least: int):
    page.wait_for_function(f"() => window.__dp.drawn && !window.__dp.drawn.header.replay && window.__dp.drawn.header.step >= {at_least}",
                           timeout=LIVE)


def wait_new_run(page, dataset: str, p: list[float]):
    """The server configured `dataset` and a frame of that run, with that p, is on screen."""
    page.wait_for_function(
        f"""() => {{ const pg = window.__dp;
            return pg.info && pg.info.config.data.dataset === {json.dumps(dataset)} && pg.drawn
              && pg.drawn.header.p.join() === {json.dumps(",".join(map(str, p)))}; }}""", timeout=LIVE)


def frame_example_in_set(page) -> bool:
    """The drawn frame's example is a point of the configured set (the frame is of that set)."""
    return page.evaluate("""() => { const pg = window.__dp, ex = pg.drawn.header.example;
        const pts = [...pg.info.points.train, ...pg.info.points.test];
        return pts.some(([x, y, c]) => Math.abs(x - ex.x[0]) < 1e-5 && Math.abs(y - ex.x[1]) < 1e-5 && c === ex.y); }""")


def assert_controls_show_xor(page):
    assert page.input_value("#f-data") == "xor"
    assert page.input_value("#f-points") == "100"
    assert float(page.input_value("#f-p-0")) == pytest.approx(0.1)
    assert float(page.input_value("#f-p-1")) == pytest.approx(0.1)
    # the caption follows the drawn frame at most ten times a second (static/js/playground_frames.js)
    page.wait_for_function(
        "() => document.querySelector('[data-role=caption]').textContent.includes('0.10, 0.10')", timeout=LIVE)


# ---- 2. a link opened in a running tab -----------------------------------------------------

def test_a_new_link_in_a_fresh_tab_reconfigures_at_once(page, live_server):
    open_page(page, live_server.url, "#data=moons&p=0.5,0.5")
    assert page.evaluate("window.__dp.info.config.data.dataset") == "moons"
    page.goto(live_server.url + "/#data=xor&p=0.1,0.1&points=100")  # the address bar: a hash change
    wait_new_run(page, "xor", [0.1, 0.1])
    assert page.evaluate("window.__dp.info.points.train.length + window.__dp.info.points.test.length") == 100
    assert_controls_show_xor(page)
    assert page.locator("[data-role=notice]").is_hidden()
    page.click("[data-role=step]")  # a trained step's frame shows its example: one of xor's points
    wait_step(page, 1)
    assert header(page)["p"] == [0.1, 0.1]
    assert frame_example_in_set(page)  # nothing to ask: the run had not trained
    assert not [e for e in page.errors if "favicon" not in e]


def test_a_new_link_asks_first_when_the_run_has_progress(page, live_server):
    open_page(page, live_server.url, "#data=moons&p=0.5,0.5")
    page.click("[data-role=play]")
    wait_step(page, 3)
    old_hash = page.evaluate("location.hash")

    # cancel: the old run carries on, and the address is its own again
    page.goto(live_server.url + "/#data=xor&p=0.1,0.1&points=100")
    notice = page.locator("[data-role=notice]")
    notice.locator("[data-answer=yes]").wait_for(timeout=LIVE)
    assert "dataset xor" in notice.inner_text() and "would be lost" in notice.inner_text()
    assert page.evaluate("document.activeElement.dataset.answer") == "yes"  # the keyboard is on the question
    step = header(page)["step"]
    notice.locator("[data-answer=no]").click()
    assert notice.is_hidden()
    assert page.evaluate("location.hash") == old_hash
    wait_step(page, step + 3)  # still training, the same run
    assert page.evaluate("window.__dp.info.config.data.dataset") == "moons"
    assert header(page)["p"] == [0.5, 0.5]
    assert page.input_value("#f-data") == "moons"

    # OK: the link's setup is configured and keeps playing
    page.goto(live_server.url + "/#data=xor&p=0.1,0.1&points=100")
    notice.locator("[data-answer=yes]").click()
    wait_new_run(page, "xor", [0.1, 0.1])
    page.wait_for_function("() => window.__dp.drawn.header.step >= 1 && window.__dp.drawn.header.example", timeout=LIVE)
    assert frame_example_in_set(page)
    assert_controls_show_xor(page)
    assert page.evaluate("window.__dp.playing")
    assert not [e for e in page.errors if "favicon" not in e]


def test_a_link_that_changes_only_live_settings_keeps_the_run(page, live_server):
    """p, speed and mode change as a run trains: such a link changes them in place, no question."""
    open_page(page, live_server.url, "#data=moons&p=0.5,0.5")
    page.click("[data-role=play]")
    wait_step(page, 3)
    page.evaluate("window.__before = window.__dp.info")
    step = header(page)["step"]
    page.goto(live_server.url + "/#data=moons&p=0.2,0.2&speed=12&mode=eval")
    page.wait_for_function("""() => { const h = window.__dp.drawn.header;
        return h.p.join() === '0.2,0.2' && h.speed === 12 && h.mode === 'eval'; }""", timeout=LIVE)
    assert page.evaluate("window.__dp.info === window.__before")  # not configured again
    assert header(page)["step"] >= step  # the same run, on from where it was
    assert page.locator("[data-role=notice]").is_hidden()
    assert page.is_checked("[data-role=mode]")
    assert page.locator("[data-role=speed-label]").inner_text() == "12 steps/s"
    assert float(page.input_value("#f-p-0")) == pytest.approx(0.2)


# ---- 2. Copy link --------------------------------------------------------------------------

def state_of(page) -> dict:
    return page.evaluate("() => ({ state: window.__dp.state, config: window.__dp.info.config })")


def test_copy_link_copies_the_state_link_and_it_restores_the_state(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  permissions=["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        open_page(page, live_server.url, "#data=spiral&hidden=6,5&p=0.2,0.4&speed=12")
        page.select_option("#f-act", "tanh")  # a change made on the page, not in the link
        page.wait_for_function("() => location.hash.includes('act=tanh') && window.__dp.info.config.model.activation === 'tanh'",
                               timeout=LIVE)
        page.focus("[data-role=copy-link]")  # keyboard: focus and Enter
        page.keyboard.press("Enter")
        page.wait_for_function("() => document.querySelector('[data-role=copy-status]').textContent === 'Link copied.'",
                               timeout=LIVE)
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.evaluate("location.href")
        assert copied.split("#", 1)[1] == page.evaluate("window.__dp.link()").split("#", 1)[1]
        before = state_of(page)

        fresh = context.new_page()
        open_page(fresh, copied.split("#")[0].rstrip("/"), "#" + copied.split("#", 1)[1])
        after = state_of(fresh)
        assert after == before
        assert fresh.input_value("#f-act") == "tanh" and fresh.input_value("#f-data") == "spiral"
        assert fresh.locator("[data-role=speed-label]").inner_text() == "12 steps/s"
        assert fresh.locator("[data-role=notice]").is_hidden()
    finally:
        context.close()


def test_copy_link_without_the_clipboard_api_selects_the_link(browser, live_server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script("delete Navigator.prototype.clipboard;")
    try:
        page = context.new_page()
        open_page(page, live_server.url, "#data=xor&p=0.3,0.3")
        assert page.evaluate("navigator.clipboard") is None
        page.click("[data-role=copy-link]")
        field = page.locator("[data-role=link-text]")
        field.wait_for(state="visible", timeout=LIVE)
        # the state's link (a default p from the link is left out: same state, shorter link)
        assert field.input_value() == page.evaluate("window.__dp.link()") == live_server.url + "/#data=xor"
        sel = page.evaluate("""() => { const f = document.querySelector('[data-role=link-text]');
            return [document.activeElement === f, f.selectionStart, f.selectionEnd, f.value.length]; }""")
        assert sel[:3] == [True, 0, sel[3]]
        assert "Ctrl+C" in page.locator("[data-role=copy-status]").inner_text()
    finally:
        context.close()


# ---- 13. the speed the page opens at ------------------------------------------------------

def test_the_page_opens_at_a_gentle_speed_and_full_speed_is_one_click_away(page, live_server):
    open_page(page, live_server.url)
    max_speed = page.evaluate("Number(document.querySelector('[data-role=speed]').max)")
    max_speed = round(10 ** max_speed)
    assert page.evaluate("window.__dp.state.speed") == GENTLE
    assert page.locator("[data-role=speed-label]").inner_text() == f"{GENTLE} steps/s"
    assert "speed=" not in page.url  # the page's own default: not written into the link
    page.click("[data-role=play]")
    wait_step(page, 5)
    assert header(page)["speed"] == GENTLE
    # every step gets its own frame at this speed: the steps come one per frame
    n = page.evaluate("window.__dp.stats.frames")
    s0 = header(page)["step"]
    page.wait_for_function(f"() => window.__dp.stats.frames >= {n + 10}", timeout=LIVE)
    assert header(page)["steps"] == 1 and header(page)["step"] > s0

    full = page.locator("[data-role=full-speed]")
    assert full.is_visible() and full.get_attribute("aria-pressed") == "false"
    full.click()
    page.wait_for_function(f"() => window.__dp.drawn.header.speed === {max_speed}", timeout=LIVE)
    assert full.get_attribute("aria-pressed") == "true"
    assert page.locator("[data-role=speed-label]").inner_text() == "as fast as possible"
    assert f"speed={max_speed}" in page.url
    page.screenshot(path=str(ARTIFACTS / "link-full-speed.png"))

    full.click()  # and back to the speed before
    page.wait_for_function(f"() => window.__dp.drawn.header.speed === {GENTLE}", timeout=LIVE)
    assert full.get_attribute("aria-pressed") == "false" and "speed=" not in page.url
    assert not [e for e in page.errors if "favicon" not in e]


def test_a_links_speed_wins(page, live_server):
    open_page(page, live_server.url, "#speed=5")
    assert page.locator("[data-role=speed-label]").inner_text() == "5 steps/s"
    page.click("[data-role=play]")
    wait_step(page, 1)
    assert header(page)["speed"] == 5


@pytest.mark.parametrize("size", [(1280, 800), (390, 844)])
def test_screenshots(browser, live_server, size):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    try:
        page = context.new_page()
        open_page(page, live_server.url, "#data=moons&p=0.5,0.5")
        page.click("[data-role=play]")
        wait_step(page, 3)
        page.goto(live_server.url + "/#data=xor&p=0.1,0.1&points=100")
        page.locator("[data-role=notice] [data-answer=yes]").wait_for(timeout=LIVE)
        page.screenshot(path=str(ARTIFACTS / f"link-ask-{size[0]}.png"))
        page.locator("[data-role=copy-link]").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"link-controls-{size[0]}.png"))
    finally:
        context.close()
