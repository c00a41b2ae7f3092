"""The playground in a real browser: headless Chromium through Playwright."""
from __future__ import annotations

import statistics

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser


def open_page(page, url: str, hash_: str = ""):
    page.goto(url + "/" + hash_)
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
    return page


def fractions_after(page, since: int) -> list[float]:
    return page.evaluate(f"() => window.__dp.stats.dropFractions.slice({since})")


def wait_frames(page, n: int, timeout: int = 60000):
    start = page.evaluate("window.__dp.stats.frames")
    page.wait_for_function(f"() => window.__dp.stats.frames >= {start + n}", timeout=timeout)


def test_play_frames_masks_eval_and_live_p(page, live_server):
    open_page(page, live_server.url, "#hidden=32,32&p=0.5,0.5")
    assert page.locator("[data-role=caption]").inner_text().startswith("step 0")
    page.click("[data-role=play]")
    wait_frames(page, 40)
    caption = page.locator("[data-role=caption]").inner_text()
    assert "mode train" in caption and "0.50, 0.50" in caption and "×2.00" in caption

    # the dropped fraction of the shown neurons, over many frames, matches p
    n0 = len(fractions_after(page, 0))
    wait_frames(page, 40)
    f = fractions_after(page, n0)
    assert len(f) >= 30
    assert abs(statistics.mean(f) - 0.5) < 0.05

    # the loss curve gains points
    count = page.evaluate("window.__dp.losses.count")
    page.wait_for_function(f"() => window.__dp.losses.count > {count}")

    # changing p mid-run moves the fraction (p is set per layer from the sliders)
    page.evaluate("window.__dp.controls.set('p', [0.1, 0.1])")
    page.wait_for_timeout(400)
    n1 = len(fractions_after(page, 0))
    wait_frames(page, 40)
    f = fractions_after(page, n1)
    assert abs(statistics.mean(f) - 0.1) < 0.04
    assert "0.10, 0.10" in page.locator("[data-role=caption]").inner_text()

    # eval mode: nothing is dropped
    page.check("[data-role=mode]")
    page.wait_for_timeout(400)
    n2 = len(fractions_after(page, 0))
    wait_frames(page, 20)
    f = fractions_after(page, n2)
    assert f and max(f) == 0
    assert "mode eval" in page.locator("[data-role=caption]").inner_text()
    assert "mode=eval" in page.url and "p=0.1,0.1" in page.url

    # the network panel really draws crosses (dropped) beside circles (kept) in train mode
    page.uncheck("[data-role=mode]")
    page.wait_for_function("""() => {
        const gd = document.querySelector('[data-role=network]');
        const s = gd.data[window.__dp.network.neuronTrace].marker.symbol;
        return s.includes('x') && s.includes('circle'); }""", timeout=20000)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
    assert not [e for e in page.errors if "favicon" not in e]


def test_url_round_trips(page, live_server):
    link = "#data=spiral&noise=0.2&hidden=6,5,4&p=0.2,0.4,0.6&act=tanh&opt=sgd&lr=0.05&batch=20&speed=30"
    open_page(page, live_server.url, link)
    info = page.evaluate("window.__dp.info.config")
    assert info["data"]["dataset"] == "spiral" and info["data"]["noise"] == 0.2
    assert info["model"]["hidden"] == [6, 5, 4] and info["model"]["p"] == [0.2, 0.4, 0.6]
    assert info["model"]["activation"] == "tanh" and info["train"]["optimizer"] == "sgd"
    assert info["train"]["batch_size"] == 20
    assert page.input_value("#f-data") == "spiral"
    assert page.input_value("#f-p-2") == "0.6"
    # the page writes the same state back: a copy of its URL reproduces the setup
    page.select_option("#f-act", "gelu")
    page.wait_for_function("() => window.__dp.info.config.model.activation === 'gelu'")
    url = page.url
    assert "act=gelu" in url and "hidden=6,5,4" in url
    other = page.context.new_page()
    open_page(other, url.split("#")[0].rstrip("/"), "#" + url.split("#")[1])
    assert other.evaluate("window.__dp.info.config") == page.evaluate("window.__dp.info.config")


def test_invalid_link_values_fall_back_to_defaults_with_a_notice(page, live_server):
    open_page(page, live_server.url, "#p=1.7,0.2&data=mnist&points=9")
    notice = page.locator("[data-role=notice]")
    assert notice.is_visible()
    text = notice.inner_text()
    # named by the labels on screen, with the link's own key
    assert "Dataset has to be one of" in text and "mnist" in text and "link setting data" in text
    assert "Points has to be between 50 and 2000, but got 9" in text
    cfg = page.evaluate("window.__dp.info.config")
    assert cfg["data"]["dataset"] == "circle" and cfg["data"]["n_points"] == 500
    assert cfg["model"]["p"] == [0.3, 0.3]


