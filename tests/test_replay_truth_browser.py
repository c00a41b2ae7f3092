"""What the page shows during a replay, a wide layer and a fast run, held to the truth:
the frame the server sent and the engine (model_server) computing the same run here.

* a replayed step's thinned boundary is that step's mask on today's weights, as the
  engine computes it, and its panel says so; a neuron map and the PNG files say which
  step they show;
* a 64-wide layer in a 700 px embed is drawn as a sample, the panel says so, and every
  neuron drawn has its own mask;
* at full speed every picture of the network is one frame's mask: crosses exactly where
  that frame dropped, nothing faded between two frames.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ARTIFACTS
from model_server.config import parse_config
from model_server.frames import decode, encode
from model_server.run import Run
from test_browser import open_page

pytestmark = pytest.mark.browser

CROSS = (0x7d, 0x83, 0x8c)  # views/network.js: a dropped neuron's cross

# the frame on screen: step, replay, masks, and the plane's shown grid and texts
SHOWN = """() => {
  const dp = window.__dp, h = dp.drawn.header, a = dp.drawn.arrays, b = dp.boundary.shown;
  const arr = n => (a[n] ? Array.from(a[n].data, Number) : null);
  return {step: h.step, replay: !!h.replay, latest: dp.timeline.latest,
          masks: [0, 1].map(l => arr(`mask.${l}`)), thinned: arr('boundary.thinned'), neuron: arr('neuron'),
          grid: b ? Array.from(b.grid, Number) : null,
          label: document.querySelector('[data-role=plane-caption]').textContent,
          title: document.querySelector('[data-role=plane-title]').textContent,
          caption: document.querySelector('[data-role=caption]').textContent,
          config: dp.info.config};
}"""

# The picture the network panel last drew, read back from its canvas: per hidden neuron
# drawn, its centre's colour, with the mask of the frame that picture shows. Read in one
# task after an animation frame, so no newer picture can be posted in between.
STILL = """async () => {
  const net = window.__dp.network;
  await new Promise(r => requestAnimationFrame(() => r()));
  const frame = net.rendered, centres = net.centres();
  const masks = [0, 1].map(l => (frame.arrays[`mask.${l}`] ? Array.from(frame.arrays[`mask.${l}`].data, Number) : null));
  const pixels = await net.probe(centres.map(([, , x, y]) => [x, y]));
  return {step: frame.header.step, masks, centres, pixels};
}"""


def engine_run(config: dict, steps: int) -> Run:
    """The page's run, trained here: a run's masks and batches depend only on its config
    and seed, and n steps in one call are n single steps, so it is the server's run."""
    run = Run(parse_config(config))
    run.step(steps)
    return run


def is_cross(px) -> bool:
    return px[3] == 255 and all(abs(c - w) <= 6 for c, w in zip(px[:3], CROSS))


def check_still(still: dict) -> int:
    """Every drawn hidden neuron: a cross at its centre exactly where the frame's mask
    dropped it. Returns how many crosses."""
    crosses = 0
    for (layer, index, _, _), px in zip(still["centres"], still["pixels"]):
        mask = still["masks"][layer]
        dropped = mask is not None and mask[index] == 0
        assert is_cross(px) == dropped, (still["step"], layer, index, px, dropped)
        crosses += dropped
    return crosses


def replay_to(page, step: int, contains: str = "") -> dict:
    page.locator("[data-role=timeline-step]").fill(str(step))
    page.wait_for_function(
        "([s, t]) => { const h = window.__dp.drawn.header; return h.replay && h.step === s"
        " && document.querySelector('[data-role=plane-caption]').textContent.includes(t); }",
        arg=[step, contains], timeout=20000)
    page.wait_for_timeout(200)  # (a few animation frames: the image is painted)
    return page.evaluate(SHOWN)


