"""A Run: one network training on one dataset, step by step, with live changes.

    run = Run(parse_config({...}))
    run.step(100)                      # 100 optimizer steps
    run.set_p(0, 0.5); run.set_mode("eval"); run.set_lr(0.1)   # effective at the next step
    frame = run.frame(extras=True)     # what the last step looked like (frames.Frame)
    frame, wait_s = run.advance()      # pacing: train at run.speed, a frame at most fps/s
    run.until = 3000                   # advance() stops exactly at step 3000 (run.stopped)

Runs never share random state: weights, batches and dropout masks come from the run's
own generators, so the same config and seed give the same losses and masks step for step,
whatever other runs do meanwhile. On CUDA nothing in step() waits for the device: losses,
masks and counts stay on the device and are copied only when a frame is taken.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F

from .config import Limits, RunConfig
from .datasets import PLANE, Batches, make_dataset, plane_grid
from .frames import Frame
from .network import Net, parameter_count

LOSS_RING = 16_384   # per-step losses kept on the device (frames average over them)
LOSS_FOLD = 256      # pending per-step losses are written into the ring this many at a time
AUTO_EVAL_SHARE = 0.02  # at most this share of the time goes to 'auto' test evaluations
HISTORY_POINTS = 4_000  # evaluation points kept; older ones are thinned 2:1 when full


# Below this many multiply-adds per training step a GPU loses to the CPU: a small step is
# a few dozen kernel launches of ~5-10 us each (measured on an H100: ~800 eager steps/s
# for 2-8-8-1, against ~2500-5000/s on a 2-core CPU).
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
    # fused: one kernel for all parameters, measurably faster for these small nets
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    momentum = 0.9 if name == "momentum" else 0.0
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=True)


def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy for one logit, cross-entropy for classes."""
    if logits.dim() == 1:
        return F.binary_cross_entropy_with_logits(logits, y)
    return F.cross_entropy(logits, y)


class StepLosses:
    """The training loss of every step, kept on the device: the last LOSS_RING of them.

    add() is a list append: writing each loss into a tensor (ring[i] = loss) costs ~5 us
    a step from Python, 1-2% of a small net's step. Every LOSS_FOLD steps, and before
    anything is read, the pending losses go into the ring in one stack and one copy."""

    def __init__(self, device: torch.device):
        self.ring = torch.zeros(LOSS_RING, device=device)
        self.pending: list[torch.Tensor] = []
        self.folded = 0  # steps written into the ring so far

    def add(self, loss: torch.Tensor) -> None:
        self.pending.append(loss)
        if len(self.pending) >= LOSS_FOLD:
            self._fold()

    def _fold(self) -> None:
        if not self.pending:
            return
        values = torch.stack(self.pending)
        a = self.folded % LOSS_RING
        head = min(len(values), LOSS_RING - a)  # fewer values than LOSS_RING: one wrap at most
        self.ring[a:a + head] = values[:head]
        self.ring[:len(values) - head] = values[head:]
        self.folded += len(values)
        self.pending.clear()

    def window(self, start: int, stop: int) -> torch.Tensor:
        """Losses of steps start..stop-1, oldest first (of the last LOSS_RING steps)."""
        self._fold()
        start, stop = max(start, self.folded - LOSS_RING, 0), min(stop, self.folded)
        if stop <= start:
            return self.ring[:0]
        a, b = start % LOSS_RING, stop % LOSS_RING
        if a < b or b == 0:
            return self.ring[a:b or LOSS_RING]
        return torch.cat([self.ring[a:], self.ring[:b]])

    def mean(self, start: int, stop: int) -> torch.Tensor:
        """Mean loss of steps start..stop-1 (NaN for none), as a device tensor: no sync."""
        w = self.window(start, stop)
        return w.mean() if len(w) else torch.full((), float("nan"), device=self.ring.device)


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