def test_a_bad_setting_shows_a_clear_message(page, live_server):
    open_page(page, live_server.url)
    # a combination only the server can judge: its error names the field and the value
    page.select_option("#f-kind", "cnn")
    notice = page.locator("[data-role=notice]")
    notice.wait_for(state="visible")
    assert "Network: a CNN needs images" in notice.inner_text()
    assert "but got dataset 'circle'" in notice.inner_text()
    assert page.get_attribute("#f-kind", "aria-invalid") == "true"
    # a width out of range is refused at the control, with the range and the value: the
    # network chosen is a CNN, so the server's channel limit (DP_MAX_CHANNELS) applies
    page.fill("#f-hidden-0", "100")
    page.press("#f-hidden-0", "Tab")
    assert "between 1 and 16, but got 100" in page.locator("#f-hidden-err").inner_text()
    # typed into a control the browser would clamp: the page says what it refused
    page.fill("#f-noise", "0.9")
    page.press("#f-noise", "Tab")
    err = page.locator("#f-noise-err")
    assert "Noise has to be between 0 and 0.5, but got 0.9" in err.inner_text()
    assert page.get_attribute("#f-noise", "aria-invalid") == "true"


def test_keyboard_and_narrow_screen(page, live_server):
    page.set_viewport_size({"width": 360, "height": 800})
    open_page(page, live_server.url)
    page.focus("[data-role=play]")
    page.keyboard.press("Enter")
    wait_frames(page, 5)
    assert page.get_attribute("[data-role=play]", "aria-pressed") == "true"
    # nothing overflows the phone width
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 362
    # focus is visible on a control reached by Tab
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.screenshot(path=str(ARTIFACTS / "playground-360.png"), full_page=True)


def test_hovering_a_neuron_shows_its_output_over_the_plane(page, live_server):
    open_page(page, live_server.url)
    # hidden layer 1, neuron 0 is the third marker (after the two inputs)
    point = page.locator("[data-role=network] .scatterlayer .trace").last.locator(".point").nth(2)
    point.hover(force=True)
    caption = page.locator("[data-role=plane-caption]")
    page.wait_for_function(
        "() => document.querySelector('[data-role=plane-caption]').textContent.includes('output of neuron 1 of hidden layer 1')",
        timeout=20000)
    assert "eval mode" in caption.inner_text()
    page.mouse.move(5, 5)  # leave the plot: back to the model's boundary
    page.wait_for_function(
        "() => document.querySelector('[data-role=plane-caption]').textContent.includes('boundary')", timeout=20000)
    # and the server is told: the next frame no longer carries the neuron's map
    page.wait_for_function("() => window.__dp.drawn && !window.__dp.drawn.arrays.neuron"
                           " && window.__dp.drawn.arrays['boundary.eval']", timeout=20000)


def test_boundary_view_switches_between_eval_and_thinned_network(page, live_server):
    open_page(page, live_server.url, "#hidden=8,8&p=0.5,0.5")
    page.click("[data-role=step]")
    page.wait_for_function("() => window.__dp.drawn && window.__dp.drawn.header.step === 1", timeout=20000)
    caption = "document.querySelector('[data-role=plane-caption]').textContent"
    assert "full network in eval mode (no dropout)" in page.evaluate(caption)
    page.select_option("[data-role=view]", "thinned")
    # the server computes only the boundary on screen: the next frame brings the thinned one
    page.wait_for_function(f"() => {caption}.includes(\"this step's thinned network\")", timeout=20000)
    sections = page.evaluate("Object.keys(window.__dp.drawn.arrays)")
    assert "boundary.thinned" in sections and "boundary.eval" not in sections
    assert "view=thinned" in page.url
    page.select_option("[data-role=view]", "eval")
    page.wait_for_function(f"() => {caption}.includes('full network in eval mode (no dropout)')"
                           " && window.__dp.drawn.arrays['boundary.eval']", timeout=20000)
    # a link with view=thinned asks the server for the thinned boundary from the start
    page.goto("about:blank")
    open_page(page, live_server.url, "#hidden=8,8&p=0.5,0.5&view=thinned")
    page.click("[data-role=step]")
    page.wait_for_function("() => window.__dp.drawn && window.__dp.drawn.header.step === 1"
                           " && window.__dp.drawn.arrays['boundary.thinned']", timeout=20000)
    assert not [e for e in page.errors if "favicon" not in e]
