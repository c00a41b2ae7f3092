"""model_server.config: every bad value becomes a ConfigError naming the field, the
allowed range and the value received, in PyTorch's words; partial configs get defaults."""
import json
import math

import pytest

from model_server.config import DIGITS_SIZE, ConfigError, Limits, RunConfig, parse_config


def errors_of(raw, limits=None) -> list[dict]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, limits)
    errors = info.value.errors
    assert errors, "a ConfigError must carry at least one entry"
    for e in errors:
        assert set(e) == {"field", "message", "allowed", "received"}
    json.dumps(errors, allow_nan=False)  # JSON-safe, whatever was sent
    return errors


def one_error(raw, field, limits=None) -> dict:
    errors = errors_of(raw, limits)
    assert [e["field"] for e in errors] == [field], errors
    # the message names what went wrong; str(ConfigError) names the field too
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_config(raw, limits)
    return errors[0]


# ---- numbers out of range ----------------------------------------------------------------

def test_dropout_probability_in_pytorch_words():
    e = one_error({"model": {"p": [1.5, 0.3]}}, "model.p.0")
    assert e["message"] == "dropout probability has to be between 0 and 1, but got 1.5"
    assert e["allowed"] == "0..1"
    assert e["received"] == 1.5


@pytest.mark.parametrize("section, name, bad, allowed", [
    ("model", "p", [0.3, -0.1], "0..1"),
    ("data", "n_points", 10, "50..2000"),
    ("data", "n_points", 2001, "50..2000"),
    ("data", "noise", -1, "0..0.5"),
    ("data", "noise", 0.51, "0..0.5"),
    ("data", "train_fraction", 0.05, "0.1..0.9"),
    ("data", "train_fraction", 1.0, "0.1..0.9"),
    ("data", "seed", -1, "0..2147483647"),
    ("data", "seed", 2**31, "0..2147483647"),
    ("train", "lr", 0, "1e-05..10"),
    ("train", "lr", 10.5, "1e-05..10"),
    ("train", "weight_decay", 2, "0..1"),
    ("train", "eval_every", -1, "0..10000"),
    ("train", "eval_every", 10_001, "0..10000"),
])
def test_out_of_range_names_field_range_and_value(section, name, bad, allowed):
    field = f"{section}.{name}" + (".1" if isinstance(bad, list) else "")
    e = one_error({section: {name: bad}}, field)
    got = bad[1] if isinstance(bad, list) else bad
    assert e["allowed"] == allowed
    assert e["received"] == got
    assert "has to be between" in e["message"]
    floats = ("p", "noise", "train_fraction", "lr", "weight_decay")  # ints arrive as floats
    assert e["message"].endswith(f"but got {float(got) if name in floats else got}")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("section, name", [("data", "noise"), ("data", "train_fraction"),
                                           ("train", "lr"), ("train", "weight_decay")])
def test_nan_and_inf_are_rejected(section, name, bad):
    e = one_error({section: {name: bad}}, f"{section}.{name}")
    assert e["received"] == str(bad)  # echoed as text: JSON has no NaN
    assert e["message"].endswith(f"but got {bad}")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_dropout_probability_is_rejected(bad):
    e = one_error({"model": {"p": [0.3, bad]}}, "model.p.1")
    assert e["allowed"] == "0..1"
    assert e["received"] == str(bad)


def test_huge_integer_is_echoed_safely():
    e = one_error({"data": {"n_points": 10**20}}, "data.n_points")
    assert e["allowed"] == "50..2000"
    assert str(10**20) in str(e["received"])


def test_long_values_are_echoed_bounded():
    e = one_error({"data": {"dataset": "x" * 10_000}}, "data.dataset")
    assert len(e["received"]) < 200


# ---- wrong types ---------------------------------------------------------------------------

