"""Two runs are compared only at one and the same step, in a real browser: /compare stops
every run at exactly its stop step (play {until}) and says so, and /course-example stops
both embeds at the same step and compares their test losses there. The test curves reach
that very step. Screenshots go to artifacts/ (compare-stopped.png, course-stopped.png)."""
from __future__ import annotations

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

LIVE = 90_000  # ms: a loaded 2-core machine trains a few hundred steps a second per run
PREFIX = "dropout-playground:"

# the test-loss trace of a LossView: the x values (steps) of its points
TEST_STEPS = """(el) => {
  const data = (el || document.querySelector('[data-role=losses]')).data || [];
  return data.filter(t => / ?test loss$/.test(t.name)).map(t => Array.from(t.x));
}"""


def test_compare_stops_every_run_at_the_same_step(page, live_server):
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.goto(live_server.url + "/compare#data=xor&points=100&noise=0.35&hidden=32,32&steps=300&runs=3"
              "&a.p=0&b.p=0.5&c.p=0.2")
    page.wait_for_function("() => window.__compare && window.__compare.runs.length === 3", timeout=LIVE)
    page.wait_for_function("() => document.querySelector('[data-role=verdict]').dataset.step === '300'", timeout=LIVE)
    # exactly there, not wherever each run was when a pause reached it
    assert page.evaluate("() => window.__compare.runs.map(r => r.last.header.step)") == [300, 300, 300]
    assert page.evaluate("() => window.__compare.runs.map(r => r.last.header.eval.step)") == [300, 300, 300]
    assert page.evaluate("() => window.__compare.runs.every(r => !r.playing)")
    verdict = page.locator("[data-role=verdict]").inner_text()
    assert "stopped at step 300" in verdict and "Test loss at step 300" in verdict
    rows = page.locator("[data-role=table] tr")
    assert rows.count() == 4
    assert [rows.nth(i).locator("td").nth(1).inner_text() for i in (1, 2, 3)] == ["300"] * 3
    # each run's test curve reaches that step
    page.wait_for_function(f"() => ({TEST_STEPS})(null).every(x => x.length && x[x.length - 1] === 300)", timeout=10_000)
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "compare-stopped.png"), full_page=True)
    # and the next leg stops them all together again
    page.wait_for_selector("[data-role=play]:has-text('300 more')")
    page.click("[data-role=play]")
    page.wait_for_function("() => document.querySelector('[data-role=verdict]').dataset.step === '600'", timeout=LIVE)
    assert page.evaluate("() => window.__compare.runs.map(r => r.last.header.step)") == [600, 600, 600]
    assert "stopped at step 600" in page.locator("[data-role=verdict]").inner_text()
    assert page.errors == []


def test_course_example_compares_both_embeds_at_the_same_step(page, live_server):
    page.set_viewport_size({"width": 1700, "height": 1900})  # both embeds on screen
    page.goto(live_server.url + "/course-example")
    page.wait_for_function("() => window.__course.received.filter(m => m.type === 'dropout-playground:configured').length === 2",
                           timeout=LIVE)
    button = page.locator("button[data-until]")
    until = int(button.get_attribute("data-until"))
    assert f"step {until:,}" in button.inner_text() and f"step {until:,}" in page.locator(".lead").inner_text()
    button.click()
    page.wait_for_function(f"() => document.querySelector('[data-role=verdict]').dataset.step === '{until}'", timeout=LIVE)
    frames = {i: next(f for f in page.frames if f"id={i}" in f.url) for i in "ab"}
    for f in frames.values():
        assert f.evaluate("() => window.__embed.step") == until
        assert f.evaluate("() => window.__dp.playing") is False
        # the embed's own picture: the frame on screen, its test evaluation and its test curve
        f.wait_for_function(f"() => window.__dp.drawn && window.__dp.drawn.header.step === {until}", timeout=10_000)
        assert f.evaluate("() => window.__dp.drawn.header.eval.step") == until
        f.wait_for_function(f"() => {{ const x = ({TEST_STEPS})(null)[0]; return x.length && x[x.length - 1] === {until}; }}",
                            timeout=10_000)
        steps = f.evaluate(f"() => ({TEST_STEPS})(null)[0]")
        assert len(steps) >= 5 and steps == sorted(steps), "the test curve followed training all along"
    for i in "ab":
        status = page.locator(f"[data-status={i}]").inner_text()
        assert f"paused · step {until:,}" in status and f"(at step {until:,})" in status
    verdict = page.locator("[data-role=verdict]").inner_text()
    assert f"Both stopped at step {until:,}" in verdict
    assert verdict.rstrip(".").endswith("lower: A")  # the page's claim (tests/test_course_claim.py: every seed)
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "course-stopped.png"), full_page=True)

    # a stop step behind the run is refused with its range; a non-number before it leaves the page
    answer = page.evaluate("""([until]) => new Promise(resolve => {
        const f = document.querySelector('iframe[data-embed="a"]');
        addEventListener('message', e => { if (e.data && e.data.request === 'late') resolve(e.data); });
        f.contentWindow.postMessage({type: 'dropout-playground:play', until, request: 'late'}, location.origin);
    })""", [until - 1])
    assert answer["type"] == PREFIX + "error" and answer["error"]["field"] == "until"
    assert answer["error"]["message"] == f"until has to be between {until + 1} and 200000, but got {until - 1}"
    assert not [e for e in page.errors if "favicon" not in e], page.errors
