"""Every label on the playground says what the panels show (issue: labels that contradict
the screen). Each test reads a label and checks it against the picture or the frame
it was drawn from, in headless Chromium."""
from __future__ import annotations

import math
import re

import pytest

from conftest import ARTIFACTS
from test_browser import open_page, wait_frames

pytestmark = pytest.mark.browser

CAPTION = "document.querySelector('[data-role=caption]').textContent"


def caption(page) -> str:
    return page.locator("[data-role=caption]").inner_text()


def measured_rates(page) -> list[float]:
    text = caption(page)
    m = re.search(r"measured drop rate ([0-9.–, ]+)", text)
    assert m, text
    return [float(v) for v in m.group(1).replace("–", "nan").split(",") if v.strip()]


def test_eval_mode_says_training_goes_on_and_measures_no_drops(page, live_server):
    open_page(page, live_server.url, "#hidden=16,16&p=0.5,0.3&speed=300")
    assert "weights keep training" in page.locator("label[for=mode]").inner_text()
    page.click("[data-role=play]")
    wait_frames(page, 30)
    rates = measured_rates(page)
    assert abs(rates[0] - 0.5) < 0.1 and abs(rates[1] - 0.3) < 0.1
    page.check("[data-role=mode]")
    page.wait_for_function(f"() => {CAPTION}.includes('mode eval')", timeout=20000)
    step0 = page.evaluate("window.__dp.drawn.header.step")
    wait_frames(page, 30)
    text = caption(page)
    assert "training continues" in text and "nothing dropped" in text
    assert measured_rates(page) == [0.0, 0.0]  # the rate of the mode on screen: 0 in eval
    # and the label is true: the run kept training
    assert page.evaluate("window.__dp.drawn.header.step") > step0
    # back in train mode the rate is measured afresh and is p again
    page.uncheck("[data-role=mode]")
    page.wait_for_function(f"() => {CAPTION}.includes('mode train')", timeout=20000)
    wait_frames(page, 30)
    rates = measured_rates(page)
    assert abs(rates[0] - 0.5) < 0.1 and abs(rates[1] - 0.3) < 0.1
    assert "dropout on" in page.locator("[data-role=loss-note]").inner_text()
    page.check("[data-role=mode]")
    page.wait_for_function(f"() => {CAPTION}.includes('mode eval')", timeout=20000)
    page.wait_for_function("() => document.querySelector('[data-role=loss-note]').textContent.includes('no dropout')",
                           timeout=20000)


# For each hidden neuron on screen: its mask bit in the drawn frame, its activation, and
# what the canvas shows at the marker's centre (its pixel, read back from whoever draws
# it). A kept neuron's circle is filled with its activation's colour there, on a scale
# (vermillion - white - blue) that never comes near the grey the cross has at its centre.
MARKERS = """async () => {
  const dp = window.__dp, net = dp.network, fr = dp.drawn;
  const out = [], points = [];
  for (let l = 0; fr.arrays['mask.' + l]; l++) {
    const mask = fr.arrays['mask.' + l].data, act = fr.arrays['act.' + l].data;
    for (let i = 0; i < mask.length; i++) {
      const k = net.index[l + 1] + i;
      out.push({ kept: mask[i] === 1, act: act[i], shown: net.symbols[k], fill: net.colors[k], step: fr.header.step });
      points.push([net.px[k], net.py[k]]);
    }
  }
  const px = await net.probe(points);
  out.forEach((m, j) => { m.centre = px[j]; });
  return out;
}"""
CROSS_GREY = (0x7D, 0x83, 0x8C)


def near(rgba, rgb, tolerance) -> bool:
    return rgba[3] > 200 and all(abs(a - b) <= tolerance for a, b in zip(rgba, rgb))


# A browser whose Worker cannot load the drawing module (one without module Workers):
# every Worker it makes fails to load.
BROKEN_WORKER = """window.Worker = class extends Worker {
  constructor(url, options) { super('/no-such-worker.js', options); } };"""


