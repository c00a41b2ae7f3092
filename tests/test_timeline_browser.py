"""The timeline in the browser: a paused run scrubs back through its last steps (slider,
← and → keys), and each step shows the very mask that was streamed for it, its values
before and after dropout and its loss."""
from __future__ import annotations

import pytest

from conftest import ARTIFACTS
from test_browser import open_page

pytestmark = pytest.mark.browser

# every live frame's step -> its mask bits, loss and the shown example's values, as streamed
RECORD = """() => {
  window.__streamed = {};
  window.__dp.run.addEventListener('frame', e => {
    const { header: h, arrays: a } = e.detail;
    if (h.replay || h.steps !== 1) return;
    window.__streamed[h.step] = {
      masks: [0, 1].map(l => a[`mask.${l}`] ? Array.from(a[`mask.${l}`].data, Number) : null),
      loss: h.train_loss, post: Array.from(a['act.0'].data), pre: Array.from(a['pre.0'].data)};
  });
}"""

SHOWN = """() => {
  const dp = window.__dp, h = dp.drawn.header, a = dp.drawn.arrays;
  return {step: h.step, replay: !!h.replay, loss: h.train_loss,
          masks: [0, 1].map(l => a[`mask.${l}`] ? Array.from(a[`mask.${l}`].data, Number) : null),
          crosses: dp.network.droppedShown(), label: document.querySelector('[data-role=timeline-label]').textContent,
          values: dp.timeline.values, caption: document.querySelector('[data-role=caption]').textContent};
}"""


def shown_step(page, step: int) -> dict:
    page.wait_for_function(f"() => window.__dp.drawn.header.replay && window.__dp.drawn.header.step === {step}",
                           timeout=20000)
    return page.evaluate(SHOWN)


def test_scrubbing_back_shows_each_step_as_it_was_streamed(page, live_server):
    open_page(page, live_server.url, "#hidden=8,8&p=0.5,0.5&speed=8")
    page.evaluate(RECORD)
    assert page.locator("[data-role=timeline]").is_hidden()  # nothing to replay yet
    page.click("[data-role=play]")
    page.wait_for_function("() => Object.keys(window.__streamed).length >= 12", timeout=30000)
    page.click("[data-role=play]")  # pause
    page.wait_for_function("() => !window.__dp.playing")
    timeline = page.locator("[data-role=timeline]")
    timeline.wait_for(state="visible")
    page.wait_for_timeout(300)
    latest = page.evaluate("window.__dp.timeline.latest")
    streamed = {int(k): v for k, v in page.evaluate("window.__streamed").items()}
    assert latest == max(streamed)
    page.locator("body").click(position={"x": 5, "y": 5})  # keys go to the page, not a field
    step = latest
    for _ in range(4):  # ← steps back one step at a time, through steps streamed and shown
        page.keyboard.press("ArrowLeft")
        step -= 1
        shown = shown_step(page, step)
        want = streamed[step]
        assert shown["masks"] == want["masks"]                      # the very mask streamed
        assert shown["crosses"] == [m.count(0) for m in want["masks"]]  # and drawn as crosses
        assert shown["loss"] == pytest.approx(want["loss"], rel=1e-5)
        assert f"Step {step:,}" in shown["label"] and f"{want['loss']:.4f}" in shown["label"]
        assert shown["values"]["step"] == step
        assert shown["values"]["post"][:8] == pytest.approx(want["post"], abs=0.05 * max(map(abs, want["post"])) + 1e-6)
        assert shown["values"]["pre"][:8] == pytest.approx(want["pre"], abs=0.05 * max(map(abs, want["pre"])) + 1e-6)
        assert "Replay" in shown["caption"] and f"as of step {latest:,}" in shown["caption"]
    page.keyboard.press("ArrowRight")
    shown_step(page, step + 1)
    # the slider reaches any kept step directly, here the first
    page.locator("[data-role=timeline-step]").fill("1")
    shown = shown_step(page, 1)
    assert shown["masks"] == streamed[1]["masks"]
    page.screenshot(path=str(ARTIFACTS / "timeline.png"), full_page=True)
    # playing again leaves the timeline: live frames, no replay
    page.click("[data-role=play]")
    page.wait_for_function(f"() => !window.__dp.drawn.header.replay && window.__dp.drawn.header.step > {latest}",
                           timeout=20000)
    assert timeline.is_hidden()
    assert not page.errors


def test_replay_covers_steps_that_were_never_streamed(page, live_server):
    """At full speed most steps get no frame of their own; the timeline still has them."""
    open_page(page, live_server.url, "#hidden=8,8&p=0.5,0.5&speed=1000000")  # (the page opens gentler)
    page.click("[data-role=play]")
    page.wait_for_function("() => window.__dp.drawn.header.step > 400", timeout=30000)
    assert page.evaluate("window.__dp.stats.frames") < 400  # most steps had no frame of their own
    page.click("[data-role=play]")
    page.wait_for_function("() => !window.__dp.playing")
    page.wait_for_timeout(300)
    latest = page.evaluate("window.__dp.timeline.latest")
    target = latest - 250
    page.locator("[data-role=timeline-step]").fill(str(target))
    shown = shown_step(page, target)
    assert shown["loss"] is not None and shown["values"]["step"] == target
    assert f"Step {target:,} (replayed)" in shown["label"]
    assert f"{latest - 999 if latest > 999 else 1:,}–{latest:,}" in shown["label"]
    assert not page.errors
