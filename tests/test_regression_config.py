"""Regression configs (issue 26): the task field, the regression sets, custom [x, y]
points, MC passes; every refusal names the field, the allowed values and the value
received. The sets themselves: seeded, split like the 2D sets, inside the plane."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from model_server.config import MC_PASSES, PLANE, REGRESSION_DATASETS, ConfigError, RunConfig, parse_config
from model_server.regression_data import DATA_X, GAP, make_dataset


def errors_of(raw: dict) -> list[dict]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    return info.value.errors


def regression(dataset: str = "sine_gap", points=None, **train) -> dict:
    data = {"task": "regression", "dataset": dataset}
    if points is not None:
        data["points"] = points
    return {"data": data, "train": {"batch_size": 2, "device": "cpu", **train}}


XY = [[-1.0, 0.5], [-0.5, 0.1], [0.5, -0.2], [1.0, 0.4]]


def test_classification_stays_the_default_and_regression_is_its_own_task():
    assert parse_config({}).task == "binary" and parse_config({}).data.task == "classification"
    cfg = parse_config(regression())
    assert cfg.task == "regression" and cfg.train.mc_passes == 30 and MC_PASSES == (1, 100)
    assert parse_config({"data": {"dataset": "digits"}}).task == "digits"


@pytest.mark.parametrize("raw, field, words, allowed, received", [
    (regression("circle"), "data.dataset", "for task 'regression', but got 'circle'",
     "sine_gap, hetero, line_outliers, custom", "circle"),
    (regression("digits"), "data.dataset", "but got 'digits'", "sine_gap, hetero, line_outliers, custom", "digits"),
    ({"data": {"task": "regression"}}, "data.dataset", "but got 'circle'",
     "sine_gap, hetero, line_outliers, custom", "circle"),
    ({"data": {"dataset": "sine_gap"}}, "data.dataset", "for task 'classification', but got 'sine_gap'",
     "circle, xor, gauss, spiral, moons, digits, custom", "sine_gap"),
    ({"data": {"task": "regress"}}, "data.task", "but got 'regress'", "'classification', 'regression'", "regress"),
    (regression(mc_passes=0), "train.mc_passes", "MC passes has to be between 1 and 100, but got 0", "1..100", 0),
    (regression(mc_passes=101), "train.mc_passes", "MC passes has to be between 1 and 100, but got 101",
     "1..100", 101),
    (regression("custom", [[-1, 0.5], [0, 0], [0.5], [1, 1]]), "data.points.2",
     "a point has to be a list [x, y], but got [0.5]", "[x, y]", "[0.5]"),
    (regression("custom", [[-1, 0.5], [0, 0], [0.5, 0, 1], [1, 1]]), "data.points.2",
     "a point has to be a list [x, y], but got [0.5, 0, 1]", "[x, y]", "[0.5, 0, 1]"),
    (regression("custom", [[-1, 0.5], [0, 0], [0.5, 1.6], [1, 1]]), "data.points.2",
     "y (inside the plane) has to be between -1.5 and 1.5, but got 1.6", "-1.5..1.5", 1.6),
    (regression("custom", [[-1, 0.5], [0, 0], [0.5, 1]]), "data.points",
     "number of points has to be between 4 and 2000, but got 3", "4..2000", 3),
    (regression("custom"), "data.points", "dataset 'custom' needs points", "4..2000 points [x, y, label]", None),
])
def test_bad_regression_configs_are_refused_naming_the_field(raw, field, words, allowed, received):
    errors = errors_of(raw)
    assert [e["field"] for e in errors] == [field]
    assert words in errors[0]["message"] and errors[0]["allowed"] == allowed
    if received is not None:
        assert errors[0]["received"] == received


def test_custom_xy_points_round_trip_and_keep_their_order():
    cfg = parse_config(regression("custom", XY))
    assert cfg.model_dump()["data"]["points"] == XY
    assert RunConfig.model_validate(cfg.model_dump()) == cfg   # a dumped config reads back
    data = make_dataset(cfg.data)
    got = sorted(zip(torch.cat([data.x_train, data.x_test])[:, 0].tolist(),
                     torch.cat([data.y_train, data.y_test]).tolist()))
    assert np.allclose(got, sorted(map(tuple, XY)), atol=1e-6)


@pytest.mark.parametrize("name", REGRESSION_DATASETS)
def test_regression_sets_are_seeded_split_and_inside_the_plane(name):
    cfg = parse_config(regression(name)).data
    a, b = make_dataset(cfg), make_dataset(cfg)
    other = make_dataset(cfg.model_copy(update={"seed": 1}))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, other.x_train)
    assert a.x_train.shape == (250, 1) and a.y_train.dtype == torch.float32 and a.n_classes == 1
    x, y = torch.cat([a.x_train, a.x_test]), torch.cat([a.y_train, a.y_test])
    assert DATA_X[0] <= x.min() and x.max() <= DATA_X[1]
    assert PLANE[0] <= y.min() and y.max() <= PLANE[1]


def test_sine_gap_has_no_point_in_its_gap_and_hetero_grows_its_noise():
    data = make_dataset(parse_config(regression("sine_gap")).data)
    x = torch.cat([data.x_train, data.x_test])[:, 0]
    assert not ((x > GAP[0]) & (x < GAP[1])).any()
    data = make_dataset(parse_config(regression("hetero")).data)
    x, y = torch.cat([data.x_train, data.x_test])[:, 0], torch.cat([data.y_train, data.y_test])
    resid = y - 0.5 * x
    assert resid[x > 0.6].std() > 3 * resid[x < -0.6].std()


def test_the_schema_lists_each_tasks_data_sets_and_the_mc_passes_range():
    from model_server.config import Limits, json_schema
    defs = json_schema(Limits())["config"]["$defs"]
    tasks = defs["DataConfig"]["properties"]["dataset"]["x-tasks"]
    assert tasks == {"classification": ["circle", "xor", "gauss", "spiral", "moons", "digits", "custom"],
                     "regression": ["sine_gap", "hetero", "line_outliers", "custom"]}
    for task, sets in tasks.items():
        for name in sets:
            if name != "custom":
                assert parse_config({"data": {"task": task, "dataset": name}}).data.dataset == name
    passes = defs["TrainConfig"]["properties"]["mc_passes"]
    assert (passes["minimum"], passes["maximum"], passes["default"]) == (1, 100, 30)
