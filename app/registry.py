"""All sessions of this process and its one trainer (Registry): admission of new runs
(per visitor, per client address, server-wide), idle runs giving way under pressure
(make_room, eviction), and the idle reaper."""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Callable

from model_server import Limits
from model_server.costs import Cost

from .budget import Budget
from .errors import Busy, ServerFull
from .metrics import Metrics
from .pace import Sending
from .sessions import Session, Slot
from .settings import Serving
from .scheduler import Trainer

log = logging.getLogger("dropout.sessions")
RUNS_RETRY_S = 0.5  # told to a visitor at its run limit: its closing runs are gone by then
EVICTED = ("ended to make room for another visitor: this run was paused and untouched for {idle:.0f} s "
           "while the server was full; configure to start again")
Emit = Callable[..., None]  # emit(event, data, to=sid, callback=None)


class Registry:
    """All sessions of this process and its one trainer. One per app; no module-level state."""

    def __init__(self, limits: Limits, serving: Serving, emit: Emit, metrics: Metrics,
                 sending: Sending = contextlib.nullcontext):
        """sending: the context each pass of frames is sent in (app.reader.Reader.hold)."""
        self.limits, self.serving, self.emit, self.metrics = limits, serving, emit, metrics
        self.sessions: dict[str, Session] = {}
        self.lock = threading.RLock()  # guards sessions, every session's slots and pending
        self.trainer = Trainer(limits, serving, sending)
        self.budget = Budget(serving)
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()

    def open(self, sid: str, token: str, address: str = "") -> Session:
        with self.lock:
            session = self.sessions[sid] = Session(sid, token, address, self)
        self.update_gauges()
        self._start_reaper()
        return session

    def get(self, sid: str) -> Session | None:
        return self.sessions.get(sid)

    def close(self, sid: str, reason: str | None = None) -> int:
        """Forget a session and end its runs (their rows leave their buckets)."""
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
        limit: server-wide, per visitor (the sessions sharing session's token) or per
        client address. The check and the count are one step, so concurrent configures
        cannot overshoot."""
        lim = self.serving
        with self.lock:
            def held(same) -> int:
                return sum(len(s.slots) + s.pending for s in self.sessions.values() if same(s))
            if held(lambda s: s.token == session.token) >= lim.max_runs_per_client:
                # (a lesson page's previous runs are closing as it opens the next: soon fine)
                raise Busy(f"too many runs: {lim.max_runs_per_client} per visitor allowed; "
                           "close one (or reload the page) first", retry_after_s=RUNS_RETRY_S)
            if session.address and held(lambda s: s.address == session.address) >= lim.max_runs_per_address:
                raise Busy(f"too many runs from your address: {lim.max_runs_per_address} allowed "
                           "(DP_MAX_RUNS_PER_ADDRESS); close some first")
            active = self.runs()
            if active >= lim.max_runs:
                raise ServerFull(f"server busy: {active} runs active, try again in a minute")
            session.pending += 1

    def idle_slots(self, address: str | None = None, idle_s: float | None = None) -> list[Slot]:
        """Runs nobody has played or touched for idle_s (serving.evict_idle_s), longest
        idle first; of one client address, or of everyone."""
        now, idle_s = time.monotonic(), self.serving.evict_idle_s if idle_s is None else idle_s
        with self.lock:
            slots = [slot for session in self.sessions.values() if address is None or session.address == address
                     for slot in session.slots.values() if slot.idle_for(now) >= idle_s]
        return sorted(slots, key=lambda slot: slot.active_at)

    def make_room(self, cost: Cost, address: str | None = None, runs: int = 0) -> bool:
        """Under pressure, idle runs give their place back: end the longest idle ones (of
        address, or of anyone) until `runs` more runs and cost's bytes fit. Each evicted
        visitor is told why. Returns whether anything was ended."""
        ended = 0
        for slot in self.idle_slots(address):
            fits_bytes = self.budget.free() >= cost.bytes if address is None else \
                self.budget.held(address) + cost.bytes <= self.serving.max_bytes_per_address
            if fits_bytes and self.runs() + runs <= self.serving.max_runs:
                break
            idle = time.monotonic() - slot.active_at
            slot.session.end(slot, EVICTED.format(idle=idle))
            self.metrics.errors.labels(kind="evicted").inc()
            log.info("event=evicted sid=%s run=%s idle_s=%.0f outcome=ended", slot.session.sid, slot.run_id, idle)
            ended += 1
        return ended > 0

    def ready(self, cost: Cost) -> bool:
        """Whether a newcomer's run of this cost would be taken now (counting the runs
        that would give way)."""
        idle = self.idle_slots()
        freeable = sum(slot.ticket.cost.bytes for slot in idle if slot.ticket is not None)
        return (self.runs() - len(idle) < self.serving.max_runs
                and self.budget.free() + freeable >= cost.bytes)

    def update_gauges(self) -> None:
        self.metrics.sessions.set(len(self.sessions))
        self.metrics.runs.set(self.runs())

    def _start_reaper(self) -> None:
        with self.lock:
            if self._reaper is None:
                self._reaper = threading.Thread(target=self._reap, name="idle-reaper", daemon=True)
                self._reaper.start()

    def _reap(self) -> None:
        """End the runs nobody has played or touched for serving.idle_timeout_s."""
        period = max(0.5, min(30.0, self.serving.idle_timeout_s / 4))
        while not self._stop.wait(period):
            for slot in self.idle_slots(idle_s=self.serving.idle_timeout_s):
                self.metrics.errors.labels(kind="idle").inc()
                slot.session.end(slot, f"ended after {self.serving.idle_timeout_s:g} s without activity; "
                                 "configure to start again")
                log.info("event=idle sid=%s run=%s outcome=ended", slot.session.sid, slot.run_id)

    def stop(self) -> None:
        self._stop.set()
        self.close_all("server shutting down")
        self.trainer.stop()
