"""At 600 px and below the picture comes first: the caption, the network and the boundary,
then the settings; Play stays on screen. Checked at 360 px on the page and the embed. (The
full page's p sliders, eval switch and speed sit between the network and the boundary:
tests/test_phone_layout_browser.py.)"""
from __future__ import annotations

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

# the settings: from the top of the form's first group to the bottom of its last (on the full
# page at 600 px and below the form, and its Model group, lend their parts to the page's column)
BOXES = """() => Object.fromEntries(['caption', 'network', 'plane', 'settings', 'losses', 'play'].map(role => {
  const sel = role === 'settings' ? '[data-role=settings] fieldset' : `[data-role=${role}]`;
  const all = [...document.querySelectorAll(`[data-role=root] ${sel}`)].map(e => e.getBoundingClientRect())
    .filter(x => x.width || x.height);  // a group lent to the column (display: contents) has no box
  const r = { top: Math.min(...all.map(x => x.top)), bottom: Math.max(...all.map(x => x.bottom)),
              left: Math.min(...all.map(x => x.left)), right: Math.max(...all.map(x => x.right)) };
  return [role, { top: r.top + scrollY, bottom: r.bottom + scrollY, left: r.left, right: r.right }];
}))"""


@pytest.mark.parametrize("path", ["/", "/embed"])
def test_at_360_px_the_caption_network_and_boundary_come_before_the_settings(browser, live_server, path):
    context = browser.new_context(viewport={"width": 360, "height": 640})
    page = context.new_page()
    try:
        page.goto(live_server.url + path)
        page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
        b = page.evaluate(BOXES)
        assert b["caption"]["bottom"] <= b["network"]["top"]
        assert b["network"]["bottom"] <= b["plane"]["top"]
        assert b["plane"]["bottom"] <= b["settings"]["top"]
        assert b["plane"]["bottom"] <= b["losses"]["top"]
        # the network starts within the first screen
        assert b["network"]["top"] < 640
        # Play is on screen, at its foot, without scrolling, and it works
        play = page.locator("[data-role=root] [data-role=play]").bounding_box()
        assert 0 <= play["y"] and play["y"] + play["height"] <= 640 and play["x"] + play["width"] <= 360
        page.screenshot(path=str(ARTIFACTS / f"small{path.replace('/', '-') or '-'}360.png"), full_page=True)
        page.click("[data-role=root] [data-role=play]")
        page.wait_for_function("() => window.__dp.stats.frames > 3", timeout=30000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
    finally:
        context.close()


def test_above_600_px_the_settings_keep_their_place(browser, live_server):
    context = browser.new_context(viewport={"width": 700, "height": 900})
    page = context.new_page()
    try:
        page.goto(live_server.url + "/")
        page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
        b = page.evaluate(BOXES)
        assert b["settings"]["bottom"] <= b["network"]["top"]  # one column, in page order
    finally:
        context.close()
