"""Issue 26 in a real browser: a regression run's function panel (points, the eval-mode
prediction, the MC-dropout band and thinned curves), its caption's coverage against the
frame's own per-point data, a regression link's round trip, and the phone layout."""
from __future__ import annotations

import re

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

LIVE = 30000
LINK = "#task=regression&data=sine_gap&passes=12&speed=200"


def open_regression(page, url: str, hash_: str = LINK):
    page.goto(url + "/" + hash_)
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.info.task === 'regression'", timeout=LIVE)
    return page


def wait_band(page, at_step: int = 0):
    """A band is on screen, of a frame at or past at_step."""
    page.wait_for_function(f"() => {{ const s = window.__dp.function.shown; return s && s.step >= {at_step}; }}", timeout=LIVE)


def test_a_regression_link_round_trips(page, live_server):
    open_regression(page, live_server.url)
    cfg = page.evaluate("window.__dp.info.config")
    assert cfg["data"]["task"] == "regression" and cfg["data"]["dataset"] == "sine_gap"
    assert cfg["train"]["mc_passes"] == 12
    assert page.input_value("#f-task") == "regression"
    assert page.input_value("#f-passes") == "12"
    assert page.locator("#f-passes").is_visible()
    # the page's own link says the same, and opening it in a fresh tab gives the same config
    link = page.evaluate("location.hash")
    assert "task=regression" in link and "passes=12" in link
    again = page.context.new_page()
    open_regression(again, live_server.url, link)
    assert again.evaluate("window.__dp.info.config") == cfg
    assert page.errors == []


def test_the_data_set_follows_the_task(page, live_server):
    open_regression(page, live_server.url)
    page.select_option("#f-task", "classification")
    page.wait_for_function("() => window.__dp.info.task === 'binary'", timeout=LIVE)
    assert page.input_value("#f-data") != "sine_gap"
    assert not page.locator("#f-passes").is_visible()
    page.select_option("#f-task", "regression")
    page.wait_for_function("() => window.__dp.info.task === 'regression'", timeout=LIVE)
    assert page.input_value("#f-passes") == "12"
    assert page.errors == []


def test_the_function_panel_draws_points_eval_band_and_thinned_curves(page, live_server):
    open_regression(page, live_server.url)
    page.click("[data-role=play]")
    wait_band(page, 50)
    drawn = page.evaluate("""() => {
        const v = window.__dp.function, below = v.below.data, above = v.above.data;
        const n = t => t.y.filter(y => y === y).length;
        return { traces: below.map(t => ({ name: t.name, n: n(t), fill: t.fill || null })),
                 train: above[0].x.length, test: above[1].x.length, info: window.__dp.info.points,
                 curves: v.shown.band.curves.length, grid: v.shown.band.mean.length,
                 svg: document.querySelectorAll('[data-role=plane] .scatterlayer .trace').length }; }""")
    names = {t["name"]: t for t in drawn["traces"]}
    G = drawn["grid"]
    assert G > 10
    assert names["eval mode"]["n"] == G and names["MC mean"]["n"] == G
    assert names["band"]["fill"] == "tonexty" and names["band low"]["n"] == G
    assert 1 <= drawn["curves"] <= 20 and names["thinned networks"]["n"] == drawn["curves"] * G
    assert drawn["train"] == len(drawn["info"]["train"]) and drawn["test"] == len(drawn["info"]["test"])
    assert drawn["svg"] >= 7
    assert page.locator("[data-role=plane-title]").inner_text() == "Prediction and MC-dropout band"
    # a regression has no accuracy: the loss chart and the numbers leave it out
    page.wait_for_function("() => document.querySelector('[data-role=stats]').textContent.includes('test loss')", timeout=LIVE)
    assert "accuracy" not in page.locator("[data-role=stats]").inner_text()
    assert page.evaluate("document.querySelector('[data-role=losses]').layout.yaxis2.visible") is False
    page.screenshot(path=str(ARTIFACTS / "regression-function.png"))
    assert page.errors == []


def test_the_captions_coverage_is_the_share_of_test_points_in_the_frames_band(page, live_server):
    open_regression(page, live_server.url)
    page.click("[data-role=play]")
    wait_band(page, 100)
    got = page.evaluate("""async () => {
        const { insideShare } = await import('/static/js/views/function.js');
        const v = window.__dp.function, band = v.shown.band;
        return { caption: document.querySelector('[data-role=plane-caption]').textContent,
                 share: insideShare(band, window.__dp.info.points.test.length), coverage: band.coverage,
                 inside: Array.from(band.inside), n: window.__dp.info.points.test.length }; }""")
    assert got["share"] is not None
    assert got["coverage"] == pytest.approx(got["share"], abs=1e-6)
    shown = float(re.search(r"coverage ([\d.]+)%", got["caption"]).group(1))
    assert shown == pytest.approx(100 * got["share"], abs=0.05)
    assert f"of the {got['n']} test points" in got["caption"]
    assert "mean ± 2 standard deviations of 12 stochastic passes with dropout on" in got["caption"]


def test_a_regression_on_a_phone_fits_the_screen(browser, live_server):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        open_regression(phone, live_server.url)
        phone.click("[data-role=play]")
        wait_band(phone)
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
        box = phone.locator("[data-role=plane]").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 and box["height"] > 100
        phone.screenshot(path=str(ARTIFACTS / "regression-390.png"), full_page=True)
    finally:
        context.close()


