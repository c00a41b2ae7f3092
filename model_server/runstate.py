"""A run's own state: its config, data, random streams, live settings and history.

Its weights and optimizer state live in one row of its bucket (bucket.py), which trains
it together with every other run of the same shape. The engine reads a run and tells it
what happened through the methods engine.handle.RunHandle names (placed, queue_eval,
take_evals, add_history), and assigns none of its fields. Everything here belongs to this run
alone: the same config and seed give the same data, initial weights, batch order and
masks, whoever else trains meanwhile.

    state = RunState(parse_config({...}))
    state.set_p(0, 0.5); state.set_mode("eval"); state.set_lr(0.1)   # from the next step
    state.reset()                          # fresh weights and history, live changes kept
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from .config import Limits, RunChange, RunConfig
from .datasets import PLANE, Dataset, make_dataset
from .engine.handle import ConfigSettings
from .network import Net, parameter_count
from .regression_data import make_dataset as make_regression

if TYPE_CHECKING:
    from .bucket import Bucket

HISTORY_POINTS = 4_000  # evaluation points kept; older ones are thinned 2:1 when full
MAX_PENDING_EVALS = 256   # evaluations waiting for a frame before they are folded in

# Below this many multiply-adds per training step a GPU loses to the CPU: a small step is
# a few dozen kernel launches, each costing more than its arithmetic (docs/benchmarks.md).
GPU_MIN_MACS = 10_000_000


def step_macs(cfg: RunConfig, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass over a batch (backward is about twice that)."""
    m, macs = cfg.model, 0
    if m.kind == "cnn":
        c, pixels = input_shape[0], math.prod(input_shape[1:])
        for width in m.hidden:
            macs += c * width * 9 * pixels
            c = width
        macs += c * pixels * 10
    else:
        n = math.prod(input_shape)
        for width in m.hidden:
            macs += n * width
            n = width
        macs += n * 10
    return macs * cfg.train.batch_size


def pick_device(requested: str, macs: float = math.inf) -> torch.device:
    """'cpu' and 'cuda' as asked (config validation has checked that CUDA exists);
    'auto' takes CUDA when it is there and a step has at least GPU_MIN_MACS of work."""
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available() and macs >= GPU_MIN_MACS):
        return torch.device("cuda")
    return torch.device("cpu")


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """torch.optim's optimizer for a config's name (the sweeps' stacked models use it)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    momentum = 0.9 if name == "momentum" else 0.0
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=True)


def preload() -> None:
    """Import now what the process's first torch.optim optimizer imports lazily (its
    compiler stack: long enough holding the interpreter to stall every frame, and tens of
    MB; docs/limits.md). Done at start-up, not by the first visitor's sweep or experiment
    while every other visitor trains."""
    param = torch.nn.Parameter(torch.zeros(1))
    param.grad = torch.zeros(1)
    make_optimizer("adam", [param], 1e-3, 0.0).step()


def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy for one logit, cross-entropy for classes."""
    if logits.dim() == 1:
        return F.binary_cross_entropy_with_logits(logits, y)
    return F.cross_entropy(logits, y)


class Thinned(list):
    """A list of at most `cap` items that still spans the whole run: when full, every
    other item goes, and from then on only every stride-th new one is kept."""

    def __init__(self, cap: int):
        super().__init__()
        self.cap, self.stride, self._skip = cap, 1, 0

    def add(self, item) -> None:
        self._skip += 1
        if self._skip < self.stride:
            return
        self._skip = 0
        self.append(item)
        if len(self) >= self.cap:
            self[:] = self[::2]
            self.stride *= 2


def settings_at(log, step: int):
    """The entry of a settings log ((first step, p, lr, mode), first steps increasing) that
    step `step` trained with; None before the first. A binary search: an export looks up
    each of up to 4,000 history points in a log a visitor can make long."""
    i = bisect.bisect_right(log, step, key=lambda entry: entry[0])
    return log[i - 1] if i else None


@dataclass(frozen=True)
class FrozenRun:
    """A run as it was at one step: a copy of its network (torch.nn, recording dropout
    layers), its config, data and history. What experiments and exports read: taken
    between two steps, it needs no lock, and nothing done to it reaches the run."""
    cfg: RunConfig
    limits: Limits
    device: torch.device
    data: Dataset
    net: Net
    history: list
    step_count: int
    # (first step, p, lr, mode): the settings every step trained with (RunState.settings_log)
    changes: tuple = ()


