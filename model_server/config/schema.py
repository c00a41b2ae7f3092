"""The JSON Schema served to the page: the run config and the live changes, with this
server's limits in place."""
from __future__ import annotations

from .limits import Limits
from .live import LiveChange
from .runconfig import DATASETS, REGRESSION_DATASETS, RunConfig


def json_schema(limits: Limits) -> dict:
    """The JSON Schema of the run config and of the live changes, with this server's
    limits in place: the ranges check_limits enforces (layers, widths, batch) and the
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
    # the data sets of each task (a visitor's own points, "custom", in both): the page
    # offers a task's sets only; DataConfig refuses the others
    defs["DataConfig"]["properties"]["dataset"]["x-tasks"] = {
        "classification": [*DATASETS, "custom"], "regression": [*REGRESSION_DATASETS, "custom"]}
    # the training-set size bounds it too; that depends on the data and is checked on configure
    defs["TrainConfig"]["properties"]["batch_size"].update(minimum=1, maximum=limits.max_batch)
    return {"config": config, "live": LiveChange.model_json_schema(), "limits": limits.model_dump()}
