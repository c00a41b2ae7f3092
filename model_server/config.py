"""Validated run configuration and the server-side limits.

Everything a visitor can set passes through here. A bad value becomes a ConfigError
whose entries name the field, the allowed range and the value received, in PyTorch's
style: "dropout probability has to be between 0 and 1, but got 1.5".

p is always the DROP probability (PyTorch's convention).
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import torch
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError,
                      ValidationInfo, WithJsonSchema, field_validator, model_serializer, model_validator)
from pydantic_core import PydanticCustomError, core_schema
from pydantic_settings import BaseSettings, SettingsConfigDict

DATASETS_2D = ("circle", "xor", "gauss", "spiral", "moons")
DATASETS = DATASETS_2D + ("digits",)  # built in; "custom" is a visitor's own 2D set
DIGITS_SIZE = 1797  # sklearn's load_digits ships this many 8x8 images
PLANE = (-1.5, 1.5)  # the input plane shown for the 2D sets, both axes
CUSTOM_POINTS = (4, 2000)  # a visitor's own set: at least 4 points, at most 2,000


class Limits(BaseSettings):
    """What one run may be: the engine's limits. Each can be set by environment, e.g.
    DP_MAX_WIDTH=32. (What serving visitors may cost is app.settings.Serving.)"""

    model_config = SettingsConfigDict(env_prefix="DP_", extra="ignore")

    max_layers: int = 6            # MLP hidden layers
    max_width: int = 64            # neurons per MLP layer
    max_conv_blocks: int = 3       # CNN conv blocks
    max_channels: int = 16         # channels per conv block
    max_batch: int = 2000          # batch size
    max_steps: int = 200_000       # optimizer steps per run
    grid_size: int = 48            # decision-boundary grid resolution


def _num(v: float) -> str:
    """A bound as people write it: 2147483647, not 2.14748e+09; 1e-05 stays short."""
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


class in_range:  # noqa: N801 -- used like pydantic's validators: Annotated[int, in_range(...)]
    """Keeps lo <= v <= hi (NaN fails) and says so in PyTorch's words; the JSON Schema of
    the field carries the range as minimum and maximum (the page builds its form from it)."""

    def __init__(self, lo: float, hi: float, what: str):
        self.lo, self.hi, self.what = lo, hi, what

    def check(self, v):
        if not (self.lo <= v <= self.hi):
            raise PydanticCustomError(
                "out_of_range",
                "{what} has to be between {lo} and {hi}, but got {got}",
                {"what": self.what, "lo": _num(self.lo), "hi": _num(self.hi), "got": v},
            )
        return v

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema, handler):
        return {**handler(schema), "minimum": self.lo, "maximum": self.hi}


Prob = Annotated[float, in_range(0.0, 1.0, "dropout probability")]
Lr = Annotated[float, in_range(1e-5, 10.0, "learning rate")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Point(Strict):
    """One point of a visitor's own 2D set, sent as [x, y, label]: x and y inside the
    plane, label 0 or 1. Dumped as the same list."""
    x: float
    y: float
    label: int

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, raw: Any):
        lo, hi = PLANE
        if not (isinstance(raw, (list, tuple)) and len(raw) == 3):
            raise PydanticCustomError("point", "a point has to be a list [x, y, label], but got {got}",
                                      {"got": _shown(raw), "allowed": "[x, y, label]"})
        x, y, label = raw
        for name, v in (("x", x), ("y", y)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise PydanticCustomError("point", "{name} has to be a number, but got {got}",
                                          {"name": name, "got": _shown(v), "allowed": "number", "received": v})
            if not lo <= v <= hi:  # NaN fails too
                raise PydanticCustomError(
                    "out_of_range", "{what} has to be between {lo} and {hi}, but got {got}",
                    {"what": f"{name} (inside the plane)", "lo": _num(lo), "hi": _num(hi), "got": v, "received": v})
        if isinstance(label, bool) or label not in (0, 1) or not isinstance(label, int):
            raise PydanticCustomError("point", "label has to be 0 or 1, but got {got}",
                                      {"got": _shown(label), "allowed": "0, 1", "received": label})
        return {"x": float(x), "y": float(y), "label": label}

    @model_serializer
    def _as_list(self) -> list:
        return [self.x, self.y, self.label]


def _point_count(raw: Any):
    """Refuse a list of the wrong length before looking at each of its points."""
    lo, hi = CUSTOM_POINTS
    if raw is None:
        return raw
    if not isinstance(raw, list):
        raise PydanticCustomError("points", "points has to be a list of [x, y, label], but got {got}",
                                  {"got": _shown(raw), "allowed": f"{lo}..{hi} points [x, y, label]"})
    if not lo <= len(raw) <= hi:
        raise PydanticCustomError("out_of_range", "{what} has to be between {lo} and {hi}, but got {got}",
                                  {"what": "number of points", "lo": lo, "hi": hi, "got": len(raw),
                                   "received": len(raw)})
    return raw


POINTS_SCHEMA = {"type": "array", "minItems": CUSTOM_POINTS[0], "maxItems": CUSTOM_POINTS[1],
                 "items": {"type": "array", "prefixItems": [
                     {"type": "number", "minimum": PLANE[0], "maximum": PLANE[1]},
                     {"type": "number", "minimum": PLANE[0], "maximum": PLANE[1]},
                     {"enum": [0, 1]}], "minItems": 3, "maxItems": 3}}


class DataConfig(Strict):
    dataset: Literal["circle", "xor", "gauss", "spiral", "moons", "digits", "custom"] = "circle"
    n_points: Annotated[int, in_range(50, 2000, "number of points")] = 500  # not for digits, custom
    noise: Annotated[float, in_range(0.0, 0.5, "noise")] = 0.1              # not for digits, custom
    train_fraction: Annotated[float, in_range(0.1, 0.9, "train fraction")] = 0.5
    seed: Annotated[int, in_range(0, 2**31 - 1, "seed")] = 0
    # dataset 'custom' only: the visitor's own points, [x, y, label] each
    points: Annotated[list[Point] | None, BeforeValidator(_point_count),
                      WithJsonSchema({"anyOf": [POINTS_SCHEMA, {"type": "null"}]})] = Field(
        default=None, validate_default=True)

    @field_validator("points")
    @classmethod
    def _custom_only(cls, points: list[Point] | None, info: ValidationInfo):
        dataset = info.data.get("dataset")
        if dataset is None:  # the dataset itself was refused: that error says enough
            return points
        if dataset == "custom" and points is None:
            lo, hi = CUSTOM_POINTS
            raise PydanticCustomError("points", "dataset 'custom' needs points, a list of [x, y, label], "
                                      "but got none", {"allowed": f"{lo}..{hi} points [x, y, label]"})
        if dataset != "custom" and points is not None:
            raise PydanticCustomError("points", "points are only for dataset 'custom', but dataset is {d}",
                                      {"d": repr(dataset), "allowed": "null (or dataset 'custom')"})
        if points is not None and len({p.label for p in points}) < 2:
            raise PydanticCustomError("points", "points need both classes, 0 and 1, but all {n} are "
                                      "class {label}", {"n": len(points), "label": points[0].label,
                                                        "allowed": "labels 0 and 1 both present"})
        return points


class ModelConfig(Strict):
    kind: Literal["mlp", "cnn"] = "mlp"
    hidden: list[int] = Field(default_factory=lambda: [8, 8])
    activation: Literal["relu", "tanh", "sigmoid", "gelu", "selu", "linear"] = "relu"
    p: list[Prob] = Field(default_factory=lambda: [0.3, 0.3])
    dropout_kind: Literal["dropout", "dropout2d", "alpha"] = "dropout"
    placement: Literal["after_activation", "before_activation"] = "after_activation"
    batchnorm: Literal["none", "before_dropout", "after_dropout"] = "none"


class TrainConfig(Strict):
    optimizer: Literal["sgd", "momentum", "adam"] = "adam"
    lr: Lr = 0.01
    weight_decay: Annotated[float, in_range(0.0, 1.0, "weight decay")] = 0.0
    batch_size: int = 10
    # evaluate test loss/accuracy every k steps; 0 = with each boundary refresh (<= 6/s)
    eval_every: Annotated[int, in_range(0, 10_000, "eval_every")] = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"


class RunConfig(Strict):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @property
    def task(self) -> Literal["binary", "digits"]:
        return "digits" if self.data.dataset == "digits" else "binary"


# Live changes a visitor sends while a run exists; each takes effect at the next step.
class SetP(Strict):
    param: Literal["p"]
    layer: Annotated[int, in_range(0, 63, "layer")]
    value: Prob


class SetLr(Strict):
    param: Literal["lr"]
    value: Lr


class SetMode(Strict):
    param: Literal["mode"]
    # a new run starts in train mode (RunState); the schema's default says so to the page
    value: Annotated[Literal["train", "eval"], Field(json_schema_extra={"default": "train"})]


class SetSpeed(Strict):
    param: Literal["speed"]
    value: Annotated[float, in_range(1.0, 1_000_000.0, "speed (steps per second)")]


class SetWatch(Strict):
    """Which hidden neuron's output over the input plane frames should carry (both null:
    none, and the server stops computing it)."""
    param: Literal["watch"]
    layer: Annotated[int, in_range(0, 63, "layer")] | None = None
    index: Annotated[int, in_range(0, 63, "neuron")] | None = None

    @model_validator(mode="after")
    def _both_or_neither(self):
        if (self.layer is None) != (self.index is None):
            raise PydanticCustomError(
                "pair", "layer and index have to be given together (or both null), but got "
                "layer={layer} and index={index}",
                {"layer": "null" if self.layer is None else self.layer,
                 "index": "null" if self.index is None else self.index, "allowed": "two ints, or both null"})
        return self


class SetView(Strict):
    """Which decision boundary frames carry: the eval-mode network's, or the thinned
    network's of the mask shown. Only the one on screen is computed."""
    param: Literal["view"]
    value: Annotated[Literal["eval", "thinned"], Field(json_schema_extra={"default": "eval"})]


