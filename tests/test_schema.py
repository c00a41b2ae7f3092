"""The one schema: what /schema.json (and the copy inline in every page) publishes is what
the server enforces, with this server's limits applied."""
from __future__ import annotations

import json
import re

import pytest

from app import create_app
from model_server.config import ConfigError, RunConfig, parse_config
from model_server.sweep import SWEEP_PRESET, SWEEP_STEPS

LIMITS = {"max_width": 32, "max_layers": 4, "max_conv_blocks": 2, "max_channels": 8, "max_batch": 100,
          "grid_size": 32, "max_speed": 500}


@pytest.fixture(scope="module")
def small():
    return create_app({"limits": LIMITS})


@pytest.fixture(scope="module")
def schema(small):
    resp = small.test_client().get("/schema.json")
    assert resp.status_code == 200 and resp.is_json
    return resp.get_json()


def prop(schema: dict, path: str) -> dict:
    section, name = path.split(".")
    ref = schema["config"]["properties"][section]["$ref"].split("/")[-1]
    return schema["config"]["$defs"][ref]["properties"][name]


def live(schema: dict, param: str) -> dict:
    return next(d for d in schema["live"]["$defs"].values()
                if d["properties"]["param"].get("const") == param)["properties"]["value"]


def test_the_limits_of_this_server_are_in_the_schema(schema):
    hidden = prop(schema, "model.hidden")
    assert (hidden["minItems"], hidden["maxItems"]) == (1, 4)
    assert (hidden["items"]["minimum"], hidden["items"]["maximum"]) == (1, 32)
    assert hidden["x-cnn"] == {"minItems": 1, "maxItems": 2, "items": {"minimum": 1, "maximum": 8}}
    assert prop(schema, "train.batch_size")["maximum"] == 100
    assert schema["grid"] == 32 and schema["limits"]["grid_size"] == 32
    assert live(schema, "speed")["maximum"] == 500 and live(schema, "speed")["default"] == 500


def test_defaults_and_choices_are_the_models_own(schema):
    defaults = RunConfig().model_dump()
    for section, fields in defaults.items():
        for name, value in fields.items():
            assert prop(schema, f"{section}.{name}")["default"] == value, f"{section}.{name}"
    assert prop(schema, "train.optimizer")["enum"] == ["sgd", "momentum", "adam"]
    assert live(schema, "mode") == {"default": "train", "enum": ["train", "eval"], "title": "Value", "type": "string"}
    assert live(schema, "view")["default"] == "eval"
    # the learning rate's range, set live or in the config, is one range
    assert {k: prop(schema, "train.lr")[k] for k in ("minimum", "maximum")} == \
        {k: live(schema, "lr")[k] for k in ("minimum", "maximum")} == {"minimum": 1e-5, "maximum": 10.0}


NUMBERS = ["data.n_points", "data.noise", "data.train_fraction", "data.seed", "train.lr",
           "train.weight_decay", "train.eval_every", "train.batch_size"]


@pytest.mark.parametrize("path", NUMBERS)
def test_each_published_range_is_the_enforced_one(schema, small, path):
    """The range's ends are accepted, and just past them refused with that range named."""
    p = prop(schema, path)
    lo, hi = p["minimum"], p["maximum"]
    step = 1 if p["type"] == "integer" else 1e-6
    section, name = path.split(".")
    base = {"data": {"n_points": 2000, "train_fraction": 0.9}} if path == "train.batch_size" else {}
    limits = small.config["LIMITS"]

    def config(v):
        return {**base, section: {**base.get(section, {}), name: v}}

    for v in (lo, hi):
        assert getattr(getattr(parse_config(config(v), limits), section), name) == v
    for v in (lo - step, hi + step):
        with pytest.raises(ConfigError) as err:
            parse_config(config(v), limits)
        e = err.value.errors[0]
        assert e["field"] == path and e["allowed"].endswith(str(int(hi)) if float(hi).is_integer() else f"{hi:g}")


def test_layer_limits_in_the_schema_are_enforced(schema, small):
    limits = small.config["LIMITS"]
    hidden = prop(schema, "model.hidden")
    top, width = hidden["maxItems"], hidden["items"]["maximum"]
    parse_config({"model": {"hidden": [width] * top, "p": [0.5] * top}}, limits)
    with pytest.raises(ConfigError, match=f"between 1 and {width}, but got {width + 1}"):
        parse_config({"model": {"hidden": [width + 1], "p": [0.5]}}, limits)
    with pytest.raises(ConfigError, match=f"between 1 and {top}, but got {top + 1}"):
        parse_config({"model": {"hidden": [2] * (top + 1), "p": [0.5] * (top + 1)}}, limits)
    cnn = hidden["x-cnn"]
    digits = {"data": {"dataset": "digits"}}
    parse_config({**digits, "model": {"kind": "cnn", "hidden": [cnn["items"]["maximum"]] * cnn["maxItems"],
                                      "p": [0.1] * cnn["maxItems"]}}, limits)
    with pytest.raises(ConfigError, match=f"channels per layer has to be between 1 and {cnn['items']['maximum']}"):
        parse_config({**digits, "model": {"kind": "cnn", "hidden": [cnn["items"]["maximum"] + 1], "p": [0.1]}}, limits)


def test_the_sweep_preset_is_published_and_valid(schema):
    assert schema["presets"]["sweep"] == {"config": SWEEP_PRESET, "steps": SWEEP_STEPS}
    parse_config(schema["presets"]["sweep"]["config"])


@pytest.mark.parametrize("url", ["/", "/embed", "/lessons", "/compare"])
def test_every_page_carries_the_same_schema_inline(small, schema, url):
    page = small.test_client().get(url).get_data(as_text=True)
    inline = re.search(r'<script type="application/json" id="dp-schema">(.*?)</script>', page, re.S)
    assert inline, f"{url} has no inline schema"
    assert json.loads(inline.group(1)) == schema


def test_default_server_publishes_its_defaults():
    doc = create_app().test_client().get("/schema.json").get_json()
    assert prop(doc, "model.hidden")["items"]["maximum"] == 64 and doc["grid"] == 48
