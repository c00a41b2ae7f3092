"""Copies trained side by side with their own regularisers (model_server/regularizers.py):
the batched copies against torch.nn, the noise they apply, and the claims of the lessons
"When not to use dropout" and "Dropout as noise", on fixed seeds."""
from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from model_server import bucket as bucket_module
from model_server import regularizers as reg
from model_server.datasets import Batches, make_dataset
from model_server.network import Net

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- the batched copies are what torch.nn computes --------------------------------------------
def recorded_batches(monkeypatch) -> dict:
    """Keeps every batch the engine draws, per bucket: id(bucket) -> [(K, B) indices]."""
    seen: dict = {}
    draw = bucket_module.next_batches

    def recorder(store, t, act, every, n):
        idx = draw(store, t, act, every, n)
        seen.setdefault(id(store), []).extend(idx)
        return idx
    monkeypatch.setattr(bucket_module, "next_batches", recorder)
    return seen


@pytest.mark.parametrize("recipe", [
    reg.Recipe(seed=3, weight_decay=0.01, batchnorm=True),
    reg.Recipe(seed=5, n_train=30, weight_decay=0.01),
    reg.Recipe(seed=0),
])
def test_a_copy_trains_as_torch_nn_with_adam_batchnorm1d_and_weight_decay(recipe, monkeypatch):
    cfg = reg.preset()
    seen = recorded_batches(monkeypatch)
    c = reg.Copies(cfg, [recipe])
    c.step(40)
    got = c.result()
    (batches,) = seen.values()

    data = make_dataset(cfg.data.model_copy(update={"seed": recipe.seed}))
    n = recipe.n_train or len(data.x_train)
    net = Net(cfg.model, (2,), 1)
    net.init_weights(torch.Generator().manual_seed(recipe.seed))
    layers = []
    for block in net.blocks:
        layers += [block[0]] + ([nn.BatchNorm1d(block[0].out_features)] if recipe.batchnorm else []) + [nn.ReLU()]
    model = nn.Sequential(*layers, net.head)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=recipe.weight_decay, fused=True)
    x_train, y_train = data.x_train[:n], data.y_train[:n]
    order = Batches(n, min(n, cfg.train.batch_size), recipe.seed + 2, torch.device("cpu"))  # a Run's order
    for idx in batches:
        want = order.next()
        assert want is None or torch.equal(idx[0], want)
        loss = nn.functional.binary_cross_entropy_with_logits(model(x_train[idx[0]]).squeeze(-1), y_train[idx[0]])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        bce = nn.functional.binary_cross_entropy_with_logits
        want_train = float(bce(model(x_train).squeeze(-1), y_train))
        want_test = float(bce(model(data.x_test).squeeze(-1), data.y_test))
    assert got["train_loss"][0] == pytest.approx(want_train, abs=1e-4)
    assert got["test_loss"][0] == pytest.approx(want_test, abs=1e-4)


def test_input_noise_is_the_counters_gaussian_of_its_std_and_reproducible():
    """A copy's input noise: N(0, sigma^2) from the counter of its seed, so the same
    recipe trains the same way every time, and differently from no noise."""
    from model_server.engine import noise
    cfg = reg.preset()
    twice = [reg.Copies(cfg, [reg.Recipe(0, input_noise=0.2), reg.Recipe(0)]) for _ in range(2)]
    for c in twice:
        c.step(30)
    a, b = (c.result() for c in twice)
    assert a == b and a["train_loss"][0] != a["train_loss"][1]
    (bucket,) = twice[0].group.buckets.values()
    z = noise.inputs(bucket.store, bucket.tables(), 2, 200, (200, 2, 50, 2))
    assert float(z[:, 1].abs().max()) == 0.0                    # the copy without: none
    assert float(z[:, 0].std()) == pytest.approx(0.2, rel=0.03) and abs(float(z[:, 0].mean())) < 0.01


