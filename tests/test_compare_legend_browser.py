"""/compare tells its runs apart by colour and line style, its legend names each run's
setup, and text from the URL stays text in the legend (Plotly reads HTML in trace names)."""
from __future__ import annotations

import pytest

from conftest import ARTIFACTS

pytestmark = pytest.mark.browser

LIVE = 90_000
PAYLOAD = "<a href=x><span style=color:red>X</span></a>"

# per legend entry: its text and its line's colour and dash
LEGEND = """() => Array.from(document.querySelectorAll('[data-role=losses] .legend .traces')).map(t => {
  const line = t.querySelector('.legendlines path');
  return { text: t.querySelector('.legendtext').textContent, color: line && line.style.stroke,
           dash: line && line.style.strokeDasharray };
})"""


def legend(page, entries):
    page.wait_for_function(f"() => document.querySelectorAll('[data-role=losses] .legend .traces').length === {entries}",
                           timeout=LIVE)
    return page.evaluate(LEGEND)


def test_runs_have_their_own_colour_and_style_and_the_legend_names_their_setup(page, live_server):
    page.goto(live_server.url + "/compare#data=xor&points=100&hidden=8,8&steps=100&runs=3&a.p=0&b.p=0.5&c.p=0.2&c.wd=0.01")
    entries = legend(page, 9)
    test_loss = {e["text"]: e for e in entries if e["text"].endswith("test loss")}
    assert set(test_loss) == {"A: p 0: test loss", "B: p 0.5: test loss", "C: p 0.2, wd 0.01: test loss"}
    assert len({e["color"] for e in test_loss.values()}) == 3
    assert len({e["dash"] for e in test_loss.values()}) == 3
    # one colour per run: its three curves share it
    for letter in "ABC":
        assert len({e["color"] for e in entries if e["text"].startswith(letter + ":")}) == 1
    # each card shows its run's colour
    card_colors = page.evaluate("""() => Array.from(document.querySelectorAll('.run-card'))
        .map(c => getComputedStyle(c).borderTopColor)""")
    assert len(set(card_colors)) == 3
    page.screenshot(path=str(ARTIFACTS / "compare-legend.png"), full_page=True)


def test_text_from_the_url_is_shown_as_text_in_the_legend(page, live_server):
    page.goto(live_server.url + f"/compare#data=xor&points=100&hidden=8,8&steps=100&runs=2&a.p={PAYLOAD}&b.p=0.5")
    entries = legend(page, 6)
    assert f"A: p {PAYLOAD}: test loss" in [e["text"] for e in entries]
    assert page.locator("[data-role=losses] a").count() == 0
    assert page.evaluate("""() => Array.from(document.querySelectorAll('[data-role=losses] .legend *'))
        .every(n => !/red/.test(n.getAttribute('style') || ''))""")
    # and as text on the run's card
    assert page.locator(".run-card h2").first.inner_text().startswith(f"A: p {PAYLOAD}")
    assert page.locator(".run-card a").count() == 0
