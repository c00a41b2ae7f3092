"""Who trains next: the trainer's turns (app/scheduler.py runs them), bucket by bucket.

Runs of one shape train as one batched step (model_server.bucket). Each turn decides
which bucket steps next and which of its runs take part:

* Pacing. A run at speed v takes part in about v bucket steps a second (a credit that
  fills at v, app/pace.py); at or below the frame rate every step gets its own frame and
  the next step waits for it. A run at full speed takes part in every step of its bucket.
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
  shares (app/floor.py).
* Chunks. A turn of a bucket whose active runs all play at full speed may take several
  steps in one call (cheaper per step: Bucket.step): the turns in a row it would get
  anyway, never past its next frame pass, another contender's turn or CHUNK_S (_chunk).
* Frames. Each bucket has a frame tick, about frame_rate times a second (twice that
  while its frames are cheap; less often when they are costly, so that they take at most
  FRAME_SHARE of its time, and all buckets' passes together at most FRAME_SHARE of the
  trainer's: tick_stretch spreads every bucket's ticks when they take more). At its
  tick, the runs whose frame is due and whose client has taken the last one are
  snapshotted in one pass (app/frame_pass.py); a slow run's frame is due right after its
  step. A run never has more than one frame in flight.
* Lesson work. An experiment or a sweep runs on its event's socket thread, but only
  while the trainer hands it a turn (app/jobs.py): it is one more contender with a
  clock, like a bucket of one run, and gets a slice of CPU time per turn, between its
  checkpoints (model_server.pacing). The trainer waits meanwhile, so the two never
  fight over the interpreter, and waits at most JOB_WAIT_S: work that does not reach a
  checkpoint in time runs on beside training.
"""
from __future__ import annotations

import logging
import math
import time

import numpy as np

from model_server.config import Limits
from model_server.costs import MAX_CHUNK

from .buckets import Buckets, Record
from .floor import Floor
from .frame_pass import Frames, Taker
from .jobs import Job
from .pace import Pace
from .settings import Serving

log = logging.getLogger("dropout.trainer")

FRAME_SHARE = 0.35      # frame passes take at most this share of a bucket's time, and of the trainer's
CHEAP_TICK_S = 0.002    # ticks cheaper than this come at twice the frame rate
MAX_STRETCH = 30.0      # ticks come at least once a second per bucket (frame_rate / MAX_STRETCH)
JOB_WAIT_S = 0.05       # the longest the trainer waits for a job to hand its turn back
IDLE_CREDIT_S = 0.01    # how far behind the others an idle contender's clock may start
CHUNK_S = 0.02          # a turn of full-speed runs takes several steps, up to about this long
# ... and at most MAX_CHUNK steps (model_server/costs.py: a run's memory counts on it)
BUSY_S = 0.1            # a bucket that had a turn this recently contends for the next ones


