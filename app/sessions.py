"""Per-client session registry: who owns which runs, and how frames reach them.

A Session is one connected browser tab (its socket id and its per-tab token). It holds
up to limits.max_runs_per_client Slots; a Slot is one Run, the thread that trains it
while it plays, and its outgoing frame slot.

Flow control (the streaming rules in DESIGN.md): a slot has at most ONE frame in flight.
A frame is emitted with an acknowledgement callback; until the client acknowledges it,
the run keeps training but takes no new frame, so its drop counts keep adding up for
the next one. A client that stops reading therefore costs one frame of memory, never a
queue, and it slows nobody else.

Training threads take turns (Registry.compute, a few fair permits) instead of all
competing for the GIL at once: with 50 runs playing, the socket threads that carry frames
and acknowledgements then wait behind a few trainers, not fifty.
"""
from __future__ import annotations

import collections
import functools
import json
import logging
import threading
import time
from typing import Callable

from model_server import Limits, Run, RunConfig
from model_server.frames import encode

from .metrics import Metrics

log = logging.getLogger("dropout.sessions")
ACK_TIMEOUT_S = 10.0  # a frame unacknowledged this long is presumed lost
TRAINING_PERMITS = 4  # runs training at the same moment (see FairPermits; measured in bench/load.py)

Emit = Callable[..., None]  # emit(event, data, to=sid, callback=None)


class Busy(Exception):
    """A limit on runs was reached; the message says which and what to do."""


class Slot:
    def __init__(self, session: "Session", run_id: str, run: Run):
        self.session, self.run_id, self.run = session, run_id, run
        self.lock = threading.RLock()   # held while the run trains or changes
        self.wake = threading.Event()   # cuts a wait short: pause, close, a change
        self.playing = False
        self.closed = False
        self.in_flight = False          # a frame was emitted and not yet acknowledged
        self.want_frame = False         # a frame is owed (after a step/reset while paused)
        self.next_drop = 0.0            # when a withheld frame next counts as dropped
        self.seq, self.sent_at = 0, 0.0  # the frame in flight: its number, when it went
        self.thread: threading.Thread | None = None
        self.generation = 0             # which play() the training thread belongs to

    # ---- control (from event handlers) ----
    def play(self, until: int | None = None) -> None:
        """Train at the run's speed; with until, pause exactly at that step (the caller
        has checked that it lies ahead). A play while playing only moves the stop."""
        with self.lock:
            if self.closed or self.session.closed:
                return
            if self.run.finished:
                raise Busy(self.run.finished)
            self.run.until = until
            if self.playing:
                return
            self.playing = True
            self.generation += 1  # a loop of an earlier play, still winding down, stops
            self.run.start_clock()
            self.thread = threading.Thread(target=self._loop, args=(self.generation,),
                                           name=f"run-{self.session.sid}-{self.run_id}", daemon=True)
            self.thread.start()
        self.session.status(self, "playing")

    def pause(self, announce: bool = True) -> None:
        with self.lock:
            was, self.playing = self.playing, False
        self.wake.set()
        if was and announce:
            self._paused()

    def _paused(self) -> None:
        self.session.status(self, "paused")
        # a complete frame of the step it stopped at: at full speed the last one sent
        # may lack the slower panels, and a paused picture should agree with itself
        self.changed()

    def close(self) -> None:
        """Stop for good; the caller has told the client why ('ended'), or the client left."""
        self.closed = True
        self.pause(announce=False)
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=2)

    def changed(self) -> None:
        """After a step, reset or change while paused: owe the client a fresh frame."""
        with self.lock:
            self.want_frame = True
        self._flush()

    # ---- frames ----
    def _loop(self, generation: int) -> None:
        metrics, compute = self.session.metrics, self.session.registry.compute
        try:
            while self.playing and not self.closed and generation == self.generation:
                with compute, self.lock:
                    if not self.playing or self.closed or generation != self.generation:
                        break
                    frame, wait = self.run.advance(frame_ready=self._ready)
                    finished = self.run.finished
                    if frame is not None:
                        self._emit(encode(frame))
                    stopped = self.run.stopped and not finished
                    if stopped:  # at play's `until`: a pause like any other, at exactly that step
                        self.playing = False
                if stopped:
                    self._paused()
                    break
                if finished:
                    log.info("event=finished sid=%s run=%s steps=%d reason=%s", self.session.sid,
                             self.run_id, self.run.step_count, quote(finished))
                    with self.lock:
                        self.playing = False
                    self.session.status(self, "finished", finished)
                    break
                if wait > 0:
                    self.wake.wait(wait)
                self.wake.clear()
        except Exception:  # a bug must end this run only, loudly, never the server
            log.exception("event=run_crashed sid=%s run=%s outcome=error", self.session.sid, self.run_id)
            metrics.errors.labels(kind="run_crashed").inc()
            self.playing = False
            self.session.status(self, "ended", "this run stopped on a server error; reset or configure to go on")

    def _ready(self) -> bool:
        """Asked by the run when a frame is due (once per training slice until one is taken);
        counts one dropped frame per frame period while the client holds the last one."""
        if not self._waiting():
            return True
        now = time.monotonic()
        if now >= self.next_drop:
            self.session.metrics.frames_skipped.inc()
            self.next_drop = now + 1.0 / self.session.limits.frame_rate
        return False

    def _waiting(self) -> bool:
        """A frame is in flight, and not yet presumed lost (ACK_TIMEOUT_S: an acknowledgement
        a client dropped must not stall the run for good; a client that does not read at all
        answers no ping either and is disconnected long before that adds up)."""
        if self.in_flight and time.monotonic() - self.sent_at > ACK_TIMEOUT_S:
            self.session.metrics.errors.labels(kind="ack_timeout").inc()
            self.in_flight = False
        return self.in_flight

    def _flush(self) -> None:
        with self.lock:
            if self._waiting() or not self.want_frame or self.closed:
                return
            self._emit(encode(self.run.frame(complete=True)))

    def _emit(self, data: bytes) -> None:
        """Send a frame (with the lock held); the next waits for its acknowledgement."""
        self.seq += 1
        self.in_flight, self.want_frame, self.sent_at = True, False, time.monotonic()
        self.session.metrics.frames_sent.inc()
        self.session.metrics.frame_bytes.inc(len(data))
        self.session.emit("frame", data, to=self.session.sid, callback=functools.partial(self._acked, self.seq))

    def _acked(self, seq: int, *_args) -> None:
        self.session.touch()
        if seq != self.seq:  # late, for a frame presumed lost: the current one is still out
            return
        self.in_flight = False  # no lock: the training loop may be holding it
        if self.playing:
            self.wake.set()
        else:
            self._flush()


