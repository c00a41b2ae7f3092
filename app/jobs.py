"""Lesson work (an experiment, a sweep's steps) that runs on its event's socket thread,
but only in the turns the trainer gives it (app/scheduler.py, Trainer.job): a slice of
JOB_SLICE_S of CPU time per turn, between two model_server.pacing checkpoints."""
from __future__ import annotations

import threading
import time
from typing import Callable

from .errors import JobCancelled

JOB_SLICE_S = 0.002     # CPU time a lesson job computes per turn, at least (up to its next checkpoint)


class Job:
    """Lesson work on a socket thread that computes only in the turns the trainer gives it."""

    def __init__(self, wake: Callable[[], None], cancelled: Callable[[], bool] = lambda: False) -> None:
        self.wake = wake                  # tells a sleeping trainer that it waits for a turn
        self.cancelled = cancelled        # True once nobody waits for its result
        self.turn = threading.Event()     # set by the trainer: compute one slice
        self.back = threading.Event()     # set by the job: its slice is over (or the job is)
        self.waiting = False              # it waits for a turn: the trainer may give it one
        self.done = False
        self.cpu = 0.0                    # CPU time of its slices so far (its clock)
        self.slice_start = 0.0

    def wait_turn(self) -> None:
        self.waiting = True
        self.back.set()
        self.wake()
        self.turn.wait()
        self.turn.clear()
        self.waiting = False
        self.slice_start = time.thread_time()

    def checkpoint(self) -> None:
        """Called by the work between chunks (model_server.pacing.checkpoint). Raises
        JobCancelled when nobody waits for the result any more: the work stops there and
        gives its turns and its job slot to others."""
        used = time.thread_time() - self.slice_start
        if used >= JOB_SLICE_S:
            self.cpu += used
            self.wait_turn()
        if self.cancelled():
            raise JobCancelled("its visitor has gone")

    def finish(self) -> None:
        self.cpu += time.thread_time() - self.slice_start
        self.done = True
        self.back.set()
