"""How one run is driven by the trainer (Pace), and where its frames and news go (Sink)."""
from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future
from typing import Callable, Protocol

from model_server.costs import forward_macs, slow_panel_examples
from model_server.frames import Frame
from model_server.runstate import RunState

from .settings import Serving

IDLE_WAIT_S = 0.05      # the longest the trainer sleeps with nothing to do (a call wakes it)

# the context a pass of frames is sent in (app.reader.Reader.hold)
Sending = Callable[[], contextlib.AbstractContextManager]


class Sink(Protocol):
    """Where a run's frames and news go (app.slot.Slot)."""
    def ready(self) -> bool: ...                      # the client has taken the last frame
    def send(self, frame: Frame) -> None: ...          # called on the trainer's thread
    def status(self, state: str, reason: str | None = None) -> None: ...
    def crashed(self) -> None: ...                    # its bucket failed: the run has ended


class Pace:
    """How one run is driven: playing or not, its speed and stop step, steps owed to a
    'step' event, and which frame it is owed."""

    def __init__(self, state: RunState, sink: Sink, serving: Serving):
        self.state, self.sink, self.serving = state, sink, serving
        self.playing = False
        self.speed = serving.max_speed
        self.until: int | None = None
        self.credit = 0.0
        self.clock = 0.0
        self.played_s = 0.0
        self.owed = 0                     # steps a 'step' event asked for
        self.owed_done: Future | None = None
        self.stepping = threading.Lock()  # held while a 'step' event of this run trains
        self.frame_due = False            # a frame is owed (slow run's step, or a complete one)
        self.complete = False             # ... and it has to be complete (paused picture)
        self.replay: int | None = None    # a past step whose frame is owed (a paused run's timeline)
        self.next_frame_at = 0.0
        self.last_frame_at = time.perf_counter()  # (the frame floor counts from its start)
        self.next_extras = 0.0
        self.plain_frames = 0             # frames since the last one with the slow panels
        self.next_auto_eval = 0.0
        self.eval_s = 0.0                 # CPU time of its 'auto' test evaluations
        self.busy_s = 0.0                 # this run's share of its buckets' step time
        self.frames_s = 0.0               # ... and of their frame passes
        self.busy_steps = 0
        # multiply-adds of this run's slow panels (the boundary grid, or a regression's band)
        self.extras_macs = forward_macs(state.cfg, slow_panel_examples(state.cfg, state.limits))

    @property
    def slow(self) -> bool:
        return self.speed <= self.serving.frame_rate

    def wants_step(self, now: float) -> bool:
        """Whether this run takes part in its bucket's next step. (A run at its step or
        time limit is never playing: the trainer stops it there.)"""
        if self.owed:
            return True
        if not self.playing:
            return False
        if self.frame_due and self.slow:
            return False  # every step its own frame: the next waits for this one
        if self.speed >= self.serving.max_speed:
            return True
        self.credit = min(self.credit + (now - self.clock) * self.speed, max(1.0, self.speed / self.serving.frame_rate))
        self.clock = now
        return self.credit >= 1

    def next_due(self, now: float) -> float:
        """When this run next wants a step (for sleeping)."""
        if not self.playing or (self.slow and self.frame_due):
            return now + IDLE_WAIT_S
        return now + max(0.0, (1 - self.credit) / self.speed)

    @property
    def finished(self) -> str | None:
        if self.state.finished:
            return self.state.finished
        if self.played_s >= self.serving.max_run_seconds:
            return f"time limit reached: a run may train {self.serving.max_run_seconds:g} s"
        return None
