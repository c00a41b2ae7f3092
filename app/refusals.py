"""What happens to a client that breaks a rule of the connection, below its events: a
malformed packet (app/packets.py finds it), a large answer left unread or a backlog past
max_backlog_bytes (app/transport.py's reply budget), a flood of events past the rate
limit; and what its transport holds once it has left (release). Each is one log line
and a metric, never a traceback; a client that keeps on is told why and cut off.
"""
from __future__ import annotations

import logging
from typing import Any

from . import packets, transport
from .logfmt import quote
from .registry import Registry
from .sessions import Session
from .socketio_internals import send_ack

log = logging.getLogger("dropout.events")

NAMESPACE = "/"


def error(field: str, message: str, allowed: str = "", received: Any = None) -> dict:
    entry = {"field": field, "message": message, "allowed": allowed, "received": received}
    return {"ok": False, "error": entry, "errors": [entry]}


class Refusals:
    """The rules of one server's connections (server: python-socketio's Server)."""

    def __init__(self, server, registry: Registry):
        self.server, self.registry, self.metrics = server, registry, registry.metrics

    def release(self, sid: str) -> int:
        """The session has ended: free what its transport holds, whatever the client does
        (a client that stops reading kept megabytes of answers queued after the ping
        timeout, until it closed its socket). Returns the unsent bytes dropped."""
        server = self.server
        try:
            eio_sid = server.manager.eio_sid_from_sid(sid, NAMESPACE)
        except Exception:  # a test double without a server, or already gone
            return 0
        return transport.release(server, eio_sid) if eio_sid else 0

    def cut_off(self, sid: str) -> None:
        """Disconnect a client (its 'disconnect' event ends its runs and releases its
        transport) and close its transport without waiting for it to read what is queued."""
        try:
            eio_sid = self.server.manager.eio_sid_from_sid(sid, NAMESPACE)
            self.server.disconnect(sid, namespace=NAMESPACE)  # Socket.IO clients do not reconnect after a server disconnect
            socket = self.server.eio.sockets.get(eio_sid)
            if socket is not None:
                socket.close(wait=False, abort=False)
        except Exception as e:  # already gone
            log.info("event=disconnect sid=%s outcome=error kind=cut_off error=%s", sid, quote(type(e).__name__))

    def session_of(self, eio_sid: str) -> Session | None:
        try:
            sid = self.server.manager.sid_from_eio_sid(eio_sid, NAMESPACE)
        except Exception:
            return None
        return self.registry.get(sid) if sid else None

    def malformed(self, eio_sid: str, kind: str, detail: str, ack_id: int | None) -> None:
        """A packet app/transport.py refused before (or instead of) parsing it. It counts
        as an event against the client's rate (and the flood disconnect), and logs one
        line while the client is within its rate; an event with an id is answered."""
        self.metrics.errors.labels(kind="malformed").inc()
        session = self.session_of(eio_sid)
        if session is None:  # no session (not yet, or cut off already): close, log once
            sock = self.server.eio.sockets.get(eio_sid)
            if sock is None or getattr(sock, "malformed_closed", False):
                return
            sock.malformed_closed = True
            log.info("event=malformed eio_sid=%s outcome=refused kind=%s detail=%s action=close",
                     quote(eio_sid), kind, quote(detail))
            try:
                self.server.eio.disconnect(eio_sid)
            except Exception:
                pass
            return
        if not session.events.take():
            reply = self.rate_limited(session, "malformed")
        else:
            session.limited = False
            log.info("event=malformed sid=%s outcome=refused kind=%s detail=%s", session.sid, kind, quote(detail))
            reply = error("packet", f"malformed packet: {detail}",
                          f"JSON nested at most {packets.MAX_DEPTH} deep, numbers of at most "
                          f"{packets.MAX_DIGITS} digits, valid Unicode text, an event name first", kind)
        if ack_id is not None:
            send_ack(self.server, eio_sid, NAMESPACE, ack_id, [reply])

    def over_reply_budget(self, eio_sid: str, waiting: int, size: int) -> None:
        """The client was about to get a large answer while an earlier one still waits
        unread in its queue (or more than max_backlog_bytes in all): it is told why, then
        disconnected."""
        session = self.session_of(eio_sid)
        if session is None:
            return
        self.too_large(session, waiting, size)

    def too_large(self, session: Session, waiting: int, size: int | None = None) -> dict:
        serving = self.registry.serving
        limit = serving.large_reply_bytes
        if size is not None and waiting + size > serving.max_backlog_bytes:
            limit = serving.max_backlog_bytes
            reason = (f"disconnected: more than {limit // 1024} KB of answers and frames were left unread; "
                      "reload the page")
        else:
            reason = (f"disconnected: a large answer (over {limit // 1024} KB) was still unread when you asked "
                      "for another; read each answer before asking for the next, then reload the page")
        self.metrics.errors.labels(kind="reply_budget").inc()
        log.info("event=disconnect sid=%s outcome=refused kind=reply_budget limit=%d bytes_waiting=%d%s", session.sid,
                 limit, waiting, f" message_bytes={size}" if size is not None else "")
        session.emit("status", {"run": None, "state": "disconnected", "step": None, "reason": reason},
                     to=session.sid)
        self.cut_off(session.sid)
        return error("event", reason, f"one unread answer over {limit} bytes", None)

    def rate_limited(self, session: Session, event: Any) -> dict:
        """Refuse an event over the rate limit. A client that keeps on at that pace (it
        ignores the refusals) is disconnected, so that a flood costs the others nothing."""
        lim = self.registry.serving
        self.metrics.errors.labels(kind="rate_limited").inc()
        if not session.limited:  # one log line per run of refusals, not one per event
            session.limited = True
            log.info("event=%s sid=%s outcome=refused kind=rate_limited", quote(str(event)[:40]), session.sid)
        if session.events.flooding():
            self.metrics.errors.labels(kind="flood").inc()
            log.info("event=disconnect sid=%s outcome=refused kind=flood", session.sid)
            session.emit("status", {"run": None, "state": "disconnected", "step": None,
                                    "reason": "disconnected: far too many events; reload the page"},
                         to=session.sid)
            self.cut_off(session.sid)
        return error("event", f"too many events: {lim.events_per_s:g} per second allowed "
                     f"(bursts of {lim.event_burst}); slow down", f"<= {lim.events_per_s:g}/s", str(event)[:40])
