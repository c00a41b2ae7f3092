"""Lessons: the 'experiment' and 'sweep' socket events, and the /lessons and /compare pages.

    emit('experiment', {run?: 'main', name: 'mc_dropout', params?: {thinned: 16}})
    -> {ok: true, run, name, step, result: {...}}   result: model_server.experiments.<name>(run)
    emit('experiment', {name: 'alternatives', params?: {seeds: 4}})
    -> {ok: true, run: null, name, step: null, result: {...}}   model_server.regularizers.<name>()
    emit('sweep', {action: 'start', ps?: [0, 0.1, ...], every?: 10})  -> {ok, sweep: {...}}
    emit('sweep', {action: 'step', steps?: 20})                       -> {ok, sweep: {...}}
    emit('sweep', {action: 'result', boundaries?: false})             -> {ok, sweep: {...}}

An experiment reads a copy of one of the tab's runs, taken between two steps, and
changes nothing in its training; placement_seeds reads only the run's config and trains
copies of its own. The PRESET experiments (model_server/regularizers.py) need no run at
all: they train copies of the overfitting preset, and their answers are cached per
params. A sweep trains len(ps) copies of the SWEEP_PRESET network at once
(model_server/sweep.py), one per drop probability; a tab holds at most one
(Session.sweep), which goes when the tab does. All of this work is budgeted
(app/budget.py) and computed in the shared trainer's turns (as_job, Trainer.job). `sweep` is model_server.sweep's
Sweep.result(): per-p final losses and the loss curves so far.

Bad payloads get the structured errors of app/events.py, naming the field ("params.passes",
"steps", "ps.1"), the allowed range and the value received. Answers are bounded: at most
MAX_STEPS_PER_CALL sweep steps per event and MAX_SWEEP_STEPS per sweep, and at most
MAX_GRID_VALUES grid values per experiment answer.
"""
from __future__ import annotations

import re
import threading
from typing import Annotated, Any, Literal

from flask import Blueprint, abort, render_template
from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from model_server import experiments, regularizers
from model_server.experiments import uncertain as uncertainty_lesson
from model_server.costs import Cost, experiment_cost, preset_cost, sweep_cost
from model_server.config import MAX_LAYERS, MC_PASSES, ConfigError, Prob, Strict, in_range, parse, parse_config, safe_value
from model_server.runstate import RunState
from model_server.sweep import DEFAULT_PS, MAX_MODELS, SWEEP_PRESET, SWEEP_STEPS, Sweep

from .budget import OverBudget
from .events import RunRef
from .errors import Busy, JobsBusy
from .sessions import Session

MAX_GRID = 64                        # grid resolution an experiment may ask for
MAX_GRID_VALUES = 64 * 32 * 32       # values in all grids of one answer (bounds its JSON: a large answer, docs/limits.md)
MAX_SWEEP_STEPS = 10 * SWEEP_STEPS   # optimizer steps one sweep may train, in all
MAX_STEPS_PER_CALL = 200             # ... and per 'step' event (bounds one event's work)
LESSON_ID = re.compile(r"^[a-z0-9-]{1,40}$")

Seed = Annotated[int, in_range(0, 2**31 - 1, "seed")]
Index = Annotated[int, in_range(0, 100_000, "example")]


def count_between(lo: int, hi: int, what: str):
    """Like config.in_range, for the length of a list; checked before its items are (a
    list of thousands of bad items made as many errors)."""

    def check(v):
        if isinstance(v, list) and not lo <= len(v) <= hi:
            raise PydanticCustomError("out_of_range", "{what} has to be between {lo} and {hi}, but got {got}",
                                      {"what": what, "lo": lo, "hi": hi, "got": len(v)})
        return v

    return BeforeValidator(check)


# ---- experiments: one parameter schema per function of model_server/experiments/---------
class TrainVsEval(Strict):
    example: Index = 0
    passes: Annotated[int, in_range(1, experiments.MAX_PASSES, "passes")] = 20
    seed: Seed = 0


class ForgotEvalBoundary(Strict):
    size: Annotated[int, in_range(2, MAX_GRID, "size")] | None = None
    grids: Annotated[int, in_range(1, experiments.MAX_GRIDS, "grids")] = 3
    seed: Seed = 0


class InvertedScaling(Strict):
    layer: Annotated[int, in_range(0, MAX_LAYERS - 1, "layer")] = 0
    passes: Annotated[int, in_range(1, experiments.MAX_SCALING_PASSES, "passes")] = 1000
    examples: Annotated[int, in_range(1, experiments.MAX_EXAMPLES, "examples")] = 16
    seed: Seed = 0


