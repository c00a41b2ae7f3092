"""The engine on a CUDA device: the recorded masks are the applied ones, drop rates are p,
a Run trains and yields frames, and a bucket keeps each run's masks its own. Skipped
where torch sees no CUDA device. GPU_TEST_DEVICE=cpu runs the same tests on the CPU (a
check of the tests themselves where no GPU is lent)."""
import os

import numpy as np
import pytest
import torch
from scipy.stats import binom

from model_server import Run, parse_config
from model_server.bucket import Bucket, key_of
from model_server.runstate import RunState
from model_server.frames import decode, encode
from model_server.layers import RecordingAlphaDropout, RecordingDropout, RecordingDropout2d
from model_server.runstate import loss_fn

DEVICE = os.environ.get("GPU_TEST_DEVICE", "cuda")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device")]


def assert_rate(kept: int, n: int, p: float) -> None:
    lo, hi = binom.interval(0.999, n, 1 - p)
    assert lo <= kept <= hi, f"kept {kept} of {n} at p={p}: outside {lo}..{hi}"


# ---- layers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, shape", [(RecordingDropout, (256, 64)), (RecordingDropout, (8, 4, 6, 6)),
                                        (RecordingDropout2d, (32, 16, 6, 6))])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_output_is_input_times_mask_over_keep_prob(cls, shape, p):
    torch.manual_seed(0)
    x = torch.randn(shape, device=DEVICE, requires_grad=True)
    layer = cls(p)
    out = layer(x)
    assert layer.noise.device.type == DEVICE
    mask = layer.noise != 0
    torch.testing.assert_close(out, x * mask / (1 - p))
    assert torch.equal(out == 0, (~mask).expand_as(x))
    if cls is RecordingDropout2d:
        assert layer.noise.shape == shape[:2] + (1, 1)  # whole channels
    out.sum().backward()
    torch.testing.assert_close(x.grad, (mask / (1 - p)).expand_as(x).float())


@pytest.mark.parametrize("cls", [RecordingDropout, RecordingDropout2d, RecordingAlphaDropout])
@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.8])
def test_drop_rate_is_p(cls, p):
    torch.manual_seed(1)
    layer = cls(p)
    kept = n = 0
    for _ in range(10):
        layer(torch.randn(500, 40, device=DEVICE))
        kept += int((layer.noise != 0).sum())
        n += 500 * 40
    assert_rate(kept, n, p)
    counted = layer.take_kept()
    assert counted.device.type == DEVICE and int(counted.sum()) == kept


@pytest.mark.parametrize("cls", [RecordingDropout, RecordingDropout2d, RecordingAlphaDropout])
def test_p_one_and_eval_mode(cls):
    x = torch.randn(16, 8, 3, 3, device=DEVICE, requires_grad=True)
    out = cls(1.0)(x)
    assert torch.equal(out, torch.zeros_like(out)) and not out.isnan().any()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.equal(cls(0.5).eval()(x), x)


def test_layer_generator_on_device_is_reproducible():
    x = torch.randn(128, 32, device=DEVICE)
    masks = []
    for _ in range(2):
        layer = RecordingDropout(0.5)
        layer.generator = torch.Generator(DEVICE).manual_seed(3)
        layer(x)
        masks.append(layer.noise.clone())
    assert torch.equal(*masks)


# ---- a Run on the device ------------------------------------------------------------------------

def config(**sections):
    raw = {"data": {}, "model": {}, "train": {"device": DEVICE}}
    for part, values in sections.items():
        raw[part] = {**raw[part], **values}
    return parse_config(raw)


def make_run(**sections) -> Run:
    return Run(config(**sections))


def heldout_loss(run: Run) -> float:
    with torch.no_grad(), run.net.scratch(train=False):
        return loss_fn(run.net(run.data.x_test), run.data.y_test).item()