@pytest.mark.parametrize("section, name, bad, field, allowed", [
    ("model", "p", ["0.3", 0.3], "model.p.0", "float"),
    ("model", "p", [True, 0.3], "model.p.0", "float"),
    ("model", "p", [[0.3], 0.3], "model.p.0", "float"),
    ("model", "p", 0.3, "model.p", "list"),
    ("model", "p", None, "model.p", "list"),
    ("model", "hidden", ["8", 8], "model.hidden.0", "int"),
    ("model", "hidden", [True, 8], "model.hidden.0", "int"),
    ("model", "hidden", [8.0, 8], "model.hidden.0", "int"),
    ("model", "hidden", 8, "model.hidden", "list"),
    ("model", "hidden", {"a": 1}, "model.hidden", "list"),
    ("data", "n_points", "500", "data.n_points", "int"),
    ("data", "n_points", 500.5, "data.n_points", "int"),
    ("data", "n_points", False, "data.n_points", "int"),
    ("data", "seed", [1], "data.seed", "int"),
    ("data", "noise", "0.1", "data.noise", "float"),
    ("data", "noise", [0.1], "data.noise", "float"),
    ("train", "lr", "0.1", "train.lr", "float"),
    ("train", "lr", True, "train.lr", "float"),
    ("train", "batch_size", 1.5, "train.batch_size", "int"),
    ("train", "batch_size", "10", "train.batch_size", "int"),
    ("train", "eval_every", None, "train.eval_every", "int"),
    ("model", "activation", 1, "model.activation", None),
])
def test_wrong_types(section, name, bad, field, allowed):
    e = one_error({section: {name: bad}}, field)
    if allowed is not None:
        assert e["allowed"] == allowed
    if isinstance(bad, list) and field.endswith(".0"):
        bad = bad[0]
    if isinstance(bad, (bool, int, float, str)) or bad is None:
        assert e["received"] == bad
    else:
        assert e["received"] == repr(bad)


@pytest.mark.parametrize("section", ["data", "model", "train"])
@pytest.mark.parametrize("bad", ["circle", [1], 3, True])
def test_section_that_is_not_an_object(section, bad):
    e = one_error({section: bad}, section)
    assert e["allowed"] == "object"


def test_integers_are_fine_where_floats_are_expected():
    cfg = parse_config({"model": {"p": [0, 1]}, "train": {"lr": 1, "weight_decay": 0}})
    assert cfg.model.p == [0.0, 1.0] and cfg.train.lr == 1.0


# ---- unknown literals ------------------------------------------------------------------

@pytest.mark.parametrize("section, name, good", [
    ("data", "dataset", ("circle", "xor", "gauss", "spiral", "moons", "digits")),
    ("model", "kind", ("mlp", "cnn")),
    ("model", "activation", ("relu", "tanh", "sigmoid", "gelu", "selu", "linear")),
    ("model", "dropout_kind", ("dropout", "dropout2d", "alpha")),
    ("model", "placement", ("after_activation", "before_activation")),
    ("model", "batchnorm", ("none", "before_dropout", "after_dropout")),
    ("train", "optimizer", ("sgd", "momentum", "adam")),
    ("train", "device", ("auto", "cpu", "cuda")),
])
def test_unknown_literal_lists_the_choices(section, name, good):
    e = one_error({section: {name: "nope"}}, f"{section}.{name}")
    assert e["received"] == "nope"
    for choice in good:
        assert f"'{choice}'" in e["allowed"]
    # case matters: 'RELU' is not 'relu'
    one_error({section: {name: good[0].upper()}}, f"{section}.{name}")


# ---- unknown fields, non-dict config ----------------------------------------------------

@pytest.mark.parametrize("raw, field", [
    ({"foo": 1}, "foo"),
    ({"model": {"dropout": 0.5}}, "model.dropout"),
    ({"data": {"samples": 500}}, "data.samples"),
    ({"train": {"epochs": 3}}, "train.epochs"),
])
def test_unknown_fields_are_rejected(raw, field):
    e = one_error(raw, field)
    assert e["allowed"] == "no such field"
    assert field in e["message"]


@pytest.mark.parametrize("raw", ["abc", [1, 2], 5, 1.5, True, b"{}"])
def test_config_that_is_not_a_dict(raw):
    e = one_error(raw, "config")
    assert e["allowed"] == "object"
    assert "has to be an object" in e["message"]


def test_all_errors_are_reported_at_once():
    errors = errors_of({"model": {"p": [1.5, -0.1], "activation": "swish"}, "data": {"noise": -1}})
    assert {e["field"] for e in errors} == {"model.p.0", "model.p.1", "model.activation", "data.noise"}


# ---- limits --------------------------------------------------------------------------------

def test_too_many_layers():
    n = Limits().max_layers + 1
    e = one_error({"model": {"hidden": [4] * n, "p": [0.1] * n}}, "model.hidden")
    assert e["allowed"] == f"1..{n - 1} hidden layers"
    assert e["message"] == f"number of hidden layers has to be between 1 and {n - 1}, but got {n}"


def test_max_layers_exactly_is_fine():
    n = Limits().max_layers
    assert len(parse_config({"model": {"hidden": [4] * n, "p": [0.1] * n}}).model.hidden) == n


def test_no_layers():
    errors = errors_of({"model": {"hidden": [], "p": []}})
    assert [e["field"] for e in errors] == ["model.hidden"]