class Run:
    def __init__(self, cfg: RunConfig, limits: Limits | None = None):
        self.cfg = cfg
        self.limits = limits or Limits()
        shape = (1, 8, 8) if cfg.task == "digits" else (2,)
        self.device = pick_device(cfg.train.device, step_macs(cfg, shape))
        self.mode = "train"
        self.speed = self.limits.max_speed  # steps per second; max_speed = as fast as possible
        self.watch: tuple[int, int] | None = None  # a neuron whose output map frames carry
        self.view = "eval"  # which decision boundary frames carry: 'eval' or 'thinned'
        self.until: int | None = None  # advance() trains up to this step and no further
        self.reset()

    # ---- building and live changes -------------------------------------------------
    def reset(self) -> None:
        """Fresh weights and history from the current config (live changes included)."""
        cfg, dev = self.cfg, self.device
        seed = cfg.data.seed
        data = make_dataset(cfg.data)
        self.data = data.to(dev)
        self.net = Net(cfg.model, tuple(data.x_train.shape[1:]), data.n_classes)
        self.net.init_weights(torch.Generator().manual_seed(seed))
        self.params = parameter_count(self.net)
        self.net.to(dev).train(self.mode == "train")
        self._drop_gen = torch.Generator(dev).manual_seed(seed + 1)
        for d in self.net.drops:
            d.generator = self._drop_gen
        self._batches = Batches(len(data.x_train), cfg.train.batch_size, seed + 2, dev)
        t = cfg.train
        self.opt = make_optimizer(t.optimizer, self.net.parameters(), t.lr, t.weight_decay)
        self.step_count = 0
        self._losses = StepLosses(dev)
        self._masked = [0] * len(self.net.drops)  # examples that went through each mask
        self._frame_step = 0                       # step of the previous frame
        self._evals: list[tuple[int, int, torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._last_eval_step = 0
        self.history = Thinned(HISTORY_POINTS)  # {step, train_loss, test_loss, test_acc}
        self.latest_eval: dict | None = None
        self._busy_s = 0.0        # time spent inside step()
        self._busy_steps = 0
        self._step_s = 0.0        # time per step of the latest step() call (0: none yet)
        self._played_s = 0.0      # time spent playing (for the wall-time limit)
        self._clock: float | None = None
        self._credit = 0.0
        self._frame_due = False
        self._next_frame_at = 0.0
        self._next_extras = 0.0
        self._next_auto_eval = 0.0
        self.example = 0          # which example of the batch frames show

    def set_p(self, layer: int, p: float) -> None:
        if not 0 <= layer < len(self.net.drops):
            raise IndexError(f"layer has to be between 0 and {len(self.net.drops) - 1}, but got {layer}")
        self.net.drops[layer].p = p
        ps = list(self.cfg.model.p)
        ps[layer] = p
        self._update("model", p=ps)

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr
        self._update("train", lr=lr)

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.net.train(mode == "train")

    def set_speed(self, steps_per_s: float) -> None:
        self.speed = min(steps_per_s, self.limits.max_speed)
        self._credit = 0.0

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
        self._next_extras = 0.0  # show it at the next frame

    def set_view(self, view: str) -> None:
        """'eval' or 'thinned': the decision boundary frames carry (only that one is computed)."""
        if view not in ("eval", "thinned"):
            raise ValueError(f"view has to be one of eval, thinned, but got {view!r}")
        self.view = view
        self._next_extras = 0.0  # show it at the next frame

    def _update(self, part: str, **values) -> None:
        section = getattr(self.cfg, part).model_copy(update=values)
        self.cfg = self.cfg.model_copy(update={part: section})

    def describe(self) -> dict:
        """What a client needs once per configure: the full config, sizes, the points."""
        data = self.data
        info = {
            "config": self.cfg.model_dump(), "device": self.device.type,
            "sizes": [self.data.input_dim] + list(self.cfg.model.hidden) + [self.net.n_out],
            "params": self.params, "task": self.cfg.task,
            "train_size": len(data.x_train), "test_size": len(data.x_test),
        }
        if self.cfg.task == "binary":
            info["plane"] = list(PLANE)
            info["points"] = {
                "train": torch.cat([data.x_train, data.y_train[:, None]], 1).cpu().tolist(),
                "test": torch.cat([data.x_test, data.y_test[:, None]], 1).cpu().tolist(),
            }
        return info

    # ---- training --------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        """n optimizer steps in the current mode (eval mode: dropout off, weights still learn),
        fewer if the run's step limit comes first."""
        n = max(0, min(n, self.limits.max_steps - self.step_count))
        t0 = time.perf_counter()
        data, net, opt = self.data, self.net, self.opt
        masking = [i for i, d in enumerate(net.drops) if net.training and d.p > 0]
        every, losses = self.cfg.train.eval_every, self._losses
        for _ in range(n):
            idx = self._batches.next()
            x = data.x_train if idx is None else data.x_train.index_select(0, idx)
            y = data.y_train if idx is None else data.y_train.index_select(0, idx)
            loss = loss_fn(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.add(loss.detach())
            self.step_count += 1
            for i in masking:
                self._masked[i] += len(x)
            if every and self.step_count % every == 0:
                self._evaluate()
        spent = time.perf_counter() - t0
        self._busy_s += spent
        self._busy_steps += n
        if n:
            self._step_s = spent / n

    @torch.no_grad()
    def _evaluate(self) -> None:
        """Test loss and accuracy in eval mode; kept on the device until a frame."""
        data = self.data
        with self.net.scratch(train=False):
            logits = self.net(data.x_test)
        loss = loss_fn(logits, data.y_test)
        hits = (logits > 0).float() == data.y_test if logits.dim() == 1 else logits.argmax(1) == data.y_test
        train_loss = self._losses.mean(self._last_eval_step, self.step_count)
        self._evals.append((self.step_count, self._last_eval_step, train_loss, loss, hits.float().mean()))
        self._last_eval_step = self.step_count

    def losses(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Training losses of steps start..stop-1 (of the last LOSS_RING steps), on the
        device: often a view of the ring, which later steps overwrite (clone to keep)."""
        return self._losses.window(start, self.step_count if stop is None else stop)

    @property
    def finished(self) -> str | None:
        """Why this run may not train further, or None."""
        if self.step_count >= self.limits.max_steps:
            return f"step limit reached: a run may train {self.limits.max_steps} steps"
        if self._played_s >= self.limits.max_run_seconds:
            return f"time limit reached: a run may train {self.limits.max_run_seconds:g} s"
        return None

    @property
    def stopped(self) -> bool:
        """advance() has trained up to self.until and will train no further."""
        return self.until is not None and self.step_count >= self.until

    # ---- pacing ------------------------------------------------------------------------
    def start_clock(self) -> None:
        """Call when play starts or resumes: no catching up on the time spent paused."""
        self._clock, self._credit = time.perf_counter(), 0.0

    def advance(self, frame_ready: Callable[[], bool] = lambda: True) -> tuple[Frame | None, float]:
        """Train what is due at self.speed; return (a frame or None, seconds to wait).

        At speeds up to the frame rate every step gets its own frame (the next step waits
        until that frame is taken). Above it, steps run in short slices and a frame is
        taken at most frame_rate times a second, carrying drop counts for all steps since
        the previous one. frame_ready() is asked when a frame is due; while it says False
        (the client has not taken the last frame), training goes on and no frame is taken.
        Training stops exactly at step self.until when it is set (chunks never overshoot).
        """
        now = time.perf_counter()
        if self._clock is None:
            self.start_clock()
        rate = self.limits.frame_rate
        slow = self.speed <= rate
        self._credit = min(self._credit + (now - self._clock) * self.speed, max(1.0, self.speed / rate))
        self._played_s += now - self._clock
        self._clock = now
        if self.finished or self.stopped:
            return None, 1.0 / rate
        if slow:
            if self._credit >= 1 and not self._frame_due:
                self._credit -= 1
                self.step(1)
                self._frame_due = True
        else:
            end = now + 1.0 / (8 * rate)  # short slices: live changes wait at most this long
            while self._credit >= 1 and not self.finished and not self.stopped:
                left = end - time.perf_counter()
                if left <= 0:
                    break
                # one chunk of steps fills the time left (at the latest step time: it
                # changes with p, mode and the other runs), so the per-call overhead is
                # paid about once per slice, not every step
                per = self._step_s or left
                k = max(1, min(int(self._credit), int(left / per)))
                if self.until is not None:
                    k = min(k, self.until - self.step_count)
                self.step(k)
                self._credit -= k
            if time.perf_counter() >= self._next_frame_at and self.step_count > self._frame_step:
                self._frame_due = True
        frame = None
        if self._frame_due and frame_ready():
            t = time.perf_counter()
            self._frame_due = False
            self._next_frame_at = t + 1.0 / rate
            extras = slow or t >= self._next_extras
            if extras:
                self._next_extras = t + 1.0 / self.limits.boundary_rate
            frame = self.frame(extras=extras)
        return frame, self._wait(slow)

    def _wait(self, slow: bool) -> float:
        """Seconds until advance() has something to do (an acknowledged frame wakes the
        caller earlier)."""
        until_credit = max(0.0, (1 - self._credit) / self.speed)
        if slow:
            return 1.0 / self.limits.frame_rate if self._frame_due else until_credit
        if self._credit >= 1:
            return 0.0
        return min(until_credit, max(0.0, self._next_frame_at - time.perf_counter()))

    # ---- frames --------------------------------------------------------------------------
    def frame(self, extras: bool = False, complete: bool = False) -> Frame:
        """What the last step looked like. Copies from the device happen here, and only here.
        extras adds the slow panels: edge weights, decision boundaries, a watched neuron.
        complete (a paused run's picture, which has to agree with itself): extras, and with
        'auto' evaluation a test evaluation of this very step."""
        extras = extras or complete
        net, data, cfg = self.net, self.data, self.cfg
        k = self.example
        steps = self.step_count - self._frame_step
        header = {
            "step": self.step_count, "steps": steps, "mode": self.mode, "device": self.device.type,
            "p": [d.p for d in net.drops], "lr": self.opt.param_groups[0]["lr"],
            "speed": self.speed, "kind": cfg.model.kind, "task": cfg.task,
            "sizes": [data.input_dim] + list(cfg.model.hidden) + [net.n_out],
            "params": self.params,
            "busy_steps_per_s": self._busy_steps / self._busy_s if self._busy_s else None,
            "finished": self.finished, "t": time.time() * 1000,  # wall clock, ms: for latency
        }
        fr = Frame(header)
        if (extras and self.cfg.train.eval_every == 0 and self.step_count > self._last_eval_step
                and (complete or time.perf_counter() >= self._next_auto_eval)):
            # 'auto': test metrics refresh with the boundary, a few times a second, but
            # never costing more than AUTO_EVAL_SHARE of the time (the digits test set is
            # 899 images: evaluating it 6 times a second would slow a small CNN by ~5%).
            # The cost is this thread's CPU time: wall time also counts the moments another
            # thread held the GIL or the OS ran something else, and one such moment of
            # 0.1 s used to hold the test curve still for 5 s, and the paused picture with it.
            cpu = time.thread_time()
            self._evaluate()
            self._next_auto_eval = time.perf_counter() + (time.thread_time() - cpu) / AUTO_EVAL_SHARE
        blocks = [b for b in net.blocks if b.out is not None]
        with torch.no_grad():
            train_loss = self._losses.mean(self._frame_step, self.step_count)
            masks = [d.last_mask(k) for d in net.drops] if blocks else []
            kept = [d.take_kept() for d in net.drops]
            acts = [b.out[k] for b in blocks]
            pre = [d.input[k] for d in net.drops if d.input is not None]
            evals = self._evals
            self._evals = []
            # one batch of device -> host copies for everything small
            small = [train_loss] + [t for e in evals for t in e[2:]]
            host = torch.stack(small).cpu().tolist() if small else []
        header["train_loss"] = _finite(host[0]) if steps else None
        for i, e in enumerate(evals):
            tl, vl, acc = host[1 + 3 * i: 4 + 3 * i]
            self._add_history({"step": e[0], "train_loss": _finite(tl), "test_loss": _finite(vl),
                               "test_acc": _finite(acc)})
        header["eval"] = self.latest_eval
        header["masked"] = list(self._masked)  # examples through each layer's mask since the last frame
        for i, drop in enumerate(net.drops):
            if masks and masks[i] is not None:
                fr.add(f"mask.{i}", "bits", masks[i].reshape(-1).cpu().numpy())
            if kept[i] is not None and self._masked[i] > 0:
                fr.add(f"dropped.{i}", "u32", self._masked[i] - kept[i].reshape(-1).round().cpu().numpy())
        for i, a in enumerate(acts):
            fr.add(f"act.{i}", "q8", a.detach().float().cpu().numpy())
        for i, a in enumerate(pre):
            fr.add(f"pre.{i}", "q8", a.detach().float().cpu().numpy())
        self._masked = [0] * len(net.drops)
        self._frame_step = self.step_count
        if blocks and self.step_count:
            header["example"] = self._example_info(k)
            if cfg.task != "binary":  # the digit itself, for the image panel
                fr.add("input", "q8", data.x_train[header["example"]["index"]].reshape(-1).cpu().numpy())
        if extras:
            self._add_extras(fr)
        return fr

    def _example_info(self, k: int) -> dict:
        """Which training example the shown mask and activations belong to."""
        index = self._batches.index_of(k)
        info = {"index": index}
        if self.cfg.task == "binary":
            info["x"] = self.data.x_train[index].tolist()
            info["y"] = int(self.data.y_train[index])
        return info

    def _add_history(self, point: dict) -> None:
        self.latest_eval = point
        self.history.add(point)

    @torch.no_grad()
    def _add_extras(self, fr: Frame) -> None:
        net = self.net
        for i, w in enumerate(net.weights()):
            fr.add(f"weight.{i}", "q8", w.detach().float().cpu().numpy())
        if self.cfg.task != "binary":
            return
        grid = plane_grid(self.limits.grid_size).to(self.device)
        masks = [d.last_mask(self.example) for d in net.drops]
        fr.header["view"] = self.view
        with net.scratch(train=False):
            # the boundary on screen only (a 64-wide net spends ~1 ms on each grid): the
            # thinned network's when asked and there is one, else the eval-mode network's
            if self.view == "thinned" and any(m is not None for m in masks):
                keeps = [torch.ones(w, dtype=torch.bool, device=self.device) if m is None else m
                         for m, w in zip(masks, self.cfg.model.hidden)]
                fr.add("boundary.thinned", "p8", torch.sigmoid(net(grid, keeps)).cpu().numpy())
            else:
                fr.add("boundary.eval", "p8", torch.sigmoid(net(grid)).cpu().numpy())
            if self.watch is not None:
                layer, index = self.watch
                out = net.hidden_outputs(grid)[layer][:, index]
                fr.add("neuron", "q8", out.cpu().numpy())
                fr.header["watch"] = [layer, index]


def _finite(v: float) -> float | None:
    return v if v == v and abs(v) != float("inf") else None
