"""MC dropout on the engine (issue 26): the T passes are thinned networks of the run's
own weights, drawn by the counter under the run's pass key, in one batched forward;
at p = 0 their mean is the eval prediction exactly; the exported script's mc_predict
draws the same passes and gives the same band."""
from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from model_server import masks
from model_server.config import parse_config
from model_server.engine import mc
from model_server.engine.group import Group, Member
from model_server.export import script
from model_server.network import Net
from model_server.regression_data import line_grid, make_dataset


def member(p=(0.3, 0.2), dataset="sine_gap", seed=0, **model) -> Member:
    cfg = parse_config({"data": {"task": "regression", "dataset": dataset, "seed": seed},
                        "model": {"hidden": [16] * len(p), "p": list(p), **model},
                        "train": {"device": "cpu", "batch_size": 25}})
    net = Net(cfg.model, (1,), 1)
    net.init_weights(torch.Generator().manual_seed(seed))
    return Member(cfg, make_dataset(cfg.data), net)


def load_script(source: str) -> types.ModuleType:
    module = types.ModuleType("exported")
    exec(compile(source, "exported.py", "exec"), module.__dict__)
    return module


def test_the_passes_masks_are_the_counters_under_the_pass_key():
    m = member((0.3, 0.6), seed=5)
    bucket = next(iter(Group([m]).buckets.values()))
    keeps = mc.pass_keeps(bucket.shape, bucket.store.mkey[[m.row]], bucket.store.p[[m.row]], 7)
    key = int(mc.pass_keys(np.array([masks.run_key(5)]))[0])
    assert key != masks.run_key(5)   # never a training step's bits
    thr = np.repeat(masks.keep_threshold([0.3, 0.6]), [16, 16])
    for j in range(7):
        bits = masks.unit_bits(masks.step_bits(np.array([key]), np.array([j + 1])), masks.places(32))[0]
        want = bits < thr
        got = torch.cat([keeps[0][0, j], keeps[1][0, j]]).numpy()
        assert np.array_equal(got, want)
    drop = 1 - torch.cat([k[0].float() for k in keeps], 1).mean(0)
    assert 0.1 < drop[:16].mean() < 0.5 and 0.4 < drop[16:].mean() < 0.8


@pytest.mark.parametrize("model", [{}, {"batchnorm": "before_dropout"}, {"dropout_kind": "alpha", "activation": "selu"},
                                   {"placement": "before_activation", "activation": "tanh"}])
def test_mc_mean_at_p_zero_is_the_eval_prediction_exactly(model):
    ms = [member((0.0, 0.0), seed=s, **model) for s in (0, 1)]
    group = Group(ms)
    group.step(20)
    bucket = next(iter(group.buckets.values()))
    out = mc.band(bucket.net, [m.row for m in ms], line_grid(64), [30, 3])
    assert torch.equal(out["mean"], out["eval"]) and torch.equal(out["std"], torch.zeros_like(out["std"]))
    assert out["curves"].shape == (2, 20, 64) and torch.equal(out["curves"][0, 7], out["eval"][0])


def test_the_band_is_the_torch_networks_thinned_passes_and_coverage_is_its_share():
    m = member((0.3, 0.3), seed=2)
    group = Group([m])
    group.step(50)
    bucket = next(iter(group.buckets.values()))
    grid = line_grid(40)
    out = mc.band(bucket.net, [m.row], grid, [12])
    keeps = mc.pass_keeps(bucket.shape, bucket.store.mkey[[m.row]], bucket.store.p[[m.row]], 12)
    net = bucket.materialize(m).eval()
    x = torch.cat([grid, m.data.x_test])
    runs = []
    with torch.no_grad():
        for j in range(12):
            h = x
            for l, block in enumerate(net.blocks):
                h = block[1](block[0](h)) * keeps[l][0, j].float() / (1 - 0.3)
            runs.append(net.head(h).squeeze(-1))
    runs = torch.stack(runs)
    G = len(grid)
    assert torch.allclose(out["curves"][0], runs[:, :G], atol=1e-5)
    assert torch.allclose(out["mean"][0], runs.mean(0)[:G], atol=1e-5)
    assert torch.allclose(out["std"][0], runs.std(0, correction=0)[:G], atol=1e-5)
    mean, std = runs.mean(0)[G:], runs.std(0, correction=0)[G:]
    share = ((m.data.y_test - mean).abs() <= 2 * std).float().mean()
    assert abs(float(out["coverage"][0]) - float(share)) < 1e-5


@pytest.mark.parametrize("model", [{}, {"dropout_kind": "alpha", "activation": "selu"},
                                   {"batchnorm": "after_dropout"}])
def test_the_exported_mc_predict_draws_the_pages_passes(model):
    m = member((0.2, 0.4), dataset="hetero", seed=3, **model)
    group = Group([m])
    group.step(40)
    bucket = next(iter(group.buckets.values()))
    grid = line_grid(50)
    out = mc.band(bucket.net, [m.row], grid, [30])
    mod = load_script(script(m.cfg))
    net = mod.Net()
    net.load_state_dict(bucket.materialize(m).state_dict())
    mean, std = mod.mc_predict(net, grid, samples=30)
    assert torch.allclose(mean, out["mean"][0], atol=1e-5) and torch.allclose(std, out["std"][0], atol=1e-5)
    assert std.max() > 1e-3
    assert torch.allclose(mod.predict(net, grid), out["eval"][0], atol=1e-5)


@pytest.mark.parametrize("dataset, model", [("sine_gap", {}), ("line_outliers", {"activation": "tanh", "dropout_kind": "alpha"})])
def test_the_exported_script_trained_standalone_reproduces_the_runs_band(tmp_path, dataset, model):
    """A run trained 200 steps on the page's engine, and its exported script run on its
    own (same data, initialisation, batches and masks): mc_predict gives the band of
    the run's frame, to float tolerance; the script also runs as a program."""
    import subprocess
    import sys

    from model_server import Run
    from model_server.frames import decode, encode
    raw = {"data": {"task": "regression", "dataset": dataset, "seed": 4},
           "model": {"hidden": [16, 16], "p": [0.2, 0.3], **model},
           "train": {"device": "cpu", "batch_size": 20, "mc_passes": 25}}
    run = Run(parse_config(raw))
    run.step(200)
    _, arrays = decode(encode(run.frame(extras=True)))
    band = mc.band(run.bucket.net, [run.state.row], line_grid(mc.LINE), [25])
    source = script(run.cfg, steps=200)
    mod = load_script(source)
    net = mod.Net()
    mod.init_weights(net, torch.Generator().manual_seed(4))
    mod.train(net, mod.make_data(), 200, log=lambda *_: None)
    mean, std = mod.mc_predict(net, line_grid(mc.LINE), samples=25)
    torch.testing.assert_close(mean, band["mean"][0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(std, band["std"][0], rtol=1e-4, atol=1e-4)
    scale = float(np.abs(arrays["band.mean"]).max()) / 127   # the frame's q8 step
    assert np.abs(arrays["band.mean"] - mean.numpy()).max() <= scale
    path = tmp_path / "exported.py"
    path.write_text(source)
    out = subprocess.run([sys.executable, str(path), "--steps", "20"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "test mean absolute error" in out.stdout and "MC dropout, 30 passes" in out.stdout
