"""model_server.trainer.Run: real training, reproducible step for step, live changes
that take effect at the next step, pacing and the frames it yields."""
import random
import time

import pytest
import torch
from scipy.stats import binom

from model_server import Limits, Run, parse_config
from model_server import trainer as trainer_module
from model_server.config import DATASETS
from model_server.datasets import make_dataset
from model_server.frames import decode, encode
from model_server.trainer import LOSS_FOLD, LOSS_RING, StepLosses, loss_fn


def make_run(limits=None, **sections) -> Run:
    raw = {"data": {}, "model": {}, "train": {"device": "cpu"}}
    for part, values in sections.items():
        raw[part] = {**raw[part], **values}
    return Run(parse_config(raw, limits), limits)


def heldout_loss(run: Run) -> float:
    with torch.no_grad(), run.net.scratch(train=False):
        return loss_fn(run.net(run.data.x_test), run.data.y_test).item()


def masks_of(run: Run) -> list[torch.Tensor | None]:
    return [None if d.noise is None else d.noise.clone() for d in run.net.drops]


def weights_of(run: Run) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in run.net.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_rate(dropped: int, n: int, p: float) -> None:
    lo, hi = binom.interval(0.999, n, p)
    assert lo <= dropped <= hi, f"dropped {dropped} of {n} at p={p}: outside {lo}..{hi}"


