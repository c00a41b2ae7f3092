"""Issue 24, item 10: the playground on a phone (390 x 844). The picture comes first (the
caption, the network); right under the network, the controls a learner touches while it
trains: each layer's p slider, the eval switch, the speed; the losses right after the
boundary, above the long settings form; Play stays on screen; nothing is wider than the
phone. Each control is still the one element the page builds: the moved p slider drives
the run (the frames' headers carry the new p)."""
from __future__ import annotations

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

W, H = 390, 844

BOXES = """() => {
  const box = e => { const r = e.getBoundingClientRect(); return { top: r.top + scrollY, bottom: r.bottom + scrollY }; };
  const one = sel => box(document.querySelector(`[data-role=root] ${sel}`));
  return {
    caption: one('[data-role=caption]'), network: one('[data-group=network]'), plane: one('[data-group=boundary]'),
    loss: one('[data-group=loss]'), mode: one('[data-role=mode]'), speed: one('[data-role=speed]'),
    data: one('[data-role=settings] .group-data'),
    sliders: [...document.querySelectorAll('[data-role=root] input[type=range][id^=f-p-]')].map(box),
    width: document.documentElement.scrollWidth,
  };
}"""


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": W, "height": H}, is_mobile=True, has_touch=True)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.errors = errors
    yield tab
    context.close()


def play_is_on_screen(tab) -> None:
    play = tab.locator("[data-role=root] [data-role=play]").bounding_box()
    assert play is not None
    assert 0 <= play["y"] and play["y"] + play["height"] <= H and 0 <= play["x"] and play["x"] + play["width"] <= W


def test_the_p_sliders_and_eval_switch_sit_under_the_network_on_a_phone(live_server, phone):
    phone.goto(live_server.url + "/")
    phone.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
    b = phone.evaluate(BOXES)
    phone.screenshot(path=str(ARTIFACTS / "phone-layout-390.png"), full_page=True)

    # the picture first: the caption, then the network, which starts on the first screen
    assert b["caption"]["bottom"] <= b["network"]["top"] < H
    # the controls touched while it trains: after the network, all within one screen of it
    assert len(b["sliders"]) == 2  # the default network's two hidden layers
    for part in (*b["sliders"], b["mode"], b["speed"]):
        assert b["network"]["bottom"] <= part["top"] and part["bottom"] <= b["network"]["bottom"] + H, (part, b)
    # then the boundary, then the losses (high on the page), then the long settings form
    assert b["speed"]["bottom"] <= b["plane"]["top"]
    assert b["plane"]["bottom"] <= b["loss"]["top"] < 1800
    assert b["loss"]["bottom"] <= b["data"]["top"]
    assert b["width"] <= W
    play_is_on_screen(phone)

    # the moved slider drives the run: Play, then tap layer 1's p near the top of its range
    phone.locator("[data-role=root] [data-role=play]").tap()
    phone.wait_for_function("() => window.__dp.stats.frames > 3", timeout=30000)
    before = phone.evaluate("window.__dp.drawn.header.p")
    slider = phone.locator("#f-p-0")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    slider.tap(position={"x": box["width"] * 0.85, "y": box["height"] / 2})
    phone.wait_for_function("v => window.__dp.state.p[0] !== v", arg=before[0], timeout=10000)
    p0 = phone.evaluate("Number(document.querySelector('#f-p-0').value)")
    assert p0 > before[0]
    assert phone.evaluate("window.__dp.state.p") == [p0, before[1]]
    # a frame trained with the new p: its header says so
    phone.wait_for_function("p => { const h = window.__dp.drawn.header; return Math.abs(h.p[0] - p) < 1e-6; }",
                            arg=p0, timeout=30000)
    assert phone.evaluate("window.__dp.drawn.header.p[1]") == pytest.approx(before[1])
    play_is_on_screen(phone)  # still there, scrolled down to the slider
    assert phone.errors == []


def test_the_embed_on_a_phone_keeps_the_picture_first_and_fits(live_server, phone):
    phone.goto(live_server.url + "/embed")
    phone.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
    b = phone.evaluate(BOXES)
    phone.screenshot(path=str(ARTIFACTS / "phone-layout-embed-390.png"), full_page=True)
    assert b["caption"]["bottom"] <= b["network"]["top"] < H
    assert b["network"]["bottom"] <= b["plane"]["top"]
    assert b["width"] <= W
    play_is_on_screen(phone)
