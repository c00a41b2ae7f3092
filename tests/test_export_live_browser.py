"""Issue 24 item 1: the exported script of a run with live changes (p, mode, learning rate)
replays them at the same steps and ends where the page ended (an MLP: the page's final
test loss within 1e-4 relative)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.browser


def play_to(page, step: int) -> dict:
    page.evaluate(f"() => window.__dp.play({step})")
    page.wait_for_function(f"() => !window.__dp.playing && window.__dp.drawn.header.step === {step}", timeout=60000)
    return page.evaluate("window.__dp.drawn.header")


def test_export_replays_the_pages_live_changes(live_server, page, tmp_path):
    page.goto(live_server.url + "/#data=moons&p=0.5,0.5&speed=500")
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
    play_to(page, 300)
    page.evaluate("window.__dp.controls.set('p', [0.1, 0.5])")           # drag layer 1's p
    page.wait_for_function("() => window.__dp.drawn.header.p[0] === 0.1")
    play_to(page, 450)
    page.check("[data-role=mode]")                                       # eval mode on ...
    play_to(page, 550)
    page.uncheck("[data-role=mode]")                                     # ... and off
    page.evaluate("window.__dp.controls.set('lr', 0.01)")
    header = play_to(page, 700)
    page.wait_for_function("() => window.__dp.drawn.header.eval && window.__dp.drawn.header.eval.step === 700")
    shown = page.evaluate("window.__dp.drawn.header.eval.test_loss")

    page.locator("[data-role=export] summary").click()
    with page.expect_download() as info:
        page.locator("[data-export=code]").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    source = path.read_text()
    assert "SCHEDULE = [" in source and "(301, [0.1, 0.5]" in source and "'eval')" in source
    done = subprocess.run([sys.executable, str(path), "--steps", str(header["step"])], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    final = float(re.search(r"final: test loss ([0-9.]+)", done.stdout).group(1))
    assert final == pytest.approx(shown, rel=1e-4, abs=1e-4)  # (the script prints 4 decimals)
    assert not page.errors, page.errors
