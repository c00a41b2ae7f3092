"""The dropout sweep: K models trained as one batched computation (model_server/sweep.py)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from model_server import Run, masks, parse_config
from model_server.sweep import DEFAULT_PS, SWEEP_PRESET, SWEEP_STEPS, SeedSweep, Sweep, sweep
from model_server.runstate import loss_fn


pytestmark = pytest.mark.usefixtures("one_thread")


def preset(**train):
    raw = {k: dict(v) for k, v in SWEEP_PRESET.items()}
    raw["train"].update(train)
    return parse_config(raw)


@pytest.fixture(scope="module")
def preset_result():
    return sweep(preset(), steps=SWEEP_STEPS)


def test_preset_overfits_without_dropout_and_is_best_at_some_p_above_zero(preset_result):
    r = preset_result
    assert r["ps"] == list(DEFAULT_PS) and r["step"] == SWEEP_STEPS
    test, train = dict(zip(r["ps"], r["test_loss"])), dict(zip(r["ps"], r["train_loss"]))
    best = r["best_p"]
    assert 0 < best < 0.9
    assert test[best] < 0.6 * test[0.0]          # clearly: p = 0 memorised the noise
    assert train[0.0] < 0.1 and test[0.0] > 10 * train[0.0]  # train loss ~0, test loss high
    assert test[0.9] > test[best]                # and too much dropout underfits
    assert train[0.9] > train[best] > train[0.0]


def test_p_one_outputs_zeros_and_stays_at_log_2():
    sw = Sweep(preset(), ps=[0.0, 1.0])
    initial = [w.detach().clone() for w in sw.W]
    sw.step(200)
    hidden = []
    with torch.no_grad():
        logits = sw.logits(sw.x_train, train=True, hidden=hidden)
    assert all(torch.equal(h[1], torch.zeros_like(h[1])) for h in hidden)  # dropout emits zeros
    assert torch.equal(logits[1], sw.b[-1][1, 0].detach().expand_as(logits[1]))  # just the bias
    for w, w0 in zip(sw.W, initial):
        assert torch.equal(w[1], w0[1])      # no gradient reaches any weight
        assert not torch.equal(w[0], w0[0])  # while p = 0 learns
    r = sw.result()
    q = float(sw.data.y_train.mean())
    entropy = -(q * math.log(q) + (1 - q) * math.log(1 - q))  # the best a constant can do
    assert r["batch_loss"][1] == pytest.approx(entropy, abs=1e-3)
    assert r["batch_loss"][1] == pytest.approx(math.log(2), abs=0.01)
    assert all(v is not None for v in r["train_loss"] + r["test_loss"] + r["batch_loss"])  # no NaN


@pytest.mark.parametrize("optimizer,activation,placement", [
    ("adam", "tanh", "after_activation"),
    ("momentum", "relu", "before_activation"),
])
def test_p_zero_model_trains_exactly_like_a_single_run(optimizer, activation, placement):
    raw = {"data": {"dataset": "moons", "n_points": 100, "noise": 0.3, "seed": 3},
           "model": {"hidden": [16, 16], "p": [0.0, 0.0], "activation": activation, "placement": placement},
           "train": {"optimizer": optimizer, "batch_size": 8, "lr": 0.01, "device": "cpu"}}
    cfg = parse_config(raw)
    sw, run = Sweep(cfg, ps=[0.0, 0.5], every=5), Run(cfg)  # same init, same batches
    d = run.data
    ours, theirs = [], []
    for _ in range(20):
        sw.step(5)
        run.step(5)
        with torch.no_grad(), run.net.scratch(train=False):
            theirs.append([float(loss_fn(run.net(d.x_train), d.y_train)),
                           float(loss_fn(run.net(d.x_test), d.y_test))])
    r = sw.result()
    ours = [[tr, te] for tr, te in zip(r["curve"]["train_loss"][0][1:], r["curve"]["test_loss"][0][1:])]
    assert r["curve"]["step"][1:] == list(range(5, 101, 5))
    torch.testing.assert_close(torch.tensor(ours), torch.tensor(theirs), rtol=1e-5, atol=1e-6)
    linears = [b[0] for b in run.net.blocks] + [run.net.head]
    for W, b, lin in zip(sw.W, sw.b, linears):
        torch.testing.assert_close(W[0].detach().T, lin.weight.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(b[0, 0].detach(), lin.bias.detach(), rtol=1e-5, atol=1e-6)
    assert r["test_loss"][1] != r["test_loss"][0]  # the p = 0.5 model is a different model


def test_masks_are_the_counters_bernoulli_with_inverted_scaling():
    """Model k's masks at step t are masks.py's counter for cfg's seed at step t and p_k
    (what a Run of that config draws), applied with torch's scaling: 0 or 1 / (1 - p)."""
    ps = [0.0, 0.3, 0.8, 1.0]
    sw = Sweep(preset(), ps=ps)
    (bucket,) = sw.group.buckets.values()
    seed, B, widths = sw.cfg.data.seed, sw.cfg.train.batch_size, sw.cfg.model.hidden
    for t in range(1, 4):
        sw.step(1)
        for k, (member, p) in enumerate(zip(sw.group.members, ps)):
            thresholds = np.repeat(masks.keep_threshold([p] * len(widths)), [B * w for w in widths])
            kept = torch.from_numpy(masks.kept(seed, t, thresholds))
            applied = bucket.last_masks(member)
            if p == 0:
                assert applied == [None, None]        # no mask drawn, as torch.nn.Dropout
                continue
            assert torch.equal(torch.cat([m.reshape(-1) for m in applied]), kept)
            if 0 < p < 1:
                assert float(kept.float().mean()) == pytest.approx(1 - p, abs=0.05)
    hidden: list = []
    with torch.no_grad():
        sw.logits(sw.x_train[:B], train=True, hidden=hidden)
    for k, p in enumerate(ps):
        values = set(hidden[0][k].unique().tolist()) - {0.0}
        if p == 1:
            assert values == set()
        elif p > 0:  # a ReLU's output times 0 or 1 / (1 - p): the kept ones scaled
            assert (hidden[0][k] == 0).float().mean() >= p - 0.05


