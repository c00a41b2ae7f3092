"""The one schema the pages build from: GET /schema.json, and the same document inline in
every page (a JSON script tag, read by static/js/state.js) so the first picture waits for
no extra request.

    config    JSON Schema of the run config, this server's limits applied
              (model_server.config.json_schema)
    live      JSON Schema of the live changes (`set`); speed's top is DP_MAX_SPEED
    limits    model_server.config.Limits as set here
    serving   what of app.settings.Serving a page shapes itself by: max_runs_per_client
              (the runs one visitor may hold: compare mode offers no more)
    grid      decision-boundary grid size (DP_GRID_SIZE); plane: the plotted square
    timeline  how many past steps a paused run can replay (model_server.bucket.TIMELINE)
    custom_points  how many points a visitor's own set may have, [min, max]
    presets   named setups lessons and compare start from: {config, steps}
    experiments  JSON Schema of each lesson experiment's params (the `experiment` event):
              its ranges and defaults, which the lesson views' controls read
"""
from __future__ import annotations

import copy

from flask import Blueprint, current_app, jsonify

from model_server.bucket import TIMELINE
from model_server.config import CUSTOM_POINTS, json_schema
from model_server.datasets import PLANE
from model_server.sweep import SWEEP_PRESET, SWEEP_STEPS

from .lessons import EXPERIMENTS

bp = Blueprint("schema", __name__)


def document(limits, serving) -> dict:
    doc = json_schema(limits)
    # a run starts as fast as this server lets it, and the server clamps any faster speed
    speed = next(d for d in doc["live"]["$defs"].values() if d["properties"]["param"].get("const") == "speed")
    value = speed["properties"]["value"]
    value["maximum"] = min(value["maximum"], serving.max_speed)
    value["default"] = value["maximum"]
    doc.update(serving={"max_runs_per_client": serving.max_runs_per_client})
    doc.update(grid=limits.grid_size, plane=list(PLANE), timeline=TIMELINE, custom_points=list(CUSTOM_POINTS), presets={
        "sweep": {"config": copy.deepcopy(SWEEP_PRESET), "steps": SWEEP_STEPS}},
        experiments={name: params.model_json_schema() for name, params in EXPERIMENTS.items()})
    return doc


def _current() -> dict:
    """Built once per app: the limits are read when the app starts."""
    cfg = current_app.config
    if "SCHEMA" not in cfg:
        cfg["SCHEMA"] = document(cfg["LIMITS"], cfg["SERVING"])
    return cfg["SCHEMA"]


@bp.get("/schema.json")
def schema_json():
    resp = jsonify(_current())
    resp.cache_control.no_cache = True  # limits change with a restart; revalidate
    return resp


@bp.app_context_processor
def inline_schema():
    return {"dp_schema": _current}
