"""One change of one layer's p, from the slider to the server: one `set` message, for that
layer only, and the frames that follow train with it (issue 25: the page sent one `set`
per layer for a one-layer change)."""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.browser


def test_one_slider_change_sends_one_set_for_its_layer(page, live_server):
    sent: list[dict] = []

    def on_socket(ws):
        def frame(payload):
            text = payload if isinstance(payload, str) else ""
            if text.startswith("42"):
                body = json.loads(text[text.index("["):])
                if body[0] == "set":
                    sent.append(body[1])
        ws.on("framesent", frame)
    page.on("websocket", on_socket)
    page.goto(live_server.url + "/#p=0.5,0.5")
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
    before = len(sent)
    slider = page.locator("#f-p-1")
    slider.focus()
    slider.evaluate("(s, v) => { s.value = v; s.dispatchEvent(new Event('input', {bubbles: true}));"
                    " s.dispatchEvent(new Event('change', {bubbles: true})); }", "0.2")
    page.wait_for_function("() => window.__dp.drawn && window.__dp.drawn.header.p[1] === 0.2", timeout=20000)
    sets = [s for s in sent[before:] if s["change"]["param"] == "p"]
    assert sets == [{"run": "main", "change": {"param": "p", "layer": 1, "value": 0.2}}] or \
        [s["change"] for s in sets] == [{"param": "p", "layer": 1, "value": 0.2}], sets
    assert page.evaluate("window.__dp.drawn.header.p") == [0.5, 0.2]