@pytest.mark.parametrize("drawer", ["worker", "no OffscreenCanvas", "Worker fails to load"])
def test_dropped_neurons_are_crosses_and_kept_zeros_stay_circles(page, live_server, drawer):
    """The picture is drawn by a Worker; a browser without OffscreenCanvas, or whose
    Worker does not load, draws it on the page, with the same code."""
    if drawer == "no OffscreenCanvas":
        page.add_init_script("delete HTMLCanvasElement.prototype.transferControlToOffscreen")
    elif drawer == "Worker fails to load":
        page.add_init_script(BROKEN_WORKER)
    open_page(page, live_server.url, "#hidden=16,16&p=0.5,0.5&act=relu")
    if drawer != "worker":
        page.wait_for_function("() => window.__dp.network.worker === null", timeout=10000)
    assert page.evaluate("window.__dp.network.worker !== null") == (drawer == "worker")
    seen_zero_kept = seen_dropped = False
    for n in range(1, 25):
        page.click("[data-role=step]")
        page.wait_for_function(f"() => window.__dp.drawn && window.__dp.drawn.header.step === {n}", timeout=20000)
        page.wait_for_timeout(150)  # a few animation frames: the markers have eased in
        markers = page.evaluate(MARKERS)
        assert all(m["step"] == n for m in markers)
        for m in markers:
            if m["kept"]:
                assert m["shown"] == "circle", m
                fill = tuple(int(v) for v in re.findall(r"\d+", m["fill"]))
                assert near(m["centre"], fill, 12) and not near(m["centre"], CROSS_GREY, 30), m
                seen_zero_kept |= m["act"] == 0
            else:
                assert m["shown"] == "x", m
                assert near(m["centre"], CROSS_GREY, 12), m
                seen_dropped = True
        if seen_zero_kept and seen_dropped:
            break
    assert seen_zero_kept and seen_dropped
    assert "cross" in page.locator("[data-role=legend]").inner_text()
    page.screenshot(path=str(ARTIFACTS / "labels-crosses.png"))


def test_alpha_dropout_caption_states_its_affine_form(page, live_server):
    p = 0.3
    open_page(page, live_server.url, f"#act=selu&dk=alpha&p={p},{p}&hidden=12,12")
    page.click("[data-role=step]")
    page.wait_for_function("() => window.__dp.drawn.header.step === 1", timeout=20000)
    page.wait_for_timeout(300)
    text = caption(page)
    alpha = 1.7580993408473766
    a = 1 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    b = alpha * a * p
    assert "AlphaDropout" in text
    assert f"kept {a:.3f}·x + {b:.3f}" in text and f"dropped → {-alpha * a + b:.3f}" in text
    assert "×1.43" not in text and "1/(1" not in text  # no inverted-dropout factor
    legend = page.locator("[data-role=legend]").inner_text()
    assert "fixed negative value" in legend and "outputs 0" not in legend


def test_digits_cnn_hides_the_plane_controls_and_names_channels(page, live_server):
    open_page(page, live_server.url, "#data=digits&kind=cnn&hidden=8,8&dk=dropout2d&p=0.5,0.5&batch=32")
    for role in ("view-field", "plane-key", "watch-field"):
        assert not page.locator(f"[data-role={role}]").is_visible(), role
    legend = page.locator("[data-role=legend]").inner_text()
    assert "channel" in legend and "not fully connected" in legend
    assert page.locator("label[for=f-hidden-0]").inner_text() == "Layer 1 channels"
    # the digits set is fixed: no 'Points' or 'Noise' that would contradict its 1,797 images
    assert not page.locator("#f-points").is_visible() and not page.locator("#f-noise").is_visible()
    assert page.locator("[data-role=plane-title]").inner_text() == "Input and feature maps"
    page.click("[data-role=step]")
    page.wait_for_function("""() => {
        const gd = document.querySelector('[data-role=plane]');
        return gd.layout && (gd.layout.annotations || []).length === 3; }""", timeout=20000)
    labels = page.evaluate("document.querySelector('[data-role=plane]').layout.annotations.map(a => a.text)")
    assert labels == ["input digit", "hidden layer 1: 8 channels after dropout", "hidden layer 2: 8 channels after dropout"]
    # the network's hover names say channel, numbered from 1
    texts = page.evaluate("document.querySelector('[data-role=network]').data[window.__dp.network.neuronTrace].text")
    assert "channel 1 of hidden layer 1" in texts and not any("channel 0 " in t for t in texts)
    # paused: the device line claims no training rate
    page.wait_for_timeout(300)
    assert "steps/s" not in page.locator("[data-role=device]").inner_text()
    page.screenshot(path=str(ARTIFACTS / "labels-cnn.png"), full_page=True)