class FakeClock:
    """Stands in for the time module inside trainer.py: pacing without sleeping."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()

    def thread_time(self) -> float:  # CPU time is measured, not faked
        return time.thread_time()

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(trainer_module, "time", fake)
    return fake


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


def test_step_losses_keep_the_last_ring_of_steps_in_order():
    log = StepLosses(torch.device("cpu"))
    total = LOSS_RING + 3 * LOSS_FOLD + 17  # wraps the ring, ends with losses still pending
    for i in range(total):
        log.add(torch.tensor(float(i)))
    assert len(log.pending) == 17
    whole = log.window(0, total)  # only the last LOSS_RING steps are kept
    assert whole.tolist() == [float(i) for i in range(total - LOSS_RING, total)]
    assert log.window(total - 40, total - 5).tolist() == [float(i) for i in range(total - 40, total - 5)]
    start = LOSS_RING - 10  # a window across the ring's end
    assert log.window(start, start + 30).tolist() == [float(i) for i in range(start, start + 30)]
    assert float(log.mean(total - 4, total)) == total - 2.5
    assert log.mean(5, 5).isnan() and len(log.window(0, 10)) == 0  # empty, and long gone


def test_step_losses_match_a_plain_list_with_folds_between_reads(monkeypatch):
    """A small ring, reads between adds: partial folds, folds across the ring's end,
    windows ending on it, and the clamp to the oldest step still kept."""
    monkeypatch.setattr(trainer_module, "LOSS_RING", 16)
    monkeypatch.setattr(trainer_module, "LOSS_FOLD", 5)
    rng = random.Random(0)
    log, every = StepLosses(torch.device("cpu")), []
    for _ in range(400):
        for _ in range(rng.randrange(0, 9)):
            every.append(float(len(every)))
            log.add(torch.tensor(every[-1]))
        n = len(every)
        start, stop = rng.randrange(-3, n + 3), rng.randrange(-3, n + 3)
        kept = range(max(start, n - 16, 0), min(stop, n))
        assert log.window(start, stop).tolist() == [every[i] for i in kept], (start, stop, n)


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


def test_runs_do_not_share_random_state():
    """Another run stepping in between, or anyone using torch's default generator,
    changes nothing: each run draws from its own generators."""
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
    assert not torch.equal(first[0], run.net.drops[0].noise)


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
    run.step()
    assert run.finished is not None and "5" in run.finished and "step limit" in run.finished
    assert run.frame().header["finished"] == run.finished


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
    dropped = int((run.net.drops[0].noise == 0).sum())
    assert_rate(dropped, 1000 * 64, 0.9)
    assert run.net.drops[1].noise is None  # p = 0: nothing dropped, nothing drawn
    header = run.frame().header
    assert header["p"] == [0.9, 0.0]
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


def test_set_lr_takes_effect_at_the_next_step():
    run = make_run(train={"optimizer": "sgd"})
    run.step(3)
    run.set_lr(0.5)
    assert run.cfg.train.lr == 0.5
    before = weights_of(run)
    run.step()
    # plain SGD: the update is exactly -lr * grad of this step
    for name, param in run.net.named_parameters():
        torch.testing.assert_close(param.detach(), before[name] - 0.5 * param.grad)
    assert run.frame().header["lr"] == 0.5


def test_set_mode_eval_draws_no_masks_but_keeps_learning():
    run = big_run()
    run.step(3)
    weights = weights_of(run)
    run.set_mode("eval")
    assert same_weights(weights, weights_of(run)) and run.step_count == 3
    run.step()
    assert all(d.noise is None for d in run.net.drops)
    assert not same_weights(weights, weights_of(run))  # eval mode turns dropout off, not learning
    fr = run.frame()
    assert fr.header["mode"] == "eval"
    assert not any(name.startswith("mask.") for name in fr.sections)

    run.set_mode("train")
    run.step()
    assert all(d.noise is not None for d in run.net.drops)
    assert_rate(int((run.net.drops[0].noise == 0).sum()), 1000 * 64, 0.2)


def test_eval_mode_step_is_deterministic():
    """No dropout in eval mode: the step's loss is the plain network's loss on the batch."""
    run = make_run(train={"batch_size": 250})  # the whole training set: no batch sampling
    run.set_mode("eval")
    with torch.no_grad():
        expected = loss_fn(run.net(run.data.x_train), run.data.y_train)
    run.step()
    torch.testing.assert_close(run.losses()[0], expected)


# ---- pacing and frames ------------------------------------------------------------------------

def test_slow_speed_gives_one_frame_per_step(clock):
    run = make_run()
    run.set_speed(5)
    frame, wait = run.advance()  # starts the clock
    assert frame is None and wait > 0
    for expected_step in (1, 2, 3):
        clock.tick(0.1)  # half a step's time: nothing is due
        assert run.advance()[0] is None
        clock.tick(0.15)
        frame, wait = run.advance()
        assert frame is not None
        assert frame.header["step"] == expected_step and frame.header["steps"] == 1
        assert wait == pytest.approx(0.2)
        assert any(name.startswith("mask.") for name in frame.sections)
    clock.tick(10)  # a long pause is not caught up: still one step per frame
    frame, _ = run.advance()
    assert frame.header["step"] == 4 and frame.header["steps"] == 1


def test_fast_speed_frames_carry_drop_counts(clock):
    limits = Limits(frame_rate=32)  # a frame period of 1/32 s, exact in binary
    run = make_run(limits, model={"hidden": [16, 16], "p": [0.3, 0.6]}, train={"batch_size": 50})
    run.set_speed(3200)  # 100 steps per frame period
    run.advance()
    clock.tick(1 / 32)
    frame, _ = run.advance()
    header = frame.header
    assert header["steps"] == run.step_count == 100
    assert header["masked"] == [100 * 50, 100 * 50]
    arrays = decode(encode(frame))[1]
    for i, p in enumerate((0.3, 0.6)):
        dropped = arrays[f"dropped.{i}"]
        assert dropped.shape == (16,)
        assert (dropped <= header["masked"][i]).all()
        assert_rate(int(dropped.sum()), header["masked"][i] * 16, p)
    # the counts restart with each frame; credit is capped at one frame period's steps
    clock.tick(1.0)
    frame, _ = run.advance()
    assert frame.header["masked"] == [5000, 5000]
    assert_rate(int(decode(encode(frame))[1]["dropped.1"].sum()), 5000 * 16, 0.6)


def test_fast_speed_on_the_real_clock():
    """No fake clock: full speed trains until frames arrive; their counts add up."""
    run = make_run(model={"hidden": [16, 16], "p": [0.5, 0.5]})
    frames = []
    for _ in range(200):
        frame, wait = run.advance()
        assert wait >= 0
        if frame is not None:
            frames.append(frame.header)
            if len(frames) == 2:
                break
        time.sleep(min(wait, 0.01))
    assert len(frames) == 2
    assert sum(h["steps"] for h in frames) == run.step_count
    for h in frames:
        assert h["steps"] >= 1 and h["masked"] == [h["steps"] * 10] * 2


def test_drop_counts_match_the_masks_drawn():
    """dropped.i is exactly the count of zeros in the masks of the steps since the last frame."""
    run = make_run(model={"hidden": [8, 8], "p": [0.5, 0.5]}, train={"batch_size": 20})
    run.frame()
    zeros = torch.zeros(8)
    for _ in range(7):
        run.step()
        zeros += (run.net.drops[0].noise == 0).float().sum(0)
    arrays = decode(encode(run.frame()))[1]
    assert arrays["dropped.0"].tolist() == zeros.int().tolist()


def test_advance_stops_at_the_step_limit(clock):
    run = make_run(Limits(max_steps=5))
    run.set_speed(3000)
    run.advance()
    clock.tick(1 / 30)
    frame, _ = run.advance()
    assert run.step_count == 5 and frame.header["finished"]
    clock.tick(1)
    assert run.advance()[0] is None
    assert run.step_count == 5


def test_advance_stops_exactly_at_until(clock):
    """Chunks of steps never overshoot the stop step, at full speed and one step at a time."""
    run = make_run()
    run.set_speed(3000)  # 100 steps per frame period
    run.until = 37
    run.advance()
    clock.tick(1 / 30)
    run.advance()
    assert run.step_count == 37 and run.stopped
    clock.tick(1)
    assert run.advance()[0] is None and run.step_count == 37
    run.until = 80  # a later stop: training goes on, and stops there
    for _ in range(3):
        clock.tick(1 / 30)
        run.advance()
    assert run.step_count == 80

    run = make_run()
    run.set_speed(5)
    run.until = 2
    run.advance()
    for _ in range(6):
        clock.tick(0.25)
        run.advance()
    assert run.step_count == 2 and run.stopped


def test_advance_stops_exactly_at_until_on_the_real_clock():
    run = make_run(model={"hidden": [16, 16]})
    run.until = 1234
    deadline = time.monotonic() + 60
    while not run.stopped and time.monotonic() < deadline:
        _, wait = run.advance()
        time.sleep(min(wait, 0.005))
    assert run.step_count == 1234
    run.advance()
    assert run.step_count == 1234


def test_a_slow_moment_does_not_hold_the_test_curve_still(monkeypatch):
    """'auto' evaluation spends at most AUTO_EVAL_SHARE of the time on the test set. An
    evaluation that took long on the wall clock because this thread did not run (another
    held the GIL, the machine was busy: here a sleep) used to count as expensive, and the
    test curve stood still for 50 times that long while training went on."""
    run = make_run()  # eval_every 0: 'auto'
    real, evaluated = run._evaluate, []

    def evaluate():
        real()
        if len(evaluated) == 1:
            time.sleep(0.3)  # wall time, no CPU time
        evaluated.append(run.step_count)

    monkeypatch.setattr(run, "_evaluate", evaluate)
    for _ in range(3):
        run.step(10)
        run.frame(extras=True)
        time.sleep(0.3)
    assert evaluated == [10, 20, 30]
    assert run.frame().header["eval"]["step"] == 30


def test_a_complete_frame_carries_the_test_loss_of_its_step():
    """A paused run's picture (frame(complete=True)) is evaluated at its own step, even
    right after an evaluation, when 'auto' would otherwise wait."""
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
    for i, d in enumerate(run.net.drops):
        assert arrays[f"mask.{i}"].tolist() == (d.noise[0] != 0).tolist()
    assert header["example"]["index"] in range(len(run.data.x_train))
    assert header["step"] == 3 and header["sizes"] == [2, 16, 8, 1]


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
    end = heldout_loss(run)
    assert end < 0.7 * start


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
    noise = run.net.drops[0].noise
    assert noise.shape == (32, 4, 1, 1)  # whole channels
    fr = run.frame(extras=True)
    header, arrays = decode(encode(fr))
    assert arrays["mask.0"].shape == (4,) and arrays["dropped.0"].shape == (4,)
    assert arrays["act.0"].shape == (4, 8, 8)


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
    run = make_run(model={"dropout_kind": kind}, train={"optimizer": optimizer, "lr": 0.1})
    run.step(20)
    assert torch.isfinite(run.losses()[:20]).all()
    assert run.net.drops[0].noise.shape == (10, 8)


def test_full_batch_training():
    run = make_run(train={"batch_size": 250})
    run.step(3)
    assert run.net.drops[0].noise.shape == (250, 8)
    assert run.frame().header["example"]["index"] == 0
