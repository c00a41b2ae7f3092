"""The engine: model_server.Run (one run in a bucket of its own) and the bucket that
trains many runs as one. Real training, reproducible step for step whoever else trains,
torch's arithmetic per run, live changes at the next step, and the frames it yields."""
import math
import random

import numpy as np
import pytest
import torch
from scipy.stats import binom

from model_server import Limits, Run, parse_config, masks
from model_server.engine import history as history_module
from model_server.engine import rows as rows_module
from model_server.bucket import Bucket, key_of
from model_server.engine.backward import gradient
from model_server.config import DATASETS
from model_server.datasets import make_dataset
from model_server.frames import decode, encode
from model_server.runstate import RunState, loss_fn


def config(limits=None, **sections):
    raw = {"data": {}, "model": {}, "train": {"device": "cpu"}}
    for part, values in sections.items():
        raw[part] = {**raw[part], **values}
    return parse_config(raw, limits)


def make_run(limits=None, **sections) -> Run:
    return Run(config(limits, **sections), limits)


def heldout_loss(run: Run) -> float:
    with torch.no_grad(), run.net.scratch(train=False):
        return loss_fn(run.net(run.data.x_test), run.data.y_test).item()


def masks_of(run) -> list[torch.Tensor | None]:
    return [None if m is None else m.clone() for m in run.bucket.last_masks(run.state)]


def weights_of(run: Run) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in run.net.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_rate(dropped: int, n: int, p: float) -> None:
    lo, hi = binom.interval(0.999, n, p)
    assert lo <= dropped <= hi, f"dropped {dropped} of {n} at p={p}: outside {lo}..{hi}"


# ---- stepping and reproducibility ------------------------------------------------------------

def test_step_advances_step_count_and_records_losses():
    run = make_run()
    assert run.step_count == 0
    run.step()
    assert run.step_count == 1
    run.step(7)
    assert run.step_count == 8
    losses = run.losses()
    assert len(losses) == 8
    assert torch.isfinite(losses).all() and (losses > 0).all()


def test_loss_rings_match_plain_lists_while_runs_sit_out_and_move(monkeypatch):
    """Each run's ring of per-step losses, folded a few steps at a time, keeps exactly
    that run's last LOSS_RING losses in order, while runs of the bucket sit out steps
    at random and rows move as a run leaves."""
    monkeypatch.setattr(rows_module, "LOSS_RING", 16)
    monkeypatch.setattr(history_module, "TALLY_FOLD", 5)
    rng = random.Random(0)
    states = [RunState(config(data={"seed": i})) for i in range(4)]
    b = Bucket(key_of(states[0]), states[0].initial_net())
    for s in states:
        b.join(s)
    seen: dict[int, list[float]] = {id(s): [] for s in states}
    for t in range(120):
        if t == 60:
            b.leave(states[1])  # the last row moves into its place
            states.pop(1)
        active = np.array([rng.random() < 0.6 for _ in b.runs])
        b.step(active)
        if active.any():
            b.history.fold()
            for s, on in zip(b.runs, active):
                if on:
                    seen[id(s)].append(float(b.store.ring[s.row, (int(b.store.ringn[s.row]) - 1) % 16]))
        for s in b.runs:
            n = len(seen[id(s)])
            start, stop = rng.randrange(-3, n + 3), rng.randrange(-3, n + 3)
            kept = range(max(start, n - 16, 0), min(stop, n))
            assert s.losses(start, stop).tolist() == [seen[id(s)][i] for i in kept]
            assert s.step_count == n


def test_training_changes_weights():
    run = make_run()
    before = weights_of(run)
    run.step(3)
    assert not same_weights(before, weights_of(run))


def test_same_config_same_losses_and_masks_step_for_step():
    a, b = make_run(), make_run()
    assert same_weights(weights_of(a), weights_of(b))
    for _ in range(15):
        a.step()
        b.step()
        for ma, mb in zip(masks_of(a), masks_of(b)):
            assert ma is not None and torch.equal(ma, mb)
    assert torch.equal(a.losses(), b.losses())
    assert same_weights(weights_of(a), weights_of(b))


def test_a_run_among_30_busy_runs_draws_the_same_masks_and_losses_as_alone():
    """The same config and seed, alone or in a bucket of 30 others that join, leave and
    sit out steps at random: identical masks for 50 steps, losses within 1e-4 relative."""
    cfg = config(model={"hidden": [16, 16], "p": [0.5, 0.3]})
    alone = Run(cfg)
    others = [RunState(config(model={"hidden": [16, 16], "p": [0.1 * (i % 9), 0.5]}, data={"seed": i + 1},
                              train={"lr": 0.001 * (i + 1)})) for i in range(30)]
    mine = RunState(cfg)
    crowd = Bucket(key_of(mine), mine.initial_net())
    for s in others[:15]:
        crowd.join(s)
    crowd.join(mine)
    for s in others[15:]:
        crowd.join(s)
    rng = np.random.default_rng(0)
    for t in range(50):
        if t == 20:
            crowd.leave(others[3])  # rows move: mine may be one of them
        if t == 30:
            others[3].reset()
            crowd.join(others[3])
        active = rng.random(len(crowd.runs)) < 0.7
        active[mine.row] = True
        alone.step()
        crowd.step(active)
        for ma, mb in zip(masks_of(alone), crowd.last_masks(mine)):
            assert torch.equal(ma, mb), t
    torch.testing.assert_close(mine.losses(), alone.losses(), rtol=1e-4, atol=0)


def test_runs_do_not_share_random_state():
    """Anyone using torch's default generator changes nothing: each run draws from its own."""
    alone = make_run()
    alone_masks = []
    for _ in range(10):
        alone.step()
        alone_masks.append(masks_of(alone))
    torch.manual_seed(0)
    crowded, other = make_run(), make_run(data={"seed": 5})
    for i in range(10):
        other.step(2)
        torch.rand(1000)  # the default generator moves
        crowded.step()
        torch.manual_seed(i)
        for m1, m2 in zip(alone_masks[i], masks_of(crowded)):
            assert torch.equal(m1, m2)
    assert torch.equal(alone.losses(), crowded.losses())
    assert not torch.equal(other.losses()[:10], crowded.losses()[:10])


def test_different_seed_gives_different_run():
    a, b = make_run(), make_run(data={"seed": 1})
    a.step(5)
    b.step(5)
    assert not torch.equal(a.losses(), b.losses())


def test_masks_change_from_step_to_step():
    run = make_run(model={"hidden": [32, 32], "p": [0.5, 0.5]})
    run.step()
    first = masks_of(run)
    run.step()
    assert not torch.equal(first[0], masks_of(run)[0])


def test_reset_reproduces_the_first_steps():
    run = make_run()
    run.step(6)
    first = run.losses()[:6].clone()
    first_masks = masks_of(run)
    run.step(10)
    run.reset()
    assert run.step_count == 0
    assert run.history == [] and run.latest_eval is None
    assert len(run.losses()) == 0
    run.step(6)
    assert torch.equal(run.losses()[:6], first)
    for a, b in zip(first_masks, masks_of(run)):
        assert torch.equal(a, b)


def test_finished_reports_the_step_limit():
    run = make_run(Limits(max_steps=5))
    run.step(4)
    assert run.finished is None
    run.step(3)
    assert run.step_count == 5
    assert run.finished is not None and "5" in run.finished and "step limit" in run.finished
    assert run.frame().header["finished"] == run.finished


# ---- torch's semantics, per run ---------------------------------------------------------------

@pytest.mark.parametrize("kind", ["dropout", "alpha"])
@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_a_step_computes_what_torch_computes_with_the_same_masks(kind, p):
    """Given the masks the bucket drew, torch.nn.functional's dropout arithmetic on the
    same network gives the bucket's loss: inverted scaling, p = 1 zeros without NaN,
    AlphaDropout's affine form."""
    act = "selu" if kind == "alpha" else "relu"
    run = make_run(model={"hidden": [12, 12], "p": [p, p], "dropout_kind": kind, "activation": act},
                   train={"batch_size": 250})  # the whole set, in order: the batch is known
    net = run.net
    run.step()
    masks = masks_of(run)
    x, y = run.data.x_train, run.data.y_train
    h = x
    for block, mask in zip(net.blocks, masks):
        h = block[1](block[0](h))
        if p == 1:
            h = h * 0.0
        elif mask is not None:
            noise = mask.float()
            if kind == "alpha":
                a = 1 / math.sqrt((1.7580993408473766 ** 2 * p + 1) * (1 - p))
                h = h * (noise * a) + (noise - 1) * 1.7580993408473766 * a + 1.7580993408473766 * a * p
            else:
                h = h * (noise / (1 - p))
        else:
            assert p == 0
    expected = loss_fn(net.head(h).squeeze(-1), y)
    assert not math.isnan(float(run.losses()[0]))
    torch.testing.assert_close(run.losses()[0], expected, rtol=1e-5, atol=1e-6)