class Session:
    def __init__(self, sid: str, token: str, registry: "Registry"):
        self.sid, self.token, self.registry = sid, token, registry
        self.emit, self.metrics, self.limits = registry.emit, registry.metrics, registry.limits
        self.slots: dict[str, Slot] = {}
        self.pending = 0        # runs being built (admitted, not yet in slots)
        self.closed = False
        self.limited = False    # the last event was refused by the rate limit
        self.last_seen = time.monotonic()
        self.bucket = TokenBucket(self.limits.events_per_s, self.limits.event_burst)

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def status(self, slot: Slot, state: str, reason: str | None = None) -> None:
        self.emit("status", {"run": slot.run_id, "state": state, "reason": reason, "step": slot.run.step_count},
                  to=self.sid)

    def slot(self, run_id: str) -> Slot:
        try:
            return self.slots[run_id]
        except KeyError:
            raise KeyError(f"no run {run_id!r}: send 'configure' for it first") from None

    def configure(self, run_id: str, cfg: RunConfig) -> Slot:
        """Build a run (replacing this tab's run of the same id). Raises Busy over a limit."""
        self.drop(run_id)
        registry = self.registry
        registry.admit(self)  # counts this run as pending: concurrent configures cannot overshoot
        try:
            slot = Slot(self, run_id, Run(cfg, self.limits))
        finally:
            with registry.lock:
                self.pending -= 1
        with registry.lock:
            old, closed = self.slots.get(run_id), self.closed
            if not closed:
                self.slots[run_id] = slot
        if old is not None:  # a configure of the same id that raced this one
            old.close()
        if closed:
            slot.close()
            raise Busy("this connection is closing")
        registry.update_gauges()
        return slot

    def drop(self, run_id: str) -> None:
        with self.registry.lock:
            slot = self.slots.pop(run_id, None)
        if slot is not None:
            slot.close()
            self.registry.update_gauges()

    def end_runs(self, reason: str | None = None) -> int:
        """End every run of this tab (each told why); the connection stays. Returns how many."""
        ended = 0
        for run_id in list(self.slots):
            slot = self.slots.get(run_id)
            if slot is None:
                continue
            if reason:
                self.status(slot, "ended", reason)
            self.drop(run_id)
            ended += 1
        return ended

    def close(self, reason: str | None = None) -> int:
        """The tab is gone (or the server stops): end its runs; no run may start after this."""
        self.closed = True
        return self.end_runs(reason)


