"""Real clients for tests against a LiveServer on loopback (not the Flask test client).

    Visitor   a python-socketio Client, as a Python program would use the server: it
              acknowledges each frame (unless told to hold them) and keeps statuses
    RawSocket Engine.IO/Socket.IO spoken by hand over websocket-client, for clients that
              misbehave at the protocol level: never read, never answer pings, flood

Every wait here is for the event meant (a connection, an answer, a condition) and bounded
generously: the bounds only decide how long a broken server takes to fail a test, and a
machine with another CPU-heavy process beside the suite must not reach them.
"""
from __future__ import annotations

import collections
import functools
import json
import re
import secrets
import socket
import threading
import time

import engineio
import psutil
import requests
import socketio
import websocket

from model_server.frames import decode


def wait_until(predicate, timeout: float = 30.0, every: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def metric(url: str, name: str, **labels) -> float:
    """One sample from /metrics (0 when absent), e.g. metric(url, "dropout_errors_total", kind="busy")."""
    text = requests.get(url + "/metrics", timeout=5).text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)"
    m = re.search(r"^" + pattern + "$", text, re.M)
    return float(m.group(1)) if m else 0.0


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def token() -> str:
    return "t-" + secrets.token_hex(8)


class _InOrderEngineIO(engineio.Client):
    """python-socketio's client handles each Engine.IO message on a thread of its own, so a
    binary event's attachment can overtake its header under load, and the frame (and the
    next acknowledgement) is lost. Handled in arrival order here, on the reading thread."""

    def _trigger_event(self, event, *args, **kwargs):
        if event == "message":
            kwargs["run_async"] = False
        return super()._trigger_event(event, *args, **kwargs)


class InOrderClient(socketio.Client):
    def _engineio_client_class(self):
        return _InOrderEngineIO


class Visitor:
    """One browser tab's worth of protocol, over a real websocket."""

    def __init__(self, url: str, tok: str | None = None, hold_frames: bool = False, origin: str | None = None,
                 source: str | None = None, headers: dict | None = None):
        """source: a loopback address to connect from (127.0.0.2, ...: another client
        address on one machine); headers: extra handshake headers (X-Forwarded-For)."""
        self.token = tok or token()
        # a visitor holding frames blocks in its frame handler: that must not stop the
        # reading thread (which answers the server's pings), so it keeps the stock client
        kind = socketio.Client if hold_frames else InOrderClient
        options = {"origin": origin} if origin else {}
        if source:
            host, port = url.split("//")[1].split(":")
            options["socket"] = socket.create_connection((host, int(port)), source_address=(source, 0))
        self.sio = kind(reconnection=False, websocket_extra_options=options or None)
        self.headers: list[dict] = []          # the last few frame headers
        self.frame_times: collections.deque = collections.deque(maxlen=100_000)
        self.statuses: list[dict] = []
        self.release = threading.Event()       # set: a held frame gets acknowledged
        if not hold_frames:
            self.release.set()
        self.sio.on("frame", self._frame)
        self.sio.on("status", self.statuses.append)
        self.sio.connect(url, auth={"token": self.token}, transports=["websocket"], wait_timeout=30,
                         headers=headers or {})

    def _frame(self, data: bytes):
        header, _ = decode(data)
        self.frame_times.append(time.monotonic())
        self.headers = (self.headers + [header])[-50:]
        self.release.wait(120)
        return True

    @property
    def sid(self) -> str:
        return self.sio.get_sid()

    @property
    def connected(self) -> bool:
        return self.sio.connected

    def call(self, event: str, data=None, timeout: float = 30) -> dict:
        return self.sio.call(event, data, timeout=timeout)

    def ok(self, event: str, data=None) -> dict:
        reply = self.call(event, data)
        assert reply["ok"], reply
        return reply

    def frames_since(self, t: float) -> int:
        return sum(1 for x in self.frame_times if x >= t)

    def frame_rate(self, seconds: float) -> float:
        t = time.monotonic()
        time.sleep(seconds)
        return self.frames_since(t) / seconds

    def close(self) -> None:
        self.release.set()
        if self.sio.connected:
            # engineio's read loop usually takes the server's close frame before
            # websocket-client's close() sees it, which then waits its full 3 s timeout
            ws = self.sio.eio.ws
            if ws is not None:
                ws.close = functools.partial(ws.close, timeout=0.2)
            self.sio.disconnect()


class RawSocket:
    """Socket.IO v5 over Engine.IO v4 on a websocket, by hand. Nothing happens unless
    asked: no pings answered, no frames acknowledged, nothing read."""

    def __init__(self, url: str, tok: str | None = None, origin: str | None = None, rcvbuf: int | None = None):
        opts = {"origin": origin} if origin else {}
        sockopt = [(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)] if rcvbuf else []
        self.ws = websocket.create_connection(url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
                                              timeout=10, sockopt=sockopt, **opts)
        assert self.ws.recv().startswith("0")  # Engine.IO open
        self.ws.send("40" + json.dumps({"token": tok or token()}))
        reply = self.ws.recv()
        assert reply.startswith("40"), reply
        self.sid = json.loads(reply[2:])["sid"]
        self.next_id = 0

    def emit(self, event: str, data=None) -> int:
        """Send an event asking for an acknowledgement; returns its id (nothing is read)."""
        self.next_id += 1
        self.ws.send(f"42{self.next_id}" + json.dumps([event] + ([data] if data is not None else [])))
        return self.next_id

    def send_raw(self, text_or_bytes) -> None:
        if isinstance(text_or_bytes, bytes):
            self.ws.send_binary(text_or_bytes)
        else:
            self.ws.send(text_or_bytes)

    def _next(self) -> str | bytes:
        """The next message that is not a ping or a frame (those are answered here)."""
        while True:
            msg = self.ws.recv()
            if msg == "2":
                self.ws.send("3")
            elif isinstance(msg, str) and msg.startswith("451-"):
                frame_id = msg[4:msg.index("[")]
                self.ws.recv()  # its attachment
                self.ws.send(f"43{frame_id}[true]")
            else:
                return msg

    def call(self, event: str, data=None) -> dict:
        """Emit and read until its acknowledgement, answering pings and acknowledging frames."""
        want = self.emit(event, data)
        while True:
            msg = self._next()
            if isinstance(msg, str) and msg.startswith(f"43{want}["):
                return json.loads(msg[len(f"43{want}"):])[0]

    def answers(self, quiet: float = 1.0) -> list[dict]:
        """Every acknowledgement that arrives until none has for `quiet` seconds (pings
        answered, frames acknowledged)."""
        got = []
        self.ws.settimeout(quiet)
        try:
            while True:
                msg = self._next()
                if isinstance(msg, str) and msg.startswith("43"):
                    got.append(json.loads(msg[msg.index("["):])[0])
        except websocket.WebSocketTimeoutException:
            return got

    def alive(self) -> bool:
        """False once the server has closed the connection (reads what is waiting)."""
        try:
            self.ws.settimeout(0.2)
            while True:
                opcode, _ = self.ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    return False
        except websocket.WebSocketTimeoutException:
            return True
        except (websocket.WebSocketConnectionClosedException, OSError):
            return False

    def close(self) -> None:
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass
