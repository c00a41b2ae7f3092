"""Export: runnable PyTorch code, metrics as CSV/JSON, weights as safetensors, plots as PNG.

The exported script is checked by running it (a subprocess, a few steps) and by
comparing it with the engine: same data, same initial weights, and for MLPs on the CPU
the same training losses step for step (its nn.Dropout draws the playground's masks).
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import types

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load as load_safetensors

from model_server import Run, parse_config
from model_server.activations import ACTIVATIONS
from model_server.export import metrics_csv, script

# a visitor's own set: two interleaved clusters per class, inside the plane
CUSTOM = {"data": {"dataset": "custom", "train_fraction": 0.6, "seed": 4, "points": [
    [round(-1.2 + 0.1 * i, 2), round(0.9 * (-1) ** (i // 2) - 0.02 * i, 2), i % 2] for i in range(24)]},
    "train": {"batch_size": 5}}
CNN = {"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [4, 6], "p": [0.2, 0.3],
       "dropout_kind": "dropout2d", "batchnorm": "before_dropout"}, "train": {"batch_size": 32}}


def cpu(raw: dict) -> dict:
    raw = json.loads(json.dumps(raw))
    raw.setdefault("train", {})["device"] = "cpu"
    return raw


def load_script(source: str) -> types.ModuleType:
    module = types.ModuleType("exported")
    exec(compile(source, "exported.py", "exec"), module.__dict__)
    return module


def run_of(app, token: str = "test-token-1"):
    registry = app.extensions["dropout"]["registry"]
    session = next(s for s in registry.sessions.values() if s.token == token)
    return session.slot("main").look(lambda state: state.frozen())  # a copy at this step


# ---- the script -------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    {},
    {"data": {"dataset": "xor"}, "train": {"optimizer": "sgd"}, "model": {"batchnorm": "after_dropout"}},
    {"data": {"dataset": "spiral", "n_points": 301}, "model": {"activation": "tanh", "placement": "before_activation"},
     "train": {"optimizer": "momentum"}},
    {"data": {"dataset": "moons"}, "model": {"activation": "selu", "dropout_kind": "alpha", "p": [0.1, 0.2]}},
    {"data": {"dataset": "gauss"}, "model": {"dropout_kind": "dropout2d", "hidden": [5], "p": [1.0]}},
    {"data": {"dataset": "digits"}, "model": {"hidden": [16], "p": [0.5]}, "train": {"batch_size": 64}},
    CUSTOM,
], ids=["circle", "xor-sgd-bn", "spiral-tanh-before", "moons-selu-alpha", "gauss-p1", "digits-mlp", "custom"])
def test_exported_mlp_retraces_the_run_step_for_step(raw):
    cfg = parse_config(cpu(raw))
    run = Run(cfg)
    run.step(40)
    mod = load_script(script(cfg))
    data = mod.make_data()
    for mine, theirs in zip(data, (run.data.x_train, run.data.y_train, run.data.x_test, run.data.y_test)):
        assert torch.equal(mine, theirs.cpu())
    net = mod.Net()
    mod.init_weights(net, torch.Generator().manual_seed(cfg.data.seed))
    fresh = Run(cfg).net.state_dict()
    assert list(net.state_dict()) == list(fresh)
    for k, v in net.state_dict().items():
        assert torch.equal(v, fresh[k]), k
    losses = mod.train(net, data, 40, log=lambda *_: None)
    # the playground uses fused optimisers: the same maths, rounded differently
    assert losses == pytest.approx(run.losses()[:40].tolist(), abs=1e-4)


def test_exported_cnn_has_the_same_architecture_and_uses_dropout2d():
    cfg = parse_config(cpu(CNN))
    source = script(cfg)
    assert "nn.Dropout2d(p=0.2)" in source and "nn.BatchNorm2d(4)" in source
    mod = load_script(source)
    net, run = mod.Net(), Run(cfg)
    run.step(5)
    net.load_state_dict(run.net.state_dict())  # same names and shapes
    x = run.data.x_test[:50]
    net.eval()
    with run.net.scratch(train=False), torch.no_grad():
        # the same network, not necessarily the same kernels (its weights are other tensors,
        # maybe otherwise aligned): equal to float rounding on any CPU
        torch.testing.assert_close(net(x), run.net(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("raw", [{"model": {"hidden": [6, 4], "p": [0.5, 0.25]}}, CNN, CUSTOM],
                         ids=["mlp", "cnn", "custom"])
def test_exported_script_runs_standalone(tmp_path, raw):
    path = tmp_path / "exported.py"
    path.write_text(script(parse_config(cpu(raw)), steps=1000))
    out = subprocess.run([sys.executable, str(path), "--steps", "6"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "step      6  train loss" in out.stdout and "final: test loss" in out.stdout
    assert "MC dropout, 30 passes" in out.stdout


def test_exported_script_carries_a_custom_set_as_it_came():
    cfg = parse_config(cpu(CUSTOM))
    source = script(cfg)
    mod = load_script(source)
    assert mod.POINTS == CUSTOM["data"]["points"]
    assert "n_points" not in source and "noise" not in mod.CONFIG["data"]  # they do not apply
    x, y = mod.points()
    assert torch.allclose(torch.from_numpy(x), torch.tensor([p[:2] for p in CUSTOM["data"]["points"]]), atol=1e-6)
    assert y.tolist() == [p[2] for p in CUSTOM["data"]["points"]]


# ---- the production pattern: predict() in eval mode, mc_predict() with dropout only ------
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_exported_activation_is_the_tables_module(activation):
    """The script writes each block's activation from the one activation table, as the
    module network.Net builds from it."""
    cfg = parse_config(cpu({"model": {"activation": activation, "hidden": [5, 4, 3], "p": [0.1, 0.2, 0.3]}}))
    kinds = {a.module for a in ACTIVATIONS.values()}
    acts = lambda net: [type(m) for m in net.modules() if type(m) in kinds]  # noqa: E731
    assert acts(load_script(script(cfg)).Net()) == acts(Run(cfg).net) == [ACTIVATIONS[activation].module] * 3


@pytest.mark.parametrize("raw", [
    {"model": {"hidden": [16, 16], "p": [0.5, 0.5], "batchnorm": "before_dropout"}},
    {"data": {"dataset": "digits"}, "model": {"hidden": [32], "p": [0.4], "batchnorm": "after_dropout"},
     "train": {"batch_size": 64}},
    CNN,
], ids=["mlp-bn", "digits-bn", "cnn-bn-dropout2d"])
def test_exported_prediction_helpers(raw):
    cfg = parse_config(cpu(raw))
    mod = load_script(script(cfg))
    data = mod.make_data()
    net = mod.Net()
    mod.init_weights(net, torch.Generator().manual_seed(cfg.data.seed))
    mod.train(net, data, 30, log=lambda *_: None)
    net.train()  # as training leaves it: predict() must switch to eval itself
    x = data[2][:40]
    bns = [m for m in net.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    drops = [m for m in net.modules() if isinstance(m, mod.DROPOUT_LAYERS)]
    assert bns and drops
    running = [b.running_mean.clone() for b in bns]
    modes = []  # (kind, training) of every BatchNorm and dropout call
    hooks = [m.register_forward_pre_hook(lambda m, _: modes.append((type(m).__name__, m.training)))
             for m in bns + drops]

    first, again = mod.predict(net, x), mod.predict(net, x)
    assert torch.equal(first, again)  # eval mode: no dropout, the same answer every time
    assert not net.training and all(not t for _, t in modes)
    n_out = 10 if cfg.task == "digits" else None
    if n_out:
        assert first.shape == (40, 10) and torch.allclose(first.sum(1), torch.ones(40), atol=1e-5)
    else:
        assert first.shape == (40,) and ((first >= 0) & (first <= 1)).all()
    with torch.no_grad():
        assert torch.allclose(first, mod.probabilities(net(x)), atol=1e-6)

    modes.clear()
    mean, std = mod.mc_predict(net, x, samples=20)
    assert {t for name, t in modes if "BatchNorm" in name} == {False}  # BatchNorm stays in eval
    assert {t for name, t in modes if "Dropout" in name} == {True}     # only dropout layers train
    assert len(modes) == 20 * (len(bns) + len(drops))
    assert not any(m.training for m in net.modules())  # left in eval mode
    for b, before in zip(bns, running):
        assert torch.equal(b.running_mean, before)  # no statistics overwritten
    assert mean.shape == first.shape and std.shape == first.shape
    assert std.max() > 1e-3  # fresh masks each pass: the predictions vary
    again_mean, _ = mod.mc_predict(net, x, samples=20)
    assert not torch.equal(mean, again_mean)
    assert torch.equal(mod.predict(net, x), first)  # and eval predictions are untouched by it
    for h in hooks:
        h.remove()


def test_mc_predict_at_p_zero_equals_predict():
    cfg = parse_config(cpu({"model": {"hidden": [8], "p": [0.0]}}))
    mod = load_script(script(cfg))
    net = mod.Net()
    x = mod.make_data()[2]
    mean, std = mod.mc_predict(net, x, samples=5)
    assert torch.allclose(mean, mod.predict(net, x), atol=1e-6) and std.max() < 1e-6


# ---- through the socket event ------------------------------------------------------------
def configure_and_train(sio, config: dict, steps: int) -> dict:
    assert sio.emit("configure", {"config": cpu(config)}, callback=True)["ok"]
    ack = sio.emit("step", {"n": steps}, callback=True)
    assert ack["ok"], ack
    return ack


def test_export_code_event_gives_a_script_of_the_current_config(app, sio):
    configure_and_train(sio, {"data": {"dataset": "moons"}}, 25)
    assert sio.emit("set", {"change": {"param": "p", "layer": 0, "value": 0.6}}, callback=True)["ok"]
    ack = sio.emit("export", {"what": "code"}, callback=True)
    assert ack["ok"] and ack["what"] == "code" and ack["step"] == 25
    assert ack["filename"].endswith(".py") and ack["mime"] == "text/x-python"
    assert "nn.Dropout(p=0.6)" in ack["data"] and "make_moons" in ack["data"] and "STEPS = 25" in ack["data"]
    compile(ack["data"], ack["filename"], "exec")


def test_export_weights_round_trip_through_safetensors(app, sio, tmp_path):
    configure_and_train(sio, {"model": {"hidden": [7, 5], "batchnorm": "after_dropout"}}, 30)
    ack = sio.emit("export", {"what": "weights"}, callback=True)
    assert ack["ok"] and ack["filename"].endswith(".safetensors")
    blob = ack["data"]
    assert isinstance(blob, bytes)
    run = run_of(app)
    weights = load_safetensors(blob)
    state = run.net.state_dict()
    assert set(weights) == set(state)
    for k, v in state.items():
        assert torch.equal(weights[k], v.cpu()), k
    assert weights["blocks.0.0.weight"].shape == (7, 2)
    path = tmp_path / "weights.safetensors"
    with open(path, "wb") as f:
        f.write(blob)
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    assert meta["step"] == "30" and json.loads(meta["config"])["model"]["hidden"] == [7, 5]
    # the exported script's network takes them as they are and computes the same outputs
    mod = load_script(script(run.cfg))
    net = mod.Net()
    net.load_state_dict(weights)
    net.eval()
    x = run.data.x_test.cpu()
    with run.net.scratch(train=False), torch.no_grad():
        torch.testing.assert_close(net(x), run.net(x).cpu(), rtol=1e-5, atol=1e-6)  # to float rounding


def test_export_metrics_as_csv_and_json(app, sio):
    configure_and_train(sio, {"train": {"eval_every": 10}}, 50)
    run = run_of(app)  # evaluations no frame has read yet are in its history too
    assert [p["step"] for p in run.history] == [10, 20, 30, 40, 50]

    ack = sio.emit("export", {"what": "metrics_csv"}, callback=True)
    assert ack["ok"] and ack["filename"].endswith("-metrics.csv") and ack["mime"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(ack["data"])))
    assert list(rows[0]) == ["step", "train_loss", "test_loss", "test_acc", "p", "lr", "mode"]
    assert [int(r["step"]) for r in rows] == [10, 20, 30, 40, 50]
    p = run.cfg.model.p
    assert {(r["p"], r["mode"]) for r in rows} == {(" ".join(f"{x:g}" for x in p), "train")}
    for row, point in zip(rows, run.history):
        for k in ("train_loss", "test_loss", "test_acc"):
            assert float(row[k]) == pytest.approx(point[k], rel=1e-12)

    ack = sio.emit("export", {"what": "metrics_json"}, callback=True)
    doc = json.loads(ack["data"])
    assert doc["step"] == 50 and doc["config"]["train"]["eval_every"] == 10
    assert [{k: h[k] for k in ("step", "train_loss", "test_loss", "test_acc")} for h in doc["history"]] == run.history
    assert doc["changes"] == [{"from_step": 1, "p": p, "lr": run.cfg.train.lr, "mode": "train"}]
    assert 0 <= doc["history"][-1]["test_acc"] <= 1


def test_export_event_validates_its_payload(sio):
    ack = sio.emit("export", {"what": "code"}, callback=True)
    assert not ack["ok"] and ack["error"]["field"] == "run"  # nothing configured yet
    assert sio.emit("configure", {"config": cpu({})}, callback=True)["ok"]
    ack = sio.emit("export", {"what": "pickle"}, callback=True)
    assert not ack["ok"] and ack["error"]["field"] == "what" and ack["error"]["received"] == "pickle"
    assert "code" in ack["error"]["allowed"] and "weights" in ack["error"]["allowed"]
    ack = sio.emit("export", {"what": "code", "path": "/etc/passwd"}, callback=True)
    assert not ack["ok"] and ack["error"]["field"] == "path"
    ack = sio.emit("export", {"what": "code", "run": "other"}, callback=True)
    assert not ack["ok"] and ack["error"]["field"] == "run"
    ack = sio.emit("export", "code", callback=True)
    assert not ack["ok"] and ack["error"]["allowed"] == "object"
    assert sio.emit("export", {"what": "code"}, callback=True)["ok"]  # the connection carries on


# ---- in the browser -------------------------------------------------------------------------
def test_export_buttons_download_files(live_server, page, tmp_path):
    page.goto(live_server.url + "/embed#hidden=6&p=0.4")
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=30000)
    page.evaluate("() => window.__dp.step()")
    page.wait_for_function("() => window.__dp.drawn && window.__dp.drawn.header.step >= 1")
    page.locator("[data-role=export] summary").click()
    saved = {}
    for what in ("code", "weights", "metrics_csv", "metrics_json"):
        with page.expect_download() as info:
            page.locator(f"[data-export={what}]").click()
        d = info.value
        saved[what] = tmp_path / d.suggested_filename
        d.save_as(saved[what])
    assert saved["code"].suffix == ".py" and "nn.Dropout(p=0.4)" in saved["code"].read_text()
    weights = load_safetensors(saved["weights"].read_bytes())
    assert weights["blocks.0.0.weight"].shape == (6, 2)
    assert saved["metrics_csv"].read_text().startswith("step,train_loss,test_loss,test_acc")
    assert json.loads(saved["metrics_json"].read_text())["config"]["model"]["p"] == [0.4]

    pngs = []
    page.on("download", lambda d: pngs.append(d))
    page.locator("[data-export=png]").click()
    page.wait_for_function("() => /Saved .*png/.test(document.querySelector('[data-role=export-status]').textContent)")
    page.wait_for_timeout(300)
    names = sorted(d.suggested_filename for d in pngs)
    assert names == ["dropout-boundary-step1.png", "dropout-losses-step1.png", "dropout-network-step1.png"]
    png = tmp_path / names[0]
    pngs[0].save_as(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not page.errors, page.errors


def test_exported_script_replays_live_changes_step_for_step():
    """Before: the script used the settings of the moment of export from step 1 (p = 0.1
    where the run had trained 0.5 first), and ended 0.039 where the page said 0.072."""
    cfg = parse_config(cpu({"data": {"dataset": "moons"}, "model": {"p": [0.5, 0.5]}}))
    run = Run(cfg)
    run.step(120)
    run.set_p(0, 0.1)
    run.step(80)
    run.set_mode("eval")
    run.step(50)
    run.set_mode("train")
    run.set_lr(0.03)
    run.step(100)
    frozen = run.state.frozen()
    assert [c[0] for c in frozen.changes] == [1, 121, 201, 251]
    source = script(frozen.cfg, steps=350, changes=frozen.changes)
    mod = load_script(source)
    data = mod.make_data()
    net = mod.Net()
    mod.init_weights(net, torch.Generator().manual_seed(cfg.data.seed))
    losses = mod.train(net, data, 350, log=lambda *_: None)
    assert losses == pytest.approx(run.losses()[:350].tolist(), abs=1e-4)
    mine = mod.evaluate(net, data[2], data[3])[0]
    run.evaluate()
    theirs = run.state.frozen().history[-1]
    assert theirs["step"] == 350 and mine == pytest.approx(theirs["test_loss"], rel=1e-4)
    # the CSV says which settings each evaluated step trained with
    rows = list(csv.DictReader(io.StringIO(metrics_csv(run.state.frozen()))))
    assert {r["mode"] for r in rows} <= {"train", "eval"} and rows[-1]["lr"] == "0.03" and rows[-1]["p"] == "0.1 0.5"


def test_each_row_gets_the_settings_its_step_trained_with_in_a_long_change_log():
    """The metrics files look up each history point's settings by binary search (a linear
    scan per point took ~1 s for 4,000 points in a log of 36,000 changes); every step, before,
    at and after each change, gets the entry a plain scan gives."""
    from model_server.runstate import settings_at
    log = tuple((first, [first / 1000], 0.01, "train") for first in (1, 2, 5, 9, 10, 400, 401, 999))
    for step in range(0, 1002):
        assert settings_at(log, step) == next((e for e in reversed(log) if e[0] <= step), None), step
    assert settings_at((), 5) is None
