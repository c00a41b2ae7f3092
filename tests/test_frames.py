"""model_server.frames: the binary frame format round-trips, is versioned and aligned;
a Run's frames carry the panels the page draws."""
import json
import math
import struct

import numpy as np
import pytest
import torch

from model_server import Limits, Run, parse_config
from model_server.datasets import plane_grid
from model_server.frames import VERSION, Frame, decode, encode


def header_bytes(data: bytes) -> tuple[int, bytes]:
    version, n = struct.unpack_from("<BI", data, 0)
    return version, data[5:5 + n]


def sample_frame(rng: np.random.Generator) -> Frame:
    fr = Frame({"step": 3, "loss": 0.25, "name": "x"})
    fr.add("bits", "bits", rng.random(37) < 0.4)
    fr.add("bits2d", "bits", rng.random((3, 5)) < 0.5)
    fr.add("counts", "u32", rng.integers(0, 2**32 - 1, size=11, dtype=np.int64))
    fr.add("acts", "q8", rng.normal(0, 3, size=(4, 7)).astype(np.float32))
    fr.add("probs", "p8", rng.random(13))
    fr.add("empty", "q8", np.zeros((0,), np.float32))
    return fr


# ---- format -----------------------------------------------------------------------------------

def test_round_trip():
    rng = np.random.default_rng(0)
    fr = sample_frame(rng)
    header, arrays = decode(encode(fr))
    assert header["v"] == VERSION and header["step"] == 3 and header["name"] == "x"
    assert list(arrays) == list(fr.sections)
    for name, (enc, original) in fr.sections.items():
        got = arrays[name]
        assert got.shape == original.shape, name
        if enc in ("bits", "u32"):
            assert np.array_equal(got, original), name  # exact
        elif enc == "q8":
            scale = next(s for s in header["sections"] if s["name"] == name)["scale"]
            assert np.all(np.abs(got - original) <= scale / 2 + 1e-7), name
            if original.size:
                assert scale == pytest.approx(np.abs(original).max() / 127)
        else:
            assert np.all(np.abs(got - original) <= 1 / 510 + 1e-7), name


def test_q8_keeps_the_extremes_and_zeros():
    a = np.array([-2.0, 0.0, 1.0, 2.0], np.float32)
    fr = Frame({})
    fr.add("a", "q8", a)
    fr.add("z", "q8", np.zeros(5, np.float32))
    _, arrays = decode(encode(fr))
    assert arrays["a"][0] == pytest.approx(-2.0) and arrays["a"][3] == pytest.approx(2.0)
    assert arrays["a"][1] == 0.0
    assert np.array_equal(arrays["z"], np.zeros(5))


def test_u32_counts_are_exact_at_the_top():
    fr = Frame({})
    fr.add("c", "u32", np.array([0, 1, 2**31, 2**32 - 1], np.int64))
    assert decode(encode(fr))[1]["c"].tolist() == [0, 1, 2**31, 2**32 - 1]


def test_bits_order_is_most_significant_first():
    fr = Frame({})
    fr.add("m", "bits", np.array([1, 0, 0, 0, 0, 0, 0, 1, 1], bool))
    data = encode(fr)
    header, _ = decode(data)
    n = struct.unpack_from("<I", data, 1)[0]
    section = header["sections"][0]
    raw = data[5 + n + section["offset"]:][:section["nbytes"]]
    assert raw == bytes([0b10000001, 0b10000000])


def test_non_finite_values_never_reach_the_wire():
    fr = Frame({})
    fr.add("q", "q8", np.array([np.nan, np.inf, -np.inf, 1.0], np.float32))
    fr.add("p", "p8", np.array([np.nan, 0.0, 1.0, 2.0, -1.0]))
    _, arrays = decode(encode(fr))
    assert np.isfinite(arrays["q"]).all() and arrays["q"][3] == pytest.approx(1.0)
    assert np.isfinite(arrays["p"]).all()
    assert arrays["p"].tolist()[1:] == [0.0, 1.0, 1.0, 0.0]


def test_version_byte_is_checked():
    data = bytearray(encode(sample_frame(np.random.default_rng(1))))
    assert data[0] == VERSION
    data[0] = VERSION + 1
    with pytest.raises(ValueError, match=f"but got {VERSION + 1}"):
        decode(bytes(data))
    data[0] = 0
    with pytest.raises(ValueError, match="but got 0"):
        decode(bytes(data))


