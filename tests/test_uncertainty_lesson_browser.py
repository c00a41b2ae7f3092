"""Issue 26, item 3 in a real browser: the lesson "Where the network does not know" from
the prediction to its verdict, the verdict the one its own measured band widths support,
and the lesson embedded (/embed?lesson=uncertainty)."""
from __future__ import annotations

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

LIVE = 30000
MEASURED = 240000   # two rounds of three seeds trained to the lesson's step


def widths_and_verdict(page) -> dict:
    """The lesson's own reading of its measurements, redone from the numbers on screen."""
    return page.evaluate("""async () => {
        const lesson = (await import('/static/js/lessons.js')).BY_ID.uncertainty;
        const box = document.querySelector('[data-role=answer]');
        return { verdict: box.dataset.verdict, key: box.dataset.key, evidence: box.querySelector('[data-role=evidence]').textContent,
                 options: lesson.question.options.map(o => o.id) }; }""")


def test_the_lesson_runs_from_prediction_to_its_measured_verdict(page, live_server):
    page.goto(f"{live_server.url}/lessons#uncertainty")
    page.wait_for_function("() => window.__lesson && window.__lesson.id === 'uncertainty'", timeout=LIVE)
    assert page.locator("[data-role=answer]").get_attribute("data-verdict") is None
    page.check(".predict input[value=gap]")
    # the live band is drawn while the first round trains
    page.wait_for_function("() => document.querySelectorAll('.lesson-panels .js-plotly-plot').length >= 2", timeout=LIVE)
    page.wait_for_function("() => window.__lesson.evidence !== null", timeout=MEASURED)
    got = widths_and_verdict(page)
    assert got["key"] in got["options"]
    assert got["verdict"] == ("right" if got["key"] == "gap" else "wrong")
    assert got["evidence"].startswith("Measured at p = 0.5, over 3 seeds")
    # part three: p = 0.1 measured too, its coverage beside p = 0.5's
    page.wait_for_function("() => /At p = 0.1: .* coverage/.test(window.__lesson.evidence)", timeout=MEASURED)
    page.screenshot(path=str(ARTIFACTS / "lesson-uncertainty.png"), full_page=True)
    assert page.errors == []


def test_verdict_rule_in_the_browser(page, live_server):
    page.goto(f"{live_server.url}/lessons")
    rule = page.evaluate("""async () => {
        const { verdictOf, widths } = await import('/static/js/lesson_views/uncertainty.js');
        const w = (data, gap, edges) => ({ data, gap, edges });
        const band = { x: [-1.5, -1, -0.8, 0, 0.8, 1, 1.5], std: [1, 0.1, 0.1, 0.5, 0.1, 0.1, 1] };
        const train = [[-1, 0], [-0.6, 0], [0.6, 0], [1, 0]];
        return { gap: verdictOf([w(1, 3, 2), w(1, 2.5, 2)]), edges: verdictOf([w(1, 2, 3)]),
                 same: verdictOf([w(1, 1.05, 1.08)]), none: verdictOf([w(0, 0, 0)]),
                 // wider on average, but not on every seed: not a verdict for the gap
                 mixed: verdictOf([w(1, 3, 1), w(1, 1, 1)]), widths: widths(band, train) }; }""")
    assert (rule["gap"], rule["edges"], rule["same"], rule["none"]) == ("gap", "edges", "same", "none")
    assert rule["mixed"] == "same"
    ws = rule["widths"]
    assert ws["at"] == [-0.6, 0.6]
    assert ws["gap"] == pytest.approx(4 * 0.5) and ws["edges"] == pytest.approx(4 * 1)
    assert ws["data"] == pytest.approx(4 * 0.1)


def test_the_lesson_embedded_opens_with_its_question(browser, live_server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    try:
        phone.goto(f"{live_server.url}/embed?lesson=uncertainty")
        phone.wait_for_selector(".predict input[value=gap]", timeout=LIVE)
        assert "Where the network does not know" in phone.locator("h2").first.inner_text()
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        context.close()
