"""One run in a bucket of its own: the engine as a script, a test or an experiment uses it.

    run = Run(parse_config({...}))
    run.step(100)                         # 100 optimizer steps
    run.set_p(0, 0.5); run.set_mode("eval"); run.set_lr(0.1)   # from the next step
    frame = run.frame(extras=True)        # what the last step looked like (frames.Frame)
    frame = run.replay(42)                # ... or one of its last 1,000 steps (run.timeline())
    run.net                               # a torch.nn copy of the network as it is now

The same code as the server's shared trainer (bucket.py), with one row: there is no
second engine for a run that trains alone. Reads of the run's state (cfg, data, device,
history, step_count, ...) and its live changes (set_p, set_lr, set_mode, set_watch,
set_view, reset) are RunState's.
"""
from __future__ import annotations

import numpy as np
import torch

from .bucket import Bucket, key_of
from .config import Limits, RunConfig
from .frames import Frame
from .pacing import checkpoint
from .runstate import RunState
from .snapshot import replay_frame, take_frames


class Run:
    def __init__(self, cfg: RunConfig, limits: Limits | None = None):
        self.state = RunState(cfg, limits)
        self.bucket = Bucket(key_of(self.state), self.state.initial_net())
        self.bucket.join(self.state)
        self._active = np.ones(1, bool)

    def __getattr__(self, name: str):
        # everything else is the run's own state (only called for names not found here)
        return getattr(self.__dict__["state"], name)

    def step(self, n: int = 1) -> None:
        """n optimizer steps in the current mode (eval mode: dropout off, weights still
        learn), fewer if the run's step limit comes first."""
        n = max(0, min(n, self.state.limits.max_steps - self.state.step_count))
        for _ in range(n):
            self.bucket.step(self._active)
            checkpoint()  # a long run of steps in a lesson yields to the server's scheduler

    def frame(self, extras: bool = False, complete: bool = False) -> Frame:
        """What the last step looked like. extras adds the slow panels (edge weights, the
        decision boundary on screen, a watched neuron) and, for a run that evaluates
        'auto'matically, the test set at this very step; complete is extras (the server's
        scheduler tells them apart: it rations 'auto' evaluations)."""
        s = self.state
        if (extras or complete) and s.cfg.train.eval_every == 0 and s.step_count > s.last_eval_step:
            self.bucket.evaluate([s.row])
        return take_frames(self.bucket, [s], [extras or complete], s.limits.grid_size)[0]

    def timeline(self) -> tuple[int, int] | None:
        """The steps that replay() can show, (first, last): the last TIMELINE steps."""
        return self.bucket.timeline(self.state)

    def replay(self, step: int) -> Frame:
        """A frame of a past step inside timeline(): its masks, the shown example's values
        and its loss, exactly as a frame taken right after that step showed them."""
        span = self.timeline()
        if span is None or not span[0] <= step <= span[1]:
            raise ValueError(f"step has to be in the timeline {span}, but got {step}")
        return replay_frame(self.bucket, self.state, step)

    def evaluate(self) -> None:
        """Test loss and accuracy now (they reach history with the next frame)."""
        self.bucket.evaluate([self.state.row])

    @torch.no_grad()
    def outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The run's logits for x (N, *input) in eval mode."""
        return self.bucket.forward(x.unsqueeze(0).to(self.state.device),
                                   rows=torch.tensor([self.state.row], device=self.state.device))[0]
