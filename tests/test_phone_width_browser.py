"""Issue 24, item 10: on a phone (390 px wide) no page is wider than the screen; /compare's
table fits and its legend sits below the chart, clear of the axis titles."""
from __future__ import annotations

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

# each page, and the Plotly charts it draws by itself (the widest part of most pages)
PAGES = {"/": 2, "/embed": 2, "/lessons": 0, "/lessons#noise": 0, "/compare": 1, "/course-example": 0,
         "/embed?lesson=no-such-lesson": 2, "/embed?lesson=noise": 0}


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("path", PAGES)
def test_no_page_is_wider_than_a_phone(live_server, phone, path):
    # the page's own scripts have run ('load' waits for them), then its charts are drawn:
    # the events the measure needs ("no request for 500 ms" timed out on a loaded machine)
    phone.goto(live_server.url + path, wait_until="load")
    phone.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length >= {PAGES[path]}",
                            timeout=60000)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    wider = phone.evaluate("""() => [...document.querySelectorAll('body *')].filter(e => {
        const r = e.getBoundingClientRect();
        if (r.width === 0 || r.right <= 391) return false;
        for (let p = e.parentElement; p; p = p.parentElement)  // inside a box that scrolls by itself
          if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(p).overflowX)) return false;
        return true;
      }).map(e => e.tagName + '.' + e.className).slice(0, 5)""")
    assert wider == [], wider


def test_compare_table_fits_and_the_legend_clears_the_axis_on_a_phone(live_server, phone):
    phone.goto(live_server.url + "/compare")
    phone.wait_for_function("() => document.querySelectorAll('[data-role=losses] .legend .traces').length === 9",
                            timeout=60000)
    table = phone.locator("[data-role=table]").bounding_box()
    assert table["x"] >= 0 and table["x"] + table["width"] <= 390
    boxes = phone.evaluate("""() => {
        const el = document.querySelector('[data-role=losses]');
        const box = e => { const r = e.getBoundingClientRect(); return { top: r.top, bottom: r.bottom }; };
        return { legend: box(el.querySelector('.legend')), xtitle: box(el.querySelector('.xtitle')),
                 panel: box(el), scrollbar: !!el.querySelector('.legend .scrollbar[height]:not([height="0"])') };
    }""")
    assert boxes["xtitle"]["bottom"] <= boxes["legend"]["top"]       # below the axis title
    assert boxes["legend"]["bottom"] <= boxes["panel"]["bottom"] + 1  # inside its panel (nothing below is covered)
    phone.screenshot(path=str(ARTIFACTS / "compare-390.png"), full_page=True)