# a change of a run's own settings, as a value (RunState.apply); speed is the server's pacing
RunChange = SetP | SetLr | SetMode | SetWatch | SetView


class LiveChange(Strict):
    change: Annotated[SetP | SetLr | SetMode | SetSpeed | SetWatch | SetView, Field(discriminator="param")]


def json_schema(limits: Limits) -> dict:
    """The JSON Schema of the run config and of the live changes, with this server's
    limits in place: the ranges _check_limits enforces (layers, widths, batch) and the
    defaults of the fields built by a factory. The page builds its form, its checks and
    its link parsing from this; it writes no range of its own."""
    config = RunConfig.model_json_schema()
    defs = config["$defs"]
    defaults = RunConfig().model_dump()
    for section, model in RunConfig.model_fields.items():
        props = defs[model.annotation.__name__]["properties"]
        for name, prop in props.items():
            prop.setdefault("default", defaults[section][name])
    model = defs["ModelConfig"]["properties"]
    model["hidden"].update(minItems=1, maxItems=limits.max_layers)
    model["hidden"]["items"].update(minimum=1, maximum=limits.max_width)
    # a CNN's hidden are channels per conv block, with limits of their own
    model["hidden"]["x-cnn"] = {"minItems": 1, "maxItems": limits.max_conv_blocks,
                                "items": {"minimum": 1, "maximum": limits.max_channels}}
    # one p per hidden layer: at most as many as there may be layers
    model["p"].update(minItems=1, maxItems=max(limits.max_layers, limits.max_conv_blocks))
    # the training-set size bounds it too; that depends on the data and is checked on configure
    defs["TrainConfig"]["properties"]["batch_size"].update(minimum=1, maximum=limits.max_batch)
    return {"config": config, "live": LiveChange.model_json_schema(), "limits": limits.model_dump()}