class McDropout(Strict):
    thinned: Annotated[int, in_range(1, experiments.MAX_THINNED, "thinned")] = 16
    size: Annotated[int, in_range(2, MAX_GRID, "size")] | None = None
    seed: Seed = 0
    draws: Annotated[int, in_range(1, experiments.MAX_DRAWS, "draws")] = 1


class PlacementSeeds(Strict):
    seeds: Annotated[int, in_range(2, MAX_MODELS // 2, "seeds")] = 8
    steps: Annotated[int, in_range(1, experiments.MAX_PLACEMENT_STEPS, "steps")] = 1500


class BatchnormShift(Strict):
    passes: Annotated[int, in_range(1, 64, "passes")] = 8
    seed: Seed = 0


class Myths(Strict):
    examples: Annotated[int, in_range(1, experiments.MAX_EXAMPLES, "examples")] = 32
    seed: Seed = 0


class SpatialDropout(Strict):
    example: Index = 0
    layer: Annotated[int, in_range(0, MAX_LAYERS - 1, "layer")] = 0
    p: Prob | None = None
    seed: Seed = 0


# the preset experiments' ranges (model_server/regularizers.py bounds their total work too)
NoiseP = Annotated[float, in_range(0.05, 0.9, "dropout probability")]
CopySteps = Annotated[int, in_range(1, regularizers.MAX_STEPS, "steps")]
CopySeeds = Annotated[int, in_range(2, regularizers.MAX_SEEDS, "seeds")]
FirstSeed = Annotated[int, in_range(0, regularizers.MAX_SEED, "seed")]


class DataSize(Strict):
    sizes: Annotated[list[Annotated[int, in_range(10, regularizers.MAX_SIZE, "training points")]],
                     count_between(2, 8, "number of sizes")] = Field(default_factory=lambda: list(regularizers.DATA_SIZES))
    p: NoiseP = 0.5
    steps: CopySteps = SWEEP_STEPS
    seeds: CopySeeds = 3
    seed: FirstSeed = 0


class Alternatives(Strict):
    p: NoiseP = 0.5
    weight_decay: Annotated[float, in_range(0.0, 0.1, "weight decay")] = regularizers.WEIGHT_DECAY
    input_noise: Annotated[float, in_range(0.0, 1.0, "input noise")] = regularizers.INPUT_NOISE
    steps: CopySteps = SWEEP_STEPS
    seeds: CopySeeds = 4
    seed: FirstSeed = 0


class Uncertainty(Strict):
    seeds: Annotated[int, in_range(1, uncertainty_lesson.MAX_SEEDS, "seeds")] = 3
    steps: Annotated[int, in_range(1, uncertainty_lesson.MAX_STEPS, "steps")] = 1500
    p: Annotated[float, in_range(0.0, 0.9, "dropout probability")] = 0.5
    low_p: Annotated[float, in_range(0.0, 0.9, "dropout probability")] = 0.1
    passes: Annotated[int, in_range(*MC_PASSES, "passes")] = 30
    seed: FirstSeed = 0


class NoiseInjection(Strict):
    p: NoiseP = 0.5
    steps: CopySteps = SWEEP_STEPS
    seeds: CopySeeds = 4
    seed: FirstSeed = 0


EXPERIMENTS: dict[str, type[Strict]] = {
    "train_vs_eval": TrainVsEval, "forgot_eval_boundary": ForgotEvalBoundary,
    "inverted_scaling": InvertedScaling, "mc_dropout": McDropout,
    "batchnorm_shift": BatchnormShift, "myths": Myths, "spatial_dropout": SpatialDropout,
    "placement_seeds": PlacementSeeds,
    "data_size": DataSize, "alternatives": Alternatives, "noise_injection": NoiseInjection,
    "uncertainty": Uncertainty,
}
# experiments that read only the run's config: they train copies of their own, so the run
# goes on training meanwhile instead of waiting seconds for its lock
CONFIG_ONLY = {"placement_seeds"}
# experiments that need no run: they train copies of the overfitting preset
PRESET = {"data_size": regularizers.data_size, "alternatives": regularizers.alternatives,
          "noise_injection": regularizers.noise_injection, "uncertainty": experiments.uncertainty}
# their costs: the regularizers' from their work; a lesson module's own from its cost()
PRESET_COSTS = {"uncertainty": uncertainty_lesson.cost}


class Experiment(RunRef):
    name: Literal[tuple(EXPERIMENTS)]  # type: ignore[valid-type]
    params: dict = Field(default_factory=dict)


def _prefixed(err: ConfigError, prefix: str) -> ConfigError:
    return ConfigError([{**e, "field": f"{prefix}.{e['field']}"} for e in err.errors])


def _from_value_error(err: ValueError, params: dict, name: str) -> ConfigError:
    """An engine ValueError ("passes has to be between 1 and 100, but got 500", or "a
    decision boundary needs a 2D dataset, but got dataset 'digits'") as a structured error:
    the field is the parameter it names, else the experiment's name."""
    message = str(err)
    word = message.split(" ", 1)[0]
    m = re.search(r"between (\S+) and (\S+),", message)
    if word in params or word in EXPERIMENTS[name].model_fields:
        return ConfigError([{"field": f"params.{word}", "message": message,
                             "allowed": f"{m[1]}..{m[2]}" if m else "", "received": params.get(word)}])
    return ConfigError([{"field": "name", "message": f"{name}: {message}",
                         "allowed": "an experiment that fits this run's network", "received": name}])


def _check_answer_size(name: str, kwargs: dict, default_size: int) -> None:
    """Many grids at a fine resolution make a big answer: bound their product."""
    count = {"mc_dropout": "thinned", "forgot_eval_boundary": "grids"}.get(name)
    if count is None:
        return
    size = kwargs.get("size") or default_size
    n = kwargs.get(count, EXPERIMENTS[name].model_fields[count].default)
    if n * size * size > MAX_GRID_VALUES:
        raise ConfigError([{"field": f"params.{count}", "allowed": f"{count} x size x size <= {MAX_GRID_VALUES}",
                            "message": f"{count} x size x size has to be at most {MAX_GRID_VALUES}, "
                                       f"but got {n} x {size} x {size}", "received": n}])


class _ConfigOnly:
    """What a CONFIG_ONLY experiment gets instead of the run: its config, nothing live."""

    def __init__(self, cfg):
        self.cfg = cfg


# the parameter that sizes each experiment's work most: named when its cost is refused
SIZED_BY = {"train_vs_eval": "passes", "forgot_eval_boundary": "grids", "inverted_scaling": "passes",
            "mc_dropout": "thinned", "batchnorm_shift": "passes", "myths": "examples", "placement_seeds": "steps"}


def as_job(session: Session, cost, what: str, field: str, received: Any, fn, prepare=lambda: None):
    """fn(prepare()): lesson work within the budget. Refused when it is too big by itself
    (field named), when the visitor's address or the server holds too much, or when the
    server's jobs are all taken, all before prepare() costs anything; one at a time per
    tab; computed in the turns the shared trainer gives it (app/turns.py)."""
    registry = session.registry
    reason = registry.budget.check_job(cost)
    if reason:
        raise ConfigError([{"field": field, "message": f"{what} is too big: {reason}; make {field.split('.')[-1]} smaller",
                            "allowed": "a smaller value", "received": safe_value(received)}])
    if not session.job.acquire(blocking=False):
        raise JobsBusy("your previous experiment is still running; this one waits for its answer", "run")
    try:
        try:
            ticket = registry.budget.reserve(session.address, cost, what)
        except OverBudget as e:
            raise Busy(str(e)) from None
        try:
            # a tab that closes takes its work with it: nobody would read the answer
            return registry.trainer.job(fn, prepare, cancelled=lambda: session.closed)
        finally:
            registry.budget.release(ticket)
    finally:
        session.job.release()


def run_experiment(session: Session, payload: Any) -> dict:
    msg = parse(Experiment, payload)
    try:
        params = parse(EXPERIMENTS[msg.name], msg.params, "params")
    except ConfigError as e:
        raise _prefixed(e, "params") from None
    kwargs = params.model_dump(exclude_none=True)
    if msg.name in PRESET:
        try:
            cost = PRESET_COSTS[msg.name](kwargs) if msg.name in PRESET_COSTS else preset_cost(msg.name, kwargs)
            result = as_job(session, cost, "this experiment", "params.steps", kwargs.get("steps"),
                            lambda _: PRESET[msg.name](**kwargs))
        except ValueError as e:
            raise _from_value_error(e, kwargs, msg.name) from None
        return {"run": None, "name": msg.name, "step": None, "result": result}
    slot = session.slot(msg.run)
    fn = getattr(experiments, msg.name)
    _check_answer_size(msg.name, kwargs, slot.state.limits.grid_size)
    cost = experiment_cost(msg.name, slot.state.cfg, kwargs, slot.state.limits)
    sized = SIZED_BY.get(msg.name, "name")
    if msg.name in CONFIG_ONLY:
        def prepare():
            return _ConfigOnly(slot.state.cfg), slot.state.step_count
    else:
        def prepare():  # a copy at one step: training goes on meanwhile
            run = slot.look(RunState.frozen)
            return run, run.step_count
    try:
        result, step = as_job(session, cost, "this experiment", f"params.{sized}", kwargs.get(sized),
                              lambda ready: (fn(ready[0], **kwargs), ready[1]), prepare)
    except ConfigError:
        raise
    except ValueError as e:
        raise _from_value_error(e, kwargs, msg.name) from None
    return {"run": msg.run, "name": msg.name, "step": step, "result": result}


# ---- the dropout sweep ---------------------------------------------------------------------
class SweepStart(Strict):
    action: Literal["start"]
    ps: Annotated[list[Prob], count_between(1, MAX_MODELS, "number of models")] = Field(
        default_factory=lambda: list(DEFAULT_PS))
    every: Annotated[int, in_range(1, 100, "every")] = 10


class SweepStep(Strict):
    action: Literal["step"]
    steps: Annotated[int, in_range(1, MAX_STEPS_PER_CALL, "steps")] = 20


class SweepResult(Strict):
    action: Literal["result"]
    boundaries: bool = False


SWEEP_ACTIONS: dict[str, type[Strict]] = {"start": SweepStart, "step": SweepStep, "result": SweepResult}


class _Held:
    """A tab's sweep, its share of the budget, and the lock that keeps two of its events
    from training it at once."""

    def __init__(self, sweep: Sweep, ticket):
        self.sweep, self.ticket, self.lock = sweep, ticket, threading.Lock()


def handlers(registry) -> dict:
    """The 'experiment' and 'sweep' events, for the Playground namespace to take at its
    construction (app/factory.py)."""

    def sweep_event(session: Session, payload: Any) -> dict:
        if not isinstance(payload, dict):
            raise ConfigError([{"field": "payload", "message": "payload has to be an object",
                                "allowed": "object", "received": safe_value(payload)}])
        action = payload.get("action")
        if not isinstance(action, str) or action not in SWEEP_ACTIONS:
            message = ("action is required: one of start, step, result" if action is None else
                       f"action has to be one of start, step, result, but got {str(action)[:40]!r}")
            raise ConfigError([{"field": "action", "message": message,
                                "allowed": "start, step, result",
                                "received": safe_value(action)}])
        msg = parse(SWEEP_ACTIONS[action], payload)
        if action == "start":
            cfg = parse_config(SWEEP_PRESET, registry.limits)
            session.drop_sweep()  # a new sweep replaces the tab's last one
            try:  # the sweep's models, held until the tab starts another or leaves
                ticket = registry.budget.reserve(session.address, sweep_cost(cfg, len(msg.ps)), "this sweep")
            except OverBudget as e:
                raise Busy(str(e)) from None
            try:
                held = _Held(Sweep(cfg, msg.ps, every=msg.every, limits=registry.limits), ticket)
            except ValueError as e:
                registry.budget.release(ticket)
                raise ConfigError([{"field": "ps", "message": str(e), "allowed": f"1..{MAX_MODELS} values in 0..1",
                                    "received": list(msg.ps)}]) from None
            session.sweep = held
            if session.closed:  # the tab left meanwhile
                session.drop_sweep()
            return {"action": action, "sweep": held.sweep.result()}
        held = session.sweep
        if held is None:
            raise ConfigError([{"field": "action", "message": f"no sweep to {action}: send action 'start' first",
                                "allowed": "start", "received": action}])
        if not held.lock.acquire(blocking=False):
            raise Busy("the sweep is still busy with your previous request; wait for its answer")
        try:
            sw = held.sweep
            step_macs = sweep_cost(sw.cfg, len(sw.ps)).macs  # one step of all its models
            if action == "step":
                left = MAX_SWEEP_STEPS - sw.step_count
                if left <= 0:
                    raise ConfigError([{"field": "steps", "message": f"a sweep may train {MAX_SWEEP_STEPS} steps, "
                                        f"and this one has: start a new one", "allowed": "a new sweep (action 'start')",
                                        "received": msg.steps}])
                steps = min(msg.steps, left)
                as_job(session, Cost(step_macs * steps, 0), "this sweep step", "steps", msg.steps,
                       lambda _: sw.step(steps))
                return {"action": action, "sweep": sw.result()}
            # (its boundaries: about one step's worth of forward passes)
            return {"action": action, "sweep": as_job(session, Cost(step_macs if msg.boundaries else 0, 0),
                                                      "this sweep result", "boundaries", msg.boundaries,
                                                      lambda _: sw.result(boundaries=msg.boundaries))}
        finally:
            held.lock.release()

    return {"experiment": run_experiment, "sweep": sweep_event}


# ---- pages ---------------------------------------------------------------------------------
bp = Blueprint("lessons", __name__)


@bp.get("/lessons")
def lessons():
    return render_template("lessons.html", page="lessons", lesson="")


@bp.get("/lessons/<lesson>")
def lesson(lesson: str):
    """The same page, opened at one lesson (lessons.js knows which ids exist)."""
    if not LESSON_ID.match(lesson):
        abort(404)
    return render_template("lessons.html", page="lessons", lesson=lesson)


@bp.get("/compare")
def compare():
    return render_template("compare.html", page="compare")