def test_replay_shows_the_replayed_steps_thinned_boundary_and_says_which_step_each_panel_shows(page, live_server):
    open_page(page, live_server.url, "#hidden=8,8&p=0.5,0.5&view=thinned&speed=1000000")
    page.click("[data-role=play]")
    page.wait_for_function("() => window.__dp.drawn.header.step > 300", timeout=30000)
    page.click("[data-role=play]")  # pause
    page.wait_for_function("() => !window.__dp.playing && !window.__dp.drawn.header.replay")
    page.locator("[data-role=timeline]").wait_for(state="visible")
    latest = page.evaluate("window.__dp.timeline.latest")
    target = latest - 200
    shown = replay_to(page, target, f"step {target:,}'s thinned network")
    assert shown["replay"] and shown["step"] == target and shown["latest"] == latest
    # the panel draws the frame's thinned boundary, and says whose mask and weights it is
    assert shown["thinned"] is not None and shown["grid"] == pytest.approx(shown["thinned"], abs=1e-6)
    assert f"weights of step {latest:,}" in shown["label"] and "shown on the left" in shown["label"]
    assert f"Replay: the mask, values and loss of step {target:,}" in shown["caption"]
    assert f"weights as of step {latest:,}" in shown["caption"]
    # ... which is the engine's: the replayed step's mask on the weights of now
    run = engine_run(shown["config"], latest)
    run.set_view("thinned")
    _, replayed = decode(encode(run.replay(target)))
    for l in range(2):
        assert replayed[f"mask.{l}"].astype(int).tolist() == shown["masks"][l]
    assert np.abs(np.array(shown["grid"]) - replayed["boundary.thinned"]).max() <= 2 / 255 + 1e-6
    # and not the latest step's thinned network (what the panel drew before this fix)
    _, now = decode(encode(run.frame(extras=True)))
    assert np.abs(now["boundary.thinned"] - replayed["boundary.thinned"]).max() > 0.05
    page.screenshot(path=str(ARTIFACTS / "replay-thinned.png"), full_page=True)

    # PNG export during the replay: each file is named by the step(s) it shows
    files = page.evaluate("async () => (await window.__dp.exporter.plots()).files")
    assert f"dropout-network-mask-step{target}-weights-step{latest}.png" in files
    assert f"dropout-boundary-mask-step{target}-weights-step{latest}.png" in files
    assert f"dropout-losses-step{latest}.png" in files

    # a neuron's map chosen during the replay: the replay stays on, the map says its step
    page.select_option("[data-role=watch]", "0,2")
    page.wait_for_function(
        "s => { const dp = window.__dp, h = dp.drawn.header; return h.replay && h.step === s && dp.drawn.arrays.neuron"
        " && document.querySelector('[data-role=plane-title]').textContent.startsWith('Output of'); }",
        arg=target, timeout=20000)
    page.wait_for_timeout(200)
    shown = page.evaluate(SHOWN)
    assert shown["step"] == target and shown["replay"]
    assert shown["title"] == f"Output of neuron 3 of hidden layer 1, as of step {latest:,}"
    assert f"weights as of step {latest:,}" in shown["label"] and f"example of step {target:,}" in shown["label"]
    run.set_watch(0, 2)
    _, replayed = decode(encode(run.replay(target)))
    want = replayed["neuron"]
    want = 0.5 + 0.5 * want / max(1e-6, np.abs(want).max())
    assert np.abs(np.array(shown["grid"]) - want).max() <= 0.02
    files = page.evaluate("async () => (await window.__dp.exporter.plots()).files")
    assert f"dropout-boundary-step{latest}.png" in files            # the map: today's weights only
    assert f"dropout-network-mask-step{target}-weights-step{latest}.png" in files
    page.screenshot(path=str(ARTIFACTS / "replay-neuron-map.png"), full_page=True)
    assert not page.errors


def test_a_64_wide_layer_in_a_700px_embed_is_a_sample_and_says_so(browser, live_server):
    context = browser.new_context(viewport={"width": 700, "height": 700})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(live_server.url + "/embed#hidden=64&p=0.5&speed=20")
        page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
        page.click("[data-role=play]")
        page.wait_for_function("() => window.__dp.drawn.header.step > 20", timeout=30000)
        page.click("[data-role=play]")
        page.wait_for_function("() => !window.__dp.playing && window.__dp.network.rendered"
                               " && window.__dp.network.rendered.header.step === window.__dp.timeline.latest")
        note = page.locator("[data-role=network-note]")
        note.wait_for(state="visible")
        drawn = page.evaluate("() => window.__dp.network.drawnNeurons()[0]")
        every = drawn[1] - drawn[0]
        assert 2 <= len(drawn) < 64 and drawn == list(range(0, 64, every))
        still = page.evaluate(STILL)
        mask = still["masks"][0]
        dropped = mask.count(0)
        dropped_drawn = sum(1 for i in drawn if mask[i] == 0)
        text = note.inner_text()
        nth = {2: "2nd", 3: "3rd"}.get(every, f"{every}th")
        assert f"showing {len(drawn)} of 64 neurons, every {nth}" in text
        assert f"dropped in this step: {dropped} of 64 ({dropped_drawn} of the {len(drawn)} shown)" in text
        # what is drawn is the frame's mask, neuron by neuron, and the markers stand apart
        assert check_still(still) == dropped_drawn
        ys = sorted(y for _, _, _, y in still["centres"])
        assert min(b - a for a, b in zip(ys, ys[1:])) >= 15
        # and the layer's name under it says it too
        assert page.locator(f"text=({len(drawn)} of 64)").count() >= 1
        page.screenshot(path=str(ARTIFACTS / "wide-layer-embed-700.png"), full_page=True)
        assert not errors
    finally:
        context.close()


def test_at_full_speed_each_still_picture_is_one_frames_mask(page, live_server):
    open_page(page, live_server.url, "#hidden=8,8&p=0.5,0.5&speed=1000000")  # full speed
    page.click("[data-role=play]")
    page.wait_for_function("() => window.__dp.drawn.header.step > 200 && window.__dp.network.rendered", timeout=30000)
    assert page.evaluate("window.__dp.state.speed") == 1000000
    steps, crosses = [], 0
    while len(steps) < 5:  # five pictures of five frames, each looked at once it is drawn
        if steps:  # (waiting for the next frame, not sampling a fixed number of times)
            page.wait_for_function(f"() => window.__dp.network.rendered.header.step !== {steps[-1]}", timeout=30000)
        still = page.evaluate(STILL)
        steps.append(still["step"])
        crosses += check_still(still)
    assert crosses > 0  # the masks changed under the pictures looked at
    page.screenshot(path=str(ARTIFACTS / "full-speed-still.png"))
    assert not page.errors
