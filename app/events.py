"""Socket.IO events: validate, hand to the session registry, acknowledge.

Every client event is answered (when the client asks for an acknowledgement) with
{"ok": true, ...} or {"ok": false, "error": {field, message, allowed, received},
"errors": [...]}. Nothing a client sends can raise out of here: the connection and every
other session carry on. The protocol is documented in docs/protocol.md.

Logs: one key=value line per connect, disconnect and configure, and per refused or
failed event: event=<name> sid=<socket id> outcome=ok|refused|error [kind=... field=...].
A malformed packet (app/packets.py finds it, app/refusals.py answers it) is one more event against the client's rate
and one such line, never a traceback.
"""
from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Callable

from flask_socketio import ConnectionRefusedError as ConnectionRefused, Namespace
from pydantic import Field, StringConstraints

from model_server.config import ConfigError, LiveChange, Strict, in_range, parse, parse_config, safe_value

from . import transport
from .errors import Busy, JobCancelled, JobsBusy
from .logfmt import quote
from .ratelimit import TokenBucket
from .refusals import Refusals, error
from .registry import Registry
from .sessions import Session

log = logging.getLogger("dropout.events")

RunId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,16}$")]
TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
BAD_TOKEN = "token has to be 8 to 64 letters, digits, '-' or '_'"
RETRY_AFTER_S = 2  # when no lesson job can start now (the server's are all taken, or the tab's still runs)
TRACEBACKS_PER_MIN = 5
MAX_ERRORS = 20  # errors listed in one answer; the rest are counted (listing all made a bad configure's answer far bigger than the configure: docs/limits.md)
# events whose answer may be large (a sweep's boundaries, an experiment's grids, an export):
# one of them is refused while a large answer to the same client is still unread
LARGE_REPLY_EVENTS = frozenset({"sweep", "experiment", "export"})


class RunRef(Strict):
    run: RunId = "main"


class Configure(RunRef):
    config: dict = Field(default_factory=dict)


class Play(RunRef):
    # pause exactly at this step (its range depends on the run: checked in play())
    until: int | None = None


class Step(RunRef):
    n: Annotated[int, in_range(1, 1000, "n (steps)")] = 1


class Replay(RunRef):
    # which past step (its range depends on the run: checked by the session)
    step: int


class Set(RunRef, LiveChange):
    """A run's live change: the run and the change (LiveChange's field, a value)."""


def capped(errors: list[dict]) -> list[dict]:
    """The first MAX_ERRORS errors, then one entry that counts the rest."""
    if len(errors) <= MAX_ERRORS:
        return errors
    rest = len(errors) - MAX_ERRORS
    return errors[:MAX_ERRORS] + [{"field": "errors", "allowed": f"<= {MAX_ERRORS} listed", "received": rest,
                                   "message": f"and {rest} more errors (the first {MAX_ERRORS} are listed)"}]


