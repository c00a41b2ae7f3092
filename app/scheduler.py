"""The shared trainer: one thread trains every run of this process, bucket by bucket.

    trainer = Trainer(limits, serving)
    pace = trainer.add(state, sink)       # the run joins the bucket of its shape
    trainer.play(state, until=3000); trainer.pause(state); trainer.step(state, 10)
XX
    trainer.reset(state)
    trainer.replay(state, 512)            # a paused run shows one of its last 1,000 steps
    trainer.remove(state)

Runs of one shape train as one batched step (model_server.bucket). This thread decides,
step by step, which bucket steps next and which of its runs take part:

* Pacing. A run at speed v takes part in about v bucket steps a second (a credit that
  fills at v); at or below the frame rate every step gets its own frame and the next step
  waits for it. A run at full speed takes part in every step of its bucket.
* Fairness. Everything a bucket does (a step of its runs, a pass of their frames) is a
  turn that costs CPU time; the bucket's clock advances by that time divided by the
  square root of the runs it served, and the contender with the earliest clock takes
  the next turn. A bucket of n runs thus gets sqrt(n) shares: between equal CPU time
  per run (n shares: a lone run, which pays its bucket's fixed per-step cost alone,
  would crawl beside a crowded bucket) and equal time per shape (one share: a crowded
  bucket's runs would crawl). A heavy bucket pays for its own frames (boundaries of a
  wide network) out of its share, so neither it nor the crowded one starves the other
  (numbers: docs/benchmarks.md, bench/load.py --mix, bench/abuse.py).
* Floor. Shares alone leave a few heavy runs beside a crowd below a watchable frame rate
  while the crowd trains faster than anyone can watch. So a bucket with a run at full
  speed whose client has waited longer than 1 / serving.frame_floor for a frame, or that
  steps fewer than frame_floor times a second, takes the next turn before the shares
  (the longest wait first), and its frames are due as soon as it has new steps. Only a
  bucket whose step costs at most serving.frame_floor_macs per run (the lesson presets,
  a 64-wide MLP, the digits CNN; not the largest shapes, which no floor could lift and
  which would take everyone's time trying), and such turns take at most FLOOR_SHARE of
  the time over about a second: runs made to soak up the floor leave the rest to the
  shares (bench/load.py --mix, bench/abuse.py).
* Chunks. A turn of a bucket whose active runs all play at full speed may take several
  steps in one call (cheaper per step: Bucket.step): the turns in a row it would get
  anyway, never past its next frame pass, another contender's turn or CHUNK_S (_chunk).
* Frames. Each bucket has a frame tick, about frame_rate times a second (twice that
  while its frames are cheap; less often when they are costly, so that they take at most
  FRAME_SHARE of its time, and all buckets' passes together at most FRAME_SHARE of this
  thread's: tick_stretch spreads every bucket's ticks when they take more). At its
  tick, the runs whose frame is due and whose client has taken the last one are
  snapshotted in one pass (model_server.snapshot); a slow run's frame is due right
  after its step. A run never has more than one frame in flight.
* Lesson work. An experiment or a sweep runs on its event's socket thread, but only
  while this thread hands it a turn (Trainer.job): it is one more contender with a
  clock, like a bucket of one run, and gets a slice of JOB_SLICE_S of CPU time per turn,
  between its checkpoints (model_server.pacing). This thread waits meanwhile, so the two
  never fight over the interpreter, and waits at most JOB_WAIT_S: work that does not
  reach a checkpoint in time runs on beside training. At most serving.max_jobs run at
  once in the process; the next is refused ("busy, retry") rather than queued.

Socket threads never train and never touch a bucket: every change goes through call(),
which runs a function on this thread between two steps and returns its result. Calls
take at most CALLS_SLICE_S between two turns (in order; at least one), so that a burst
of them (a dozen runs configured at once, each with its first frame) is interleaved
with the buckets' turns instead of holding every run still until it is through.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import math
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Protocol

import numpy as np

from model_server.bucket import Bucket, BucketKey, key_of
from model_server.costs import run_cost
from model_server.config import Limits, RunChange
from model_server import memory
from model_server.frames import Frame
from model_server.pacing import yielding
from model_server.runstate import RunState
from model_server.snapshot import replay_frame, take_frames

from .settings import Serving

log = logging.getLogger("dropout.trainer")

AUTO_EVAL_SHARE = 0.1  # 'auto' test evaluations take at most this share of the trainer time a
                       # run gets (and come at most boundary_rate times a second)
FRAME_SHARE = 0.35      # frame passes take at most this share of a bucket's time, and of the trainer's
FLOOR_SHARE = 0.5       # turns given to buckets below the frame floor take at most this share of the time
FLOOR_SHARE_S = 1.0     # ... averaged over about this long
STEP_RATE_S = 0.5       # a bucket's steps a second are averaged over about this long
CHEAP_TICK_S = 0.002    # ticks cheaper than this come at twice the frame rate
MAX_STRETCH = 30.0      # ticks come at least once a second per bucket (frame_rate / MAX_STRETCH)
IDLE_WAIT_S = 0.05      # the longest the thread sleeps with nothing to do (a call wakes it)
JOB_SLICE_S = 0.002     # CPU time a lesson job computes per turn, at least (up to its next checkpoint)
JOB_WAIT_S = 0.05       # the longest this thread waits for a job to hand its turn back
CALLS_SLICE_S = 0.005   # calls from other threads run this long at most between two turns
IDLE_CREDIT_S = 0.01    # how far behind the others an idle contender's clock may start
CHUNK_S = 0.02          # a turn of full-speed runs takes several steps, up to about this long
MAX_CHUNK = 16          # ... and at most this many
BUSY_S = 0.1            # a bucket that had a turn this recently contends for the next ones


class Sink(Protocol):
    """Where a run's frames and news go (app.sessions.Slot)."""
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
        # multiply-adds of this run's slow panels (a forward pass over the boundary grid)
        cost = run_cost(state.cfg, state.limits)
        self.extras_macs = (0.0 if state.cfg.task == "digits" else
                            cost.macs / 3 / state.cfg.train.batch_size * state.limits.grid_size ** 2)

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


