"""Issue 26, item 3 in a real browser: the lesson "Where the network does not know" from
the prediction to its verdict, the verdict the one the server's measured band widths
support (the 'uncertainty' experiment), and the lesson embedded (/embed?lesson=uncertainty)."""
from __future__ import annotations

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

LIVE = 30000
MEASURED = 240000   # the experiment: three seeds, each MC at two p and a 5-network ensemble


def test_the_lesson_runs_from_prediction_to_its_measured_verdict(page, live_server):
    page.goto(f"{live_server.url}/lessons#uncertainty")
    page.wait_for_function("() => window.__lesson && window.__lesson.id === 'uncertainty'", timeout=LIVE)
    assert page.locator("[data-role=answer]").get_attribute("data-verdict") is None
    page.check(".predict input[value=gap]")
    page.wait_for_function("() => window.__lesson.evidence !== null", timeout=MEASURED)
    # the verdict is the one the experiment's own numbers give, redone here from them
    got = page.evaluate("""async () => {
        const { verdictOf } = await import('/static/js/lesson_views/uncertainty.js');
        const lesson = (await import('/static/js/lessons.js')).BY_ID.uncertainty;
        const conn = (await import('/static/js/connection.js')).tabConnection();
        const ack = await conn.call('experiment', { name: 'uncertainty', params: lesson.params.uncertainty });
        const mc = ack.result.mc;
        const ws = mc.gap.values.map((gap, i) => ({ gap, data: mc.data.values[i], edges: mc.beyond.values[i] }));
        const box = document.querySelector('[data-role=answer]');
        return { expect: verdictOf(ws, ack.result.margin), key: box.dataset.key, verdict: box.dataset.verdict, result: ack.result,
                 evidence: box.querySelector('[data-role=evidence]').textContent }; }""")
    assert got["key"] == got["expect"]
    assert got["verdict"] == ("right" if got["key"] == "gap" else "wrong")
    r = got["result"]
    ev = got["evidence"]
    assert ev.startswith("Measured over 3 seeds (mean ± spread), 1,500 steps each: at p = 0.5 the band is ")
    assert f"{r['mc']['gap']['mean']:.2f} ± {r['mc']['gap']['spread']:.2f} wide in the gap" in ev
    assert f"The deep ensemble (5 networks, no dropout) spreads {r['ensemble']['gap']['mean']:.2f}" in ev
    assert f"coverage {100 * r['mc_low']['coverage']['mean']:.1f}%" in ev
    # the live band, the ensemble's and the two p's are drawn
    page.wait_for_function("() => document.querySelectorAll('.lesson-panels .js-plotly-plot').length >= 4", timeout=LIVE)
    page.screenshot(path=str(ARTIFACTS / "lesson-uncertainty.png"), full_page=True)
    assert page.errors == []


def test_verdict_rule_in_the_browser(page, live_server):
    page.goto(f"{live_server.url}/lessons")
    rule = page.evaluate("""async () => {
        const { verdictOf } = await import('/static/js/lesson_views/uncertainty.js');
        const w = (data, gap, edges) => ({ data, gap, edges });
        return { gap: verdictOf([w(1, 3, 2), w(1, 2.5, 2)], 1.1), edges: verdictOf([w(1, 2, 3)], 1.1),
                 same: verdictOf([w(1, 1.05, 1.08)], 1.1), none: verdictOf([w(0, 0, 0)], 1.1),
                 // wider on average, but not on every seed: not a verdict for the gap
                 mixed: verdictOf([w(1, 3, 1), w(1, 1, 1)], 1.1) }; }""")
    assert (rule["gap"], rule["edges"], rule["same"], rule["none"]) == ("gap", "edges", "same", "none")
    assert rule["mixed"] == "same"


def test_the_lesson_embedded_on_a_phone_runs_to_its_verdict(browser, live_server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone = context.new_page()
    try:
        phone.goto(f"{live_server.url}/embed?lesson=uncertainty")
        phone.wait_for_selector(".predict input[value=gap]", timeout=LIVE)
        assert "Where the network does not know" in phone.locator("h2").first.inner_text()
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        # run to the verdict: the live band and the measured panels fit the phone too
        phone.check(".predict input[value=gap]")
        phone.wait_for_selector("[data-role=answer][data-verdict]", timeout=MEASURED)
        phone.wait_for_function("() => document.querySelectorAll('.lesson-panels .js-plotly-plot').length >= 4", timeout=LIVE)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        phone.screenshot(path=str(ARTIFACTS / "lesson-uncertainty-390.png"), full_page=True)
    finally:
        context.close()