def test_masks_are_the_counter_draws_of_the_run_seed_and_step():
    """Each step's masks are model_server.masks' bits for (the run's seed, the step, each
    unit's place: layer after layer, example by example), kept below round((1 - p) * 2^32)."""
    run = make_run(model={"hidden": [16, 8], "p": [0.5, 0.25]})
    thresholds = np.concatenate([np.full(10 * 16, masks.keep_threshold(0.5)), np.full(10 * 8, masks.keep_threshold(0.25))])
    for step in range(1, 4):
        run.step()
        expected = torch.from_numpy(masks.kept(run.cfg.data.seed, step, thresholds))
        assert torch.equal(torch.cat([m.reshape(-1) for m in masks_of(run)]), expected)


def test_cnn_dropout2d_drops_whole_channels():
    run = make_run(data={"dataset": "digits"}, model={"kind": "cnn", "hidden": [4, 4], "p": [0.5, 0.5],
                                                       "dropout_kind": "dropout2d"}, train={"batch_size": 32})
    run.step()
    mask = masks_of(run)[0]
    assert mask.shape == (32, 4, 1, 1)
    header, arrays = decode(encode(run.frame()))
    act = arrays["act.0"]  # (4, 8, 8): a dropped channel is zero everywhere
    for c, kept in enumerate(mask[0].reshape(-1).tolist()):
        if not kept:
            assert np.abs(act[c]).max() == 0


# ---- live changes -----------------------------------------------------------------------------

BIG = {"data": {"n_points": 2000, "train_fraction": 0.5},
       "model": {"hidden": [64, 64], "p": [0.2, 0.2]},
       "train": {"batch_size": 1000, "eval_every": 5}}


def big_run() -> Run:
    return make_run(**BIG)


def test_set_p_takes_effect_at_the_next_step_keeping_weights_and_history():
    run = big_run()
    run.step(10)
    run.frame()  # takes the evaluations into the history
    history = list(run.history)
    assert len(history) == 2
    losses = run.losses().clone()
    weights = weights_of(run)
    run.set_p(0, 0.9)
    run.set_p(1, 0.0)
    assert same_weights(weights, weights_of(run))
    assert run.history == history and run.step_count == 10
    assert torch.equal(run.losses(), losses)
    assert run.cfg.model.p == [0.9, 0.0]
    run.step()
    masks = masks_of(run)
    assert_rate(int((~masks[0]).sum()), 1000 * 64, 0.9)
    assert masks[1] is None  # p = 0: nothing dropped, nothing drawn
    assert run.frame().header["p"] == [0.9, 0.0]
    assert run.history[:2] == history


def test_set_p_on_a_missing_layer():
    run = make_run()
    with pytest.raises(IndexError, match="but got 2"):
        run.set_p(2, 0.5)


def test_set_p_survives_reset():
    run = make_run()
    run.set_p(0, 0.7)
    run.reset()
    assert run.net.drops[0].p == 0.7
    run.step()
    assert run.frame().header["p"][0] == 0.7


def test_set_lr_takes_effect_at_the_next_step():
    """Plain SGD: the same step at twice the learning rate moves every weight twice as far."""
    a, b = make_run(train={"optimizer": "sgd"}), make_run(train={"optimizer": "sgd"})
    for run in (a, b):
        run.step(3)
    a.set_lr(0.5)
    b.set_lr(0.25)
    assert a.cfg.train.lr == 0.5
    before = weights_of(a)
    a.step()
    b.step()
    for name, w in before.items():
        torch.testing.assert_close(weights_of(a)[name] - w, 2 * (weights_of(b)[name] - w), rtol=1e-4, atol=1e-7)
    assert a.frame().header["lr"] == 0.5