def test_sections_are_4_byte_aligned():
    fr = Frame({"odd": "x" * 3})
    for i, size in enumerate((1, 3, 5, 7, 9, 17)):
        fr.add(f"b{i}", "bits", np.ones(size, bool))
        fr.add(f"p{i}", "p8", np.zeros(size))
    data = encode(fr)
    version, head = header_bytes(data)
    header = json.loads(head)
    base = 5 + len(head)
    assert base % 4 == 0
    end = base
    for s in header["sections"]:
        assert (base + s["offset"]) % 4 == 0, s
        assert s["offset"] >= end - base  # no overlaps
        end = base + s["offset"] + s["nbytes"]
    assert len(data) % 4 == 0 and len(data) >= end


def test_header_json_has_no_nan():
    """A NaN that reached a header is sent as null: never the invalid JSON token NaN."""
    data = encode(Frame({"loss": math.nan, "inf": math.inf}))
    _, head = header_bytes(data)
    assert b"NaN" not in head and b"Infinity" not in head
    header, _ = decode(data)
    assert header["loss"] is None and header["inf"] is None


# ---- a Run's frames ---------------------------------------------------------------------------

def make_run(limits=None, **sections) -> Run:
    raw = {"data": {}, "model": {}, "train": {"device": "cpu"}}
    for part, values in sections.items():
        raw[part] = {**raw[part], **values}
    return Run(parse_config(raw, limits), limits)


def frame_of(run: Run, extras: bool = True):
    data = encode(run.frame(extras=extras))
    _, head = header_bytes(data)
    assert "NaN" not in head.decode() and "Infinity" not in head.decode()
    json.loads(head, parse_constant=lambda c: pytest.fail(f"{c} in header"))
    return decode(data)


def test_nan_loss_becomes_null():
    run = make_run(train={"eval_every": 1})
    # the run's own head weights (run.net is a copy), in its row of the bucket
    name, shape, _, at = next(p for p in run.bucket.layout.params if p[0] == "head.weight")
    with torch.no_grad():
        run.bucket.theta[run.row, at:at + math.prod(shape)] = math.nan
    run.step(2)
    assert run.losses()[:2].isnan().all()  # a real NaN loss happened
    header, arrays = frame_of(run)
    assert header["train_loss"] is None
    assert header["eval"]["train_loss"] is None and header["eval"]["test_loss"] is None
    assert all(np.isfinite(a).all() for a in arrays.values() if a.dtype.kind == "f")


def test_run_frame_carries_boundary_and_weights_on_2d_sets():
    limits = Limits(grid_size=20)
    run = make_run(limits, model={"hidden": [6, 5], "p": [0.5, 0.5]})
    run.step(5)
    header, arrays = frame_of(run)
    assert arrays["boundary.eval"].shape == (20 * 20,)
    assert "boundary.thinned" not in arrays and header["view"] == "eval"  # only the one on screen
    assert ((arrays["boundary.eval"] >= 0) & (arrays["boundary.eval"] <= 1)).all()
    run.set_view("thinned")
    header, arrays = frame_of(run)
    assert arrays["boundary.thinned"].shape == (20 * 20,)
    assert "boundary.eval" not in arrays and header["view"] == "thinned"
    assert [arrays[f"weight.{i}"].shape for i in range(3)] == [(6, 2), (5, 6), (1, 5)]
    for i, width in enumerate((6, 5)):
        assert arrays[f"mask.{i}"].shape == (width,) and arrays[f"mask.{i}"].dtype == bool
        assert arrays[f"act.{i}"].shape == (width,)
    assert header["eval"]["step"] == 5 and 0 <= header["eval"]["test_acc"] <= 1
    assert header["step"] == 5 and header["task"] == "binary"


def test_thinned_boundary_is_the_masked_network():
    """boundary.thinned differs from boundary.eval when units were dropped (the thinned net
    is a different function), and the two agree after an eval-mode step (no mask)."""
    run = make_run(Limits(grid_size=16), model={"hidden": [16, 16], "p": [0.7, 0.7]})
    run.step(20)
    eval_grid = frame_of(run)[1]["boundary.eval"]
    run.set_view("thinned")
    _, arrays = frame_of(run)
    assert not np.array_equal(eval_grid, arrays["boundary.thinned"])
    run.set_mode("eval")
    run.step()
    header, arrays = frame_of(run)  # no mask to show: the eval boundary stands in
    assert "boundary.thinned" not in arrays and "boundary.eval" in arrays and header["view"] == "thinned"


