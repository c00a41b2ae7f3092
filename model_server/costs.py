"""What a run, a sweep or a lesson experiment will cost, estimated from its config and
params before anything is built: multiply-adds (per training step, or in all) and the
bytes it holds at its peak. The server's budgets (app/budget.py) admit or refuse work
with these numbers; docs/limits.md lists them.

    cost = run_cost(cfg)                          # Cost(macs per step, bytes held)
    cost = sweep_cost(cfg, n_models)
    cost = experiment_cost("inverted_scaling", cfg, {"passes": 1024, "examples": 256})

The estimates count the big tensors (weights with their gradient and Adam's two
moments, the data, each step's activations with their gradients, the decision-boundary
grid's activations, the timeline) at 4 bytes a value (2 for the timeline's), times
ALLOC_FACTOR for the temporaries PyTorch makes alongside and the allocator's slack.
tests/test_budget.py checks that an estimate covers what a run really allocates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .bucket import TIMELINE
from .engine.group import CHUNK
from .config import Limits, RunConfig
from .config.runconfig import set_size, train_size
from .engine.mc import LINE
from .runstate import step_macs

ALLOC_FACTOR = 2.0  # temporaries, allocator slack: measured peak / counted tensors, rounded up
DIGITS = (1, 8, 8)


@dataclass(frozen=True)
class Cost:
    macs: float    # multiply-adds: per training step for runs, in all for one-off work
    bytes: float   # held at the peak

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.macs + other.macs, self.bytes + other.bytes)


def input_shape(cfg: RunConfig) -> tuple[int, ...]:
    return DIGITS if cfg.task == "digits" else (1,) if cfg.task == "regression" else (2,)


def n_points(cfg: RunConfig) -> int:
    if cfg.task == "digits":
        return 1797
    points = getattr(cfg.data, "points", None)  # a visitor's own points
    return len(points) if points else cfg.data.n_points


def units(cfg: RunConfig) -> int:
    """Activations of one example through every hidden layer (CNN: channels x pixels)."""
    pixels = math.prod(input_shape(cfg)[1:]) if cfg.model.kind == "cnn" else 1
    return sum(cfg.model.hidden) * pixels


def parameters(cfg: RunConfig) -> int:
    shape, m = input_shape(cfg), cfg.model
    n_out = 10 if cfg.task == "digits" else 1
    total = 0
    if m.kind == "cnn":
        c, pixels = shape[0], math.prod(shape[1:])
        for w in m.hidden:
            total += c * w * 9 + w
            c = w
        return total + c * pixels * n_out + n_out
    n = math.prod(shape)
    for w in m.hidden:
        total += n * w + w
        n = w
    return total + n * n_out + n_out


def forward_macs(cfg: RunConfig, examples: int) -> float:
    """Multiply-adds of one forward pass of `examples` examples."""
    return step_macs(cfg, input_shape(cfg)) / cfg.train.batch_size * examples


def slow_panel_examples(cfg: RunConfig, limits: Limits) -> int:
    """Examples one refresh of a run's slow panels passes through its network: the boundary
    grid of a 2-D set; a regression's band, T passes and the eval network over the band's
    line and the test points (engine/mc.py); nothing for digits."""
    if cfg.task == "digits":
        return 0
    if cfg.task == "regression":
        return (cfg.train.mc_passes + 1) * (LINE + set_size(cfg.data) - train_size(cfg.data))
    return limits.grid_size ** 2


# What a run holds, as measured (docs/limits.md, "Memory"). A run's bytes are of two kinds.
#
# What it keeps alive: its rows of the bucket's tensors and the tensors of its bucket's
# last step() call that frames read (Bucket._records: when every row stepped, only that
# call's): per layer the pre-dropout input and the block output, and the last step's
# masks (a copy when a call took several steps; when it took one, the call's noise
# itself). These are counted tensor by tensor.
#
# What the heap keeps of a call's temporaries. A call (Bucket.step) first draws the noise
# of its n steps (engine/noise.py): n * B * M 32-bit words, their mixed copy
# (masks.unit_bits), and the 0/1 floats (n, K, U) drawn from them, which live through the
# call (with n = 1 they are the record's masks: counted above). The words are freed
# before the first step, so the steps' temporaries (the forward pass's tape, the
# backward's gradients, a CNN's patches, BatchNorm's normalised inputs: TAPE values
# per hidden unit and example) reuse their room: one call's temporaries are the floats
# plus the larger of the words and a step's tape. They are freed after the call, but
# glibc's heap does not give them back: the one trainer thread steps one bucket at a time,
# so the process keeps the high-water of one call resident (once, whatever the number of
# runs), and each run's records, allocated while its call's temporaries were live, pin
# holes among them that the next call does not refill exactly (a little per run). A run
# is charged TEMPORARIES_KEPT of its shape's call: its share of that once, among several
# runs, and its holes. Fitted to the measured growth per run of 5 runs: on the MLPs whose
# calls draw many steps (the noise's temporaries, known from the code, dominate) for the
# share, then on the one-step shapes for TAPE. With fewer runs in the process a run's
# share is larger, with more it is smaller.
#
# The noise of a call is every step of a chunk: at most MAX_CHUNK steps (app/turns.py
# reads it) of about CHUNK_S; a step of CHUNK_MACS multiply-adds or more (forward and
# backward) is a chunk of one. A frame's temporaries (the boundary grid's activations, a
# test evaluation) live one frame pass on the one trainer thread: the process's base
# memory covers them, not each run.
RECORDS = 1
MAX_CHUNK = 16
CHUNK_MACS = 1.2e8
RUN_FIXED = 0.1 * 2**20    # RunState, its Python objects, a frame's buffers
# copies of the weights a run holds: theta, its gradient and the optimizer's two moments in
# its row, its initial Net and the bucket's template, and the rest fitted to the measured
# growth of the smallest batch, where nothing else hides them (docs/limits.md, "Memory")
WEIGHT_COPIES = 16
TEMPORARIES_KEPT = 0.27    # a run's share of one call's temporaries that the heap keeps resident
TAPE = {"mlp": 11.5, "cnn": 14}   # a step's temporaries, values per hidden unit and example
BATCHNORM_TAPE = 1         # ... and what BatchNorm adds to them: its normalised input, on the tape
DRAW_WORDS = 2             # a call's noise is drawn from this many 32-bit words per unit: the counter's and their mix


def mask_units(cfg: RunConfig) -> int:
    """Mask units of one example: a CNN's Dropout2d draws one per channel."""
    if cfg.model.kind == "cnn" and cfg.model.dropout_kind == "dropout2d":
        return sum(cfg.model.hidden)
    return units(cfg)