def test_set_mode_eval_draws_no_masks_but_keeps_learning():
    run = big_run()
    run.step(3)
    weights = weights_of(run)
    run.set_mode("eval")
    assert same_weights(weights, weights_of(run)) and run.step_count == 3
    run.step()
    assert all(m is None for m in masks_of(run))
    assert not same_weights(weights, weights_of(run))  # eval mode turns dropout off, not learning
    fr = run.frame()
    assert fr.header["mode"] == "eval"
    assert not any(name.startswith("mask.") for name in fr.sections)
    run.set_mode("train")
    run.step()
    masks = masks_of(run)
    assert all(m is not None for m in masks)
    assert_rate(int((~masks[0]).sum()), 1000 * 64, 0.2)


def test_eval_mode_step_is_deterministic():
    """No dropout in eval mode: the step's loss is the plain network's loss on the batch."""
    run = make_run(train={"batch_size": 250})  # the whole training set: no batch sampling
    run.set_mode("eval")
    with torch.no_grad():
        expected = loss_fn(run.net(run.data.x_train), run.data.y_train)
    run.step()
    torch.testing.assert_close(run.losses()[0], expected)


# ---- frames -----------------------------------------------------------------------------------

def test_drop_counts_match_the_masks_drawn():
    """dropped.i is exactly the count of zeros in the masks of the steps since the last frame."""
    run = make_run(model={"hidden": [8, 8], "p": [0.5, 0.5]}, train={"batch_size": 20})
    run.frame()
    zeros = torch.zeros(8)
    for _ in range(7):
        run.step()
        zeros += (~masks_of(run)[0]).float().sum(0)
    header, arrays = decode(encode(run.frame()))
    assert arrays["dropped.0"].tolist() == zeros.int().tolist()
    assert header["masked"] == [7 * 20, 7 * 20] and header["steps"] == 7


def test_a_complete_frame_carries_the_test_loss_of_its_step():
    run = make_run()
    run.step(10)
    assert run.frame(extras=True).header["eval"]["step"] == 10
    run.step(5)
    header = run.frame(complete=True).header
    assert header["step"] == header["eval"]["step"] == 15
    assert "boundary.eval" in run.frame(complete=True).sections  # complete: extras too


def test_frame_shows_the_mask_applied_in_the_last_step():
    run = make_run(model={"hidden": [16, 8], "p": [0.5, 0.5]})
    run.step(3)
    header, arrays = decode(encode(run.frame()))
    for i, mask in enumerate(masks_of(run)):
        assert arrays[f"mask.{i}"].tolist() == mask[0].tolist()
    assert header["example"]["index"] in range(len(run.data.x_train))
    assert header["step"] == 3 and header["sizes"] == [2, 16, 8, 1]


def test_the_thinned_boundary_is_the_shown_masks_network():
    """boundary.thinned is P(class 1) over the plane of the network whose masks frames
    show, scaled by 1/(1-p): computed here with torch.nn from those masks."""
    limits = Limits(grid_size=12)
    run = make_run(limits, model={"hidden": [6, 5], "p": [0.5, 0.5]})
    run.step(4)
    run.set_view("thinned")
    masks = [m[0] for m in masks_of(run)]
    header, arrays = decode(encode(run.frame(extras=True)))
    from model_server.datasets import plane_grid
    with torch.no_grad(), run.net.scratch(train=False):
        expected = torch.sigmoid(run.net(plane_grid(12), masks)).numpy()
    assert np.abs(arrays["boundary.thinned"] - expected).max() <= 1 / 255 + 1e-6  # p8 quantization


