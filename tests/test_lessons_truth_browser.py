"""Every label tells the truth about what is on screen: the lessons page, in a real
browser, read the way a student reads it. Each test holds what a lesson SAYS (verdict,
evidence line, tiles, titles) against what it SHOWS (the plotted data)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from test_lessons_browser import LIVE, PLOTS_HAVE_DATA, lesson_ids, wait_live

pytestmark = pytest.mark.browser

SHOTS = Path(os.environ.get("DP_SHOTS", "/tmp/shots"))


def open_lesson(page, url, lesson_id):
    page.goto(f"{url}/lessons#{lesson_id}")
    page.wait_for_function(f"() => window.__lesson && window.__lesson.id === {json.dumps(lesson_id)}", timeout=LIVE)


def predict(page, lesson_id, choice):
    page.check(f".predict input[value={choice}]")
    wait_live(page, lesson_id)


def numbers(text):
    return [float(v) for v in re.findall(r"-?\d+\.\d+", text)]


# ---- 11. predict, then run: no evidence before a prediction, in any lesson ----------------
def test_no_lesson_shows_evidence_before_a_prediction(page, live_server):
    for lesson_id in lesson_ids(page, live_server.url):
        open_lesson(page, live_server.url, lesson_id)
        assert page.evaluate("() => window.__lesson.started") is False
        assert page.locator("[data-role=panels] .js-plotly-plot").count() == 0
        assert page.locator(".lesson-controls .readout").count() == 0
        assert page.locator("[data-role=evidence]").count() == 0
        assert "starts when you have made your prediction" in page.locator("[data-role=waiting]").inner_text()
    # lesson a: nothing arrives while the student thinks; the run starts with the choice
    open_lesson(page, live_server.url, "thinned")
    page.wait_for_timeout(1500)
    assert page.evaluate("() => window.__lesson.updates") == 0
    assert page.locator("[data-role=panels] .js-plotly-plot").count() == 0
    predict(page, "thinned", "fresh")
    assert page.locator("[data-role=waiting]").count() == 0
    page.wait_for_function("() => window.__lesson.evidence !== null", timeout=LIVE)
    # a lesson answered before starts at once on the next visit
    page.reload()
    page.wait_for_function("() => window.__lesson && window.__lesson.started", timeout=LIVE)
    page.wait_for_function(PLOTS_HAVE_DATA, timeout=LIVE)
    assert page.errors == []


# ---- 4. lesson d: same step, verdict per activation, measured pitfall, swatches -----------
LAYER_STATE = """() => {
  const panel = [...document.querySelectorAll('.lesson-panel')].find(p => /^Hidden layer 1/.test(p.querySelector('h3').textContent));
  const plot = panel.querySelector('.js-plotly-plot');
  return { title: panel.querySelector('h3').textContent, caption: panel.querySelector('.plot-caption').textContent,
           steps: plot && plot.dataset.steps, traces: plot ? plot.data.map(t => ({ name: t.name, x: Array.from(t.x), y: Array.from(t.y),
             color: t.marker.color, pattern: t.marker.pattern ? t.marker.pattern.shape : null })) : [] };
}"""


def layer_state(page):
    page.wait_for_function("() => document.querySelector('[data-steps]')", timeout=LIVE)
    return page.evaluate(LAYER_STATE)


def test_lesson_d_bars_are_from_one_step_of_both_runs_and_the_title_names_it(page, live_server):
    open_lesson(page, live_server.url, "placement")
    predict(page, "placement", "identical")
    for _ in range(3):  # several rounds: every picture pairs equal steps
        s = layer_state(page)
        a, b = map(int, s["steps"].split(","))
        assert a == b > 0
        assert f"at step {a}" in s["title"] and f"both runs at step {a}" in s["caption"]
        after = {x: y for t in s["traces"][:2] for x, y in zip(t["x"], t["y"])}
        before = {x: y for t in s["traces"][2:] for x, y in zip(t["x"], t["y"])}
        assert sorted(after) == sorted(before) == list(range(16))
        # the text says ReLU gives the same numbers in both orders: the bars agree
        assert after == pytest.approx(before, abs=1e-9)
        # and the same neurons are marked dropped in both runs (same mask)
        assert s["traces"][1]["x"] == s["traces"][3]["x"]
        page.wait_for_function(f"() => document.querySelector('[data-steps]').dataset.steps !== '{a},{a}'", timeout=LIVE)
    # the loss chart: test-loss points of both runs at the same steps
    xs = page.evaluate("""() => document.querySelector('.lesson-panel .js-plotly-plot').data
        .filter(t => / test loss$/.test(t.name)).map(t => Array.from(t.x))""")
    n = min(map(len, xs))
    assert n >= 3 and xs[0][:n] == xs[1][:n]
    assert page.errors == []


def test_lesson_d_dropped_bars_cannot_be_confused_with_a_run(page, live_server):
    open_lesson(page, live_server.url, "placement")
    predict(page, "placement", "identical")
    colors = page.evaluate("async () => (await import('/static/js/views/theme.js')).COLORS")
    s = layer_state(page)
    kept = [t for t in s["traces"] if t["name"].endswith(": kept")]
    gone = [t for t in s["traces"] if t["name"].endswith(": dropped")]
    assert [t["color"] for t in kept] == [colors["neg"], colors["pos"]]  # one solid colour per run
    assert all(t["pattern"] is None for t in kept)
    for t in gone:  # dropped: hollow and hatched, never a (pale) run colour
        assert t["color"].lower() == "#ffffff" and t["pattern"] == "/"
    assert "hollow, hatched" in s["caption"]


def test_lesson_d_verdict_follows_the_activation_and_the_pitfall_is_measured(page, live_server):
    SHOTS.mkdir(parents=True, exist_ok=True)
    open_lesson(page, live_server.url, "placement")
    predict(page, "placement", "identical")
    page.wait_for_function("() => window.__lesson.judged && window.__lesson.judged.key === 'relu'", timeout=LIVE)
    verdict = page.locator("[data-role=answer] .verdict").inner_text()
    assert page.get_attribute("[data-role=answer]", "data-verdict") == "right"
    assert verdict.startswith("With relu") and "Identically" in verdict
    assert "identical on every seed" in page.locator("[data-role=evidence]").inner_text()
    page.wait_for_function("() => document.querySelector('[data-verdict=identical]')", timeout=LIVE)
    page.screenshot(path=str(SHOTS / "lesson_d_relu.png"), full_page=True)

    page.click(".lesson-buttons button:has-text('sigmoid')")
    page.wait_for_function("() => window.__lesson.judged && window.__lesson.judged.key === 'sigmoid'", timeout=LIVE)
    verdict = page.locator("[data-role=answer] .verdict").inner_text()
    assert verdict.startswith("With sigmoid") and "Identically" not in verdict
    assert page.get_attribute("[data-role=answer]", "data-verdict") == "wrong"  # the orders differ
    # the verdict is the seed experiment's, and the evidence gives its numbers
    shown = page.get_attribute("[data-role=panels] [data-verdict]", "data-verdict")
    option = {"no-clear-winner": "differ"}.get(shown, shown)
    assert shown != "identical"
    assert page.evaluate("() => window.__lesson.judged.answer") == option
    evidence = page.locator("[data-role=evidence]").inner_text()
    m = re.search(r"before − after, seed by seed: (\S+) ± (\S+), before worse on (\d+) of (\d+) seeds", evidence)
    assert m, evidence
    mean, sd, worse, seeds = float(m[1]), float(m[2]), int(m[3]), int(m[4])
    assert seeds >= 5 and 0 <= worse <= seeds
    assert ("neither order is clearly better" in evidence) == (abs(mean) <= sd)
    # the seeds panel plots what the evidence says: one pair of points per seed
    pairs = page.evaluate("""() => [...document.querySelectorAll('[data-role=panels] [data-verdict]')][0].data
        .filter(t => t.showlegend === false).map(t => Array.from(t.y))""")
    assert len(pairs) == seeds
    diffs = [b - a for a, b in pairs]
    assert sum(d > 0 for d in diffs) == worse
    assert sum(diffs) / len(diffs) == pytest.approx(mean, abs=6e-4)
    page.wait_for_function("() => document.querySelector('[data-steps]') && window.__lesson.evidence.includes('with sigmoid')", timeout=LIVE)
    page.screenshot(path=str(SHOTS / "lesson_d_sigmoid.png"), full_page=True)
    assert page.errors == []


# ---- 10. lesson b: one number per definition; the text matches the scatter ----------------
def test_lesson_b_evidence_and_tiles_give_the_same_numbers(page, live_server):
    open_lesson(page, live_server.url, "train-vs-eval")
    option = page.locator(".predict label[for='q-train-vs-eval-vary']").inner_text()
    assert "scattered around" not in option and "not their average" in option
    predict(page, "train-vs-eval", "vary")
    page.wait_for_function("() => window.__lesson.evidence !== null", timeout=LIVE)
    for _ in range(2):
        state = page.evaluate("""() => {
          const plot = document.querySelector('[data-role=panels] .js-plotly-plot');
          const tile = k => document.querySelector(`.readout [data-key=${k}]`).textContent;
          return { evidence: window.__lesson.evidence, flicker: tile('flicker'), off: tile('off'), spread: tile('train_std'),
                   train: Array.from(plot.data[0].y), eval: Array.from(plot.data[1].y), mean: Array.from(plot.data[2].y) };
        }""")
        ev = state["evidence"]
        flicker = re.search(r"pass to pass \([^)]*\) (\S+);", ev)[1]
        off = re.search(r"train-mode boundary vs eval \([^)]*\) (\S+)\.", ev)[1]
        assert flicker == state["flicker"] and off == state["off"]
        assert f"spread {state['spread']}" in ev
        # the counts and the mean in the text are those of the dots on screen
        pe = state["eval"][0]
        below, above = map(int, re.search(r"(\d+) train-mode answers fall below the eval-mode answer and (\d+) above", ev).groups())
        assert below == sum(v < pe for v in state["train"]) and above == sum(v > pe for v in state["train"])
        assert state["mean"][0] == pytest.approx(sum(state["train"]) / len(state["train"]), abs=1e-9)
        page.wait_for_function(f"() => window.__lesson.evidence !== {json.dumps(ev)}", timeout=LIVE)
    assert page.errors == []


# ---- 13. lesson c: the explainer's test-time scaling, corrected ---------------------------
def test_lesson_c_says_the_explainer_scales_at_test_time_and_pytorch_does_not(page, live_server):
    open_lesson(page, live_server.url, "inverted-scaling")
    text = page.locator(".lesson-text").inner_text()
    assert "explainer" in text and "at test time" in text
    assert re.search(r"original|first dropout papers", text) and "1 − p" in text
    assert "identity" in text  # what eval mode does in PyTorch


# ---- 12. lesson g: the claim is held against its spread over draws -------------------------
def test_lesson_g_shows_a_spread_over_several_draws(page, live_server):
    open_lesson(page, live_server.url, "ensemble")
    predict(page, "ensemble", "close")
    page.wait_for_function("() => window.__lesson.evidence !== null && document.querySelector('[data-draws]')", timeout=LIVE)
    state = page.evaluate("""() => {
      const plot = document.querySelector('[data-draws]');
      return { draws: Number(plot.dataset.draws), evidence: window.__lesson.evidence,
               series: plot.data.filter(t => t.showlegend === false && !t.error_y).map(t => ({ name: t.name, y: Array.from(t.y) })) };
    }""")
    assert state["draws"] >= 5
    by = {s["name"]: s["y"] for s in state["series"]}
    assert all(len(y) == state["draws"] for y in by.values())
    ev = state["evidence"]
    assert f"over {state['draws']} draws" in ev and "±" in ev
    won = int(re.search(r"Eval mode was the closer one in (\d+) of", ev)[1])
    assert won == sum(s > e for e, s in zip(by["eval ↔ average"], by["one thinned ↔ average"]))
    mc_better = sum(m < e for e, m in zip(by["eval mode"], by["MC average"]))
    if 0 < mc_better < state["draws"]:
        assert "no clear winner" in ev
    assert len(set(by["eval mode"])) == 1  # eval mode has no randomness
    assert page.errors == []