@pytest.mark.parametrize("width", [0, -3, Limits().max_width + 1])
def test_too_wide_or_empty_layer(width):
    hi = Limits().max_width
    e = one_error({"model": {"hidden": [8, width]}}, "model.hidden.1")
    assert e["allowed"] == f"1..{hi}"
    assert e["received"] == width
    assert e["message"] == f"neurons per layer has to be between 1 and {hi}, but got {width}"


def test_custom_limits():
    limits = Limits(max_width=4)
    e = one_error({"model": {"hidden": [4, 5]}}, "model.hidden.1", limits)
    assert e["allowed"] == "1..4" and e["received"] == 5
    assert parse_config({"model": {"hidden": [4, 4]}}, limits).model.hidden == [4, 4]
    # the same config passes the default limits
    assert parse_config({"model": {"hidden": [4, 5]}}).model.hidden == [4, 5]


def test_limits_from_environment(monkeypatch):
    monkeypatch.setenv("DP_MAX_WIDTH", "3")
    e = one_error({"model": {"hidden": [4, 3]}}, "model.hidden.0")
    assert e["allowed"] == "1..3"


def test_cnn_limits_count_blocks_and_channels():
    limits = Limits()
    n = limits.max_conv_blocks + 1
    base = {"data": {"dataset": "digits"}}
    e = one_error({**base, "model": {"kind": "cnn", "hidden": [4] * n, "p": [0.1] * n}}, "model.hidden")
    assert e["allowed"] == f"1..{n - 1} conv blocks"
    wide = limits.max_channels + 1
    e = one_error({**base, "model": {"kind": "cnn", "hidden": [wide], "p": [0.1]}}, "model.hidden.0")
    assert e["allowed"] == f"1..{wide - 1}" and "channels" in e["message"]


@pytest.mark.parametrize("p", [[0.3], [0.3, 0.3, 0.3], []])
def test_p_list_length_must_match_layers(p):
    e = one_error({"model": {"hidden": [8, 8], "p": p}}, "model.p")
    assert e["allowed"] == "2 values in 0..1"
    assert e["message"] == f"needs one dropout probability per layer (2), but got {len(p)}"


@pytest.mark.parametrize("dataset", ["circle", "xor", "gauss", "spiral", "moons"])
def test_cnn_needs_digits(dataset):
    e = one_error({"data": {"dataset": dataset}, "model": {"kind": "cnn", "hidden": [4], "p": [0.1]}},
                  "model.kind")
    assert e["received"] == "cnn"
    assert repr(dataset) in e["message"]
    parse_config({"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [4], "p": [0.1]}})


def test_batch_size_above_training_set():
    # 500 points, half of them for training
    e = one_error({"train": {"batch_size": 251}}, "train.batch_size")
    assert e["allowed"] == "1..250" and e["received"] == 251
    assert e["message"] == "batch size has to be between 1 and 250 (the training-set size), but got 251"
    assert parse_config({"train": {"batch_size": 250}}).train.batch_size == 250
    one_error({"train": {"batch_size": 0}}, "train.batch_size")
    one_error({"data": {"n_points": 100, "train_fraction": 0.3}, "train": {"batch_size": 31}},
              "train.batch_size")


def test_batch_size_on_digits_uses_digits_size():
    n_train = int(DIGITS_SIZE * 0.5)
    parse_config({"data": {"dataset": "digits"}, "train": {"batch_size": n_train}})
    e = one_error({"data": {"dataset": "digits"}, "train": {"batch_size": n_train + 1}}, "train.batch_size")
    assert e["allowed"] == f"1..{n_train}"


def test_batch_size_above_server_limit():
    raw = {"data": {"n_points": 2000, "train_fraction": 0.9}, "train": {"batch_size": 1800}}
    parse_config(raw)
    e = one_error(raw, "train.batch_size", Limits(max_batch=100))
    assert e["allowed"] == "1..100"
    assert "training-set size" not in e["message"]  # the limit is the server's, not the data's


# ---- defaults -----------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [None, {}])
def test_empty_config_is_all_defaults(raw):
    assert parse_config(raw) == RunConfig()


def test_partial_config_gets_defaults():
    cfg = parse_config({"model": {"hidden": [4], "p": [0.5]}, "data": {"dataset": "xor"}})
    default = RunConfig()
    assert cfg.model.hidden == [4] and cfg.model.p == [0.5]
    assert cfg.model.activation == default.model.activation
    assert cfg.model.dropout_kind == default.model.dropout_kind
    assert cfg.data.dataset == "xor" and cfg.data.n_points == default.data.n_points
    assert cfg.train == default.train
    assert cfg.task == "binary"
    assert parse_config({"data": {"dataset": "digits"}}).task == "digits"


def test_config_is_frozen():
    cfg = parse_config({})
    with pytest.raises(Exception):
        cfg.train.lr = 1.0
