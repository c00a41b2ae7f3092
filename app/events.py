"""Socket.IO events: validate, hand to the session registry, acknowledge.

Every client event is answered (when the client asks for an acknowledgement) with
{"ok": true, ...} or {"ok": false, "error": {field, message, allowed, received},
"errors": [...]}. Nothing a client sends can raise out of here: the connection and every
other session carry on. The protocol is documented in docs/protocol.md.
"""
from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Callable

from pydantic import Field, StringConstraints
from flask_socketio import Namespace

from model_server.config import ConfigError, LiveChange, Strict, in_range, parse, parse_config

from .sessions import Busy, Registry, Session

log = logging.getLogger("dropout.events")

RunId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,16}$")]
TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class RunRef(Strict):
    run: RunId = "main"


class Configure(RunRef):
    config: dict = Field(default_factory=dict)


class Step(RunRef):
    n: Annotated[int, in_range(1, 1000, "n (steps)")] = 1


class Set(RunRef):
    change: dict


def error(field: str, message: str, allowed: str = "", received: Any = None) -> dict:
    entry = {"field": field, "message": message, "allowed": allowed, "received": received}
    return {"ok": False, "error": entry, "errors": [entry]}


class Playground(Namespace):
    """The '/' namespace. One instance per app; state lives in the registry."""

    def __init__(self, registry: Registry):
        super().__init__("/")
        self.registry = registry
        self.metrics = registry.metrics
        self.handlers: dict[str, Callable[[Session, Any], dict]] = {
            "configure": self.configure, "play": self.play, "pause": self.pause,
            "step": self.step, "reset": self.reset, "set": self.set, "close": self.close,
        }

    # python-socketio calls this for every event; we route by name ourselves so that
    # unknown names get an answer instead of silence.
    def trigger_event(self, event: str, *args):
        if event == "connect":
            return self.on_connect(args[0], args[2] if len(args) > 2 else None)
        if event == "disconnect":
            self.registry.close(args[0])
            return None
        sid = args[0]
        payload = args[1] if len(args) == 2 else (list(args[1:]) if len(args) > 2 else None)
        return self.dispatch(sid, event, payload)

    def on_connect(self, sid: str, auth: Any):
        token = auth.get("token") if isinstance(auth, dict) else None
        if token is not None and not (isinstance(token, str) and TOKEN.match(token)):
            self.metrics.errors.labels(kind="bad_token").inc()
            raise ConnectionRefusedError("token has to be 8 to 64 letters, digits, '-' or '_'")
        self.registry.open(sid, token or sid)

    def dispatch(self, sid: str, event: Any, payload: Any) -> dict:
        known = event in self.handlers
        self.metrics.events.labels(event=event if known else "unknown").inc()
        session = self.registry.get(sid)
        if session is None:
            return error("session", "not connected")
        session.touch()
        lim = self.registry.limits
        if not session.bucket.take():
            self.metrics.errors.labels(kind="rate_limited").inc()
            return error("event", f"too many events: {lim.events_per_s:g} per second allowed "
                         f"(bursts of {lim.event_burst}); slow down", f"<= {lim.events_per_s:g}/s", str(event)[:40])
        if not known:
            self.metrics.errors.labels(kind="unknown_event").inc()
            return error("event", f"unknown event {str(event)[:40]!r}", ", ".join(self.handlers), str(event)[:40])
        try:
            return {"ok": True, **self.handlers[event](session, payload)}
        except ConfigError as e:
            self.metrics.errors.labels(kind="invalid").inc()
            return {"ok": False, "error": e.errors[0], "errors": e.errors}
        except Busy as e:
            self.metrics.errors.labels(kind="busy").inc()
            return error("run", str(e))
        except (KeyError, IndexError) as e:
            self.metrics.errors.labels(kind="invalid").inc()
            return error("run" if isinstance(e, KeyError) else "change", str(e.args[0]))
        except Exception:
            log.exception("event %r from %s failed", event, sid)
            self.metrics.errors.labels(kind="internal").inc()
            return error("server", "internal error while handling this event; your other runs are unaffected")

    # ---- handlers: (session, raw payload) -> ack fields ----
    def configure(self, session: Session, payload: Any) -> dict:
        msg = parse(Configure, payload if payload is not None else {})
        cfg = parse_config(msg.config, self.registry.limits)
        slot = session.configure(msg.run, cfg)
        slot.changed()  # the untrained network's first frame
        return {"run": msg.run, **slot.run.describe()}

    def play(self, session: Session, payload: Any) -> dict:
        slot = session.slot(self._ref(payload).run)
        slot.play()
        return {"run": slot.run_id, "state": "playing"}

    def pause(self, session: Session, payload: Any) -> dict:
        slot = session.slot(self._ref(payload).run)
        slot.pause()
        return {"run": slot.run_id, "state": "paused", "step": slot.run.step_count}

    def step(self, session: Session, payload: Any) -> dict:
        msg = parse(Step, payload if payload is not None else {})
        slot = session.slot(msg.run)
        with slot.lock:
            if slot.playing:
                raise Busy("the run is playing: pause it before stepping")
            if slot.run.finished:
                raise Busy(slot.run.finished)
            slot.run.step(min(msg.n, self.registry.limits.max_steps - slot.run.step_count))
        slot.changed()
        return {"run": slot.run_id, "step": slot.run.step_count}

    def reset(self, session: Session, payload: Any) -> dict:
        slot = session.slot(self._ref(payload).run)
        with slot.lock:
            slot.run.reset()
        slot.changed()
        return {"run": slot.run_id, "step": 0}

    def set(self, session: Session, payload: Any) -> dict:
        msg = parse(Set, payload)
        change = parse(LiveChange, {"change": msg.change}).change
        slot = session.slot(msg.run)
        run = slot.run
        with slot.lock:
            if change.param == "p":
                run.set_p(change.layer, change.value)
            elif change.param == "lr":
                run.set_lr(change.value)
            elif change.param == "mode":
                run.set_mode(change.value)
            elif change.param == "speed":
                run.set_speed(change.value)
            else:
                run.set_watch(change.layer, change.index)
        if not slot.playing:
            slot.changed()
        return {"run": slot.run_id, "applied": change.model_dump(), "config": run.cfg.model_dump()}

    def close(self, session: Session, payload: Any) -> dict:
        ref = self._ref(payload)
        session.slot(ref.run)
        session.drop(ref.run)
        return {"run": ref.run, "state": "closed"}

    @staticmethod
    def _ref(payload: Any) -> RunRef:
        return parse(RunRef, payload if payload is not None else {})
