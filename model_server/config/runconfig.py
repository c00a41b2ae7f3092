"""The run configuration: data, model and training sections, each field with its range.
p is always the DROP probability (PyTorch's convention)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, WithJsonSchema, field_validator, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from .validation import MAX_LAYERS, Lr, Prob, Strict, in_range, plain_number, shown

DATASETS_2D = ("circle", "xor", "gauss", "spiral", "moons")
DATASETS = DATASETS_2D + ("digits",)  # built in; "custom" is a visitor's own 2D set
# task 'regression': one input x, a float target y (model_server/regression_data.py);
# "custom" is a visitor's own [x, y] points
REGRESSION_DATASETS = ("sine_gap", "hetero", "line_outliers")
TASKS = ("classification", "regression")
MC_PASSES = (1, 100)  # the MC-dropout passes a regression run's band averages over
DIGITS_SIZE = 1797  # sklearn's load_digits ships this many 8x8 images
PLANE = (-1.5, 1.5)  # the input plane shown for the 2D sets, both axes
CUSTOM_POINTS = (4, 2000)  # a visitor's own set: at least 4 points, at most 2,000


class Point(Strict):
    """One point of a visitor's own set: [x, y, label] for a classification (label 0 or 1),
    [x, y] for a regression (y the target); x and y inside the plane. Which of the two a
    point has to be comes from the config's task (the validation context parse_config
    passes); without one, from its length. Dumped as the same list."""
    x: float
    y: float
    label: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, raw: Any, info: ValidationInfo):
        task = (info.context or {}).get("task")
        if task not in TASKS and isinstance(raw, (list, tuple)):
            task = "regression" if len(raw) == 2 else "classification"
        want = "[x, y]" if task == "regression" else "[x, y, label]"
        if not (isinstance(raw, (list, tuple)) and len(raw) == len(want.split(","))):
            raise PydanticCustomError("point", "a point has to be a list {want}, but got {got}",
                                      {"want": want, "got": shown(raw), "allowed": want})
        for name, v in (("x", raw[0]), ("y", raw[1])):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise PydanticCustomError("point", "{name} has to be a number, but got {got}",
                                          {"name": name, "got": shown(v), "allowed": "number", "received": v})
            if not PLANE[0] <= v <= PLANE[1]:  # NaN fails too
                raise PydanticCustomError(
                    "out_of_range", "{what} has to be between {lo} and {hi}, but got {got}",
                    {"what": f"{name} (inside the plane)", "lo": plain_number(PLANE[0]),
                     "hi": plain_number(PLANE[1]), "got": v, "received": v})
        if task == "regression":
            return {"x": float(raw[0]), "y": float(raw[1])}
        label = raw[2]
        if isinstance(label, bool) or label not in (0, 1) or not isinstance(label, int):
            raise PydanticCustomError("point", "label has to be 0 or 1, but got {got}",
                                      {"got": shown(label), "allowed": "0, 1", "received": label})
        return {"x": float(raw[0]), "y": float(raw[1]), "label": label}

    @model_serializer
    def _as_list(self) -> list:
        return [self.x, self.y] if self.label is None else [self.x, self.y, self.label]


def _point_count(raw: Any):
    """Refuse a list of the wrong length before looking at each of its points."""
    lo, hi = CUSTOM_POINTS
    if raw is None:
        return raw
    if not isinstance(raw, list):
        raise PydanticCustomError("points", "points has to be a list of [x, y, label], but got {got}",
                                  {"got": shown(raw), "allowed": f"{lo}..{hi} points [x, y, label]"})
    if not lo <= len(raw) <= hi:
        raise PydanticCustomError("out_of_range", "{what} has to be between {lo} and {hi}, but got {got}",
                                  {"what": "number of points", "lo": lo, "hi": hi, "got": len(raw),
                                   "received": len(raw)})
    return raw


POINTS_SCHEMA = {"type": "array", "minItems": CUSTOM_POINTS[0], "maxItems": CUSTOM_POINTS[1],
                 "items": {"type": "array", "prefixItems": [
                     {"type": "number", "minimum": PLANE[0], "maximum": PLANE[1]},
                     {"type": "number", "minimum": PLANE[0], "maximum": PLANE[1]},
                     {"enum": [0, 1]}], "minItems": 2, "maxItems": 3,
                     "description": "[x, y, label] for a classification, [x, y] for a regression"}}


class DataConfig(Strict):
    task: Literal["classification", "regression"] = "classification"
    dataset: Literal["circle", "xor", "gauss", "spiral", "moons", "digits",
                     "sine_gap", "hetero", "line_outliers", "custom"] = Field(default="circle", validate_default=True)
    n_points: Annotated[int, in_range(50, 2000, "number of points")] = 500  # not for digits, custom
    noise: Annotated[float, in_range(0.0, 0.5, "noise")] = 0.1              # not for digits, custom
    train_fraction: Annotated[float, in_range(0.1, 0.9, "train fraction")] = 0.5
    seed: Annotated[int, in_range(0, 2**31 - 1, "seed")] = 0
    # dataset 'custom' only: the visitor's own points, [x, y, label] each
    points: Annotated[list[Point] | None, BeforeValidator(_point_count),
                      WithJsonSchema({"anyOf": [POINTS_SCHEMA, {"type": "null"}]})] = Field(
        default=None, validate_default=True)

    @field_validator("dataset")
    @classmethod
    def _of_the_task(cls, dataset: str, info: ValidationInfo):
        task = info.data.get("task")
        sets = REGRESSION_DATASETS if task == "regression" else DATASETS
        if task is not None and dataset != "custom" and dataset not in sets:
            allowed = ", ".join(sets + ("custom",))
            raise PydanticCustomError("dataset", "dataset has to be one of {allowed} for task {task}, "
                                      "but got {got}", {"allowed": allowed, "task": repr(task), "got": repr(dataset)})
        return dataset

    @field_validator("points")
    @classmethod
    def _custom_only(cls, points: list[Point] | None, info: ValidationInfo):
        dataset, task = info.data.get("dataset"), info.data.get("task")
        if dataset is None or task is None:  # refused already: that error says enough
            return points
        if dataset == "custom" and points is None:
            lo, hi = CUSTOM_POINTS
            raise PydanticCustomError("points", "dataset 'custom' needs points, a list of [x, y, label], "
                                      "but got none", {"allowed": f"{lo}..{hi} points [x, y, label]"})
        if dataset != "custom" and points is not None:
            raise PydanticCustomError("points", "points are only for dataset 'custom', but dataset is {d}",
                                      {"d": repr(dataset), "allowed": "null (or dataset 'custom')"})
        want = "[x, y]" if task == "regression" else "[x, y, label]"
        for i, p in enumerate(points or ()):
            if (p.label is None) != (task == "regression"):
                raise PydanticCustomError("point", "a point of task {task} has to be a list {want}, but point "
                                          "{i} is {got}", {"task": repr(task), "want": want, "i": i,
                                                           "got": shown(p.model_dump()), "allowed": want})
        if task == "classification" and points is not None and len({p.label for p in points}) < 2:
            raise PydanticCustomError("points", "points need both classes, 0 and 1, but all {n} are "
                                      "class {label}", {"n": len(points), "label": points[0].label,
                                                        "allowed": "labels 0 and 1 both present"})
        return points


class ModelConfig(Strict):
    kind: Literal["mlp", "cnn"] = "mlp"
    hidden: Annotated[list[int], Field(max_length=MAX_LAYERS)] = Field(default_factory=lambda: [8, 8])
    activation: Literal["relu", "tanh", "sigmoid", "gelu", "selu", "linear"] = "relu"
    p: Annotated[list[Prob], Field(max_length=MAX_LAYERS)] = Field(default_factory=lambda: [0.3, 0.3])
    dropout_kind: Literal["dropout", "dropout2d", "alpha"] = "dropout"
    placement: Literal["after_activation", "before_activation"] = "after_activation"
    batchnorm: Literal["none", "before_dropout", "after_dropout"] = "none"


class TrainConfig(Strict):
    optimizer: Literal["sgd", "momentum", "adam"] = "adam"
    lr: Lr = 0.01
    weight_decay: Annotated[float, in_range(0.0, 1.0, "weight decay")] = 0.0
    batch_size: int = 10
    # evaluate test loss/accuracy every k steps; 0 = with each boundary refresh (the server
    # caps how often a run's boundary refreshes: app.settings' boundary_rate)
    eval_every: Annotated[int, in_range(0, 10_000, "eval_every")] = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # a regression run's band: the mean and spread of this many MC-dropout passes
    mc_passes: Annotated[int, in_range(*MC_PASSES, "MC passes")] = 30


class RunConfig(Strict):
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @property
    def task(self) -> Literal["binary", "digits", "regression"]:
        """What the network learns: one logit (binary), ten classes (digits) or one
        float target (regression)."""
        if self.data.task == "regression":
            return "regression"
        return "digits" if self.data.dataset == "digits" else "binary"


def set_size(data: DataConfig) -> int:
    """How many examples the dataset holds, train and test together."""
    if data.dataset == "digits":
        return DIGITS_SIZE
    return len(data.points) if data.dataset == "custom" else data.n_points


def train_size(data: DataConfig) -> int:
    """How many of them train."""
    n = set_size(data)
    return max(1, int(n * data.train_fraction))