class ConfigError(ValueError):
    """Raised for any bad visitor input. .errors is a list of JSON-safe dicts with keys
    field, message, allowed, received."""

    def __init__(self, errors: list[dict]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


def safe_value(v: Any, limit: int = 80) -> Any:
    """A JSON-safe, bounded echo of what a visitor sent."""
    if isinstance(v, bool) or v is None or isinstance(v, int) and abs(v) < 2**53:
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    text = repr(v) if not isinstance(v, str) else v
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def _shown(v: Any) -> str:
    """A value as a message quotes it: strings in quotes, anything else as written."""
    return repr(safe_value(v)) if isinstance(v, str) else str(safe_value(v))


def _entry(field: str, message: str, allowed: str, received: Any) -> dict:
    return {"field": field, "message": message, "allowed": allowed, "received": safe_value(received)}


def _from_pydantic(err: ValidationError, prefix: str = "") -> list[dict]:
    out = []
    for e in err.errors(include_url=False):
        field = ".".join(str(x) for x in (prefix, *e["loc"]) if x != "")
        ctx = e.get("ctx") or {}
        kind = e["type"]
        if kind == "out_of_range":
            allowed = f"{ctx['lo']}..{ctx['hi']}"
        elif "allowed" in ctx:  # our own cross-field checks say it themselves
            allowed = ctx["allowed"]
        elif kind == "literal_error":
            allowed = ctx.get("expected", "").replace(" or ", ", ")
        elif kind == "extra_forbidden":
            allowed = "no such field"
        elif kind == "missing":
            allowed = "required"
        elif kind in ("model_type", "dict_type"):  # a section that is not an object
            allowed = "object"
        else:
            allowed = kind.split("_")[0]  # e.g. int_type -> int, list_type -> list
        if kind == "extra_forbidden":
            message = f"unknown field {field!r}"
        elif kind in ("out_of_range", "missing") or "allowed" in ctx:
            message = e["msg"]
        elif kind == "literal_error":
            name = str(e["loc"][-1]) if e["loc"] else "value"
            message = f"{name} has to be one of {allowed}, but got {safe_value(e.get('input'))!r}"
        else:
            message = f"{e['msg']}, but got {safe_value(e.get('input'))!r}"
        # a check may name the one value at fault (x of a point, not the whole point)
        out.append(_entry(field or prefix or "config", message, allowed, ctx.get("received", e.get("input"))))
    return out


def set_size(data: DataConfig) -> int:
    """How many examples the dataset holds, train and test together."""
    if data.dataset == "digits":
        return DIGITS_SIZE
    return len(data.points) if data.dataset == "custom" else data.n_points


def train_size(data: DataConfig) -> int:
    n = set_size(data)
    return max(1, int(n * data.train_fraction))


def _check_limits(cfg: RunConfig, limits: Limits) -> list[dict]:
    m, errors = cfg.model, []
    cnn = m.kind == "cnn"
    max_layers = limits.max_conv_blocks if cnn else limits.max_layers
    max_width = limits.max_channels if cnn else limits.max_width
    unit = "conv blocks" if cnn else "hidden layers"
    if not 1 <= len(m.hidden) <= max_layers:
        errors.append(_entry("model.hidden", f"number of {unit} has to be between 1 and {max_layers}, "
                             f"but got {len(m.hidden)}", f"1..{max_layers} {unit}", m.hidden))
    for i, w in enumerate(m.hidden):
        if not 1 <= w <= max_width:
            what = "channels" if cnn else "neurons"
            errors.append(_entry(f"model.hidden.{i}", f"{what} per layer has to be between 1 and "
                                 f"{max_width}, but got {w}", f"1..{max_width}", w))
    if len(m.p) != len(m.hidden):
        errors.append(_entry("model.p", f"needs one dropout probability per layer ({len(m.hidden)}), "
                             f"but got {len(m.p)}", f"{len(m.hidden)} values in 0..1", m.p))
    if cnn and cfg.data.dataset != "digits":
        errors.append(_entry("model.kind", "a CNN needs images: use dataset 'digits', "
                             f"but got dataset {cfg.data.dataset!r}", "mlp, or cnn with digits", m.kind))
    if cfg.train.device == "cuda" and not torch.cuda.is_available():
        errors.append(_entry("train.device", "device 'cuda' was asked for, but this server has no CUDA "
                             "device", "auto, cpu", "cuda"))
    hi = min(train_size(cfg.data), limits.max_batch)
    why = "the training-set size" if hi == train_size(cfg.data) else "the server's limit"
    if not 1 <= cfg.train.batch_size <= hi:
        errors.append(_entry("train.batch_size", f"batch size has to be between 1 and {hi} "
                             f"({why}), but got {cfg.train.batch_size}",
                             f"1..{hi}", cfg.train.batch_size))
    return errors


def parse_config(raw: Any, limits: Limits | None = None) -> RunConfig:
    """Validate a visitor's config (a possibly partial dict; defaults fill the rest)."""
    limits = limits or Limits()
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([_entry("config", "config has to be an object", "object", raw)])
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_from_pydantic(err)) from None
    errors = _check_limits(cfg, limits)
    if errors:
        raise ConfigError(errors)
    return cfg


def parse(model: type[Strict], raw: Any, field: str = "payload") -> Strict:
    """Validate one small payload (a live change, say) against its schema."""
    if not isinstance(raw, dict):
        raise ConfigError([_entry(field, f"{field} has to be an object", "object", raw)])
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_from_pydantic(err)) from None
