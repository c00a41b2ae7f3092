"""A dropout sweep: K copies of one MLP, one per drop probability p, trained at once.

    sw = Sweep(parse_config(SWEEP_PRESET))       # p = 0, 0.1, ..., 0.9 by default
    sw.step(200); sw.result()                    # a snapshot while it trains
    sweep(parse_config(SWEEP_PRESET), steps=SWEEP_STEPS)   # or all in one call

All K models start from the same initial weights (the ones a Run of the same config
draws), see the same batches in the same order (a Run's batch order) and use the same
optimizer; only p differs. They are one batched computation: layer l's weights are
stacked as W (K, in, out) and biases as b (K, 1, out), a hidden layer is
    h = act(baddbmm(b, x, W))        x: (K, B, in) -> h: (K, B, out)
and model k's dropout multiplies by a real Bernoulli(1 - p_k) mask, drawn from the
sweep's own seeded generator, scaled by 1 / (1 - p_k) (0 for p_k = 1: zeros, no NaN).
The loss is the sum over k of each model's mean loss, so each model's gradient is its
own; the optimizers (Adam, SGD) act element by element, so one optimizer over the
stacked tensors is K independent optimizers. With p = 0 a model trains as a Run with
p = 0 does (tests/test_sweep.py checks that the losses agree).

Supported: MLPs (any activation, either placement) on any dataset, dropout kind
'dropout' or 'dropout2d' (the same thing on an MLP). Not supported: BatchNorm,
AlphaDropout, CNNs (ValueError naming the field). model.p is ignored: model k uses p_k
in every hidden layer.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import Limits, RunConfig
from .datasets import Batches, make_dataset, plane_grid
from .activations import ACTIVATIONS
from .network import Net
from .pacing import checkpoint
from .runstate import Thinned, make_optimizer, pick_device

DEFAULT_PS = tuple(round(0.1 * i, 1) for i in range(10))  # 0.0, 0.1, ..., 0.9
MAX_MODELS = 16
MAX_POINTS = 1_000  # curve points kept; thinned 2:1 when full

# Few noisy points (50 to train on), a wide net and Adam: without dropout it memorises the
# noise and its test loss climbs (1.17 after SWEEP_STEPS steps, on this seed, with the
# default ps); the lowest test loss is at p = 0.5 (0.39), p = 0.9 already underfits (0.62),
# and p = 1 learns nothing. The masks depend on the whole list ps, so other ps move these.
SWEEP_PRESET = {
    "data": {"dataset": "xor", "n_points": 100, "noise": 0.35, "train_fraction": 0.5, "seed": 0},
    "model": {"kind": "mlp", "hidden": [64, 64], "activation": "relu", "p": [0.5, 0.5]},
    "train": {"optimizer": "adam", "lr": 0.003, "batch_size": 50, "device": "cpu"},
}
SWEEP_STEPS = 500  # optimizer steps the preset's lesson trains for


def _check_ps(ps) -> list[float]:
    ps = [float(p) for p in ps]
    if not 1 <= len(ps) <= MAX_MODELS:
        raise ValueError(f"number of models has to be between 1 and {MAX_MODELS}, but got {len(ps)}")
    for p in ps:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return ps


def _check_supported(cfg: RunConfig) -> None:
    m = cfg.model
    for field, value, ok in (("model.kind", m.kind, ("mlp",)),
                             ("model.batchnorm", m.batchnorm, ("none",)),
                             ("model.dropout_kind", m.dropout_kind, ("dropout", "dropout2d"))):
        if value not in ok:
            raise ValueError(f"a sweep supports {field} in {ok}, but got {value!r}")


class Sweep:
    """K = len(ps) models of cfg's MLP trained side by side, model k with drop probability
    ps[k] in every hidden layer. step(n) trains; result() reports. Every `every` steps the
    curves get a point: each model's eval-mode loss on the whole training and test sets
    and its mean dropout-mode batch loss since the previous point."""

    def __init__(self, cfg: RunConfig, ps=DEFAULT_PS, every: int = 10, limits: Limits | None = None):
        _check_supported(cfg)
        if not 1 <= every <= 10_000:
            raise ValueError(f"every has to be between 1 and 10000, but got {every}")
        self.cfg, self.ps, self.every = cfg, _check_ps(ps), every
        self.limits = limits or Limits()
        self.device = dev = pick_device(cfg.train.device)
        seed, K = cfg.data.seed, len(self.ps)
        data = make_dataset(cfg.data)
        self.data = data.to(dev)
        self.x_train, self.x_test = self.data.x_train.flatten(1), self.data.x_test.flatten(1)
        net = Net(cfg.model, tuple(data.x_train.shape[1:]), data.n_classes)
        net.init_weights(torch.Generator().manual_seed(seed))  # what a Run of cfg draws
        self.n_out = net.n_out
        linears = [b[0] for b in net.blocks] + [net.head]
        # model k's copy of each Linear: W[l][k] = weight.T (in, out), b[l][k] = bias (1, out)
        self.W = [m.weight.detach().T.to(dev).expand(K, -1, -1).contiguous().requires_grad_() for m in linears]
        self.b = [m.bias.detach().to(dev).expand(K, 1, -1).contiguous().requires_grad_() for m in linears]
        self.act = ACTIVATIONS[cfg.model.activation].module()
        self.drop_first = cfg.model.placement == "before_activation"
        p = torch.tensor(self.ps, device=dev)
        self.keep = (1 - p).view(K, 1, 1)
        self.scale = torch.where(p < 1, 1 / (1 - p).clamp_min(1e-12), torch.zeros_like(p)).view(K, 1, 1)
        self._drop_gen = torch.Generator(dev).manual_seed(seed + 1)
        self._batches = Batches(len(self.x_train), cfg.train.batch_size, seed + 2, dev)  # a Run's order
        t = cfg.train
        self.opt = make_optimizer(t.optimizer, self.W + self.b, t.lr, t.weight_decay)
        self.step_count = 0
        self._batch_loss_sum = torch.zeros(K, device=dev)
        self._since = 0
        self._points = Thinned(MAX_POINTS)  # (step, (5, K) metrics), on the device
        self._record()

    # ---- the batched network ---------------------------------------------------------
    def _drop(self, h: torch.Tensor) -> torch.Tensor:
        """Model k's dropout on h (K, B, F): h * Bernoulli(1 - p_k) / (1 - p_k)."""
        u = torch.rand(h.shape, generator=self._drop_gen, device=h.device)
        return h * u.lt_(self.keep).mul_(self.scale)  # in place: 0/1 -> 0 or 1/(1-p_k)

    def logits(self, x: torch.Tensor, train: bool = False, hidden: list | None = None) -> torch.Tensor:
        """Every model's logits for x (N, *input): (K, N) for one output, (K, N, C) for
        classes. train=True applies dropout with fresh masks from the sweep's generator.
        If `hidden` is a list, each hidden layer's output (K, N, width) is appended to it.
        Engine-internal: returns a tensor."""
        K = len(self.ps)
        h = x.flatten(1).expand(K, -1, -1)
        for W, b in zip(self.W[:-1], self.b[:-1]):
            h = torch.baddbmm(b, h, W)
            if self.drop_first:
                h = self.act(self._drop(h) if train else h)
            else:
                h = self.act(h)
                h = self._drop(h) if train else h
            if hidden is not None:
                hidden.append(h)
        out = torch.baddbmm(self.b[-1], h, self.W[-1])
        return out.squeeze(-1) if self.n_out == 1 else out

    def losses(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each model's mean loss (K,): binary cross-entropy for one logit, else cross-entropy."""
        K = logits.shape[0]
        if self.n_out == 1:
            return F.binary_cross_entropy_with_logits(logits, y.expand(K, -1), reduction="none").mean(1)
        per = F.cross_entropy(logits.reshape(-1, self.n_out), y.repeat(K), reduction="none")
        return per.view(K, -1).mean(1)

    # ---- training --------------------------------------------------------------------
    def step(self, n: int = 1) -> None:
        """n optimizer steps for all K models (one batched forward/backward each)."""
        if n < 0:
            raise ValueError(f"number of steps has to be at least 0, but got {n}")
        if self.step_count + n > self.limits.max_steps:
            raise ValueError(f"a sweep may train {self.limits.max_steps} steps, "
                             f"but got {self.step_count} + {n}")
        for _ in range(n):
            idx = self._batches.next()
            x = self.x_train if idx is None else self.x_train.index_select(0, idx)
            y = self.data.y_train if idx is None else self.data.y_train.index_select(0, idx)
            per_model = self.losses(self.logits(x, train=True), y)
            self.opt.zero_grad(set_to_none=True)
            per_model.sum().backward()
            self.opt.step()
            self._batch_loss_sum += per_model.detach()
            self._since += 1
            self.step_count += 1
            if self.step_count % self.every == 0:
                self._record()
            checkpoint()

    @torch.no_grad()
    def _metrics(self) -> torch.Tensor:
        """(5, K): eval-mode train loss, test loss, test accuracy, train accuracy, and the
        mean dropout-mode batch loss since the last point (NaN if none)."""
        d = self.data
        lt, lv = self.logits(self.x_train), self.logits(self.x_test)
        batch = (self._batch_loss_sum / self._since if self._since
                 else torch.full_like(self._batch_loss_sum, math.nan))
        return torch.stack([self.losses(lt, d.y_train), self.losses(lv, d.y_test),
                            self._accuracy(lv, d.y_test), self._accuracy(lt, d.y_train), batch])

    def _accuracy(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hits = (logits > 0).float() == y if self.n_out == 1 else logits.argmax(-1) == y
        return hits.float().mean(1)

    def _record(self) -> None:
        self._latest = point = (self.step_count, self._metrics())
        self._batch_loss_sum.zero_()
        self._since = 0
        self._points.add(point)

    # ---- reporting -----------------------------------------------------------------------
    @torch.no_grad()
    def boundaries(self, size: int | None = None) -> list[list[list[float]]]:
        """Each model's eval-mode P(class 1) over the size x size input plane: K grids of
        size rows (y) x size columns (x), Plotly heatmap order. 2D datasets only."""
        if self.n_out != 1:
            raise ValueError(f"decision boundaries need a 2D dataset, but got {self.cfg.data.dataset!r}")
        size = size or self.limits.grid_size
        grid = plane_grid(size).to(self.device)
        return torch.sigmoid(self.logits(grid)).view(len(self.ps), size, size).cpu().tolist()

    def result(self, boundaries: bool = False) -> dict:
        """A JSON-able snapshot (K = len(ps), M curve points):
            {"step", "ps": [K], "train_loss": [K], "test_loss": [K], "test_acc": [K],
             "train_acc": [K], "batch_loss": [K] (mean dropout-mode loss of the steps
             since the previous curve point; None at step 0), "best_p" (lowest test loss),
             "curve": {"step": [M], "train_loss": [K][M], "test_loss": [K][M],
                       "test_acc": [K][M], "batch_loss": [K][M]},
             "boundaries": [K][size][size] (only with boundaries=True)}
        Losses and accuracies are measured in eval mode on the whole split, except
        batch_loss. Measuring changes nothing in the training."""
        latest = self._latest
        if latest[0] != self.step_count:  # steps since the last curve point: measure now
            latest = (self.step_count, self._metrics())
        points = self._points if self._points[-1][0] == latest[0] else self._points + [latest]
        stacked = torch.stack([m for _, m in points]).cpu()  # (M, 5, K)
        curves = [[[_finite(v) for v in row] for row in stacked[:, i, :].T.tolist()] for i in range(5)]
        now = [[_finite(v) for v in row] for row in latest[1].cpu().tolist()]
        test = now[1]
        best = min(range(len(self.ps)), key=lambda k: math.inf if test[k] is None else test[k])
        out = {
            "step": self.step_count, "ps": list(self.ps),
            "train_loss": now[0], "test_loss": now[1], "test_acc": now[2], "train_acc": now[3],
            "batch_loss": now[4], "best_p": self.ps[best],
            "curve": {"step": [s for s, _ in points], "train_loss": curves[0], "test_loss": curves[1],
                      "test_acc": curves[2], "batch_loss": curves[4]},
        }
        if boundaries:
            out["boundaries"] = self.boundaries()
        return out


def sweep(cfg: RunConfig, ps=DEFAULT_PS, steps: int = SWEEP_STEPS, every: int = 10,
          boundaries: bool = False) -> dict:
    """Train len(ps) models of cfg, one per drop probability, for `steps` steps at once;
    returns Sweep.result() (per-p final losses, accuracies and loss curves)."""
    sw = Sweep(cfg, ps, every=every)
    sw.step(steps)
    return sw.result(boundaries=boundaries)


def _finite(v: float) -> float | None:
    return v if v == v and abs(v) != math.inf else None



class SeedSweep:
    """Copies of one MLP config trained at once, one per (placement, seed): copy j*S + k
    (S = len(seeds)) has placement placements[j] and starts as a Run of cfg with data.seed
    = seeds[k] would start: its own data sample, initial weights and batch order. Every
    copy uses cfg's activation and p per layer. The masks come from one generator seeded
    by seeds[0] (they are not a Run's masks), drawn once per seed and shared by that
    seed's copies of every placement: the copies of one seed see the same data, weights,
    batches and masks, and differ only in the placement. A paired comparison, seed by seed.

    placements defaults to [cfg.model.placement]. The batched step is Sweep's, with the
    data stacked per copy: x (K, N, in). Same support as Sweep: MLPs without BatchNorm,
    dropout kind 'dropout' or 'dropout2d'."""

    def __init__(self, cfg: RunConfig, seeds, placements=None, limits: Limits | None = None):
        _check_supported(cfg)
        seeds = [int(s) for s in seeds]
        placements = list(placements or [cfg.model.placement])
        for pl in placements:
            if pl not in ("after_activation", "before_activation"):
                raise ValueError(f"placement has to be after_activation or before_activation, but got {pl!r}")
        if not 1 <= len(seeds) * len(placements) <= MAX_MODELS:
            raise ValueError(f"number of models has to be between 1 and {MAX_MODELS}, "
                             f"but got {len(seeds)} seeds x {len(placements)} placements")
        self.cfg, self.seeds, self.placements = cfg, seeds, placements
        self.limits = limits or Limits()
        self.device = dev = pick_device(cfg.train.device)
        datas, linears = [], []
        for s in seeds:
            data = make_dataset(cfg.data.model_copy(update={"seed": s}))
            net = Net(cfg.model, tuple(data.x_train.shape[1:]), data.n_classes)
            net.init_weights(torch.Generator().manual_seed(s))  # what a Run of that seed draws
            datas.append(data.to(dev))
            linears.append([b[0] for b in net.blocks] + [net.head])
        self.n_out = net.n_out
        J = len(placements)
        stack = lambda ts: torch.stack(ts).repeat(J, *([1] * ts[0].dim())).to(dev)  # noqa: E731
        self.x_train = stack([d.x_train.flatten(1) for d in datas])  # (K, N, in)
        self.x_test = stack([d.x_test.flatten(1) for d in datas])
        self.y_train = stack([d.y_train for d in datas])             # (K, N)
        self.y_test = stack([d.y_test for d in datas])
        self.W = [stack([ls[i].weight.detach().T for ls in linears]).requires_grad_() for i in range(len(linears[0]))]
        self.b = [stack([ls[i].bias.detach().unsqueeze(0) for ls in linears]).requires_grad_() for i in range(len(linears[0]))]
        self.act = ACTIVATIONS[cfg.model.activation].module()
        self.before = torch.tensor([pl == "before_activation" for pl in placements for _ in seeds], device=dev).view(-1, 1, 1)
        self.ps = [float(p) for p in cfg.model.p]
        self._drop_gen = torch.Generator(dev).manual_seed(seeds[0] + 1)
        self._batches = [Batches(self.x_train.shape[1], cfg.train.batch_size, s + 2, dev) for s in seeds]
        t = cfg.train
        self.opt = make_optimizer(t.optimizer, self.W + self.b, t.lr, t.weight_decay)
        self.step_count = 0

    def _mask(self, shape, p: float) -> torch.Tensor:
        """One scaled mask per seed, Bernoulli(1 - p) / (1 - p) (0 for p = 1), repeated for
        every placement: (K, B, F)."""
        S = len(self.seeds)
        u = torch.rand((S, *shape[1:]), generator=self._drop_gen, device=self.device)
        m = u.lt_(1 - p).mul_(1 / (1 - p) if p < 1 else 0.0)
        return m.repeat(len(self.placements), 1, 1)

    def logits(self, x: torch.Tensor, train: bool = False) -> torch.Tensor:
        """Every copy's logits for its own inputs x (K, N, in): (K, N) or (K, N, C).
        train=True applies dropout, before or after the activation as each copy's
        placement says."""
        h = x
        for W, b, p in zip(self.W[:-1], self.b[:-1], self.ps):
            h = torch.baddbmm(b, h, W)
            if not train or p == 0:
                h = self.act(h)
                continue
            m = self._mask(h.shape, p)
            h = torch.where(self.before, self.act(h * m), self.act(h) * m)
        out = torch.baddbmm(self.b[-1], h, self.W[-1])
        return out.squeeze(-1) if self.n_out == 1 else out

    def losses(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each copy's mean loss (K,) against its own labels y (K, N)."""
        if self.n_out == 1:
            return F.binary_cross_entropy_with_logits(logits, y, reduction="none").mean(1)
        per = F.cross_entropy(logits.reshape(-1, self.n_out), y.reshape(-1), reduction="none")
        return per.view(y.shape).mean(1)

    def step(self, n: int = 1) -> None:
        """n optimizer steps for every copy, each on a batch of its own data."""
        if n < 0 or self.step_count + n > self.limits.max_steps:
            raise ValueError(f"number of steps has to be between 0 and {self.limits.max_steps - self.step_count}, "
                             f"but got {n}")
        J = len(self.placements)
        rows = torch.arange(len(self.seeds) * J, device=self.device).unsqueeze(1)
        for _ in range(n):
            checkpoint()
            idx = [b.next() for b in self._batches]
            if idx[0] is None:
                x, y = self.x_train, self.y_train
            else:
                idx = torch.stack(idx).repeat(J, 1)  # (K, B): a seed's batch, for every placement
                x, y = self.x_train[rows, idx], self.y_train[rows, idx]
            loss = self.losses(self.logits(x, train=True), y).sum()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self.step_count += 1

    @torch.no_grad()
    def result(self) -> dict:
        """Per copy (K = placements x seeds, placement-major), in eval mode on its whole
        splits: {"step", "placement": [K], "seed": [K], "train_loss", "test_loss",
        "test_acc", "train_acc": [K]}."""
        lt, lv = self.logits(self.x_train), self.logits(self.x_test)

        def acc(lg, y):
            hits = (lg > 0).float() == y if self.n_out == 1 else lg.argmax(-1) == y
            return hits.float().mean(1)

        rows = [self.losses(lt, self.y_train), self.losses(lv, self.y_test), acc(lv, self.y_test), acc(lt, self.y_train)]
        train_loss, test_loss, test_acc, train_acc = [[_finite(v) for v in r.cpu().tolist()] for r in rows]
        return {"step": self.step_count, "placement": [pl for pl in self.placements for _ in self.seeds],
                "seed": self.seeds * len(self.placements), "train_loss": train_loss,
                "test_loss": test_loss, "test_acc": test_acc, "train_acc": train_acc}