def test_hovering_a_neuron_retitles_the_panel_and_moves_the_selectors(page, live_server):
    open_page(page, live_server.url, "#hidden=8,8")
    title = page.locator("[data-role=plane-title]")
    assert title.inner_text() == "Decision boundary"
    # hidden layer 1's first neuron is the third marker (after the two inputs)
    point = page.locator("[data-role=network] .scatterlayer .trace").last.locator(".point").nth(2)
    point.hover(force=True)
    page.wait_for_function("() => document.querySelector('[data-role=plane-title]').textContent"
                           " === 'Output of neuron 1 of hidden layer 1'", timeout=20000)
    assert page.input_value("[data-role=watch]") == "0,0"
    assert page.locator("[data-role=watch] option:checked").inner_text() == "neuron 1 of hidden layer 1"
    assert page.is_disabled("[data-role=view]")
    page.mouse.move(5, 5)
    page.wait_for_function("() => document.querySelector('[data-role=plane-title]').textContent === 'Decision boundary'",
                           timeout=20000)
    assert page.input_value("[data-role=watch]") == ""
    assert not page.is_disabled("[data-role=view]")
    # no neuron is numbered 0 anywhere on screen
    options = page.locator("[data-role=watch] option").all_inner_texts()
    assert "neuron 8 of hidden layer 2" in options and not any(re.search(r"neuron 0\b", o) for o in options)


def test_small_labels_speed_notice_and_narrow_caption(page, live_server):
    page.set_viewport_size({"width": 360, "height": 800})
    open_page(page, live_server.url, "#points=9&hidden=16,16&p=0.5,0.5")
    # the link notice can be dismissed
    notice = page.locator("[data-role=notice]")
    assert notice.is_visible() and "Points has to be between" in notice.inner_text()
    page.click("[data-role=notice] button")
    assert not notice.is_visible()
    # one step a second is "1 step/s"
    page.evaluate("""() => { const s = document.querySelector('[data-role=speed]');
        s.value = 0; s.dispatchEvent(new Event('input')); }""")
    assert page.locator("[data-role=speed-label]").inner_text() == "1 step/s"
    # at 360 px the sticky caption stays within two lines and the plane selector fits
    page.click("[data-role=step]")
    page.wait_for_function("() => window.__dp.drawn.header.step === 1", timeout=20000)
    page.wait_for_timeout(300)
    lines = page.evaluate("""() => { const c = document.querySelector('[data-role=caption]');
        const s = getComputedStyle(c);
        return (c.clientHeight - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom)) / parseFloat(s.lineHeight); }""")
    assert lines <= 2.2, lines
    box = page.locator("[data-role=watch]").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 360
    page.screenshot(path=str(ARTIFACTS / "labels-360.png"), full_page=True)


def test_the_steps_per_second_shown_is_the_speed_trained(page, live_server):
    open_page(page, live_server.url, "#hidden=8,8&speed=20")
    page.click("[data-role=play]")
    page.wait_for_timeout(1500)
    sample = "() => [window.__dp.drawn.header.step, window.__dp.drawn.header.t]"
    (s0, t0) = page.evaluate(sample)
    page.wait_for_timeout(2500)
    (s1, t1) = page.evaluate(sample)
    text = page.locator("[data-role=device]").inner_text()
    shown = int(re.search(r"([0-9,]+) steps/s", text).group(1).replace(",", ""))
    trained = (s1 - s0) / ((t1 - t0) / 1000)
    # what the run really did (an average of per-frame rates used to overstate it by half),
    # and never more than asked for
    assert abs(shown - trained) <= 0.25 * trained + 1, (text, trained)
    assert shown <= 22, text
    page.click("[data-role=play]")  # pause: no rate claimed
    page.wait_for_function("() => !document.querySelector('[data-role=device]').textContent.includes('steps/s')")