def test_run_trains_on_the_device():
    run = make_run(model={"hidden": [16, 16], "p": [0.1, 0.1]})
    assert run.device.type == DEVICE
    assert all(p.device.type == DEVICE for p in run.net.parameters())
    start = heldout_loss(run)
    run.step(300)
    assert run.step_count == 300
    assert torch.isfinite(run.losses()[:300]).all()
    assert heldout_loss(run) < 0.7 * start
    assert run.losses()[250:300].mean() < run.losses()[:50].mean()


def test_run_frames_decode():
    run = make_run(model={"hidden": [16, 8], "p": [0.4, 0.4]}, train={"batch_size": 50})
    run.step(40)
    run.set_view("thinned")
    header, arrays = decode(encode(run.frame(extras=True)))
    assert header["device"] == DEVICE and header["step"] == 40
    assert header["train_loss"] is not None
    for i, (width, mask) in enumerate(zip((16, 8), run.bucket.last_masks(run.state))):
        assert mask.device.type == DEVICE
        assert arrays[f"mask.{i}"].tolist() == mask[0].cpu().tolist()
        assert header["masked"][i] == 40 * 50
        assert_rate(header["masked"][i] * width - int(arrays[f"dropped.{i}"].sum()),
                    header["masked"][i] * width, 0.4)
    assert arrays["boundary.thinned"].shape == (run.limits.grid_size ** 2,)
    assert "weight.2" in arrays


def test_run_on_the_device_is_reproducible():
    a, b = make_run(), make_run()
    for _ in range(10):
        a.step()
        b.step()
        for ma, mb in zip(a.bucket.last_masks(a.state), b.bucket.last_masks(b.state)):
            assert torch.equal(ma, mb)
    torch.testing.assert_close(a.losses(), b.losses())


def test_the_device_draws_the_masks_the_cpu_draws():
    """Masks come from a counter of (seed, step, unit) (model_server.masks): the same run
    on the device and on the CPU draws the same bits, step for step."""
    model = {"hidden": [16, 8], "p": [0.5, 0.25]}
    on_device, on_cpu = make_run(model=model), make_run(model=model, train={"device": "cpu"})
    for _ in range(5):
        on_device.step()
        on_cpu.step()
        for a, b in zip(on_device.bucket.last_masks(on_device.state), on_cpu.bucket.last_masks(on_cpu.state)):
            assert torch.equal(a.cpu(), b)


def test_a_run_in_a_busy_bucket_on_the_device_keeps_its_masks():
    """The same config and seed alone and among 30 others on the device: identical masks
    for 50 steps, losses within 1e-4 relative; per step, nothing waits for the device."""
    cfg = config(model={"hidden": [16, 16], "p": [0.5, 0.3]})
    alone, mine = Run(cfg), RunState(cfg)
    crowd = Bucket(key_of(mine), mine.initial_net())
    for i in range(30):
        crowd.join(RunState(config(model={"hidden": [16, 16], "p": [0.2, 0.2]}, data={"seed": i + 1})))
        if i == 14:
            crowd.join(mine)
    rng = np.random.default_rng(0)
    for _ in range(50):
        active = rng.random(len(crowd.runs)) < 0.7
        active[mine.row] = True
        alone.step()
        crowd.step(active)
        for ma, mb in zip(alone.bucket.last_masks(alone.state), crowd.last_masks(mine)):
            assert torch.equal(ma, mb)
    torch.testing.assert_close(mine.losses(), alone.losses(), rtol=1e-4, atol=0)


def test_cnn_trains_on_the_device():
    run = make_run(data={"dataset": "digits"},
                   model={"kind": "cnn", "hidden": [8, 8], "p": [0.2, 0.2], "dropout_kind": "dropout2d",
                          "batchnorm": "after_dropout"},
                   train={"batch_size": 64})
    start = heldout_loss(run)
    run.step(60)
    assert heldout_loss(run) < 0.8 * start
    header, arrays = decode(encode(run.frame(extras=True)))
    assert arrays["mask.0"].shape == (8,) and arrays["act.0"].shape == (8, 8, 8)
    assert not any(k.startswith("boundary") for k in arrays)