class Playground(Namespace):
    """The '/' namespace. One instance per app; state lives in the registry."""

    def __init__(self, registry: Registry, refusals: Refusals,
                 more: dict[str, Callable[[Session, Any], dict]] | None = None):
        """refusals: what befalls a client that breaks a rule of the connection (app/refusals.py);
        more: the events of other concerns (exports, lessons), name -> handler."""
        super().__init__("/")
        self.registry, self.refusals = registry, refusals
        self.metrics = registry.metrics
        # tracebacks of internal errors: a few a minute, process-wide; the rest one line each
        self.tracebacks = TokenBucket(TRACEBACKS_PER_MIN / 60, TRACEBACKS_PER_MIN)
        self.suppressed = 0
        self.handlers: dict[str, Callable[[Session, Any], dict]] = {
            "configure": self.configure, "play": self.play, "pause": self.pause,
            "step": self.step, "reset": self.reset, "set": self.set, "close": self.close,
            "replay": self.replay, **(more or {}),
        }

    # python-socketio calls this for every event; we route by name ourselves so that
    # unknown names get an answer instead of silence.
    def trigger_event(self, event: str, *args):
        sid = args[0]
        # 'connect' and 'disconnect' also arrive as ordinary events when a client emits
        # those names: the real ones come before the session exists / after the socket left.
        if event == "connect" and self.registry.get(sid) is None:
            environ = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
            return self.on_connect(sid, args[2] if len(args) > 2 else None, environ.get("REMOTE_ADDR", ""))
        if event == "disconnect" and not self._connected(sid):
            runs = self.registry.close(sid)
            freed = self.refusals.release(sid)
            log.info("event=disconnect sid=%s reason=%s runs_ended=%d outcome=ok%s", sid,
                     quote(args[1] if len(args) > 1 else "unknown"), runs,
                     f" unsent_bytes_dropped={freed}" if freed else "")
            return None
        payload = args[1] if len(args) == 2 else (list(args[1:]) if len(args) > 2 else None)
        return self.dispatch(sid, event, payload)

    def _connected(self, sid: str) -> bool:
        server = getattr(self, "server", None)
        try:
            return bool(server and server.manager.is_connected(sid, self.namespace))
        except Exception:  # a test double without a manager: trust the event name
            return False

    def on_connect(self, sid: str, auth: Any, address: str = ""):
        """address: the client's (REMOTE_ADDR: the socket's peer, or the forwarded client
        behind settings.trusted_proxies proxies, through werkzeug's ProxyFix)."""
        token = auth.get("token") if isinstance(auth, dict) else None
        if token is not None and not (isinstance(token, str) and TOKEN.match(token)):
            self.metrics.errors.labels(kind="bad_token").inc()
            log.info("event=connect sid=%s outcome=refused kind=bad_token", sid)
            # (Socket.IO's own exception: the builtin one reaches the client as "Connection
            # refused by server", without this message)
            raise ConnectionRefused(BAD_TOKEN, {"field": "token", "allowed": "8..64 of [A-Za-z0-9_-]",
                                                "received": safe_value(token)})
        self.registry.open(sid, token or sid, address)
        log.info("event=connect sid=%s token=%s outcome=ok", sid, "given" if token else "none")

    def dispatch(self, sid: str, event: Any, payload: Any) -> dict:
        known = isinstance(event, str) and event in self.handlers
        name = event if known else "unknown"
        self.metrics.events.labels(event=name).inc()
        session = self.registry.get(sid)
        if session is None:
            return error("session", "not connected")
        if not session.events.take():
            return self.refusals.rate_limited(session, event)
        session.limited = False
        waiting = transport.backlog(getattr(self, "server", None), sid, self.namespace) \
            if known and event in LARGE_REPLY_EVENTS else 0
        if waiting > self.registry.serving.large_reply_bytes:
            return self.refusals.too_large(session, waiting)
        if not known:
            return self._refuse(sid, name, "unknown_event", error(
                "event", f"unknown event {str(event)[:40]!r}", ", ".join(self.handlers), str(event)[:40]))
        try:
            reply = {"ok": True, **self.handlers[event](session, payload)}
        except ConfigError as e:
            return self._refuse(sid, name, "invalid", {"ok": False, "error": e.errors[0], "errors": capped(e.errors)})
        except Busy as e:  # (with retry_after_s when it may pass soon: the page retries)
            reply = error("run", str(e))
            if e.retry_after_s:
                reply["retry_after_s"] = e.retry_after_s
            return self._refuse(sid, name, "busy", reply)
        except JobsBusy as e:  # the client may send it again: it says when
            return self._refuse(sid, name, "jobs_busy", {**error(e.field, str(e)), "retry_after_s": RETRY_AFTER_S})
        except JobCancelled:  # the tab closed while its lesson work ran: nobody reads this answer
            log.info("event=%s sid=%s outcome=cancelled", name, sid)
            return error("run", "cancelled: this tab has closed")
        except (KeyError, IndexError) as e:
            field = "run" if isinstance(e, KeyError) else "change"
            return self._refuse(sid, name, "invalid", error(field, str(e.args[0])))
        except Exception as e:
            self.metrics.errors.labels(kind="internal").inc()
            # a client repeating what hit a bug must not flood the log: a few tracebacks a
            # minute, the others counted (in the metric, and in the next line logged)
            if self.tracebacks.take():
                log.exception("event=%s sid=%s outcome=error kind=internal error=%s suppressed_before=%d", name, sid,
                              quote(type(e).__name__), self.suppressed)
                self.suppressed = 0
            else:
                self.suppressed += 1
            return error("server", "internal error while handling this event; your other runs are unaffected")
        if event == "configure":
            log.info("event=configure sid=%s run=%s outcome=ok params=%s", sid, reply.get("run"), reply.get("params"))
        return reply

    def _refuse(self, sid: str, event: str, kind: str, reply: dict) -> dict:
        self.metrics.errors.labels(kind=kind).inc()
        log.info("event=%s sid=%s outcome=refused kind=%s field=%s message=%s", event, sid, kind,
                 quote(reply["error"]["field"]), quote(reply["error"]["message"][:200]))
        return reply
    # ---- handlers: (session, raw payload) -> ack fields ----
    def configure(self, session: Session, payload: Any) -> dict:
        msg = parse(Configure, payload if payload is not None else {})
        cfg = parse_config(msg.config, self.registry.limits)
        slot = session.configure(msg.run, cfg)
        return {"run": msg.run, **slot.state.describe()}

    def play(self, session: Session, payload: Any) -> dict:
        msg = parse(Play, payload if payload is not None else {})
        slot = session.slot(msg.run)
        if msg.until is not None and not slot.pace.finished:
            # the run may move on meanwhile only if it plays: then a stop behind it is refused
            lo, hi = slot.state.step_count + 1, self.registry.limits.max_steps
            if not lo <= msg.until <= hi:
                raise ConfigError([{"field": "until", "allowed": f"{lo}..{hi}", "received": safe_value(msg.until),
                                    "message": f"until has to be between {lo} and {hi}, but got {safe_value(msg.until)}"}])
        slot.play(msg.until)
        reply = {"run": slot.run_id, "state": "playing"}
        if msg.until is not None:
            reply["until"] = msg.until
        return reply

    def pause(self, session: Session, payload: Any) -> dict:
        slot = session.slot(self._ref(payload).run)
        slot.pause()
        return {"run": slot.run_id, "state": "paused", "step": slot.state.step_count}

    def step(self, session: Session, payload: Any) -> dict:
        msg = parse(Step, payload if payload is not None else {})
        slot = session.slot(msg.run)
        return {"run": slot.run_id, "step": slot.step(msg.n)}

    def replay(self, session: Session, payload: Any) -> dict:
        msg = parse(Replay, payload)
        slot = session.slot(msg.run)
        return {"run": slot.run_id, "step": slot.replay(msg.step)}

    def reset(self, session: Session, payload: Any) -> dict:
        slot = session.slot(self._ref(payload).run)
        slot.reset()
        return {"run": slot.run_id, "step": 0}

    def set(self, session: Session, payload: Any) -> dict:
        msg = parse(Set, payload)
        change = msg.change
        slot = session.slot(msg.run)
        if change.param == "speed":  # the server's pacing of the run
            slot.set_speed(change.value)
        else:                        # the run's own settings
            slot.change(change)
        return {"run": slot.run_id, "applied": change.model_dump(), "config": slot.state.cfg.model_dump()}

    def close(self, session: Session, payload: Any) -> dict:
        ref = self._ref(payload)
        session.slot(ref.run)
        session.drop(ref.run)
        return {"run": ref.run, "state": "closed"}

    @staticmethod
    def _ref(payload: Any) -> RunRef:
        return parse(RunRef, payload if payload is not None else {})