def test_copies_of_one_seed_and_size_share_batches_each_epoch_without_replacement(monkeypatch):
    seen = recorded_batches(monkeypatch)
    c = reg.Copies(reg.preset(n_points=400, train_fraction=0.5),
                   [reg.Recipe(0, n_train=100), reg.Recipe(0, n_train=100, p=0.5), reg.Recipe(1, n_train=200)])
    c.step(8)
    assert c.batch == 50
    (batches,) = seen.values()
    idx = torch.stack(batches)  # (steps, K, B)
    assert torch.equal(idx[:, 0], idx[:, 1])  # paired: the same batches
    for k, n in ((0, 100), (2, 200)):
        per_epoch = n // 50
        for e in range(8 // per_epoch):
            seen_k = idx[e * per_epoch:(e + 1) * per_epoch, k].flatten()
            assert sorted(seen_k.tolist()) == list(range(n))  # every point once an epoch


def test_dropout_factors_are_zero_or_scaled_and_gaussian_ones_have_the_same_moments():
    p = 0.3
    c = reg.Copies(reg.preset(), [reg.Recipe(0, p=p), reg.Recipe(1, p=p, noise="gauss"), reg.Recipe(2)], record=True)
    c.step(60)
    f = c.record_result()
    n = 60 * 50 * 128  # steps x batch x neurons of both layers, per noisy copy
    assert f["count"] == [n, n]
    drop, gauss = 0, 1
    assert f["zeros"][drop] + f["scaled"][drop] == n  # every dropout factor was 0 or 1 / (1 - p)
    assert f["zeros"][drop] / n == pytest.approx(p, abs=0.01)
    assert f["zeros"][gauss] == 0
    for k in (drop, gauss):
        assert f["mean"][k] == pytest.approx(1.0, abs=0.02)
        assert f["var"][k] == pytest.approx(p / (1 - p), rel=0.03)
    assert sum(f["counts"]) + f["below"] + f["above"] == n
    # N(1, p / (1 - p)) is below 0 with probability Phi(-sqrt((1 - p) / p))
    below_zero = 0.5 * math.erfc(math.sqrt((1 - p) / p) / math.sqrt(2))
    assert f["negative"] / n == pytest.approx(below_zero, abs=0.005)
    # eval mode: no noise, every pass the same
    with torch.no_grad():
        assert torch.equal(c.logits(c.x_test), c.logits(c.x_test))


# ---- the lessons' claims, on fixed seeds --------------------------------------------------------
@pytest.fixture(scope="module", params=[0, 10])
def sizes(request):
    return reg.data_size(seed=request.param)


def test_dropouts_benefit_shrinks_as_the_training_set_grows(sizes):
    r = sizes
    assert r["sizes"] == [50, 100, 200, 500, 1000, 2000] and len(r["seeds"]) == 3
    assert r["trend"]["verdict"] == "shrinks"
    small, large = r["benefit"][0], r["benefit"][-1]
    assert all(v > 0.1 for v in small["values"])       # 50 points: dropout helps on every seed
    assert abs(large["mean"]) < 0.02                    # 2,000 points: nothing left to gain
    none_gap = [g["mean"] for g in r["none"]["gap"]]
    assert none_gap[0] > 1.0 and none_gap[-1] < 0.05    # without dropout the gap closes with data
    assert r["dropout"]["gap"][0]["mean"] < none_gap[0] / 3


@pytest.fixture(scope="module", params=[0, 8])
def alts(request):
    return reg.alternatives(seed=request.param)


def test_alternatives_on_the_overfitting_preset(alts):
    r = alts["runs"]
    assert alts["names"] == list(reg.ALTERNATIVES) == list(r) and r["none"]["vs_none"] is None
    assert alts["weight_decay"] == reg.WEIGHT_DECAY and alts["input_noise"] == reg.INPUT_NOISE
    for name in ("dropout", "weight_decay", "input_noise", "combined"):
        assert r[name]["vs_none"]["verdict"] == "lower", name
        assert r[name]["gap"]["mean"] < r["none"]["gap"]["mean"] / 2, name
    # with 50 points in batches of 50 every batch is the whole set: BatchNorm's statistics
    # carry no noise, and it does not lower the test loss here (the explainer's list aside)
    assert r["batchnorm"]["vs_none"]["verdict"] != "lower"
    assert alts["best"] == "weight_decay"


@pytest.fixture(scope="module", params=[0, 12])
def noise(request):
    return reg.noise_injection(seed=request.param)


def test_dropout_is_multiplicative_noise_of_mean_one_and_variance_p_over_one_minus_p(noise):
    r = noise
    assert r["theory"] == {"mean": 1.0, "var": 1.0}
    n = 500 * 50 * 128 * 4  # steps x batch x neurons x seeds
    for kind in ("dropout", "gauss"):
        assert r[kind]["count"] == n
        assert r[kind]["mean"] == pytest.approx(1.0, abs=0.002)
        assert r[kind]["var"] == pytest.approx(1.0, rel=0.005)
    assert r["dropout"]["values"] == [0.0, 2.0] and r["dropout"]["other"] == 0
    assert r["dropout"]["counts"][0] / n == pytest.approx(0.5, abs=0.002)
    assert r["gauss"]["negative"] == pytest.approx(0.1587, abs=0.002)  # Phi(-1)


def test_gaussian_noise_of_the_same_variance_regularises_about_as_well_as_dropout(noise):
    r = noise
    assert r["dropout_vs_none"]["verdict"] == "lower" and r["gauss_vs_none"]["verdict"] == "lower"
    assert r["gauss_vs_dropout"]["verdict"] != "higher"  # never clearly worse than dropout
    assert abs(r["gauss_vs_dropout"]["mean"]) < 0.1 * r["dropout_vs_none"]["mean"]
    runs = r["runs"]
    assert runs["none"]["gap"]["mean"] > 2 * max(runs["dropout"]["gap"]["mean"], runs["gauss"]["gap"]["mean"])


def test_the_alternatives_and_noise_lessons_compute_their_shared_recipes_alike():
    """Lessons j and k share two recipes on the same preset and seeds (no noise, dropout
    p = 0.5): a copy's masks, batches and data are its own, whoever trains beside it,
    so both lessons show the same numbers for them (to float rounding)."""
    alts, noise = reg.alternatives(seed=0), reg.noise_injection(seed=0)
    for name in ("none", "dropout"):
        for key in ("train_loss", "test_loss"):
            assert alts["runs"][name][key]["values"] == pytest.approx(noise["runs"][name][key]["values"], abs=1e-5)


# ---- bounds, cost, caching ----------------------------------------------------------------------
@pytest.mark.parametrize("fn, kwargs, words", [
    (reg.data_size, {"sizes": [50]}, "sizes has to be between 2 and 8, counting different sizes, but got 1"),
    (reg.data_size, {"sizes": [50, 50]}, "but got 1 ([50, 50])"),
    (reg.data_size, {"sizes": [50, 5000]}, "sizes has to be between 10 and 2000, but got 5000"),
    (reg.data_size, {"sizes": [50, 60.5]}, "but got 60.5"),
    (reg.data_size, {"seeds": 5}, "steps has to be between 1 and 466, as copies x steps"),
    (reg.data_size, {"sizes": list(range(100, 900, 100)), "seeds": 8, "steps": 1}, "seeds has to be between 2 and 4, but got 8"),
    (reg.alternatives, {"p": 0.95}, "p has to be between 0.05 and 0.9, but got 0.95"),
    (reg.alternatives, {"weight_decay": -1.0}, "weight_decay has to be between 0.0 and 0.1, but got -1.0"),
    (reg.alternatives, {"steps": 2001}, "steps has to be between 1 and 2000, but got 2001"),
    (reg.noise_injection, {"seeds": 1}, "seeds has to be between 2 and 8, but got 1"),
    (reg.noise_injection, {"seed": -1}, "seed has to be between 0"),
    (reg.noise_injection, {"steps": True}, "but got True"),
])
def test_bad_params_name_the_value(fn, kwargs, words):
    with pytest.raises(ValueError) as err:
        fn(**kwargs)
    assert words in str(err.value)


def test_work_is_known_from_the_params_and_bounded():
    per_copy_step = 50 * (2 * 64 + 64 * 64 + 64)
    assert reg.work("noise_injection") == 3 * 4 * 500 * per_copy_step
    assert reg.work("alternatives", seeds=2, steps=10) == 6 * 2 * 10 * per_copy_step
    assert reg.work("data_size", sizes=[50, 100], seeds=2, steps=10) == 2 * 2 * 2 * 10 * per_copy_step
    for name in ("data_size", "alternatives", "noise_injection"):
        assert reg.work(name) <= reg.MAX_WORK  # the lessons' defaults fit the budget
    with pytest.raises(ValueError, match="no experiment 'nope'"):
        reg.work("nope")


def test_answers_are_json_and_cached_per_params():
    a = reg.noise_injection(steps=20, seeds=2)
    assert reg.noise_injection(steps=20, seeds=2) is a
    assert json.loads(json.dumps(a)) == a
    assert reg.noise_injection(steps=20, seeds=2, seed=1) != a
    small = reg.data_size(sizes=[20, 40], steps=20, seeds=2)
    assert json.loads(json.dumps(small)) == small and small["sizes"] == [20, 40]