class Turns:
    """The contenders (buckets, lesson jobs), their clocks, and one turn at a time."""

    def __init__(self, limits: Limits, serving: Serving, paces: dict[int, Pace], frames: Frames):
        self.limits, self.serving, self.paces, self.frames = limits, serving, paces, frames
        self.buckets = Buckets(limits, serving)
        self.floor = Floor(serving, paces)
        self.jobs: dict[Job, float] = {}   # lesson jobs -> their clocks less their CPU time
        self.vnow = 0.0                    # the clock of the latest turn: where newcomers start
        self.tick_stretch = 1.0            # how far every bucket's ticks are spread
        self.frames_wall = 0.0             # wall time in frame passes since the last look

    def look(self, played: float) -> None:
        """frame_rate times a second: all buckets' frame passes together take at most
        FRAME_SHARE of the time: when they took more since the last look, every bucket's
        ticks spread out (and back); and which buckets are below the frame floor."""
        if played > 0:
            share, self.frames_wall = self.frames_wall / played, 0.0
            self.tick_stretch = min(MAX_STRETCH, max(1.0, self.tick_stretch * (share / FRAME_SHARE) ** 0.5))
        self.floor.look(self.buckets.values(), played)

    def take(self, now: float) -> bool:
        """One turn of the contender whose clock is earliest: a bucket (a pass of frames
        when some are due, else a step of its runs that want one) or a lesson job.
        A bucket's clock advances by the CPU time of its turn divided by the square root
        of the runs it served, a job's by its CPU time. False: nothing to do."""
        # a contender that was idle (or new) starts level with the others, less a little
        # credit: idle time is not saved up to be spent later in a burst
        floor = self.vnow - IDLE_CREDIT_S
        best, work, low = self._pick(now, floor)
        self._tidy_jobs(floor)
        if not low and self._job_before(best) is not None:
            return True
        if best is None:
            return False
        self.vnow = max(self.vnow, best.vclock)
        best.last_turn = now
        if work[0] == "frames":
            self._frames_turn(best, work[1], now, low)
        else:
            self._step_turn(best, work[1], now, low)
        return True

    def _pick(self, now: float, floor: float) -> tuple[Record | None, tuple | None, float]:
        """The bucket with work whose clock is earliest (below the frame floor: before the
        others, the longest wait first), its work, and how far it is below the floor."""
        best, best_work, best_low = None, None, 0.0
        for record in self.buckets.values():
            if record.vclock < floor:
                record.vclock = floor
            low = self.floor.below(record, now)
            if best is not None and (best_low > low if best_low or low else record.vclock >= best.vclock):
                continue
            work = self._work_of(record, now, low > 0)
            if work is not None:
                best, best_work, best_low = record, work, low
        return best, best_work, best_low

    def _tidy_jobs(self, floor: float) -> None:
        """Finished jobs go; an idle one's clock starts level with the others."""
        for job in [j for j in self.jobs if j.done]:
            del self.jobs[job]
        # a job still busy with its last slice (it outran JOB_WAIT_S) waits for its next turn
        for job, c in self.jobs.items():
            if c + job.cpu < floor:
                self.jobs[job] = floor - job.cpu

    def _job_before(self, best: Record | None) -> Job | None:
        """A waiting lesson job whose clock is earlier than best's gets this turn."""
        ready = [(c + j.cpu, j) for j, c in self.jobs.items() if j.waiting]
        if not ready:
            return None
        clock, job = min(ready, key=lambda t: t[0])
        if best is not None and clock >= best.vclock:
            return None
        self.vnow = max(self.vnow, clock)
        # one slice: the trainer waits until the job's next checkpoint (its clock then
        # advances by the CPU time it used), or at most JOB_WAIT_S
        job.back.clear()
        job.turn.set()
        job.back.wait(JOB_WAIT_S)
        return job

    def _frames_turn(self, record: Record, takers: list[Taker], now: float, low: float) -> None:
        cpu = time.thread_time()
        self.frames.send(record.bucket, takers, now)
        cost = time.thread_time() - cpu
        wall = time.perf_counter() - now  # (what the others waited: socket threads share the interpreter)
        self.frames_wall += wall
        self.floor.cpu += cost if low else 0.0
        record.vclock += cost / math.sqrt(len(takers))
        if low:
            self.floor.landed(record, now)
        self.floor.oldest(record)
        for _, pace, _ in takers:
            pace.frames_s += cost / len(takers)
        if now >= record.next_tick:
            # while a bucket's frames are cheap, its ticks come at twice the frame rate
            # (a frame acknowledged just after one waits half a period, not a whole
            # one; each run still gets at most frame_rate); costly ones at most take
            # FRAME_SHARE of the time, so that its runs keep training
            period = (0.5 if wall < CHEAP_TICK_S and self.tick_stretch == 1.0 else 1.0) / self.serving.frame_rate
            record.next_tick = now + max(period * self.tick_stretch, wall / FRAME_SHARE)

    def _step_turn(self, record: Record, active: np.ndarray, now: float, low: float) -> None:
        bucket, cpu = record.bucket, time.thread_time()
        try:
            taken = bucket.step(active, self._chunk(record, active, now))
        except Exception:  # a bug must end this bucket's runs only, loudly, never the server
            log.exception("event=bucket_crashed runs=%d outcome=error", len(bucket.runs))
            self.crash(record)
            return
        cost = time.thread_time() - cpu
        record.step_cost = cost / max(taken, 1)
        self.floor.cpu += cost if low else 0.0
        rows = np.flatnonzero(active)
        record.vclock += cost / math.sqrt(len(rows))
        share, runs = cost / len(rows), bucket.runs
        # a run at full speed (faster than frames) with nothing pending only counts its share
        full = self._full_speed()
        at_limit = bucket.steps[:len(runs)] >= self.limits.max_steps
        for k in rows.tolist():
            pace = self.paces[id(runs[k])]
            pace.busy_s += share
            pace.busy_steps += taken
            if pace.owed or pace.until is not None or pace.speed < full or at_limit[k]:
                self._stepped(pace)

    def _full_speed(self) -> float:
        """The speed from which a run takes every step of its bucket and is not paced."""
        return self.serving.max_speed if self.serving.max_speed > self.serving.frame_rate else math.inf

    def _chunk(self, record: Record, active: np.ndarray, now: float) -> int:
        """How many steps this turn takes: the turns in a row that the bucket would get
        anyway. One, or several while every active run plays at full speed with nothing
        pending (no pacing, 'step' event or stop step between them) and no other
        contender would come first: up to its clock passing the next busy contender's or
        that one falling below the frame floor, its own next frame pass, CHUNK_S of its
        last step cost and a run's step limit; one past the time of its frame pass, and
        while another bucket is below the floor. Several steps in one call cost less
        each (Bucket.step): the call's Python (masks, batches, bookkeeping) is paid once
        for all of them (docs/benchmarks.md, round 9)."""
        per, bucket = record.step_cost, record.bucket
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
        own = min(CHUNK_S, max(0.0, max(record.next_tick, frame_at) - now))
        rows = int(active.sum())
        others = self._others_in(record, rows, now)
        if others is None:
            return 1
        # (its first step is this turn's anyway)
        n = min(MAX_CHUNK, int(own / max(per, 1e-6)), int(min(others, 1.0) / max(per, 1e-6)) + 1)
        left = self.limits.max_steps - int(bucket.steps[:len(runs)][active[:len(runs)]].max())
        return max(1, min(n, left))

    def _others_in(self, record: Record, rows: int, now: float) -> float | None:
        """CPU time of this bucket's steps (of rows runs) until another contender's turn
        would come; None: another busy bucket is below the frame floor now."""
        others = math.inf
        for other in self.buckets.values():
            if other is not record and now - other.last_turn < BUSY_S:
                if self.floor.below(other, now):
                    return None
                # its clock advances by CPU time / sqrt(rows): the CPU time until it passes
                others = min(others, (other.vclock - record.vclock) * math.sqrt(rows))
                if self.floor.open:  # ... and until the other falls below the floor
                    others = min(others, self.floor.due_at(other) - now)
        for job, c in self.jobs.items():
            if job.waiting:
                others = min(others, (c + job.cpu - record.vclock) * math.sqrt(rows))
        return others

    def _work_of(self, record: Record, now: float, low: bool = False):
        """What a bucket would do with a turn: ("frames", takers) when frames are due (a
        run owes one, or it is the bucket's tick, or it is below the frame floor, and fast
        runs have new steps) and their clients have taken the last; else ("step", active)
        when runs want a step; else None."""
        bucket = record.bucket
        takers = self.frames.due(bucket, self.paces, now, low or now >= record.next_tick)
        if takers:
            return "frames", takers
        active = np.fromiter((self.paces[id(s)].wants_step(now) for s in bucket.runs), bool, len(bucket.runs))
        return ("step", active) if active.any() else None

    def crash(self, record: Record) -> None:
        """The bucket failed: its runs end (each sink hears it), the bucket goes."""
        bucket = record.bucket
        for state in list(bucket.runs):
            pace = self.paces.pop(id(state))
            pace.playing = False
            if pace.owed_done is not None and not pace.owed_done.done():
                pace.owed_done.set_exception(RuntimeError("the run stopped on a server error"))
            bucket.leave(state)
            pace.sink.crashed()
        self.buckets.drop(record)

    def _stepped(self, pace: Pace) -> None:
        """After a step of a run that has something pending: a 'step' event's count, its
        pacing, a stop step, its step limit."""
        if pace.owed:
            pace.owed -= 1
            if pace.owed == 0:
                self.frames.owe(pace)  # the frame goes out before the 'step' event is answered
                pace.owed_done.set_result(pace.state.step_count)
            return
        if pace.speed < self.serving.max_speed:
            pace.credit -= 1
        if pace.slow:
            pace.frame_due = True
        if pace.until is not None and pace.state.step_count >= pace.until:
            pace.playing, pace.until = False, None
            pace.sink.status("paused")
            self.frames.owe(pace)
        elif pace.finished:
            pace.playing = False
            pace.sink.status("finished", pace.finished)
