"""Models side by side on the engine: how a lesson's recipe trains many configs at once.

    members = [Member(cfg_k, data_k, net_k) for ...]   # one engine row each
    group = Group(members)          # as many buckets as their shapes need, one code path
    group.step(200)
    group.measure(reset=True)       # (5, K): see Group.measure

A Member is a run reduced to what the engine reads (engine.handle.RunHandle): its
config, its own data and initial network, its batch order (a generator seeded as a
Run's). Its masks come from the counter of its config's seed (model_server.masks), as
a Run's do: a member is the Run of its config and data, trained beside the others.
"""
from __future__ import annotations

import numpy as np
import torch

from ..bucket import Bucket, BucketKey, key_of
from ..config import Limits, RunConfig
from ..datasets import Dataset, plane_grid
from ..network import Net
from ..pacing import checkpoint
from .handle import ConfigSettings
from .history import measure
from .noise import draw_for

CHUNK = 16   # steps per engine call (their masks and batches are drawn together)


class Member(ConfigSettings):
    """One row: a config (its p, lr, weight decay, seed), its data (on its device), its
    initial network, its noise ('dropout' masks or 'gauss' factors at its p) and the std
    of noise on its inputs. Trains in train mode; evaluations are the group's."""

    mode, view, watch = "train", "eval", None

    def __init__(self, cfg: RunConfig, data: Dataset, net: Net, limits: Limits | None = None,
                 noise: str = "dropout", input_noise: float = 0.0):
        self.noise, self.input_noise = noise, input_noise
        self.cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"eval_every": 0})})
        self.data, self._net = data, net
        self.limits = limits or Limits()
        self.n_out, self.batch, self.device = data.n_classes, cfg.train.batch_size, data.x_train.device
        self.batch_gen = torch.Generator().manual_seed(cfg.data.seed + 2)   # a Run's batch order
        self.bucket: Bucket | None = None
        self.row = -1

    def initial_net(self) -> Net:
        return self._net

    def settings_at(self, step: int) -> tuple[int, list[float], float, str]:
        return (1, self.p, self.lr, self.mode)

    def placed(self, bucket: Bucket | None, row: int) -> None:
        self.bucket, self.row = bucket, row

    def queue_eval(self, step: int, stack: torch.Tensor, column: int) -> None:
        """(A member evaluates only through Group.measure.)"""

    def take_evals(self) -> list:
        return []

    def add_history(self, point: dict) -> None:
        """(A member keeps no history: Group.measure answers.)"""


class Group:
    """Members trained side by side: one bucket per shape (BucketKey), members in the
    order given. step() trains them all; measure() and logits() answer in that order."""

    def __init__(self, members: list[Member]):
        self.members = members
        self.buckets: dict[BucketKey, Bucket] = {}
        for m in members:
            key = key_of(m)
            if key not in self.buckets:
                self.buckets[key] = Bucket(key, m.initial_net(), timeline=1)   # nobody replays a member
            self.buckets[key].join(m)
        self.step_count = 0

    def step(self, n: int = 1) -> None:
        """n optimizer steps for every member, CHUNK at a time (each chunk yields to the
        server's scheduler afterwards)."""
        while n > 0:
            chunk = min(n, CHUNK)
            for b in self.buckets.values():
                done = 0
                while done < chunk:
                    done += b.step(np.ones(len(b.runs), bool), chunk - done)
            self.step_count += chunk
            n -= chunk
            checkpoint()

    def _gather(self, per_bucket) -> torch.Tensor:
        """(..., K) in member order, from per_bucket(bucket, rows) -> (..., rows)."""
        out = None
        for b in self.buckets.values():
            idx = [i for i, m in enumerate(self.members) if m.bucket is b]
            part = per_bucket(b, [self.members[i].row for i in idx])
            if out is None:
                out = part.new_zeros((*part.shape[:-1], len(self.members)))
            out[..., idx] = part
        return out

    @torch.no_grad()
    def measure(self, reset: bool = True) -> torch.Tensor:
        """(5, K): each member's mean dropout-mode batch loss since the last reset (NaN
        if none), eval-mode test loss, test accuracy, train loss and train accuracy on
        its whole splits. reset: restart the batch-loss means."""
        def one(b: Bucket, rows: list[int]) -> torch.Tensor:
            b.history.fold()
            return measure(b.net, b.tables(), rows, reset=reset, train=True)
        return self._gather(one)

    @torch.no_grad()
    def logits(self, x: torch.Tensor, noise: bool = False, hidden: list | None = None) -> torch.Tensor:
        """Every member's logits for the same inputs x (N, *input): (K, N) or (K, N, C),
        in eval mode, or with noise=True with the masks of each member's next step
        (noise.draw_for). hidden: each layer's outputs (K, N, width)
        (one bucket only)."""
        def one(b: Bucket, rows: list[int]) -> torch.Tensor:
            xs = x.to(b.device).unsqueeze(0).expand(len(rows), *x.shape)
            masks = draw_for(b.store, b.shape, len(b.runs), x.shape[0]) if noise else None
            idx = torch.tensor(rows, device=b.device)
            if masks is not None:
                masks = [m.index_select(0, idx) for m in masks]
            return b.forward(xs, rows=idx, noise=masks, hidden=hidden).movedim(0, -1)
        return self._gather(one).movedim(-1, 0)

    @torch.no_grad()
    def logits_of(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's eval-mode logits for its own inputs x (K, N, *input)."""
        def one(b: Bucket, rows: list[int]) -> torch.Tensor:
            at = torch.tensor([i for i, m in enumerate(self.members) if m.bucket is b])
            return b.forward(x[at].to(b.device), rows=torch.tensor(rows, device=b.device)).movedim(0, -1)
        return self._gather(one).movedim(-1, 0)

    @torch.no_grad()
    def boundaries(self, size: int) -> torch.Tensor:
        """(K, size, size): each member's eval-mode P(class 1) over the input plane
        (2D sets), rows y, columns x."""
        grid = plane_grid(size)
        return torch.sigmoid(self.logits(grid)).view(len(self.members), size, size)
