"""Per-client sessions: who owns which runs, and how their frames reach them.

A Session is one connected browser tab (its socket id, its per-tab token and its client
address). It holds up to limits.max_runs_per_client Slots; a Slot is one run: its state
(model_server.runstate.RunState), trained by the process's one shared trainer
(app/scheduler.py), and its outgoing frame.

Flow control (the streaming rules in DESIGN.md): a slot has at most ONE frame in flight.
A frame is emitted with an acknowledgement callback; until the client acknowledges it,
the run keeps training but gets no new frame, so its drop counts keep adding up for
the next one. A client that stops reading therefore costs one frame of memory, never a
queue, and it slows nobody else. (Its answers are bounded by app/transport.py's reply
budget; everything a Session holds, its runs and its sweep, goes when it closes.)

The sessions of the process, admission and eviction: app/registry.py.
"""
from __future__ import annotations

import functools
import logging
import threading
import time
from typing import Any, Callable

from model_server import RunConfig
from model_server.bucket import TIMELINE
from model_server.config import ConfigError, RunChange, safe_value
from model_server.costs import Cost, run_cost
from model_server.frames import Frame, encode
from model_server.runstate import RunState

from .budget import OverBudget
from .errors import Busy, ServerFull
from .logfmt import quote
from .ratelimit import TokenBucket
from .scheduler import Trainer

log = logging.getLogger("dropout.sessions")


class Slot:
    """One run of a tab. Control methods are called from socket threads and go through
    the trainer; ready/send/status are the trainer's (its Sink)."""

    def __init__(self, session: "Session", run_id: str, state: RunState, ticket=None):
        self.session, self.run_id, self.state = session, run_id, state
        self.ticket = ticket            # its share of the cost budget, given back on close
        self.trainer: Trainer = session.registry.trainer
        self.closed = False
        self.in_flight = False          # a frame was emitted and not yet acknowledged
        self.next_drop = 0.0            # when a withheld frame next counts as skipped
        self.seq, self.sent_at = 0, 0.0  # the frame in flight: its number, when it went
        self.active_at = time.monotonic()  # its visitor's last real activity (touch())
        self.pace = self.trainer.add(state, self)

    def touch(self) -> None:
        """Real activity on this run: a control event that names it, or a frame of it
        acknowledged. Only this keeps a run from the idle reaper and from eviction (any
        other event, a malformed packet, a refused one, does not)."""
        self.active_at = time.monotonic()

    def idle_for(self, now: float) -> float:
        """Seconds nobody has played or touched this run (0 while it plays: a playing run
        is watched, or its unacknowledged frames stop and it goes idle then)."""
        return 0.0 if self.playing and not self.in_flight else now - self.active_at

    @property
    def playing(self) -> bool:
        return self.pace.playing

    # ---- control (from event handlers) ----
    def play(self, until: int | None = None) -> None:
        """Train at the run's speed; with until, pause exactly at that step (the caller
        has checked that it lies ahead). A play while playing only moves the stop."""
        if self.closed or self.session.closed:
            return
        self.touch()
        try:
            self.trainer.play(self.state, until)
        except RuntimeError as e:  # finished: the step or time limit
            raise Busy(str(e)) from None
        self.session.status(self, "playing")

    def pause(self) -> None:
        if self.trainer.pause(self.state):
            self.touch()
            self.session.status(self, "paused")

    def step(self, n: int) -> int:
        if self.playing:
            raise Busy("the run is playing: pause it before stepping")
        if self.pace.finished:
            raise Busy(self.pace.finished)
        self.touch()
        try:
            return self.trainer.step(self.state, n)
        except RuntimeError as e:  # a previous 'step' still trains, or the run stopped
            raise Busy(str(e)) from None

    def replay(self, step: int) -> int:
        """Show a past step of the paused run (its frame follows); a step outside its
        timeline is refused, naming the steps that can be replayed."""
        self.touch()
        try:
            span = self.trainer.replay(self.state, step)
        except RuntimeError as e:  # it plays, or a 'step' event is still training
            raise Busy(str(e)) from None
        if span is None or not span[0] <= step <= span[1]:
            allowed = "none yet: take a step first" if span is None else f"{span[0]}..{span[1]}"
            raise ConfigError([{"field": "step", "allowed": allowed, "received": safe_value(step),
                                "message": f"step has to be one of the last {TIMELINE:,} steps ({allowed}), "
                                           f"but got {safe_value(step)}"}])
        return step

    def reset(self) -> None:
        self.touch()
        self.trainer.reset(self.state, frame=True)

    def change(self, change: RunChange) -> None:
        """A live change (a LiveChange's change, as a value); a paused run shows it at
        once (a complete frame)."""
        self.touch()
        self.trainer.change(self.state, change, frame=not self.playing)

    def set_speed(self, steps_per_s: float) -> None:
        # like any change while paused: the client hears back with a frame
        self.touch()
        self.trainer.set_speed(self.state, steps_per_s, frame=not self.playing)

    def look(self, fn: Callable[[RunState], Any]) -> Any:
        """fn(state) on the trainer's thread, between two steps: a consistent view."""
        return self.trainer.call(lambda: fn(self.state))

    def close(self) -> None:
        """Stop for good; the caller has told the client why ('ended'), or the client left."""
        if self.closed:
            return
        self.closed = True
        self.trainer.remove(self.state)
        self.session.registry.budget.release(self.ticket)

    # ---- the trainer's sink ----
    def ready(self) -> bool:
        """The client has taken the last frame (or it is presumed lost: serving.ack_timeout_s, so
        that an acknowledgement a client dropped does not stall the run for good; a client
        that does not read at all answers no ping either and is gone long before that).
        While not, one skipped frame is counted per frame period."""
        if self.closed:
            return False
        if self.in_flight and time.monotonic() - self.sent_at >= self.session.serving.ack_timeout_s:
            self.session.metrics.errors.labels(kind="ack_timeout").inc()
            self.in_flight = False
        if self.in_flight:
            now = time.monotonic()
            if now >= self.next_drop:
                self.session.metrics.frames_skipped.inc()
                self.next_drop = now + 1.0 / self.session.serving.frame_rate
            return False
        return True

    def send(self, frame: Frame) -> None:
        frame.header["run"] = self.run_id   # one socket carries all of a tab's runs
        data = encode(frame)
        self.seq += 1
        self.in_flight, self.sent_at = True, time.monotonic()
        self.session.metrics.frames_sent.inc()
        self.session.metrics.frame_bytes.inc(len(data))
        # (app/frame_lane.py writes it to a websocket client at once)
        self.session.emit("frame", data, to=self.session.sid, callback=functools.partial(self._acked, self.seq))

    def status(self, state: str, reason: str | None = None) -> None:
        if state == "finished":
            log.info("event=finished sid=%s run=%s steps=%d reason=%s", self.session.sid, self.run_id,
                     self.state.step_count, quote(reason))
        self.session.status(self, state, reason)

    def crashed(self) -> None:
        self.session.metrics.errors.labels(kind="run_crashed").inc()
        self.session.status(self, "ended", "this run stopped on a server error; configure to start again")

    def _acked(self, seq: int, *_args) -> None:
        self.touch()
        if seq != self.seq:  # late, for a frame presumed lost: the current one is still out
            return
        self.in_flight = False
        self.trainer.wake()


