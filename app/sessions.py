"""Per-client session registry: who owns which runs, and how frames reach them.

A Session is one connected browser tab (its socket id and its per-tab token). It holds
up to limits.max_runs_per_client Slots; a Slot is one Run, the thread that trains it
while it plays, and its outgoing frame slot.

Flow control (the streaming rules in DESIGN.md): a slot has at most ONE frame in flight.
A frame is emitted with an acknowledgement callback; until the client acknowledges it,
the run keeps training but takes no new frame, so its drop counts keep adding up for
the next one. A client that stops reading therefore costs one frame of memory, never a
queue, and it slows nobody else.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from model_server import Limits, Run, RunConfig
from model_server.frames import encode

from .metrics import Metrics

log = logging.getLogger("dropout.sessions")

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
        self.thread: threading.Thread | None = None

    # ---- control (from event handlers) ----
    def play(self) -> None:
        with self.lock:
            if self.playing or self.closed:
                return
            if self.run.finished:
                raise Busy(self.run.finished)
            self.playing = True
            self.run.start_clock()
            self.thread = threading.Thread(target=self._loop, name=f"run-{self.session.sid}-{self.run_id}",
                                           daemon=True)
            self.thread.start()
        self.session.status(self, "playing")

    def pause(self) -> None:
        with self.lock:
            was, self.playing = self.playing, False
        self.wake.set()
        if was:
            self.session.status(self, "paused")

    def close(self) -> None:
        self.closed = True
        self.pause()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=2)

    def changed(self) -> None:
        """After a step, reset or change while paused: owe the client a fresh frame."""
        with self.lock:
            self.want_frame = True
        self._flush()

    # ---- frames ----
    def _loop(self) -> None:
        metrics = self.session.metrics
        try:
            while self.playing and not self.closed:
                with self.lock:
                    if not self.playing:
                        break
                    frame, wait = self.run.advance(frame_ready=self._ready)
                    finished = self.run.finished
                    if frame is not None:
                        self.in_flight, self.want_frame = True, False
                if frame is not None:
                    self._emit(encode(frame))
                if finished:
                    with self.lock:
                        self.playing = False
                    self.session.status(self, "finished", finished)
                    break
                if wait > 0:
                    self.wake.wait(wait)
                self.wake.clear()
        except Exception:  # a bug must end this run only, loudly, never the server
            log.exception("run %s/%s failed", self.session.sid, self.run_id)
            metrics.errors.labels(kind="run_crashed").inc()
            self.playing = False
            self.session.status(self, "ended", "this run stopped on a server error; reset or configure to go on")

    def _ready(self) -> bool:
        if self.in_flight:
            self.session.metrics.frames_skipped.inc()
            return False
        return True

    def _flush(self) -> None:
        with self.lock:
            if self.in_flight or not self.want_frame or self.closed:
                return
            data = encode(self.run.frame(extras=True))
            self.in_flight, self.want_frame = True, False
        self._emit(data)

    def _emit(self, data: bytes) -> None:
        self.session.metrics.frames_sent.inc()
        self.session.metrics.frame_bytes.inc(len(data))
        self.session.emit("frame", data, to=self.session.sid, callback=self._acked)

    def _acked(self, *_args) -> None:
        self.session.touch()
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
        """Build a run (replacing this tab's run of the same id)."""
        old = self.slots.pop(run_id, None)
        if old is not None:
            old.close()
        self.registry.admit(self)
        slot = Slot(self, run_id, Run(cfg, self.limits))
        self.slots[run_id] = slot
        self.registry.update_gauges()
        return slot

    def drop(self, run_id: str) -> None:
        slot = self.slots.pop(run_id, None)
        if slot is not None:
            slot.close()
            self.registry.update_gauges()

    def close(self, reason: str | None = None) -> None:
        for run_id in list(self.slots):
            slot = self.slots[run_id]
            if reason:
                self.status(slot, "ended", reason)
            self.drop(run_id)


class TokenBucket:
    """events_per_s refill, burst capacity; take() is False when the client is too fast."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.tokens, self.t = float(burst), time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
            self.t = now
            if self.tokens < 1:
                return False
            self.tokens -= 1
            return True


class Registry:
    """All sessions of this process. One per app; no module-level state."""

    def __init__(self, limits: Limits, emit: Emit, metrics: Metrics):
        self.limits, self.emit, self.metrics = limits, emit, metrics
        self.sessions: dict[str, Session] = {}
        self.lock = threading.Lock()
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

    def close(self, sid: str, reason: str | None = None) -> None:
        with self.lock:
            session = self.sessions.pop(sid, None)
        if session is not None:
            session.close(reason)
        self.update_gauges()

    def close_all(self, reason: str) -> None:
        for sid in list(self.sessions):
            self.close(sid, reason)

    def runs(self) -> int:
        return sum(len(s.slots) for s in list(self.sessions.values()))

    def admit(self, session: Session) -> None:
        """Raise Busy if one more run would pass a limit (server-wide or per client)."""
        lim = self.limits
        mine = sum(len(s.slots) for s in list(self.sessions.values()) if s.token == session.token)
        if mine >= lim.max_runs_per_client:
            raise Busy(f"too many runs: {lim.max_runs_per_client} per visitor allowed; "
                       "close one (or reload the page) first")
        active = self.runs()
        if active >= lim.max_runs:
            raise Busy(f"server busy: {active} runs active, try again in a minute")

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
                    session.close(f"ended after {self.limits.idle_timeout_s:g} s without activity; "
                                  "configure to start again")
                    self.update_gauges()

    def stop(self) -> None:
        self._stop.set()
        self.close_all("server shutting down")