def test_thinned_boundary_matches_a_hand_computed_thinned_net():
    run = make_run(Limits(grid_size=10), model={"hidden": [6], "p": [0.5]})
    run.step(10)
    eval_grid = frame_of(run)[1]["boundary.eval"]
    run.set_view("thinned")
    _, arrays = frame_of(run)
    assert not arrays["mask.0"].all() and arrays["mask.0"].any()
    keep = torch.from_numpy(arrays["mask.0"]).float()
    lin, head = run.net.blocks[0][0], run.net.head
    grid = plane_grid(10)
    with torch.no_grad():
        hidden = torch.relu(grid @ lin.weight.T + lin.bias) * keep / 0.5
        expected = torch.sigmoid(hidden @ head.weight.T + head.bias).squeeze(1).numpy()
        full = torch.sigmoid(torch.relu(grid @ lin.weight.T + lin.bias) @ head.weight.T + head.bias)
    assert np.all(np.abs(arrays["boundary.thinned"] - expected) <= 1 / 510 + 1e-6)
    assert np.all(np.abs(eval_grid - full.squeeze(1).numpy()) <= 1 / 510 + 1e-6)


def test_default_grid_size():
    run = make_run()
    run.step()
    _, arrays = frame_of(run)
    assert arrays["boundary.eval"].shape == (Limits().grid_size ** 2,)


def test_no_extras_no_slow_panels():
    run = make_run()
    run.step()
    _, arrays = frame_of(run, extras=False)
    assert not any(k.startswith(("boundary", "weight", "neuron")) for k in arrays)
    assert "mask.0" in arrays


def test_watch_adds_a_neuron_section():
    run = make_run(Limits(grid_size=12), model={"hidden": [6, 5], "p": [0.5, 0.5]})
    run.step(2)
    _, arrays = frame_of(run)
    assert "neuron" not in arrays
    run.set_watch(1, 4)
    header, arrays = frame_of(run)
    assert header["watch"] == [1, 4]
    assert arrays["neuron"].shape == (12 * 12,)
    with pytest.raises(IndexError, match="but got 5"):
        run.set_watch(1, 5)
    with pytest.raises(IndexError, match="but got 2"):
        run.set_watch(2, 0)
    run.set_watch(None, None)  # stop: the map is no longer computed
    header, arrays = frame_of(run)
    assert "neuron" not in arrays and "watch" not in header


def test_digits_frames_have_no_boundary():
    run = make_run(data={"dataset": "digits"}, train={"batch_size": 16})
    run.step(2)
    header, arrays = frame_of(run)
    assert header["task"] == "digits" and header["sizes"] == [64, 8, 8, 10]
    assert not any(k.startswith("boundary") for k in arrays)
    assert "weight.0" in arrays and arrays["weight.0"].shape == (8, 64)
    assert "x" not in header["example"]


def test_frame_before_any_step():
    run = make_run()
    header, arrays = frame_of(run)
    assert header["step"] == 0 and header["train_loss"] is None
    assert not any(k.startswith(("mask", "dropped", "act")) for k in arrays)
    assert "boundary.eval" in arrays and "boundary.thinned" not in arrays


@pytest.mark.parametrize("enc", ["bits", "u32", "q8", "p8"])
def test_packing_many_rows_at_once_gives_each_rows_own_bytes(enc):
    """frames.pack_rows (one numpy pass for many frames) == _pack row by row: NaN,
    infinities, all-zero rows and odd lengths included."""
    from model_server.frames import _pack, pack_rows
    rng = np.random.default_rng(0)
    a = rng.normal(size=(7, 3, 5)).astype(np.float32)
    a[1] = 0
    a[2, 0, 0], a[3, 1, 2], a[4, 2, 4] = math.nan, math.inf, -math.inf
    if enc == "bits":
        a = a > 0
    elif enc == "u32":
        a = np.abs(np.nan_to_num(a, posinf=1, neginf=1) * 1000).astype(np.int64)
    elif enc == "p8":
        a = 1 / (1 + np.exp(-a))
    for row, got in zip(a, pack_rows(enc, a)):
        assert got == _pack(enc, row)