class Session:
    """One connected browser tab and its runs. registry: the app.registry.Registry it
    belongs to (its limits, budget, trainer and lock)."""

    def __init__(self, sid: str, token: str, address: str, registry):
        self.sid, self.token, self.address, self.registry = sid, token, address, registry
        self.emit, self.metrics = registry.emit, registry.metrics
        self.limits, self.serving = registry.limits, registry.serving
        self.slots: dict[str, Slot] = {}
        self.pending = 0        # runs being built (admitted, not yet in slots)
        self.closed = False
        self.limited = False    # the last event was refused by the rate limit
        self.events = TokenBucket(self.serving.events_per_s, self.serving.event_burst)
        self.job = threading.Lock()   # one experiment or sweep event at a time per tab
        self.sweep = None             # the tab's lesson sweep (app/lessons.py), with its budget ticket

    def status(self, slot: Slot, state: str, reason: str | None = None) -> None:
        self.emit("status", {"run": slot.run_id, "state": state, "reason": reason, "step": slot.state.step_count},
                  to=self.sid)

    def slot(self, run_id: str) -> Slot:
        try:
            return self.slots[run_id]
        except KeyError:
            raise KeyError(f"no run {run_id!r}: send 'configure' for it first") from None

    def configure(self, run_id: str, cfg: RunConfig) -> Slot:
        """Build a run (replacing this tab's run of the same id). Raises Busy over a limit."""
        cost = run_cost(cfg, self.limits)
        if cost.macs > self.serving.max_run_step_macs:  # one step would hold up everyone else
            per_example = cost.macs / cfg.train.batch_size
            most = max(1, int(self.serving.max_run_step_macs // per_example))
            raise ConfigError([{
                "field": "train.batch_size", "allowed": f"1..{most} for this network", "received": cfg.train.batch_size,
                "message": f"one step of this network at batch size {cfg.train.batch_size} takes "
                           f"{cost.macs / 1e6:,.0f} M multiply-adds, and this server allows "
                           f"{self.serving.max_run_step_macs / 1e6:,.0f} M per step (DP_MAX_RUN_STEP_MACS): "
                           f"lower the batch size to at most {most}, or make the network smaller"}])
        self.drop(run_id)
        registry = self.registry
        try:  # counts this run as pending: concurrent configures cannot overshoot
            registry.admit(self)
        except ServerFull:  # idle runs give way before a newcomer is refused
            registry.make_room(Cost(0, 0), runs=1)
            registry.admit(self)
        ticket = None
        try:
            try:  # its estimated cost, before anything is built
                ticket = registry.budget.reserve(self.address, cost, "this run", step_macs=True)
            except OverBudget as e:
                if not registry.make_room(cost, None if e.server_wide else self.address):
                    raise Busy(str(e)) from None
                try:
                    ticket = registry.budget.reserve(self.address, cost, "this run", step_macs=True)
                except OverBudget as e:
                    raise Busy(str(e)) from None
            slot = Slot(self, run_id, RunState(cfg, self.limits), ticket)
        except BaseException:
            registry.budget.release(ticket)
            raise
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

    def end(self, slot: Slot, reason: str) -> None:
        """End this run (if it is still the tab's run of its id), telling the client why."""
        with self.registry.lock:
            if self.slots.get(slot.run_id) is not slot:
                return
            del self.slots[slot.run_id]
        self.status(slot, "ended", reason)
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
        """The tab is gone (or the server stops): end its runs and release what else it
        holds; no run may start after this."""
        self.closed = True
        self.drop_sweep()
        return self.end_runs(reason)

    def drop_sweep(self) -> None:
        held, self.sweep = self.sweep, None
        if held is not None:
            self.registry.budget.release(held.ticket)
