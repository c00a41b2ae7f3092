"""Lessons j ("When not to use dropout") and k ("Dropout as noise") in a real browser:
predict, then run; the verdict and every claim on screen follow the numbers plotted."""
from __future__ import annotations

import json
import re

import pytest

from test_lessons_browser import LIVE, PLOTS_HAVE_DATA

pytestmark = pytest.mark.browser

SLOW = 3 * LIVE  # the experiments train 36 + 24 copies on a busy 2-core machine

# The plotted data of the panel whose title starts with `title`.
PANEL_DATA = """title => {
  const box = [...document.querySelectorAll('.lesson-panel')].find(p => p.querySelector('h3').textContent.startsWith(title));
  const plot = box.querySelector('.js-plotly-plot');
  return { caption: box.querySelector('.plot-caption').textContent, data: plot ? plot.data.map(t => ({ name: t.name,
    x: Array.from(t.x || []), y: Array.from(t.y || []), err: t.error_y ? Array.from(t.error_y.array) : null })) : null };
}"""


def open_lesson(page, url, lesson_id):
    page.goto(f"{url}/lessons#{lesson_id}")
    page.wait_for_function(f"() => window.__lesson && window.__lesson.id === {json.dumps(lesson_id)}", timeout=LIVE)
    assert page.evaluate("() => window.__lesson.started") is False
    assert page.locator("[data-role=panels] .js-plotly-plot").count() == 0


def numbers(text):
    return [float(v) for v in re.findall(r"-?\d+\.\d+", text)]


def test_the_list_names_the_explainer_sections(page, live_server):
    page.goto(live_server.url + "/lessons")
    page.wait_for_function("() => window.__lesson && window.__lesson.id", timeout=LIVE)
    when_not = page.locator(".lesson-list a[data-lesson=when-not]").inner_text()
    assert "When not to use dropout" in when_not and "from: when not to use: very large datasets" in when_not
    assert "connection: noise injection" in page.locator(".lesson-list a[data-lesson=noise]").inner_text()
    assert page.locator(".lesson-list .from").count() == page.locator(".lesson-list a").count()


def test_when_not_to_use_dropout_predict_then_run(page, live_server):
    open_lesson(page, live_server.url, "when-not")
    page.check(".predict input[value=grows]")
    page.wait_for_function("() => window.__lesson.done", timeout=SLOW)
    page.wait_for_function(PLOTS_HAVE_DATA, timeout=LIVE)
    assert page.evaluate("() => window.__lesson.problems") == []
    gain = page.evaluate(PANEL_DATA, "What dropout gains")
    seeds = gain["data"][1]
    per_size = {}
    for x, y in zip(seeds["x"], seeds["y"]):
        per_size.setdefault(x, []).append(y)
    assert list(per_size) == ["50", "100", "200", "500", "1000", "2000"]
    # the verdict follows the plotted seeds: smaller at 2,000 than at 50 on every seed
    shrinks = all(a > b for a, b in zip(per_size["50"], per_size["2000"]))
    expected = "shrinks" if shrinks else ("grows" if all(a < b for a, b in zip(per_size["50"], per_size["2000"])) else "same")
    assert expected == "shrinks"  # what these seeds show (tests/test_regularizers.py holds it on others too)
    assert page.locator("[data-role=answer]").get_attribute("data-verdict") == "wrong"
    verdict = page.locator("[data-role=answer] .verdict").inner_text()
    assert "It shrinks" in verdict
    evidence = page.locator("[data-role=evidence]").inner_text()
    assert evidence.startswith("Measured on 3 seeds") and "smaller at 2000 points on every seed" in evidence
    # the gap chart: without dropout the gap at 50 points is far above the one at 2,000
    gap = page.evaluate(PANEL_DATA, "Train-test gap")
    none = gap["data"][0]
    assert none["name"] == "no dropout" and none["y"][0] > 10 * abs(none["y"][-1])
    # the alternatives: the marked best has the lowest plotted test loss
    alt = page.evaluate(PANEL_DATA, "The alternatives")
    test = next(t for t in alt["data"] if t["name"] == "test loss")
    best = test["x"][test["y"].index(min(test["y"]))]
    assert best.replace("<br>", " ") in page.locator(".readout [data-key=best]").inner_text()
    # each claim of the explainer says whether it holds, and agrees with the chart
    items = page.locator("[data-role=claims] li")
    assert items.count() == 4
    labels = [x.replace("<br>", " ") for x in test["x"]]
    for k in range(items.count()):
        li = items.nth(k)
        text, holds = li.inner_text(), li.get_attribute("data-holds") == "true"
        assert text.startswith("Holds here." if holds else "Not here.")
        if "Batch normalisation" in text:
            bn, nothing = test["y"][labels.index("BatchNorm")], test["y"][labels.index("nothing")]
            assert f"{bn:.3f}" in text and f"{nothing:.3f}" in text
            if not holds:
                assert "whole training set" in text
    page.screenshot(path="/tmp/lesson-when-not.png", full_page=True)
    assert page.errors == []