class TokenBucket:
    """events_per_s refill, burst capacity; take() is False when the client is too fast.

    overflow counts refused events and drains at the same rate: a client that keeps
    sending past the limit (rather than slowing down when told) runs it up, and
    flooding() says when it passes FLOOD_BURSTS bursts' worth."""

    FLOOD_BURSTS = 10

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.t = float(burst), time.monotonic()
        self.overflow = 0.0
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            elapsed, self.t = now - self.t, now
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.overflow = max(0.0, self.overflow - elapsed * self.rate)
            if self.tokens < 1:
                self.overflow += 1
                return False
            self.tokens -= 1
            return True

    def flooding(self) -> bool:
        return self.overflow > self.FLOOD_BURSTS * max(1, self.burst)


class FairPermits:
    """k permits, handed out first come, first served. (threading.Semaphore lets the
    thread that releases take its permit straight back: with trainers that loop
    release -> acquire, the others would starve.)"""

    def __init__(self, k: int):
        self.free = k
        self.lock = threading.Lock()
        self.waiters: collections.deque[threading.Event] = collections.deque()

    def __enter__(self) -> "FairPermits":
        with self.lock:
            if self.free > 0 and not self.waiters:
                self.free -= 1
                return self
            turn = threading.Event()
            self.waiters.append(turn)
        turn.wait()  # the releasing thread passed its permit to us
        return self

    def __exit__(self, *exc) -> None:
        with self.lock:
            if self.waiters:
                self.waiters.popleft().set()
            else:
                self.free += 1


def quote(value) -> str:
    """A log value: bare when it is one word, else JSON-quoted (key=value logs stay parseable)."""
    text = str(value)
    return text if text and all(c.isalnum() or c in "._-/:" for c in text) else json.dumps(text)


class Registry:
    """All sessions of this process. One per app; no module-level state."""

    def __init__(self, limits: Limits, emit: Emit, metrics: Metrics):
        self.limits, self.emit, self.metrics = limits, emit, metrics
        self.sessions: dict[str, Session] = {}
        self.lock = threading.RLock()  # guards sessions, every session's slots and pending
        self.compute = FairPermits(TRAINING_PERMITS)
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()

    def open(self, sid: str, token: str) -> Session:
        with self.lock:
            session = self.sessions[sid] = Session(sid, token, self)
        self.update_gauges()
        self._start_reaper()
        return session

    def get(self, sid: str) -> Session | None:
        return self.sessions.get(sid)

    def close(self, sid: str, reason: str | None = None) -> int:
        """Forget a session and end its runs (their threads stop, their memory goes)."""
        with self.lock:
            session = self.sessions.pop(sid, None)
        ended = session.close(reason) if session is not None else 0
        self.update_gauges()
        return ended

    def close_all(self, reason: str) -> None:
        for sid in list(self.sessions):
            self.close(sid, reason)

    def runs(self) -> int:
        """Runs held by connected clients (and runs being built for them)."""
        with self.lock:
            return sum(len(s.slots) + s.pending for s in self.sessions.values())

    def admit(self, session: Session) -> None:
        """Count one more run for session (as pending), or raise Busy if that would pass a
        limit, server-wide or per visitor (the sessions sharing session's token). The check
        and the count are one step, so concurrent configures cannot overshoot."""
        lim = self.limits
        with self.lock:
            mine = sum(len(s.slots) + s.pending for s in self.sessions.values() if s.token == session.token)
            if mine >= lim.max_runs_per_client:
                raise Busy(f"too many runs: {lim.max_runs_per_client} per visitor allowed; "
                           "close one (or reload the page) first")
            active = self.runs()
            if active >= lim.max_runs:
                raise Busy(f"server busy: {active} runs active, try again in a minute")
            session.pending += 1

    def update_gauges(self) -> None:
        self.metrics.sessions.set(len(self.sessions))
        self.metrics.runs.set(self.runs())

    def _start_reaper(self) -> None:
        with self.lock:
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="idle-reaper", daemon=True)
                self._reaper.start()

    def _reap(self) -> None:
        """End the runs of sessions idle longer than limits.idle_timeout_s."""
        period = max(0.5, min(30.0, self.limits.idle_timeout_s / 4))
        while not self._stop.wait(period):
            cutoff = time.monotonic() - self.limits.idle_timeout_s
            for session in list(self.sessions.values()):
                if session.slots and session.last_seen < cutoff:
                    self.metrics.errors.labels(kind="idle").inc()
                    ended = session.end_runs(f"ended after {self.limits.idle_timeout_s:g} s without activity; "
                                             "configure to start again")
                    log.info("event=idle sid=%s runs=%d outcome=ended", session.sid, ended)
                    self.update_gauges()

    def stop(self) -> None:
        self._stop.set()
        self.close_all("server shutting down")
