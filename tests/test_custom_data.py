"""A visitor's own 2D set, dataset 'custom': the config's checks, the seeded split, the
configure event (Flask-SocketIO test client) and a full-size set through a real server."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from model_server import Run, parse_config
from model_server.config import CUSTOM_POINTS, PLANE, ConfigError, Limits
from model_server.datasets import make_dataset
from model_server.frames import decode

from visitors import Visitor, wait_until


def frames_of(client) -> list[tuple[dict, dict]]:
    return [decode(m["args"][0]) for m in client.get_received() if m["name"] == "frame"]


def grid_points(n: int, decimals: int = 2) -> list[list]:
    """n points spread over the plane, two classes split by the line y = x (both present)."""
    rng = np.random.default_rng(n)
    xy = rng.uniform(PLANE[0], PLANE[1], size=(n, 2)).round(decimals)
    labels = (xy[:, 1] > xy[:, 0]).astype(int)
    labels[0], labels[1] = 0, 1
    return [[float(x), float(y), int(c)] for (x, y), c in zip(xy, labels)]


def close(a, b, tol: float = 1e-6) -> bool:
    """Two lists of [x, y, label] rows hold the same numbers (float32 rounding aside)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and np.allclose(a, b, atol=tol, rtol=0)


def same_set(a, b) -> bool:
    return close(sorted(map(tuple, a)), sorted(map(tuple, b)))


def custom(points, **data) -> dict:
    train = {"batch_size": 2, "device": "cpu"}
    return {"data": {"dataset": "custom", "points": points, **data}, "train": train}


def errors_of(raw: dict) -> list[dict]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return info.value.errors


# ---- the set: as sent, split by train_fraction with the seed --------------------------------
def test_custom_set_is_the_points_split_by_train_fraction_with_the_seed():
    pts = grid_points(40)
    cfg = parse_config(custom(pts, train_fraction=0.7, seed=3))
    d = make_dataset(cfg.data)
    assert (len(d.x_train), len(d.x_test)) == (28, 12)
    got = torch.cat([torch.cat([d.x_train, d.y_train[:, None]], 1), torch.cat([d.x_test, d.y_test[:, None]], 1)])
    # every point exactly once, coordinates as sent (to float32)
    assert same_set(got.tolist(), pts)
    # the split is seeded: the same seed, the same split; another seed, another one
    again = make_dataset(parse_config(custom(pts, train_fraction=0.7, seed=3)).data)
    other = make_dataset(parse_config(custom(pts, train_fraction=0.7, seed=4)).data)
    assert torch.equal(d.x_train, again.x_train)
    assert not torch.equal(d.x_train, other.x_train)
    assert d.n_classes == 1 and d.y_train.dtype == torch.float32


def test_smallest_set_trains_and_batch_size_is_bounded_by_its_training_set():
    pts = [[-1, -1, 0], [1, 1, 1], [-1, 1, 0], [1, -1, 1]]
    run = Run(parse_config(custom(pts)))
    run.step(20)
    assert run.step_count == 20 and torch.isfinite(run.losses()).all()
    [e] = errors_of({**custom(pts), "train": {"batch_size": 3}})
    assert e["field"] == "train.batch_size" and e["allowed"] == "1..2"
    assert "(the training-set size)" in e["message"]


@pytest.mark.parametrize("points, field, words, allowed, received", [
    ([[0, 0, 0], [1, 1, 1], [2.0, 0.5, 1], [0, 1, 0]], "data.points.2",
     "x (inside the plane) has to be between -1.5 and 1.5, but got 2.0", "-1.5..1.5", 2.0),
    ([[0, 0, 0], [1, 1, 1], [0, 1, 0], [0.5, -1.51, 1]], "data.points.3",
     "y (inside the plane) has to be between -1.5 and 1.5, but got -1.51", "-1.5..1.5", -1.51),
    ([[0, 0, 0], ["a", 1, 1], [0, 1, 0], [1, 0, 1]], "data.points.1", "x has to be a number, but got 'a'",
     "number", "a"),
    ([[0, 0, 0], [1, 1, 1], [0, 1, 2], [1, 0, 1]], "data.points.2", "label has to be 0 or 1, but got 2",
     "0, 1", 2),
    ([[0, 0, 0], [1, 1, 1], [0, 1, True], [1, 0, 1]], "data.points.2", "label has to be 0 or 1, but got True",
     "0, 1", True),
    ([[0, 0, 0], [1, 1, 1], [0, 1], [1, 0, 1]], "data.points.2", "a point has to be a list [x, y, label], but got [0, 1]",
     "[x, y, label]", "[0, 1]"),
    ([[0, 0, 0], [1, 1, 1], "0,1,1", [1, 0, 1]], "data.points.2", "a point has to be a list [x, y, label]",
     "[x, y, label]", "0,1,1"),
    ([[0, 0, 0], [1, 1, 1], [0, 1, 0]], "data.points", "number of points has to be between 4 and 2000, but got 3",
     "4..2000", 3),
    ([[0, 0, 1]] * 5, "data.points", "points need both classes, 0 and 1, but all 5 are class 1",
     "labels 0 and 1 both present", None),
    ("0,0,0", "data.points", "points has to be a list of [x, y, label], but got '0,0,0'",
     "4..2000 points [x, y, label]", "0,0,0"),
    (None, "data.points", "dataset 'custom' needs points", "4..2000 points [x, y, label]", None),
])
def test_bad_custom_sets_are_refused_naming_the_point(points, field, words, allowed, received):
    errors = errors_of(custom(points))
    assert [e["field"] for e in errors] == [field]
    e = errors[0]
    assert words in e["message"] and e["allowed"] == allowed
    if received is not None:
        assert e["received"] == received


