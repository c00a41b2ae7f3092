"""Pacing of frames: which runs of a bucket are due a frame, and a pass that takes them
in one snapshot (model_server.snapshot) and hands each to its run's sink.

A run never has more than one frame in flight: a frame is due only once its client has
taken the last (Sink.ready). A fast run's frames come at its bucket's tick, at most
frame_rate a second; a slow run's (at or below the frame rate) right after each step;
a complete one (a paused run's picture) whenever the run owes it. The slow panels
(boundary, weights) come at most boundary_rate a second.
"""
from __future__ import annotations

import time

from model_server.bucket import Bucket
from model_server.config import Limits
from model_server.runstate import RunState
from model_server.snapshot import replay_frame, take_frames

from .pace import Pace, Sending
from .settings import Serving

AUTO_EVAL_SHARE = 0.1  # 'auto' test evaluations take at most this share of the trainer time a
                       # run gets (and come at most boundary_rate times a second)

Taker = tuple[RunState, Pace, bool]  # a run, its pace, and whether its frame has the slow panels


class Frames:
    def __init__(self, limits: Limits, serving: Serving, sending: Sending):
        self.limits, self.serving, self.sending = limits, serving, sending

    def due(self, bucket: Bucket, paces: dict[int, Pace], now: float, tick: bool) -> list[Taker]:
        """The runs of bucket whose frame is due and whose client has taken the last: one
        owes a frame, or it is the bucket's tick (tick) and a fast run has new steps.
        A pass is not interruptible: the runs waiting longest first, up to
        max_bucket_step_macs of boundary grids (at least one run); the rest next time."""
        takers: list[Taker] = []
        for state in bucket.runs:
            pace = paces[id(state)]
            due = pace.frame_due or (tick and pace.playing and not pace.slow
                                     and state.step_count > state.frame_step and now >= pace.next_frame_at)
            if not due or not pace.sink.ready():
                continue
            # the slow panels (boundary, weights) at boundary_rate, and when frames come
            # slowly (a loaded server), on every third frame at most
            extras = pace.complete or pace.slow or (now >= pace.next_extras and pace.plain_frames >= 2)
            takers.append((state, pace, extras))
        if not takers:
            return takers
        takers.sort(key=lambda t: t[1].next_frame_at)
        taken, left = [], self.serving.max_bucket_step_macs
        for taker in takers:
            left -= taker[1].extras_macs if taker[2] else 0.0
            if taken and left < 0:
                break
            taken.append(taker)
        return taken

    def send(self, bucket: Bucket, takers: list[Taker], now: float) -> None:
        """The frames of these runs of one bucket, in one snapshot pass."""
        rate = self.serving.frame_rate
        self._auto_evaluate(bucket, takers, now)
        frames = take_frames(bucket, [t[0] for t in takers], [t[2] for t in takers], self.limits.grid_size,
                             [self.header(p) for _, p, _ in takers])
        with self.sending():
            for (state, pace, extras), frame in zip(takers, frames):
                pace.frame_due = pace.complete = False
                pace.last_frame_at = now
                pace.next_frame_at = now + 1.0 / rate  # at most frame_rate a second (its tick waits for it)
                pace.plain_frames = 0 if extras else pace.plain_frames + 1
                if extras:
                    pace.next_extras = now + 1.0 / self.serving.boundary_rate
                pace.sink.send(frame)

    def owe(self, pace: Pace) -> None:
        """The run owes its client a complete frame of its current step: it goes out now
        if the client has taken the last one (so it precedes the answer to the event that
        caused it), else as soon as the client has."""
        pace.frame_due = pace.complete = True
        state = pace.state
        if state.bucket is None or not pace.sink.ready():
            return
        now = time.perf_counter()
        self._auto_evaluate(state.bucket, [(state, pace, True)], now)
        frame, = take_frames(state.bucket, [state], [True], self.limits.grid_size, [self.header(pace)])
        pace.frame_due = pace.complete = False
        pace.last_frame_at = now
        pace.next_frame_at = now + 1.0 / self.serving.frame_rate
        pace.next_extras = now + 1.0 / self.serving.boundary_rate
        pace.sink.send(frame)

    def send_replay(self, pace: Pace) -> None:
        """The owed frame of a past step, once the client has taken the last frame."""
        if pace.sink.ready():
            frame = replay_frame(pace.state.bucket, pace.state, pace.replay, self.header(pace))
            pace.replay = None
            pace.sink.send(frame)

    def _auto_evaluate(self, bucket: Bucket, takers: list[Taker], now: float) -> None:
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
    def header(pace: Pace) -> dict:
        return {"speed": pace.speed, "finished": pace.finished,
                "busy_steps_per_s": pace.busy_steps / pace.busy_s if pace.busy_s else None}