# ---- datasets ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DATASETS)
def test_datasets_build_and_are_seeded(name):
    cfg = parse_config({"data": {"dataset": name, "n_points": 200}})
    a, b = make_dataset(cfg.data), make_dataset(cfg.data)
    other = make_dataset(parse_config({"data": {"dataset": name, "n_points": 200, "seed": 3}}).data)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert not torch.equal(a.x_train, other.x_train)
    assert torch.isfinite(a.x_train).all()
    if name == "digits":
        assert a.x_train.shape[1:] == (1, 8, 8) and a.n_classes == 10
        assert len(a.x_train) + len(a.x_test) == 1797
    else:
        assert a.x_train.shape == (100, 2) and len(a.x_test) == 100 and a.n_classes == 1
        assert a.x_train.abs().max() <= 1.0 + 1e-6
        assert set(a.y_train.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("n", [50, 51, 333])
@pytest.mark.parametrize("name", DATASETS[:-1])
def test_2d_sets_have_n_points_of_both_classes(name, n):
    d = make_dataset(parse_config({"data": {"dataset": name, "n_points": n}}).data)
    assert len(d.x_train) + len(d.x_test) == n and len(d.x_train) == int(n * 0.5)
    y = torch.cat([d.y_train, d.y_test])
    assert 0.3 < y.mean() < 0.7


@pytest.mark.parametrize("name", DATASETS)
def test_each_dataset_trains(name):
    run = make_run(data={"dataset": name, "n_points": 200})
    run.step(5)
    assert torch.isfinite(run.losses()[:5]).all()


def test_training_lowers_test_loss_on_circle():
    run = make_run(model={"hidden": [8, 8], "p": [0.1, 0.1]})
    start = heldout_loss(run)
    run.step(300)
    assert heldout_loss(run) < 0.7 * start


def test_runs_of_different_data_sizes_share_a_bucket():
    """Datasets of different sizes pad into one bucket; each run batches from its own."""
    small, large = RunState(config(data={"n_points": 60})), RunState(config(data={"n_points": 1000}))
    b = Bucket(key_of(small), small.initial_net())
    b.join(small)
    b.join(large)  # the data grows to fit
    alone = Run(config(data={"n_points": 60}))
    for _ in range(40):  # several epochs of the small set
        b.step(np.ones(2, bool))
        alone.step()
    torch.testing.assert_close(small.losses(), alone.losses(), rtol=1e-4, atol=0)


# ---- architectures ----------------------------------------------------------------------------

DIGITS_CNN = {"data": {"dataset": "digits"},
              "model": {"kind": "cnn", "hidden": [4, 4], "p": [0.2, 0.2], "dropout_kind": "dropout2d"},
              "train": {"batch_size": 32}}


@pytest.mark.parametrize("batchnorm", ["none", "before_dropout", "after_dropout"])
@pytest.mark.parametrize("placement", ["after_activation", "before_activation"])
def test_cnn_variants_train(batchnorm, placement):
    run = make_run(data=DIGITS_CNN["data"], train=DIGITS_CNN["train"],
                   model={**DIGITS_CNN["model"], "batchnorm": batchnorm, "placement": placement,
                          "activation": "tanh"})
    kinds = [type(m).__name__ for m in run.net.blocks[0]]
    assert kinds[0] == "Conv2d"
    drop_i, act_i = kinds.index("RecordingDropout2d"), kinds.index("Tanh")
    assert (drop_i > act_i) == (placement == "after_activation")
    if batchnorm == "none":
        assert "BatchNorm2d" not in kinds
    else:
        assert (kinds.index("BatchNorm2d") < drop_i) == (batchnorm == "before_dropout")
    start = heldout_loss(run)
    run.step(40)
    assert heldout_loss(run) < 0.8 * start
    assert masks_of(run)[0].shape == (32, 4, 1, 1)  # whole channels
    header, arrays = decode(encode(run.frame(extras=True)))
    assert arrays["mask.0"].shape == (4,) and arrays["dropped.0"].shape == (4,)
    assert arrays["act.0"].shape == (4, 8, 8)


def test_batchnorm_running_statistics_follow_torch():
    """A bucket's BatchNorm updates running statistics as torch.nn.BatchNorm1d does: in
    eval mode the materialized network (torch.nn) and the bucket agree on the outputs."""
    run = make_run(model={"hidden": [8, 8], "batchnorm": "before_dropout"}, train={"batch_size": 50})
    run.step(20)
    with torch.no_grad(), run.net.scratch(train=False):
        expected = run.net(run.data.x_test)
    torch.testing.assert_close(run.outputs(run.data.x_test), expected, rtol=1e-5, atol=1e-6)
    bn = run.net.blocks[0][2]
    assert not torch.equal(bn.running_mean, torch.zeros(8))  # they moved


def test_placement_changes_the_network_for_tanh():
    base = {"model": {"activation": "tanh", "hidden": [8], "p": [0.5]}}
    a = make_run(model={**base["model"], "placement": "after_activation"})
    b = make_run(model={**base["model"], "placement": "before_activation"})
    a.step(3)
    b.step(3)
    assert not torch.equal(a.losses()[:3], b.losses()[:3])


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu", "selu", "linear"])
def test_activations_train(activation):
    kind = "alpha" if activation == "selu" else "dropout"
    run = make_run(model={"activation": activation, "dropout_kind": kind}, train={"lr": 0.03})
    start = heldout_loss(run)
    run.step(150)
    assert torch.isfinite(run.losses()[:150]).all()
    assert heldout_loss(run) < start


@pytest.mark.parametrize("kind", ["dropout", "dropout2d", "alpha"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_dropout_kinds_and_optimizers(kind, optimizer):
    run = make_run(model={"dropout_kind": kind}, train={"optimizer": optimizer, "lr": 0.1, "weight_decay": 0.01})
    run.step(20)
    assert torch.isfinite(run.losses()[:20]).all()
    assert masks_of(run)[0].shape == (10, 8)


def test_the_optimizers_follow_torch_optim():
    """Each optimizer is torch.optim's arithmetic: the bucket's weights after 30 steps
    match a torch.nn copy trained by torch.optim on the same batches and masks."""
    for opt, make in (("adam", lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.001)),
                      ("momentum", lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, weight_decay=0.001)),
                      ("sgd", lambda p: torch.optim.SGD(p, lr=0.01, weight_decay=0.001))):
        run = make_run(model={"hidden": [8, 8], "p": [0.0, 0.0]},
                       train={"optimizer": opt, "batch_size": 250, "weight_decay": 0.001})
        net = run.net
        optim = make(net.parameters())
        for _ in range(30):
            run.step()
            loss = loss_fn(net(run.data.x_train), run.data.y_train)
            optim.zero_grad()
            loss.backward()
            optim.step()
        for name, w in run.net.state_dict().items():
            torch.testing.assert_close(w, net.state_dict()[name], rtol=1e-4, atol=1e-6, msg=f"{opt} {name}")


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu", "selu", "linear"])
@pytest.mark.parametrize("net,kind,placement,dataset,bn", [
    ("mlp", "dropout", "after_activation", "moons", "none"),
    ("mlp", "dropout", "before_activation", "moons", "none"),
    ("mlp", "alpha", "after_activation", "moons", "none"),
    ("mlp", "dropout2d", "before_activation", "digits", "none"),
    ("cnn", "dropout2d", "after_activation", "digits", "none"),
    ("cnn", "dropout", "before_activation", "digits", "none"),
    ("mlp", "dropout", "before_activation", "moons", "before_dropout"),
    ("mlp", "dropout", "after_activation", "digits", "after_dropout"),
    ("cnn", "dropout", "before_activation", "digits", "before_dropout")])
def test_the_taped_gradient_is_autograds(activation, net, kind, placement, dataset, bn):
    """Every bucket takes its gradient from its forward pass's tape, without autograd's
    graph: the same gradient as autograd's, for every activation, dropout kind and
    placement, BatchNorm before or after dropout, MLP or CNN, one logit or ten, with runs
    at other p (one at p = 1), one in eval mode (BatchNorm on its running statistics)
    and one sitting out the step."""
    states = [RunState(config(data={"seed": i, "dataset": dataset},
                              model={"kind": net, "hidden": [8, 6], "p": [0.1 * i, 0.5], "activation": activation,
                                     "dropout_kind": kind, "placement": placement, "batchnorm": bn}))
              for i in range(4)]
    b = Bucket(key_of(states[0]), states[0].initial_net())
    for s in states:
        b.join(s)
    states[3].set_p(0, 1.0)
    states[2].set_mode("eval")   # (each writes its row's settings)
    K, B = 4, b.key.batch
    b.step(np.ones(K, bool))
    noise = [torch.rand(K, B, *shape).lt(0.6).float() for shape in b.shape.noise_shape]
    x, y = b.store.x_train[:K, :B].detach(), b.store.y_train[:K, :B]
    act = torch.tensor([1.0, 1.0, 1.0, 0.0])
    loss_t, grad_t = gradient(b.net, b.tables(), x, y, noise, act, False, [], taped=True)
    loss_a, grad_a = gradient(b.net, b.tables(), x, y, noise, act, False, [], taped=False)
    torch.testing.assert_close(loss_t, loss_a, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad_t, grad_a, rtol=1e-4, atol=1e-6)
    assert grad_t[:3].abs().sum(1).gt(0).all() and grad_t[3].eq(0).all()


def test_full_batch_training():
    run = make_run(train={"batch_size": 250})
    run.step(3)
    assert masks_of(run)[0].shape == (250, 8)
    assert run.frame().header["example"]["index"] == 0


@pytest.mark.parametrize("sections", [
    {},
    {"model": {"dropout_kind": "alpha", "activation": "selu"}, "train": {"optimizer": "momentum"}},
    {"model": {"batchnorm": "before_dropout"}, "train": {"optimizer": "sgd", "weight_decay": 0.01}},
    {"data": {"n_points": 60, "train_fraction": 0.5}, "train": {"batch_size": 8, "eval_every": 5}},
    {"model": {"kind": "cnn", "hidden": [4, 4], "p": [0.3, 0.5], "dropout_kind": "dropout2d"},
     "data": {"dataset": "digits"}, "train": {"batch_size": 16}},
    {"model": {"kind": "cnn", "hidden": [4], "p": [0.4]}, "data": {"dataset": "digits"}, "train": {"batch_size": 8}},
])
def test_several_steps_in_one_call_are_the_single_steps(sections):
    """Bucket.step(active, n): the steps a call takes are, to the bit, the steps that
    single calls take: masks, batches, weights, losses, drop counts, the timeline and
    test evaluations. A call stops early where a test evaluation is due."""
    def bucket():
        states = [RunState(config(**{**sections, "data": {**sections.get("data", {}), "seed": i}})) for i in range(3)]
        states[1].set_p(0, 0.7)
        b = Bucket(key_of(states[0]), states[0].initial_net())
        for s in states:
            b.join(s)
        return b, states

    single, one = bucket()
    chunked, many = bucket()
    rng = np.random.default_rng(1)
    short = 0
    while chunked.steps_taken < 90:
        active = rng.random(3) < 0.7 if rng.random() < 0.4 else np.ones(3, bool)
        asked = int(rng.integers(1, 10))
        taken = chunked.step(active, asked)
        for _ in range(taken):
            single.step(active)
        assert chunked.steps_taken == single.steps_taken
        short += taken < asked
        for a, b in zip(one, many):
            assert a.step_count == b.step_count
            for ma, mb in zip(single.last_masks(a), chunked.last_masks(b)):
                assert (ma is None and mb is None) or torch.equal(ma, mb)
        for name in ("pos", "masked_l", "rec_of", "drawn"):
            assert np.array_equal(getattr(single.store, name)[:3], getattr(chunked.store, name)[:3]), name
        assert torch.equal(single.store.kept[:3], chunked.store.kept[:3])
        torch.testing.assert_close(chunked.theta[:3], single.theta[:3], rtol=1e-5, atol=1e-7)
    # a call crosses epochs (a fresh permutation in the middle), and stops where a test
    # evaluation is due
    assert bool(short) == bool(sections.get("train", {}).get("eval_every"))
    single.history.fold(), chunked.history.fold()
    for a, b in zip(one, many):
        torch.testing.assert_close(b.losses(), a.losses(), rtol=1e-5, atol=0)
        assert [e[0] for e in a.evals] == [e[0] for e in b.evals]
        frames = [decode(encode(take_frames_of(bk, s))) for bk, s in ((single, a), (chunked, b))]
        assert frames[0][0]["step"] == frames[1][0]["step"]
        assert {k: v.tolist() for k, v in frames[0][1].items() if k.startswith(("mask", "dropped"))} == \
               {k: v.tolist() for k, v in frames[1][1].items() if k.startswith(("mask", "dropped"))}
    torch.testing.assert_close(chunked.store.tl_vals[:3], single.store.tl_vals[:3], rtol=1e-3, atol=1e-3)
    assert torch.equal(chunked.store.tl_index[:3], single.store.tl_index[:3])


def take_frames_of(bucket, state):
    from model_server.snapshot import take_frames
    return take_frames(bucket, [state], [True], 16)[0]