def test_every_bad_point_is_named_and_limits_are_set_in_one_place():
    pts = grid_points(10)
    pts[3], pts[7] = [1.6, 0, 0], [0, 0, -1]
    assert [e["field"] for e in errors_of(custom(pts))] == ["data.points.3", "data.points.7"]
    assert CUSTOM_POINTS == (4, 2000)
    too_many = grid_points(CUSTOM_POINTS[1] + 1)
    [e] = errors_of(custom(too_many))  # refused by its length, before reading each point
    assert e["field"] == "data.points" and e["received"] == 2001
    assert parse_config({**custom(grid_points(2000)), "train": {"batch_size": 10}}).data.points[1999]


def test_points_belong_to_the_custom_dataset_only():
    [e] = errors_of({"data": {"dataset": "moons", "points": grid_points(8)}})
    assert e["field"] == "data.points" and "only for dataset 'custom'" in e["message"]
    assert parse_config({"data": {"dataset": "moons"}}).data.points is None


def test_custom_config_round_trips_through_json_and_dumps_points_as_lists():
    pts = grid_points(12)
    cfg = parse_config(custom(pts))
    dumped = json.loads(cfg.model_dump_json())
    assert dumped["data"]["points"] == pts
    assert parse_config(dumped) == cfg


# ---- the configure event -------------------------------------------------------------------
def test_configure_custom_acks_the_points_split_and_trains(sio):
    pts = grid_points(30)
    ack = sio.emit("configure", {"config": custom(pts, train_fraction=0.6, seed=2)}, callback=True)
    assert ack["ok"] is True, ack
    assert ack["config"]["data"]["dataset"] == "custom" and ack["config"]["data"]["points"] == pts
    assert (ack["train_size"], ack["test_size"]) == (18, 12)
    train, test = ack["points"]["train"], ack["points"]["test"]
    assert (len(train), len(test)) == (18, 12)
    assert same_set(train + test, pts)
    # the split is the engine's: the same as make_dataset's for that seed
    d = make_dataset(parse_config(custom(pts, train_fraction=0.6, seed=2)).data)
    assert close(train, torch.cat([d.x_train, d.y_train[:, None]], 1).tolist())
    ack = sio.emit("step", {"n": 5}, callback=True)
    assert ack == {"ok": True, "run": "main", "step": 5}
    header, arrays = wait_until(lambda: next((f for f in frames_of(sio) if f[0]["step"] == 5), None),
                                what="the frame of step 5")
    assert "mask.0" in arrays
    assert any(close(header["example"]["x"], p[:2], tol=1e-5) for p in train)


@pytest.mark.parametrize("points, field, words", [
    ([[0, 0, 0], [1, 1, 1], [0, "up", 0], [1, 0, 1]], "data.points.2", "y has to be a number, but got 'up'"),
    ([[0, 0, 0], [1, 1, 1], [0, 1, 0], [3, 0, 1]], "data.points.3", "between -1.5 and 1.5, but got 3"),
    ([[0, 0, 0], [1, 1, 0], [0, 1, 0], [1, 0, 0]], "data.points", "both classes"),
    ([[0, 0, 0], [1, 1, 1]], "data.points", "between 4 and 2000, but got 2"),
    ([[0, 0, i % 2] for i in range(2001)], "data.points", "between 4 and 2000, but got 2001"),
    ({"x": 1}, "data.points", "points has to be a list"),
])
def test_configure_custom_errors_are_structured_and_the_connection_carries_on(sio, points, field, words):
    ack = sio.emit("configure", {"config": custom(points)}, callback=True)
    assert ack["ok"] is False
    assert ack["error"]["field"] == field and words in ack["error"]["message"], ack["error"]
    assert ack["error"]["allowed"] and "received" in ack["error"]
    assert sio.is_connected()
    assert sio.emit("configure", {"config": custom(grid_points(6))}, callback=True)["ok"]


def test_a_full_custom_set_fits_in_one_message_to_a_real_server(live_server):
    """2,000 points with two decimals, the most the page sends, through the real transport
    (the test client above skips its message-size limit)."""
    pts = grid_points(CUSTOM_POINTS[1])
    raw = custom(pts, train_fraction=0.9)
    raw["train"]["batch_size"] = Limits().max_batch // 2
    visitor = Visitor(live_server.url)
    try:
        ack = visitor.call("configure", {"config": raw})
        assert ack["ok"], ack.get("error")
        assert (ack["train_size"], ack["test_size"]) == (1800, 200)
        assert visitor.call("step", {"n": 2})["step"] == 2
    finally:
        visitor.close()


def test_exports_carry_the_custom_points(sio):
    pts = grid_points(20)
    assert sio.emit("configure", {"config": custom(pts)}, callback=True)["ok"]
    assert sio.emit("step", {"n": 3}, callback=True)["ok"]
    doc = json.loads(sio.emit("export", {"what": "metrics_json"}, callback=True)["data"])
    assert doc["config"]["data"]["dataset"] == "custom" and doc["config"]["data"]["points"] == pts
    ack = sio.emit("export", {"what": "code"}, callback=True)
    assert ack["ok"] and ack["filename"].startswith("dropout_custom_mlp_step3")
    module: dict = {}
    exec(compile(ack["data"], ack["filename"], "exec"), module)
    assert module["POINTS"] == pts  # the script trains on exactly these
    x_train, y_train, x_test, y_test = module["make_data"]()
    d = make_dataset(parse_config(custom(pts)).data)
    assert torch.equal(x_train, d.x_train) and torch.equal(y_test, d.y_test)