def chunk_steps(cfg: RunConfig) -> int:
    """The most steps one Bucket.step call takes for this shape (one turn of the trainer)."""
    return max(1, min(MAX_CHUNK, int(CHUNK_MACS // (3 * step_macs(cfg, input_shape(cfg))))))


def call_temporaries(cfg: RunConfig) -> float:
    """Bytes of one Bucket.step call's temporaries of a run at their most: the noise of
    its n steps while they step (n > 1: with n = 1 the noise is the record's masks), and
    the larger of the words it was drawn from and one step's tape (freed before the
    steps, the words' room is the tape's)."""
    B, A, M, n = cfg.train.batch_size, units(cfg), mask_units(cfg), chunk_steps(cfg)
    tape = TAPE[cfg.model.kind] + (BATCHNORM_TAPE if cfg.model.batchnorm != "none" else 0)
    noise = 4 * n * B * M
    return (noise if n > 1 else 0) + max(DRAW_WORDS * noise, 4 * B * tape * A)


def run_bytes(cfg: RunConfig, limits: Limits | None = None) -> dict[str, float]:
    """A run's bytes, part by part (run_cost adds them up): what its row and its bucket
    hold while it lives, and what the heap keeps of its calls' temporaries. (limits: the
    signature of the other costs; no limit changes what a run holds.)"""
    B, A, M, P = cfg.train.batch_size, units(cfg), mask_units(cfg), parameters(cfg)
    D, N = math.prod(input_shape(cfg)), n_points(cfg)
    return {
        "fixed": RUN_FIXED,
        # theta, Adam's moments (or momentum: allocated for every optimizer), a gradient
        "weights": 4 * WEIGHT_COPIES * P,
        # the bucket's padded copy (x, y, test weights, batch order) and RunState's
        "data": N * (8 * D + 28),
        # TIMELINE steps of the shown example's values before and after dropout and its
        # masks, half precision, and its index (allocated filled: resident from the start)
        "timeline": TIMELINE * ((2 * A + M) * 2 + 8),
        # per (example, mask unit): kept counts and their weights, keep thresholds
        # (int64) and the counter's places (uint32)
        "mask_tables": B * M * (4 + 4 + 8 + 4),
        # the last step() call's tensors: per layer pre-dropout input and block output, and
        # one step's masks
        "records": RECORDS * B * 4 * (2 * A + M),
        # a call's noise, the words it is drawn from and a step's tape, as much of them
        # as the heap keeps resident for each run once they are freed
        "temporaries": TEMPORARIES_KEPT * call_temporaries(cfg),
    }


def run_cost(cfg: RunConfig, limits: Limits | None = None) -> Cost:
    """One run: macs per training step (forward and backward: about 3 forwards); bytes
    it adds to the process's resident memory while it trains (run_bytes)."""
    return Cost(3 * step_macs(cfg, input_shape(cfg)), sum(run_bytes(cfg, limits).values()))


def engine_row_values(cfg: RunConfig) -> float:
    """Values (4 bytes) one model of a sweep or a lesson's copies holds as an engine row
    (model_server.engine.group): theta, optimizer moments and a gradient; a step's
    activations and records; the noise of a call of CHUNK steps; its own data."""
    B, u, D = cfg.train.batch_size, units(cfg), math.prod(input_shape(cfg))
    return 4 * parameters(cfg) + (6 + CHUNK) * B * u + n_points(cfg) * (D + 4)


def sweep_cost(cfg: RunConfig, n_models: int) -> Cost:
    """n_models copies of cfg trained at once (model_server.sweep): per step, and held."""
    values = n_models * engine_row_values(cfg) + 2 * n_points(cfg) * math.prod(input_shape(cfg))
    return Cost(n_models * 3 * step_macs(cfg, input_shape(cfg)), ALLOC_FACTOR * 4 * values)


# Per experiment: (examples through the network, values held at the peak), from its
# params (defaults as in model_server.experiments) and the run's config.
def _work(name: str, cfg: RunConfig, p: dict, grid: int) -> tuple[float, float]:
    u, n = units(cfg), n_points(cfg)
    widest = max(cfg.model.hidden) * (math.prod(input_shape(cfg)[1:]) if cfg.model.kind == "cnn" else 1)
    size = p.get("size") or grid
    if name == "train_vs_eval":
        passes = p.get("passes", 20)
        return 2 * passes * cfg.train.batch_size, passes * cfg.train.batch_size * u
    if name == "forgot_eval_boundary":
        g = p.get("grids", 3)
        return (g + 1) * size ** 2, (g + 1) * size ** 2 * (u + 1)
    if name == "inverted_scaling":
        passes, ex = p.get("passes", 1000), p.get("examples", 16)
        return ex, 8 * passes * ex * widest           # every pass's mask, output and means at once
    if name == "mc_dropout":
        t, d = p.get("thinned", 16), p.get("draws", 1)
        return t * d * size ** 2, t * size ** 2 * (u + 1)
    if name == "batchnorm_shift":
        passes = p.get("passes", 8)
        return passes * n, 2 * n * u
    if name == "myths":
        return p.get("examples", 32), p.get("examples", 32) * u
    if name == "spatial_dropout":
        return 2, 4 * u
    if name == "placement_seeds":
        seeds, steps = p.get("seeds", 8), p.get("steps", 1500)
        k = 2 * seeds
        return 3 * k * steps * cfg.train.batch_size, k * (4 * parameters(cfg) + 6 * cfg.train.batch_size * u + 2 * n)
    # anything else: as much as a sweep of 16 models for 500 steps (the heaviest lesson)
    return 3 * 16 * 500 * cfg.train.batch_size, 16 * (4 * parameters(cfg) + 6 * cfg.train.batch_size * u) + 2 * n


def experiment_cost(name: str, cfg: RunConfig, params: dict, limits: Limits | None = None) -> Cost:
    """One experiment on a run of cfg: macs in all, bytes at its peak."""
    limits = limits or Limits()
    examples, values = _work(name, cfg, params, limits.grid_size)
    return Cost(forward_macs(cfg, examples), ALLOC_FACTOR * 4 * values)


def preset_cost(name: str, params: dict) -> Cost:
    """One of model_server.regularizers' experiments (copies of the overfitting preset,
    no run): its multiply-adds from regularizers.work (forward and backward), its bytes
    as for the most copies it may train at once."""
    from . import regularizers  # (it builds on sweep.py, which builds on this module's neighbours)
    cfg = regularizers.preset(n_points=regularizers.MAX_SIZE + regularizers.TEST_POINTS)
    per_copy = engine_row_values(cfg)
    data = (regularizers.MAX_SIZE + regularizers.TEST_POINTS) * 2 * regularizers.MAX_SEEDS
    return Cost(3 * regularizers.work(name, **params),
                ALLOC_FACTOR * 4 * (regularizers.MAX_COPIES * per_copy + data))