def test_compare_and_embed_run_a_regression(page, live_server):
    page.goto(live_server.url + "/compare#task=regression&data=hetero&steps=200&runs=2&a.p=0.1&b.p=0.5")
    page.wait_for_function("() => window.__compare && window.__compare.runs.length === 2", timeout=LIVE)
    page.wait_for_function("() => document.querySelector('[data-role=verdict]').dataset.step === '200'", timeout=LIVE)
    runs = page.evaluate("() => window.__compare.runs.map(r => ({ task: r.info.task, data: r.info.config.data.dataset, "
                         "p: r.info.config.model.p, step: r.last.header.step, loss: r.last.header.eval.test_loss }))")
    assert [r["task"] for r in runs] == ["regression", "regression"]
    assert [r["data"] for r in runs] == ["hetero", "hetero"]
    assert [r["p"][0] for r in runs] == [0.1, 0.5] and [r["step"] for r in runs] == [200, 200]
    assert all(r["loss"] is not None for r in runs)
    # the compare form's data sets follow its task
    assert page.locator("[data-role=shared] select").first.input_value() == "regression"
    page.goto(live_server.url + "/embed" + LINK)
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.info.task === 'regression'", timeout=LIVE)
    page.click("[data-role=play]")
    wait_band(page)
    assert page.locator("[data-role=plane-title]").inner_text() == "Prediction and MC-dropout band"
    assert page.errors == []


def click_at(page, x: float, y: float):
    """A click on the function panel at plane coordinates (x, y)."""
    at = page.evaluate(f"""() => {{ const gd = window.__dp.function.above, f = gd._fullLayout, r = gd.getBoundingClientRect();
        return [r.left + f.xaxis._offset + f.xaxis.l2p({x}), r.top + f.yaxis._offset + f.yaxis.l2p({y})]; }}""")
    page.mouse.click(*at)


def test_custom_regression_points_click_link_and_csv(page, live_server, tmp_path):
    page.goto(live_server.url + "/#task=regression&data=custom")
    page.wait_for_function("() => window.__dp && window.__dp.custom.blocked && window.__dp.function.above", timeout=LIVE)
    assert page.locator("[data-role=plane-title]").inner_text() == "Your points"
    assert not page.locator("[data-role=custom-class]").first.is_visible()  # no classes to choose
    for x, y in [(-1, -0.5), (-0.5, 0.2), (0.5, 0.4), (1, 0.9)]:
        click_at(page, x, y)
    page.wait_for_function("() => window.__dp.info && window.__dp.info.task === 'regression'", timeout=LIVE)
    sent = page.evaluate("window.__dp.info.config.data.points")
    assert len(sent) == 4 and all(len(p) == 2 for p in sent)
    assert sent[0] == pytest.approx([-1, -0.5], abs=0.02)
    # the link carries the [x, y] set: a fresh tab trains the same points
    link = page.evaluate("location.hash")
    assert "pts=2" in link
    again = page.context.new_page()
    again.goto(live_server.url + "/" + link)
    again.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.info.task === 'regression'", timeout=LIVE)
    assert again.evaluate("window.__dp.info.config.data.points") == sent
    # a CSV of labelled rows is refused by row and field; x,y rows load
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n0.1,0.2\n0.3,0.4,1\n")
    page.set_input_files("[data-role=custom-file]", str(bad))
    error = page.locator("[data-role=custom-error]")
    error.wait_for(state="visible", timeout=LIVE)   # (the page reads the file asynchronously)
    assert "row 3, field row: a row has to be x,y (2 fields), but got 3" in error.inner_text()
    good = tmp_path / "good.csv"
    good.write_text("x,y\n" + "\n".join(f"{x / 10},{x / 20}" for x in range(-10, 11)) + "\n")
    page.set_input_files("[data-role=custom-file]", str(good))
    page.wait_for_function("() => window.__dp.info && window.__dp.info.config.data.points.length === 21", timeout=LIVE)
    assert page.errors == []


def test_a_link_with_a_data_set_of_the_other_task_says_so_and_uses_the_tasks_first(page, live_server):
    open_regression(page, live_server.url, "#task=regression&data=moons")
    assert page.evaluate("window.__dp.info.config.data.dataset") == "sine_gap"
    notice = page.locator("[data-role=notice]").inner_text()
    assert "Dataset moons is not one of task regression's (sine_gap, hetero, line_outliers, custom); using sine_gap" in notice
    assert "(link setting data)" in notice
    assert [o for o in page.eval_on_selector_all("#f-data option", "os => os.map(o => o.value)")] == \
        ["sine_gap", "hetero", "line_outliers", "custom"]


def test_eval_switch_and_timeline_replay_on_a_regression(page, live_server):
    open_regression(page, live_server.url, "#task=regression&data=hetero&passes=8&speed=20")
    page.click("[data-role=play]")
    wait_band(page, 10)
    page.check("[data-role=mode]")  # model.eval(): no unit dropped, the band still from passes with dropout on
    page.wait_for_function("() => window.__dp.drawn && window.__dp.drawn.header.mode === 'eval' && window.__dp.drawn.header.band", timeout=LIVE)
    page.wait_for_function("() => window.__dp.function.shown && window.__dp.function.shown.band.passes === 8", timeout=LIVE)
    page.click("[data-role=play]")  # pause
    page.wait_for_function("() => !window.__dp.playing")
    page.locator("[data-role=timeline]").wait_for(state="visible")
    latest = page.evaluate("window.__dp.timeline.latest")
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"() => window.__dp.drawn && window.__dp.drawn.header.replay && window.__dp.drawn.header.step === {latest - 1}",
                           timeout=LIVE)
    page.wait_for_function(f"() => document.querySelector('[data-role=plane-caption]').textContent.includes('weights as of step {latest:,}')",
                           timeout=LIVE)
    assert page.errors == []
