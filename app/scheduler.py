"""The shared trainer: one thread trains every run of this process, bucket by bucket.

    trainer = Trainer(limits, serving)
    pace = trainer.add(state, sink)       # the run joins the bucket of its shape
    trainer.play(state, until=3000); trainer.pause(state); trainer.step(state, 10)
    trainer.change(state, SetP(layer=0, value=0.3))   # a live change, as a value
    trainer.reset(state)
    trainer.replay(state, 512)            # a paused run shows one of its last 1,000 steps
    trainer.remove(state)

Which bucket steps next, which of its runs take part and when frames go out is
app/turns.py's; a run's pacing is app/pace.py's; its frames app/frame_pass.py's.

Socket threads never train and never touch a bucket: every change goes through call(),
which runs a function on this thread between two steps and returns its result. Calls
take at most CALLS_SLICE_S between two turns (in order; at least one), so that a burst
of them (a dozen runs configured at once, each with its first frame) is interleaved
with the buckets' turns instead of holding every run still until it is through.
Lesson work runs in turns this thread hands it (job(), app/jobs.py); at most
serving.max_jobs run at once in the process; the next is refused ("busy, retry")
rather than queued.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable

from model_server import memory
from model_server.config import Limits, RunChange
from model_server.pacing import yielding
from model_server.runstate import RunState

from .errors import JobsBusy
from .frame_pass import Frames
from .jobs import Job
from .pace import IDLE_WAIT_S, Pace, Sending, Sink
from .settings import Serving
from .turns import Turns

log = logging.getLogger("dropout.trainer")

CALLS_SLICE_S = 0.005   # calls from other threads run this long at most between two turns


class Trainer:
    def __init__(self, limits: Limits, serving: Serving, sending: Sending = contextlib.nullcontext):
        """sending: the context each pass of frames is sent in (app.reader.Reader.hold:
        the clients' acknowledgements are read once the pass has written every frame)."""
        self.limits, self.serving = limits, serving
        self.paces: dict[int, Pace] = {}          # id(state) -> its pace
        self.frames = Frames(limits, serving, sending)
        self.turns = Turns(limits, serving, self.paces, self.frames)
        self._job_slots = threading.BoundedSemaphore(serving.max_jobs)
        self._calls: collections.deque[tuple[Callable[[], Any], Future]] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._next_tick = 0.0                     # the next housekeeping
        self._last_tick = time.perf_counter()
        self.beat = time.monotonic()              # when its loop last came round (app/watchdog.py)
        self.thread = threading.Thread(target=self._loop, name="trainer", daemon=True)
        self.thread.start()

    @property
    def buckets(self):
        """(shape, shard) -> the record of that bucket (app/buckets.py)."""
        return self.turns.buckets

    # ---- calls from other threads -----------------------------------------------------------
    def call(self, fn: Callable[[], Any], timeout: float | None = 60) -> Any:
        """Run fn() on the trainer's thread between two steps; its result or exception."""
        if threading.current_thread() is self.thread or not self.thread.is_alive():
            return fn()  # (a stopped trainer trains nothing: no step can interleave)
        future: Future = Future()
        self._calls.append((fn, future))
        self._wake.set()
        return future.result(timeout)

    def job(self, fn: Callable[[Any], Any], prepare: Callable[[], Any] = lambda: None,
            cancelled: Callable[[], bool] = lambda: False) -> Any:
        """Run fn(prepare()) (lesson work: an experiment, sweep steps) on the calling
        thread, in the turns this trainer gives it (app/turns.py); its result or
        exception. Raises JobsBusy, before prepare(), when serving.max_jobs jobs are
        already running. prepare() runs outside the turns (it may call()). cancelled():
        True once nobody waits for the result; the work then stops at its next checkpoint
        (JobCancelled)."""
        if threading.current_thread() is self.thread or not self.thread.is_alive():
            return fn(prepare())  # nothing else trains meanwhile
        if not self._job_slots.acquire(blocking=False):
            raise JobsBusy(f"the server is busy with {self.serving.max_jobs} lesson experiments; "
                           "retry in a few seconds")
        job = Job(self._wake.set, cancelled)
        try:
            ready = prepare()
            def enter() -> None:  # it starts level with the others
                self.turns.jobs[job] = self.turns.vnow
            self.call(enter)
            job.wait_turn()
            with yielding(job.checkpoint):
                return fn(ready)
        finally:
            job.finish()
            self._job_slots.release()

    def add(self, state: RunState, sink: Sink) -> Pace:
        def join() -> Pace:
            self.turns.buckets.join(state, self.turns.vnow)
            pace = self.paces[id(state)] = Pace(state, sink, self.serving)
            self.frames.owe(pace)  # the untrained network's first frame
            return pace
        return self.call(join)

    def remove(self, state: RunState) -> None:
        def leave() -> None:
            pace = self.paces.pop(id(state), None)
            if pace is not None and pace.owed_done is not None and not pace.owed_done.done():
                pace.owed_done.set_result(state.step_count)
            bucket = state.bucket
            if bucket is None:
                return
            bucket.leave(state)
            if not bucket.runs:
                self.turns.buckets.drop(self.turns.buckets.of(bucket))
            else:
                bucket.shrink()
            memory.give_back()  # freed rows back to the system (rate-limited)
        self.call(leave)

    def play(self, state: RunState, until: int | None = None) -> None:
        def go() -> None:
            pace = self._pace(state)
            if pace.finished:
                raise RuntimeError(pace.finished)
            pace.until, pace.replay = until, None
            if not pace.playing:
                pace.playing, pace.credit, pace.clock = True, 0.0, time.perf_counter()
                pace.last_frame_at = pace.clock  # (the frame floor counts from here)
        self.call(go)

    def pause(self, state: RunState) -> bool:
        """Stop playing; True if it was playing (a complete frame of this step follows)."""
        def stop() -> bool:
            pace = self._pace(state)
            was, pace.playing = pace.playing, False
            if was:
                self.frames.owe(pace)
            return was
        return self.call(stop)

    def step(self, state: RunState, n: int) -> int:
        """Train n steps now (the run is paused); the step count when they are done.
        One 'step' event per run at a time: a second one while the first still trains is
        refused (RuntimeError), so no caller is ever left waiting on a replaced promise;
        refused at once on the caller's thread (a flood of them queued for the trainer
        made it and every bystander wait on the interpreter). The run leaving (its client
        gone) answers the waiting caller at once."""
        pace = self._pace(state)
        if not pace.stepping.acquire(blocking=False):
            raise RuntimeError(f"the previous 'step' of this run is still training: {pace.owed} of its "
                               "steps to go; wait for its answer before sending the next")

        def ask() -> Future:
            self._pace(state)  # (still there)
            pace.owed = min(n, self.limits.max_steps - state.step_count)
            pace.owed_done = Future()
            if pace.owed == 0:
                pace.owed_done.set_result(state.step_count)
            return pace.owed_done
        try:
            return self.call(ask).result(timeout=600)
        finally:
            pace.stepping.release()

    def replay(self, state: RunState, step: int) -> tuple[int, int] | None:
        """Show a past step of a paused run: its frame ("replay": true) goes out now if
        the client has taken the last one, else as soon as it has. Returns the steps
        that can be replayed, (first, last) (None before the first step); a step outside
        them shows nothing."""
        def show() -> tuple[int, int] | None:
            pace = self._pace(state)
            if pace.playing or pace.owed:
                raise RuntimeError("the run is training: pause it to replay a step")
            span = state.bucket.timeline(state)
            if span is not None and span[0] <= step <= span[1]:
                pace.replay = step
                self.frames.send_replay(pace)
            return span
        return self.call(show)

    def change(self, state: RunState, change: RunChange, frame: bool = False) -> None:
        """Apply a live change (a value: a LiveChange's change, RunState.apply) between
        two steps; frame: owe a complete frame."""
        def apply() -> None:
            state.apply(change)
            self._changed(state, frame)
        self.call(apply)

    def reset(self, state: RunState, frame: bool = False) -> None:
        """Fresh weights and history for the run (RunState.reset) between two steps."""
        def apply() -> None:
            state.reset()
            self._changed(state, frame)
        self.call(apply)

    def _changed(self, state: RunState, frame: bool) -> None:
        pace = self.paces.get(id(state))
        if pace is not None:
            pace.next_extras = 0.0  # the change shows in the next frame's slow panels too
            if frame:
                self.frames.owe(pace)

    def set_speed(self, state: RunState, speed: float, frame: bool = False) -> None:
        """frame: owe a complete frame (a paused run answers a change with one)."""
        def apply() -> None:
            pace = self._pace(state)
            pace.speed, pace.credit = min(speed, self.serving.max_speed), 0.0
            if frame:
                self.frames.owe(pace)
        self.call(apply)

    def _pace(self, state: RunState) -> Pace:
        pace = self.paces.get(id(state))
        if pace is None:
            raise KeyError("this run has ended (a server error); configure it again")
        return pace

    def wake(self) -> None:
        """Something changed for a sink (a frame was acknowledged): look again now."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.thread.join(timeout=5)
        for job in list(self.turns.jobs):  # nobody hands out turns any more: let them finish
            job.turn.set()

    # ---- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self.beat = time.monotonic()
            try:
                self._run_calls()
                now = time.perf_counter()
                if now >= self._next_tick:
                    self._housekeeping(now)
                if not self.turns.take(now):
                    self._sleep()
            except Exception:  # a bug must not stop every run: log, drop the culprit calls, go on
                log.exception("event=trainer_error outcome=error")
                time.sleep(0.01)

    def _housekeeping(self, now: float) -> None:
        """frame_rate times a second: each playing run's playing time (its time limit),
        replayed frames owed to clients that have now taken their last frame, how far
        every bucket's ticks are spread and which buckets are below the frame floor
        (Turns.look)."""
        played, self._last_tick = min(1.0, now - self._last_tick), now
        self._next_tick = now + 1.0 / self.serving.frame_rate
        self.turns.look(played)
        for pace in self.paces.values():
            if pace.playing:
                pace.played_s += played
                if pace.played_s >= self.serving.max_run_seconds:  # the time limit
                    pace.playing = False
                    pace.sink.status("finished", pace.finished)
            if pace.replay is not None:
                self.frames.send_replay(pace)

    def _run_calls(self) -> None:
        """The calls queued, in order, for at most CALLS_SLICE_S (at least one; the rest
        after the next turn: see the module's docstring)."""
        end = time.perf_counter() + CALLS_SLICE_S
        while self._calls:
            if time.perf_counter() > end:
                return
            fn, future = self._calls.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as e:  # noqa: BLE001 - handed to the caller
                    future.set_exception(e)

    def _sleep(self) -> None:
        now = time.perf_counter()
        until = self._next_tick
        for pace in self.paces.values():
            if pace.playing or pace.owed:
                until = min(until, pace.next_due(now))
        wait = min(IDLE_WAIT_S, max(0.0, until - now))
        if wait > 0 and not self._calls:
            self._wake.wait(wait)
        self._wake.clear()