def test_stepping_in_pieces_and_snapshots_change_nothing():
    cfg = preset()
    whole = sweep(cfg, ps=[0.0, 0.5], steps=120, every=20)
    sw = Sweep(cfg, ps=[0.0, 0.5], every=20)
    for n in (7, 50, 33, 30):
        sw.step(n)
        mid = sw.result()  # a snapshot between points measures without recording
        assert mid["step"] == sw.step_count
    assert sw.result() == whole
    assert whole["curve"]["step"] == [0, 20, 40, 60, 80, 100, 120]


def test_result_is_json_with_boundaries():
    sw = Sweep(preset(), ps=[0.0, 0.5, 1.0], every=10)
    r0 = sw.result()
    assert r0["batch_loss"] == [None, None, None]  # nothing trained yet: no batch loss
    sw.step(10)
    r = json.loads(json.dumps(sw.result(boundaries=True), allow_nan=False))
    assert len(r["boundaries"]) == 3 and len(r["boundaries"][0]) == 48 and len(r["boundaries"][0][0]) == 48
    assert all(0 <= v <= 1 for grid in r["boundaries"] for row in grid for v in row)
    assert len(r["curve"]["train_loss"]) == 3 and len(r["curve"]["train_loss"][0]) == 2


def test_bad_input_names_the_value():
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        Sweep(preset(), ps=[0.0, 1.5])
    with pytest.raises(ValueError, match="number of models has to be between 1 and 16, but got 0"):
        Sweep(preset(), ps=[])
    cnn = parse_config({"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [4], "p": [0.5]}})
    with pytest.raises(ValueError, match="model.kind"):
        Sweep(cnn)
    bn = parse_config({"model": {"batchnorm": "after_dropout"}})
    with pytest.raises(ValueError, match="model.batchnorm"):
        Sweep(bn)


def test_digits_mlp_sweep_uses_cross_entropy():
    cfg = parse_config({"data": {"dataset": "digits"}, "model": {"hidden": [32], "p": [0.5]},
                        "train": {"batch_size": 64, "device": "cpu"}})
    sw = Sweep(cfg, ps=[0.0, 0.5], every=25)
    start = sw.result()["train_loss"]
    assert start[0] == pytest.approx(start[1]) and start[0] == pytest.approx(math.log(10), abs=0.5)
    sw.step(50)
    r = sw.result()
    assert all(loss < s for loss, s in zip(r["train_loss"], start))
    with pytest.raises(ValueError, match="2D dataset"):
        sw.boundaries()


# ---- SeedSweep: copies per (placement, seed), paired ----------------------------------------
def moons(act: str, **model):
    return parse_config({"data": {"dataset": "moons", "n_points": 200, "noise": 0.2},
                         "model": {"hidden": [16, 16], "p": [0.5, 0.5], "activation": act, **model},
                         "train": {"device": "cpu"}})


def test_seed_sweep_relu_orders_agree_seed_by_seed_and_seeds_differ():
    sw = SeedSweep(moons("relu"), range(5), ["after_activation", "before_activation"])
    sw.step(200)
    r = sw.result()
    assert r["placement"] == ["after_activation"] * 5 + ["before_activation"] * 5 and r["seed"] == list(range(5)) * 2
    after, before = r["test_loss"][:5], r["test_loss"][5:]
    # ReLU(x * m) = ReLU(x) * m for m >= 0: the same numbers, on every seed
    assert after == pytest.approx(before, abs=1e-6)
    assert len({round(v, 6) for v in after}) == 5  # each seed its own data, weights and batches


def test_seed_sweep_sigmoid_orders_part_and_a_copy_matches_its_run_at_the_start():
    sw = SeedSweep(moons("sigmoid"), [3, 4], ["after_activation", "before_activation"])
    start = sw.result()
    # step 0: a copy is a Run of its seed (same data, initial weights), whatever the placement
    run = Run(moons("sigmoid", placement="before_activation").model_copy(
        update={"data": moons("sigmoid").data.model_copy(update={"seed": 4})}))
    run.evaluate()
    assert start["test_loss"][3] == pytest.approx(run.frame().header["eval"]["test_loss"], abs=1e-5)
    sw.step(300)
    r = sw.result()
    for k in range(2):
        assert abs(r["test_loss"][k] - r["test_loss"][k + 2]) > 1e-4  # the orders compute different numbers


def test_seed_sweep_bounds_name_the_value():
    with pytest.raises(ValueError, match="between 1 and 16, but got 9 seeds x 2 placements"):
        SeedSweep(moons("relu"), range(9), ["after_activation", "before_activation"])
    with pytest.raises(ValueError, match="but got 'sideways'"):
        SeedSweep(moons("relu"), [0], ["sideways"])
