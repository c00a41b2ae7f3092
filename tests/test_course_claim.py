"""The claim /course-example makes, checked with the engine on several seeds.

The page shows two playgrounds with the same data, network and seed, one with dropout,
one without, and stops both at the same step. Its text says that at that step the one with
dropout has the lower test loss, and that their test accuracy is about the same. Both are
checked here on seeds 0-5 of the page's own presets (read from the template, so the page and
this test cannot drift apart). Float sums differ between CPUs and BLAS builds, and 1,500
steps carry such differences along, so the checks keep wide margins (measured numbers
in the tests' docstrings)."""
from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl

import pytest
import torch

from conftest import ROOT
from model_server import Run, parse_config
from model_server.runstate import loss_fn

PAGE = (ROOT / "templates" / "course_example.html").read_text()
SEEDS = range(6)

# the playground's URL keys (static/js/state.js) that the page's presets use
KEYS = {"data": ("data", "dataset", str), "points": ("data", "n_points", int), "noise": ("data", "noise", float),
        "trainfrac": ("data", "train_fraction", float), "seed": ("data", "seed", int),
        "hidden": ("model", "hidden", lambda v: [int(x) for x in v.split(",")]),
        "p": ("model", "p", lambda v: [float(x) for x in v.split(",")]), "lr": ("train", "lr", float)}


def preset(embed_id: str) -> dict:
    """The run config of the page's embed `embed_id`, from its iframe's #hash."""
    src = re.search(rf'<iframe data-embed="{embed_id}"[^>]*\ssrc="([^"]+)"', PAGE).group(1)
    config = {"data": {}, "model": {}, "train": {"device": "cpu"}}
    for key, raw in parse_qsl(html.unescape(src).split("#", 1)[1]):
        part, name, kind = KEYS[key]  # a key not listed here would be a preset this test ignores
        config[part][name] = kind(raw)
    return config


def stop_step() -> int:
    """Where the page's 'train both' button stops both embeds."""
    return int(re.search(r'data-command="play" data-until="(\d+)"', PAGE).group(1))


def test_at(config: dict, seed: int, steps: int) -> tuple[float, float]:
    """(test loss, test accuracy) after `steps` steps, in eval mode, as the page shows them."""
    config = {**config, "data": {**config["data"], "seed": seed}}
    run = Run(parse_config(config))
    run.step(steps)
    with torch.no_grad(), run.net.scratch(train=False):
        logits = run.net(run.data.x_test)
    hits = ((logits > 0).float() == run.data.y_test).float().mean()
    return loss_fn(logits, run.data.y_test).item(), hits.item()


test_at.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def measured(one_thread) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    a, b = preset("a"), preset("b")
    assert a["model"]["p"] != b["model"]["p"] and max(b["model"]["p"]) == 0
    assert {**a, "model": {**a["model"], "p": None}} == {**b, "model": {**b["model"], "p": None}}
    steps = stop_step()
    rows = [(test_at(a, s, steps), test_at(b, s, steps)) for s in SEEDS]
    for s, ((la, aa), (lb, ab)) in zip(SEEDS, rows):
        print(f"seed {s} step {steps}: test loss {la:.3f} with dropout, {lb:.3f} without; "
              f"accuracy {aa:.3f} / {ab:.3f}")
    return rows


def test_dropout_lowers_the_test_loss_at_the_stop_step_on_every_seed(measured):
    """Measured (x86-64, 2 cores): at step 1,500, with / without dropout, test loss
    0.90/2.00, 0.55/0.86, 0.83/1.23, 0.71/1.12, 0.65/1.41, 1.11/2.60 on seeds 0-5: a factor
    1.48 to 2.35 (the page says 1.5 to 2.3); 1.25 is asked for here."""
    for (with_dropout, _), (without, _) in measured:
        assert with_dropout < 0.8 * without


def test_test_accuracy_is_about_the_same(measured):
    """The page says the difference is in confidence, not in accuracy. Measured: 0 to 5
    points apart (dropout never below); within 8 is asked for here."""
    for (_, with_dropout), (_, without) in measured:
        assert abs(with_dropout - without) <= 0.08