class RunState(ConfigSettings):
    noise = "dropout"     # the engine's noise kind for this run: dropout's masks
    input_noise = 0.0     # no noise added to its inputs
    def __init__(self, cfg: RunConfig, limits: Limits | None = None):
        self.cfg = cfg
        self.limits = limits or Limits()
        shape = {"digits": (1, 8, 8), "regression": (1,)}.get(cfg.task, (2,))
        self.device = pick_device(cfg.train.device, step_macs(cfg, shape))
        self.mode = "train"
        self.view = "eval"        # which decision boundary frames carry: 'eval' or 'thinned'
        self.watch: tuple[int, int] | None = None  # a hidden neuron whose map frames carry
        self.example = 0          # which example of the batch frames show
        self.bucket: "Bucket | None" = None
        self.row = -1             # this run's row in its bucket
        self.resets = 0           # bumps on every reset: a cached copy of the net is stale
        self.data = (make_regression if cfg.task == "regression" else make_dataset)(cfg.data).to(self.device)
        self.n_out = self.data.n_classes
        self.batch = cfg.train.batch_size
        self._initial = Net(cfg.model, tuple(self.data.x_train.shape[1:]), self.n_out)
        self._initial.init_weights(torch.Generator().manual_seed(cfg.data.seed))
        self.params = parameter_count(self._initial)
        # what every frame header says and a run never changes (made once: 30 frames a second)
        self.fixed_header = {"device": self.device.type, "kind": cfg.model.kind, "task": cfg.task,
                             "sizes": [self.data.input_dim] + list(cfg.model.hidden) + [self.n_out],
                             "params": self.params}
        self._fresh()

    def _fresh(self) -> None:
        """Random streams and history from the start (construction and reset)."""
        seed = self.cfg.data.seed
        self.batch_gen = torch.Generator().manual_seed(seed + 2)
        self.history = Thinned(HISTORY_POINTS)  # {step, train_loss, test_loss, test_acc}
        self.latest_eval: dict | None = None
        # (first step, p, lr, mode): the settings each step trained with, from step 1 on
        # (logged by _log_settings; replays and exports read them). Bounded by the
        # event rate and a run's time limit: a change is a visitor's event.
        self.settings_log: list[tuple[int, list[float], float, str]] = []
        self.evals: list[tuple[int, torch.Tensor, int]] = []  # (step, (3, K') metrics, column): not yet read
        self.frame_step = 0       # step of the previous frame
        self.last_eval_step = 0
        self.next_auto_eval = 0.0
        self._net_cache: tuple[tuple, Net] | None = None

    def initial_net(self) -> Net:
        """The network as this run starts: torch's default init from the run's own seed.
        Built once, with the run (on the thread that configures it, not the trainer's,
        where a reset or a bucket's join reads it again); read it, never train it."""
        return self._initial

    # ---- live changes: each takes effect at the next step ---------------------------------
    def set_p(self, layer: int, p: float) -> None:
        if not 0 <= layer < len(self.cfg.model.hidden):
            raise IndexError(f"layer has to be between 0 and {len(self.cfg.model.hidden) - 1}, but got {layer}")
        ps = self.p
        ps[layer] = p
        self._update("model", p=ps)

    def set_lr(self, lr: float) -> None:
        self._update("train", lr=lr)

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self._hyper()

    def set_watch(self, layer: int | None, index: int | None) -> None:
        """Frames carry this hidden neuron's output over the plane; None: no neuron."""
        if layer is None or index is None:
            self.watch = None
            return
        widths = self.cfg.model.hidden
        if not 0 <= layer < len(widths):
            raise IndexError(f"layer has to be between 0 and {len(widths) - 1}, but got {layer}")
        if not 0 <= index < widths[layer]:
            raise IndexError(f"neuron has to be between 0 and {widths[layer] - 1}, but got {index}")
        self.watch = (layer, index)

    def set_view(self, view: str) -> None:
        if view not in ("eval", "thinned"):
            raise ValueError(f"view has to be one of eval, thinned, but got {view!r}")
        self.view = view

    def apply(self, change: RunChange) -> None:
        """A live change (a model_server.config LiveChange's change: SetP, SetLr, SetMode,
        SetWatch or SetView; speed is the server's pacing, not the run's), from the next
        step on."""
        if change.param == "p":
            self.set_p(change.layer, change.value)
        elif change.param == "lr":
            self.set_lr(change.value)
        elif change.param == "mode":
            self.set_mode(change.value)
        elif change.param == "watch":
            self.set_watch(change.layer, change.index)
        elif change.param == "view":
            self.set_view(change.value)
        else:
            raise ValueError(f"param has to be one of p, lr, mode, watch, view, but got {change.param!r}")

    def _update(self, part: str, **values) -> None:
        section = getattr(self.cfg, part).model_copy(update=values)
        self.cfg = self.cfg.model_copy(update={part: section})
        self._hyper()

    def _hyper(self) -> None:
        if self.bucket is not None:
            self._log_settings()
        self.settings_changed()   # the row the next step reads

    def _log_settings(self) -> None:
        """The settings from the next step on, into settings_log: one entry per step that
        changed something (a later change within the same step replaces it)."""
        first = self.step_count + 1
        log, entry = self.settings_log, (first, list(self.p), self.lr, self.mode)
        if log and log[-1][0] == first:
            log.pop()
        if not log or log[-1][1:] != entry[1:]:
            log.append(entry)

    def settings_at(self, step: int) -> tuple[int, list[float], float, str]:
        """(first step, p, lr, mode): the settings step `step` trained with."""
        return settings_at(self.settings_log, step)

    def reset(self) -> None:
        """Fresh weights, optimizer state, streams and history; live changes are kept."""
        self._fresh()
        self.resets += 1
        if self.bucket is not None:
            self.bucket.load(self)
            self._log_settings()

    # ---- what the engine tells the run (engine.handle.RunHandle) ----------------------------
    def placed(self, bucket: "Bucket | None", row: int) -> None:
        """The run sits in this row of this bucket now (None, -1: in none); joining a
        bucket starts it from step 1."""
        joined = bucket is not None and bucket is not self.bucket
        self.bucket, self.row = bucket, row
        if joined:
            self._log_settings()

    def queue_eval(self, step: int, stack: torch.Tensor, column: int) -> None:
        self.evals.append((step, stack, column))
        self.last_eval_step = step
        if len(self.evals) > MAX_PENDING_EVALS:  # nobody takes frames: fold them in now
            self.flush_evals()

    def take_evals(self) -> list:
        evals, self.evals = self.evals, []
        return evals

    def flush_evals(self) -> None:
        """Evaluations that no frame has read yet, into history now."""
        evals = self.take_evals()
        host = {id(st): st.cpu().numpy() for _, st, _ in evals}
        for step, stack, i in evals:
            tl, vl, acc = (float(v) for v in host[id(stack)][:, i])
            self.add_history({"step": step, "train_loss": _finite(tl), "test_loss": _finite(vl),
                              "test_acc": _finite(acc)})

    def took_frame(self, step: int) -> int:
        """A frame of this step goes out: returns the steps since the previous frame."""
        since, self.frame_step = step - self.frame_step, step
        return since

    # ---- what the run has done ------------------------------------------------------------
    @property
    def step_count(self) -> int:
        return 0 if self.bucket is None else int(self.bucket.steps[self.row])

    @property
    def finished(self) -> str | None:
        """Why this run may not train further (the engine's limit), or None."""
        if self.step_count >= self.limits.max_steps:
            return f"step limit reached: a run may train {self.limits.max_steps} steps"
        return None

    def add_history(self, point: dict) -> None:
        self.latest_eval = point
        self.history.add(point)

    @property
    def net(self) -> Net:
        """A copy of the network as it is now (a torch.nn Net with recording dropout
        layers), for experiments and exports; cached until the run trains or resets."""
        version = (self.step_count, self.resets, tuple(self.p), self.mode)
        if self._net_cache is None or self._net_cache[0] != version:
            self._net_cache = (version, self.bucket.materialize(self))
        return self._net_cache[1]

    def frozen(self) -> FrozenRun:
        """This run now, as a FrozenRun (call it where the bucket does not step meanwhile)."""
        self.flush_evals()
        return FrozenRun(self.cfg, self.limits, self.device, self.data, self.bucket.materialize(self),
                         list(self.history), self.step_count,
                         tuple((first, tuple(p), lr, mode) for first, p, lr, mode in self.settings_log))

    def losses(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Training losses of steps start..stop-1 (of the last bucket.LOSS_RING steps)."""
        return self.bucket.losses_of(self, start, self.step_count if stop is None else stop)

    def describe(self) -> dict:
        """What a client needs once per configure: the full config, sizes, the points."""
        data = self.data
        info = {
            "config": self.cfg.model_dump(), "device": self.device.type,
            "sizes": [data.input_dim] + list(self.cfg.model.hidden) + [self.n_out],
            "params": self.params, "task": self.cfg.task,
            "train_size": len(data.x_train), "test_size": len(data.x_test),
        }
        if self.cfg.task != "digits":   # points: [x, y, label], or a regression's [x, y]
            info["plane"] = list(PLANE)
            info["points"] = {
                "train": torch.cat([data.x_train, data.y_train[:, None]], 1).cpu().tolist(),
                "test": torch.cat([data.x_test, data.y_test[:, None]], 1).cpu().tolist(),
            }
        return info


def _finite(v: float) -> float | None:
    return v if v == v and abs(v) != float("inf") else None
