"""What the slow panels of a frame show, each kind in one batched pass over the runs
that need it: weights (whole theta rows), the decision boundary (the eval-mode
network's, or the thinned network of the run's last masks), a watched neuron's map;
and each run's masks of its last step."""
from __future__ import annotations

import torch

from ..datasets import plane_grid
from ..regression_data import line_grid
from . import mc
from .forward import Network
from .handle import RunHandle
from .history import Records
from .tables import Tables


class Views:
    def __init__(self, net: Network, records: Records):
        self.net, self.records = net, records
        self.shape, self.store = net.shape, net.store
        self._grids: dict[int, torch.Tensor] = {}
        self._line: torch.Tensor | None = None

    def grid(self, size: int) -> torch.Tensor:
        if size not in self._grids:
            self._grids[size] = plane_grid(size).to(self.store.device)
        return self._grids[size]

    def last_masks(self, state: RunHandle) -> list[torch.Tensor | None]:
        """Each layer's mask in the run's last step, (B, *units) bool (True = kept), or
        None where that step drew none (eval mode, p = 0, or no step yet)."""
        rec, r = self.records.of(state.row)
        if rec is None:
            return [None] * self.shape.L
        layers, _, counted = rec
        return [None if mask is None or not counted[r, l] else (mask[:, r] if self.shape.cnn else mask[r]) > 0
                for l, (_, mask, _) in enumerate(layers)]

    def shows_thinned(self, state: RunHandle) -> bool:
        """The run asks for its thinned network's boundary and its last step drew a mask
        (else frames show the eval-mode boundary)."""
        if state.view != "thinned":
            return False
        rec, r = self.records.of(state.row)
        return rec is not None and bool(rec[2][r].any())

    def keeps(self, states: list[RunHandle]) -> list[torch.Tensor]:
        """Per layer, (K', *noise) bool: each run's mask of its shown example in its last
        step (all kept in a layer that drew none)."""
        masks = [self.last_masks(s) for s in states]
        dev = self.store.device
        return [torch.stack([torch.ones(self.shape.noise_shape[l], dtype=torch.bool, device=dev) if m[l] is None
                             else m[l][0] for m in masks]) for l in range(self.shape.L)]

    def band(self, states: list[RunHandle]) -> dict[str, torch.Tensor]:
        """A regression's function panel: each run's MC band over the line (mc.LINE
        points across the plane), its cfg.train.mc_passes passes, as band_* fields."""
        if self._line is None:
            self._line = line_grid(mc.LINE).to(self.store.device)
        out = mc.band(self.net, [s.row for s in states], self._line,
                      [s.cfg.train.mc_passes for s in states])
        return {f"band_{name}": v for name, v in out.items()}

    def extras(self, t: Tables, states: list[RunHandle], size: int, replay: list | None = None) -> dict:
        """Weights, the decision boundary each run shows and watched neurons' maps.
        replay: one run's masks of a past step (per layer, bool of the mask's shape, None
        where that step drew none): its thinned network is those masks on today's weights."""
        dev = self.store.device
        fields = {"theta": self.store.theta.detach().index_select(0, torch.tensor([s.row for s in states], device=dev))}
        if self.shape.regression:
            return {**fields, **self.band(states)}
        if self.shape.key.n_out != 1:
            return fields
        grid = self.grid(size)
        if replay is None:
            thinned = [s for s in states if self.shows_thinned(s)]
        else:
            thinned = [s for s in states if s.view == "thinned" and any(m is not None for m in replay)]
        plain = [s for s in states if s not in thinned or s.watch is not None]
        boundary = torch.zeros(len(states), len(grid), device=dev)
        pos = {id(s): i for i, s in enumerate(states)}
        if plain:
            idx = torch.tensor([s.row for s in plain], device=dev)
            hidden: list = []
            prob = torch.sigmoid(self.net.forward(t, grid.expand(len(plain), -1, -1), rows=idx, hidden=hidden))
            shown = [j for j, s in enumerate(plain) if s not in thinned]
            if shown:
                boundary.index_copy_(0, torch.tensor([pos[id(plain[j])] for j in shown], device=dev),
                                     prob.index_select(0, torch.tensor(shown, device=dev)))
            watched = [(j, s) for j, s in enumerate(plain) if s.watch is not None]
            if watched:
                fields["neuron"] = torch.stack([hidden[s.watch[0]][j, :, s.watch[1]] for j, s in watched])
        if thinned:
            idx = torch.tensor([s.row for s in thinned], device=dev)
            keeps = self.keeps(thinned) if replay is None else [
                (torch.ones(self.shape.noise_shape[l], dtype=torch.bool, device=dev) if m is None else m)[None]
                for l, m in enumerate(replay)]
            prob = torch.sigmoid(self.net.forward(t, grid.expand(len(thinned), -1, -1), rows=idx, keeps=keeps))
            boundary.index_copy_(0, torch.tensor([pos[id(s)] for s in thinned], device=dev), prob)
        fields["boundary"] = boundary
        return fields