def test_dropout_as_noise_predict_then_run_and_move_p(page, live_server):
    open_lesson(page, live_server.url, "noise")
    page.check(".predict input[value=no-help]")
    page.wait_for_function("() => window.__lesson.evidence !== null", timeout=SLOW)
    page.wait_for_function(PLOTS_HAVE_DATA, timeout=LIVE)
    evidence = page.locator("[data-role=evidence]").inner_text()
    assert evidence.startswith("Measured at p = 0.5")
    # the verdict follows the numbers shown: Gaussian's gain over no noise, and its
    # difference from dropout, each mean ± sd over seeds
    gain, gain_sd = map(float, re.search(r"no noise − Gaussian: (\S+) ± (\S+);", evidence).groups())
    diff, diff_sd = map(float, re.search(r"dropout − Gaussian: (\S+) ± (\S+),", evidence).groups())
    expected = "no-help" if not gain > gain_sd else ("worse" if diff < -diff_sd else "as-well")
    assert expected == "as-well"
    assert page.locator("[data-role=answer]").get_attribute("data-verdict") == "wrong"
    assert "About as well as dropout" in page.locator("[data-role=answer] .verdict").inner_text()
    # dropout's factors from the live run's masks: 0 or 2, half and half, mean 1, variance 1
    live = page.evaluate(PANEL_DATA, "Dropout's factors")
    bars = live["data"][0]
    assert bars["x"] == [0, 2] and bars["y"][0] == pytest.approx(0.5, abs=0.01)
    assert float(page.locator(".readout [data-key=mean]").inner_text().split(" / ")[0]) == pytest.approx(1, abs=0.01)
    assert float(page.locator(".readout [data-key=var]").inner_text().split(" / ")[0]) == pytest.approx(1, abs=0.02)
    gauss = page.evaluate(PANEL_DATA, "Gaussian factors")
    assert sum(gauss["data"][0]["y"]) == pytest.approx(1, abs=0.001)  # shares of all factors drawn
    total = page.evaluate("() => Number(document.querySelector('[data-total]').dataset.total)")
    page.wait_for_function(f"() => Number(document.querySelector('[data-total]').dataset.total) > {total}", timeout=LIVE)
    # move p: the live run and the copies are measured again
    page.fill(".lesson-slider input[type=range]", "0.2")
    page.dispatch_event(".lesson-slider input[type=range]", "change")
    page.wait_for_function("() => /^Measured at p = 0.2/.test(window.__lesson.evidence || '')", timeout=SLOW)
    live = page.evaluate(PANEL_DATA, "Dropout's factors")
    assert live["data"][0]["x"][1] == pytest.approx(1.25) and live["data"][0]["y"][0] == pytest.approx(0.2, abs=0.02)
    assert "theory p/(1 − p) = 0.2500" in page.locator("[data-role=evidence]").inner_text()
    assert page.evaluate("() => window.__lesson.problems") == []
    page.screenshot(path="/tmp/lesson-noise.png", full_page=True)
    assert page.errors == []