class JobsBusy(Exception):
    """No lesson job can start now (serving.max_jobs run, or the tab's previous one still
    does): the caller retries a little later. field: what the refusal names."""

    def __init__(self, message: str, field: str = "server"):
        super().__init__(message)
        self.field = field


class Job:
    """Lesson work on a socket thread that computes only in the turns the trainer gives it."""

    def __init__(self, wake: Callable[[], None]) -> None:
        self.wake = wake                  # tells a sleeping trainer that it waits for a turn
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
        """Called by the work between chunks (model_server.pacing.checkpoint)."""
        used = time.thread_time() - self.slice_start
        if used >= JOB_SLICE_S:
            self.cpu += used
            self.wait_turn()

    def finish(self) -> None:
        self.cpu += time.thread_time() - self.slice_start
        self.done = True
        self.back.set()


class Trainer:
    def __init__(self, limits: Limits, serving: Serving):
        self.limits, self.serving = limits, serving
        self.buckets: dict[tuple[BucketKey, int], Bucket] = {}   # (shape, shard) -> its bucket
        self.vclock: dict[Bucket, float] = {}
        self.paces: dict[int, Pace] = {}          # id(state) -> its pace
        self.jobs: dict[Job, float] = {}          # lesson jobs -> their clocks less their CPU time
        self.vnow = 0.0                           # the clock of the latest turn: where newcomers start
        self._job_slots = threading.BoundedSemaphore(serving.max_jobs)
        self._calls: collections.deque[tuple[Callable[[], Any], Future]] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.next_tick: dict[Bucket, float] = {}      # each bucket's next frame tick
        self.floor_macs: dict[Bucket, float] = {}     # each bucket's step cost per run (multiply-adds)
        self.oldest_frame: dict[Bucket, float] = {}   # when its longest-waiting run got its last frame
        self.step_rate: dict[Bucket, tuple[float, int]] = {}  # its steps a second lately, and its step count then
        self.step_cost: dict[Bucket, float] = {}      # CPU time of its last step
        self.last_turn: dict[Bucket, float] = {}      # when it last had a turn
        self.floor_open = True                         # the frame floor is in force (FLOOR_SHARE)
        self.floor_share = 0.0                         # the share of the time its turns took lately
        self._floor_cpu = 0.0                          # CPU time of turns given by the floor since the last look
        self._next_tick = 0.0                          # the next housekeeping
        self._frames_wall = 0.0                        # wall time in frame passes since then
        self.tick_stretch = 1.0                        # how far every bucket's ticks are spread
        self._last_tick = time.perf_counter()
        # a pass of frames is sent within this context (app.transport.Reader.hold: the
        # clients' acknowledgements are read once the pass has written every frame)
        self.sending: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
        self.thread = threading.Thread(target=self._loop, name="trainer", daemon=True)
        self.thread.start()

    # ---- calls from other threads -----------------------------------------------------------
    def call(self, fn: Callable[[], Any], timeout: float | None = 60) -> Any:
        """Run fn() on the trainer's thread between two steps; its result or exception."""
        if threading.current_thread() is self.thread or not self.thread.is_alive():
            return fn()  # (a stopped trainer trains nothing: no step can interleave)
        future: Future = Future()
        self._calls.append((fn, future))
        self._wake.set()
        return future.result(timeout)

    def job(self, fn: Callable[[Any], Any], prepare: Callable[[], Any] = lambda: None) -> Any:
        """Run fn(prepare()) (lesson work: an experiment, sweep steps) on the calling
        thread, in the turns this trainer gives it (see the module's docstring); its
        result or exception. Raises JobsBusy, before prepare(), when serving.max_jobs
        jobs are already running. prepare() runs outside the turns (it may call())."""
        if threading.current_thread() is self.thread or not self.thread.is_alive():
            return fn(prepare())  # nothing else trains meanwhile
        if not self._job_slots.acquire(blocking=False):
            raise JobsBusy(f"the server is busy with {self.serving.max_jobs} lesson experiments; "
                           "retry in a few seconds")
        job = Job(self._wake.set)
        try:
            ready = prepare()
            def enter() -> None:  # it starts level with the others
                self.jobs[job] = self.vnow
            self.call(enter)
            job.wait_turn()
            with yielding(job.checkpoint):
                return fn(ready)
        finally:
            job.finish()
            self._job_slots.release()

    def add(self, state: RunState, sink: Sink) -> Pace:
        def join() -> Pace:
            bucket = self._bucket_for(state)
            bucket.join(state)
            pace = self.paces[id(state)] = Pace(state, sink, self.serving)
            self._owe(pace)  # the untrained network's first frame
            return pace
        return self.call(join)

    def _bucket_for(self, state: RunState) -> Bucket:
        """The bucket a run joins: the first of its shape with room, else a new one. A
        bucket's step is not interruptible, so a shape's runs fill buckets of at most
        serving.max_bucket_step_macs per step (a heavy shape's runs: a few per bucket),
        and of at most serving.max_bucket_bytes (growing a bucket copies its rows between
        two steps, while everyone waits: a CNN's long timeline rows made one join stall
        every other run; docs/limits.md, max_bucket_bytes)."""
        key, macs = key_of(state), run_cost(state.cfg, self.limits).macs
        n_tr, n_te = len(state.data.x_train), len(state.data.x_test)
        shard = 0
        while True:
            bucket = self.buckets.get((key, shard))
            if bucket is None:
                bucket = self.buckets[(key, shard)] = Bucket(key, state.initial_net())
                bucket.shard = shard
                bucket.max_rows = max(1, int(self.serving.max_bucket_bytes // bucket.row_bytes(n_tr, n_te)))
                self.vclock[bucket] = self.vnow
                self.floor_macs[bucket] = macs
                return bucket
            if ((len(bucket.runs) + 1) * macs <= self.serving.max_bucket_step_macs
                    and (len(bucket.runs) + 1) * bucket.row_bytes(n_tr, n_te) <= self.serving.max_bucket_bytes):
                return bucket
            shard += 1

    def _drop_bucket(self, bucket: Bucket) -> None:
        del self.buckets[(bucket.key, bucket.shard)], self.vclock[bucket], self.floor_macs[bucket]
        self.next_tick.pop(bucket, None)
        self.oldest_frame.pop(bucket, None)
        self.step_rate.pop(bucket, None)
        self.step_cost.pop(bucket, None)
        self.last_turn.pop(bucket, None)

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
                self._drop_bucket(bucket)
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
                self._owe(pace)
            return was
        return self.call(stop)

    def step(self, state: RunState, n: int) -> int:
        """Train n steps now (the run is paused); the step count when they are done.
        One 'step' event per run at a time: a second one while the first still trains is
        refused (RuntimeError), so no caller is ever left waiting on a replaced promise.
        The run leaving (its client gone) answers the waiting caller at once."""
        def ask() -> Future:
            pace = self._pace(state)
            if pace.owed:
                raise RuntimeError(f"the previous 'step' of this run is still training: {pace.owed} of its "
                                   "steps to go; wait for its answer before sending the next")
            pace.owed = min(n, self.limits.max_steps - state.step_count)
            pace.owed_done = Future()
            if pace.owed == 0:
                pace.owed_done.set_result(state.step_count)
            return pace.owed_done
        return self.call(ask).result(timeout=600)

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
                self._send_replay(pace)
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
                self._owe(pace)

    def set_speed(self, state: RunState, speed: float, frame: bool = False) -> None:
        """frame: owe a complete frame (a paused run answers a change with one)."""
        def apply() -> None:
            pace = self._pace(state)
            pace.speed, pace.credit = min(speed, self.serving.max_speed), 0.0
            if frame:
                self._owe(pace)
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
        for job in list(self.jobs):  # nobody hands out turns any more: let them finish
            job.turn.set()

    # ---- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._run_calls()
                now = time.perf_counter()
                if now >= self._next_tick:
                    self._housekeeping(now)
                if not self._take_turn(now):
                    self._sleep()
            except Exception:  # a bug must not stop every run: log, drop the culprit calls, go on
                log.exception("event=trainer_error outcome=error")
                time.sleep(0.01)

    def _housekeeping(self, now: float) -> None:
        """frame_rate times a second: each playing run's playing time (its time limit),
        replayed frames owed to clients that have now taken their last frame, how far
        every bucket's ticks are spread (tick_stretch) and which buckets are below the
        frame floor."""
        played, self._last_tick = min(1.0, now - self._last_tick), now
        self._next_tick = now + 1.0 / self.serving.frame_rate
        # all buckets' frame passes together take at most FRAME_SHARE of the time: when
        # they took more since the last look, every bucket's ticks spread out (and back)
        if played > 0:
            share, self._frames_wall = self._frames_wall / played, 0.0
            self.tick_stretch = min(MAX_STRETCH, max(1.0, self.tick_stretch * (share / FRAME_SHARE) ** 0.5))
        self._look_at_floor(now, played)
        for pace in self.paces.values():
            if pace.playing:
                pace.played_s += played
                if pace.played_s >= self.serving.max_run_seconds:  # the time limit
                    pace.playing = False
                    pace.sink.status("finished", pace.finished)
            if pace.replay is not None:
                self._send_replay(pace)

    def _look_at_floor(self, now: float, played: float) -> None:
        """Whether the frame floor is in force until the next look (its turns took at
        most FLOOR_SHARE of the time, averaged over about FLOOR_SHARE_S), each bucket's
        longest wait for a frame and its steps a second (see "Floor" in the module's
        docstring)."""
        if played > 0:  # (averaged over about a second: one pass of a crowded bucket fills a look)
            self.floor_share += (self._floor_cpu / played - self.floor_share) * min(1.0, played / FLOOR_SHARE_S)
        self._floor_cpu = 0.0
        self.floor_open = bool(self.serving.frame_floor) and self.floor_share <= FLOOR_SHARE
        for bucket in self.buckets.values():
            self._oldest(bucket)
            # steps a second, averaged over about STEP_RATE_S (a heavy bucket steps a few
            # times between two looks)
            rate, seen = self.step_rate.get(bucket, (math.inf, bucket.steps_taken))
            if played > 0:
                now_rate = (bucket.steps_taken - seen) / played
                rate = now_rate if rate == math.inf else rate + (now_rate - rate) * min(1.0, played / STEP_RATE_S)
            self.step_rate[bucket] = (rate, bucket.steps_taken)

    def _oldest(self, bucket: Bucket) -> None:
        """When the bucket's run that has waited longest for a frame got its last one (of
        its runs at full speed whose client has taken their last; never, for a shape
        above serving.frame_floor_macs)."""
        oldest = math.inf
        if self.floor_macs[bucket] <= self.serving.frame_floor_macs:
            for state in bucket.runs:
                pace = self.paces[id(state)]
                if pace.playing and not pace.slow and pace.last_frame_at < oldest and pace.sink.ready():
                    oldest = pace.last_frame_at
        self.oldest_frame[bucket] = oldest

    def _below_floor(self, bucket: Bucket, now: float) -> float:
        """How far the bucket is below the frame floor: how long its longest-waiting run
        has waited for a frame beyond 1 / frame_floor, or, when it steps fewer than
        frame_floor times a second (a run cannot have more frames than steps), a
        millisecond. 0: not below the floor, or the floor is not in force."""
        oldest = self.oldest_frame.get(bucket, math.inf)
        if not self.floor_open or oldest == math.inf:
            return 0.0
        waited = now - 1.0 / self.serving.frame_floor - oldest
        if waited <= 0 and self.step_rate.get(bucket, (math.inf, 0))[0] < self.serving.frame_floor:
            return 0.001
        return max(0.0, waited)

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

    def _take_turn(self, now: float) -> bool:
        """One turn of the contender whose clock is earliest: a bucket (a pass of frames
        when some are due, else a step of its runs that want one) or a lesson job.
        A bucket's clock advances by the CPU time of its turn divided by the square root
        of the runs it served, a job's by its CPU time. False: nothing to do."""
        best, best_work, best_low = None, None, 0.0
        # a contender that was idle (or new) starts level with the others, less a little
        # credit: idle time is not saved up to be spent later in a burst
        floor = self.vnow - IDLE_CREDIT_S
        for bucket in self.buckets.values():
            if self.vclock[bucket] < floor:
                self.vclock[bucket] = floor
            # below the frame floor: before the others, the longest wait first
            low = self._below_floor(bucket, now)
            if best is not None and (best_low > low if best_low or low else self.vclock[bucket] >= self.vclock[best]):
                continue
            work = self._work_of(bucket, now, low > 0)
            if work is not None:
                best, best_work, best_low = bucket, work, low
        for job in [j for j in self.jobs if j.done]:
            del self.jobs[job]
        # a job still busy with its last slice (it outran JOB_WAIT_S) waits for its next turn
        for job, c in self.jobs.items():
            if c + job.cpu < floor:
                self.jobs[job] = floor - job.cpu
        ready = [(c + j.cpu, j) for j, c in self.jobs.items() if j.waiting]
        if ready and not best_low:
            clock, job = min(ready, key=lambda t: t[0])
            if best is None or clock < self.vclock[best]:
                self.vnow = max(self.vnow, clock)
                self._job_turn(job)
                return True
        if best is None:
            return False
        self.vnow = max(self.vnow, self.vclock[best])
        kind, what = best_work
        self.last_turn[best] = now
        cpu = time.thread_time()
        if kind == "frames":
            self._bucket_frames(best, what, now)
            cost = time.thread_time() - cpu
            wall = time.perf_counter() - now  # (what the others waited: socket threads share the interpreter)
            self._frames_wall += wall
            self._floor_cpu += cost if best_low else 0.0
            self.vclock[best] += cost / math.sqrt(len(what))
            self._oldest(best)
            for _, pace, _ in what:
                pace.frames_s += cost / len(what)
            if now >= self.next_tick.get(best, 0.0):
                # while a bucket's frames are cheap, its ticks come at twice the frame rate
                # (a frame acknowledged just after one waits half a period, not a whole
                # one; each run still gets at most frame_rate); costly ones at most take
                # FRAME_SHARE of the time, so that its runs keep training
                period = (0.5 if wall < CHEAP_TICK_S and self.tick_stretch == 1.0 else 1.0) / self.serving.frame_rate
                self.next_tick[best] = now + max(period * self.tick_stretch, wall / FRAME_SHARE)
            return True
        try:
            taken = best.step(what, self._chunk(best, what, now))
        except Exception:  # a bug must end this bucket's runs only, loudly, never the server
            log.exception("event=bucket_crashed runs=%d outcome=error", len(best.runs))
            self._crash(best)
            return True
        cost = time.thread_time() - cpu
        self.step_cost[best] = cost / max(taken, 1)
        self._floor_cpu += cost if best_low else 0.0
        rows = np.flatnonzero(what)
        self.vclock[best] += cost / math.sqrt(len(rows))
        share, runs = cost / len(rows), best.runs
        # a run at full speed (faster than frames) with nothing pending only counts its share
        full = self._full_speed()
        at_limit = best.steps[:len(runs)] >= self.limits.max_steps
        for k in rows.tolist():
            pace = self.paces[id(runs[k])]
            pace.busy_s += share
            pace.busy_steps += taken
            if pace.owed or pace.until is not None or pace.speed < full or at_limit[k]:
                self._stepped(pace)
        return True

    def _full_speed(self) -> float:
        """The speed from which a run takes every step of its bucket and is not paced."""
        return self.serving.max_speed if self.serving.max_speed > self.serving.frame_rate else math.inf

    def _chunk(self, bucket: Bucket, active: np.ndarray, now: float) -> int:
        """How many steps this turn takes: the turns in a row that the bucket would get
        anyway. One, or several while every active run plays at full speed with nothing
        pending (no pacing, 'step' event or stop step between them) and no other
        contender would come first: up to its clock passing the next busy contender's or
        that one falling below the frame floor, its own next frame pass, CHUNK_S of its
        last step cost and a run's step limit; one past the time of its frame pass, and
        while another bucket is below the floor. Several steps in one call cost less
        each (Bucket.step): the call's Python (masks, batches, bookkeeping) is paid once
        for all of them (docs/benchmarks.md, round 9)."""
        per = self.step_cost.get(bucket)
        if per is None:
            return 1
        full, runs = self._full_speed(), bucket.runs
        frame_at = math.inf   # the soonest any of its runs may have its next frame
        for k in np.flatnonzero(active).tolist():
            pace = self.paces[id(runs[k])]
            if pace.owed or pace.until is not None or pace.speed < full:
                return 1
            frame_at = min(frame_at, pace.next_frame_at)
        # up to its next frame pass, not past it: its tick, when a run's frame may go out
        # (past that time, a frame waits for a client to take the last one: one step)
        own = min(CHUNK_S, max(0.0, max(self.next_tick.get(bucket, 0.0), frame_at) - now))
        others = math.inf  # CPU time until another contender's turn would come
        rows = int(active.sum())
        for other in self.buckets.values():
            if other is not bucket and now - self.last_turn.get(other, -math.inf) < BUSY_S:
                if self._below_floor(other, now):
                    return 1
                # its clock advances by CPU time / sqrt(rows): the CPU time until it passes
                others = min(others, (self.vclock[other] - self.vclock[bucket]) * math.sqrt(rows))
                if self.floor_open:  # ... and until the other falls below the floor
                    others = min(others, self.oldest_frame.get(other, math.inf) + 1.0 / self.serving.frame_floor - now)
        for job, c in self.jobs.items():
            if job.waiting:
                others = min(others, (c + job.cpu - self.vclock[bucket]) * math.sqrt(rows))
        # (its first step is this turn's anyway)
        n = min(MAX_CHUNK, int(own / max(per, 1e-6)), int(min(others, 1.0) / max(per, 1e-6)) + 1)
        left = self.limits.max_steps - int(bucket.steps[:len(runs)][active[:len(runs)]].max())
        return max(1, min(n, left))

    def _work_of(self, bucket: Bucket, now: float, low: bool = False):
        """What a bucket would do with a turn: ("frames", takers) when frames are due (a
        run owes one, or it is the bucket's tick, or it is below the frame floor, and fast
        runs have new steps) and their clients have taken the last; else ("step", active)
        when runs want a step; else None."""
        tick = low or now >= self.next_tick.get(bucket, 0.0)
        takers: list[tuple[RunState, Pace, bool]] = []
        for state in bucket.runs:
            pace = self.paces[id(state)]
            due = pace.frame_due or (tick and pace.playing and not pace.slow
                                     and state.step_count > state.frame_step and now >= pace.next_frame_at)
            if not due or not pace.sink.ready():
                continue
            # the slow panels (boundary, weights) at boundary_rate, and when frames come
            # slowly (a loaded server), on every third frame at most
            extras = pace.complete or pace.slow or (now >= pace.next_extras and pace.plain_frames >= 2)
            takers.append((state, pace, extras))
        if takers:
            # a pass is not interruptible either: the runs waiting longest first, up to
            # max_bucket_step_macs of boundary grids (at least one run); the rest next time
            takers.sort(key=lambda t: t[1].next_frame_at)
            taken, left = [], self.serving.max_bucket_step_macs
            for taker in takers:
                left -= taker[1].extras_macs if taker[2] else 0.0
                if taken and left < 0:
                    break
                taken.append(taker)
            return "frames", taken
        active = np.fromiter((self.paces[id(s)].wants_step(now) for s in bucket.runs), bool, len(bucket.runs))
        return ("step", active) if active.any() else None

    def _job_turn(self, job: Job) -> None:
        """One slice of a lesson job: this thread waits until the job's next checkpoint
        (its clock then advances by the CPU time it used), or at most JOB_WAIT_S: work
        that reaches no checkpoint in time runs on beside training until it does."""
        job.back.clear()
        job.turn.set()
        job.back.wait(JOB_WAIT_S)

    def _crash(self, bucket: Bucket) -> None:
        for state in list(bucket.runs):
            pace = self.paces.pop(id(state))
            pace.playing = False
            if pace.owed_done is not None and not pace.owed_done.done():
                pace.owed_done.set_exception(RuntimeError("the run stopped on a server error"))
            bucket.leave(state)
            pace.sink.crashed()
        self._drop_bucket(bucket)

    def _stepped(self, pace: Pace) -> None:
        """After a step of a run that has something pending: a 'step' event's count, its
        pacing, a stop step, its step limit."""
        if pace.owed:
            pace.owed -= 1
            if pace.owed == 0:
                self._owe(pace)  # the frame goes out before the 'step' event is answered
                pace.owed_done.set_result(pace.state.step_count)
            return
        if pace.speed < self.serving.max_speed:
            pace.credit -= 1
        if pace.slow:
            pace.frame_due = True
        if pace.until is not None and pace.state.step_count >= pace.until:
            pace.playing, pace.until = False, None
            pace.sink.status("paused")
            self._owe(pace)
        elif pace.finished:
            pace.playing = False
            pace.sink.status("finished", pace.finished)

    def _bucket_frames(self, bucket: Bucket, takers: list, now: float) -> None:
        """The frames of these runs of one bucket, in one snapshot pass."""
        rate = self.serving.frame_rate
        self._auto_evaluate(bucket, takers, now)
        frames = take_frames(bucket, [t[0] for t in takers], [t[2] for t in takers], self.limits.grid_size,
                             [self._header(p) for _, p, _ in takers])
        with self.sending():
            for (state, pace, extras), frame in zip(takers, frames):
                pace.frame_due = pace.complete = False
                pace.last_frame_at = now
                pace.next_frame_at = now + 1.0 / rate  # at most frame_rate a second (its tick waits for it)
                pace.plain_frames = 0 if extras else pace.plain_frames + 1
                if extras:
                    pace.next_extras = now + 1.0 / self.serving.boundary_rate
                pace.sink.send(frame)

    def _owe(self, pace: Pace) -> None:
        """The run owes its client a complete frame of its current step: it goes out now
        if the client has taken the last one (so it precedes the answer to the event that
        caused it), else as soon as the client has."""
        pace.frame_due = pace.complete = True
        state = pace.state
        if state.bucket is None or not pace.sink.ready():
            return
        now = time.perf_counter()
        taker = [(state, pace, True)]
        self._auto_evaluate(state.bucket, taker, now)
        frame, = take_frames(state.bucket, [state], [True], self.limits.grid_size, [self._header(pace)])
        pace.frame_due = pace.complete = False
        pace.last_frame_at = now
        pace.next_frame_at = now + 1.0 / self.serving.frame_rate
        pace.next_extras = now + 1.0 / self.serving.boundary_rate
        pace.sink.send(frame)

    def _send_replay(self, pace: Pace) -> None:
        """The owed frame of a past step, once the client has taken the last frame."""
        if pace.sink.ready():
            frame = replay_frame(pace.state.bucket, pace.state, pace.replay, self._header(pace))
            pace.replay = None
            pace.sink.send(frame)

    def _auto_evaluate(self, bucket: Bucket, takers: list, now: float) -> None:
        """'auto' test evaluation (eval_every 0): with frames, at most boundary_rate a
        second (more would cost without being seen) and at most AUTO_EVAL_SHARE of the
        trainer's time that the run has had, in steps and frames; a complete frame always
        evaluates its own step. On a crowded server a run's share of the time shrinks, and
        its evaluations space out with it: a digits CNN's pass over its test set, twice a
        second, took most of what its bucket got (docs/benchmarks.md, round 7). The cost
        is CPU time (wall time would count other threads' turns)."""
        due = [(s, p) for s, p, _ in takers
               if s.cfg.train.eval_every == 0 and s.step_count > s.last_eval_step
               and (p.complete or now >= p.next_auto_eval and p.eval_s <= AUTO_EVAL_SHARE * (p.busy_s + p.frames_s))]
        if not due:
            return
        cpu = time.thread_time()
        bucket.evaluate([s.row for s, _ in due])
        per_run = (time.thread_time() - cpu) / len(due)
        for _, p in due:
            p.eval_s += per_run
            p.next_auto_eval = now + 1.0 / self.serving.boundary_rate

    @staticmethod
    def _header(pace: Pace) -> dict:
        return {"speed": pace.speed, "finished": pace.finished,
                "busy_steps_per_s": pace.busy_steps / pace.busy_s if pace.busy_s else None}

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
