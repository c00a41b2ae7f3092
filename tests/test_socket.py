"""The socket protocol, through the Flask-SocketIO test client and through a real
python-socketio client against a real server process on loopback."""
from __future__ import annotations

import collections
import json
import threading
import time

import pytest

from model_server.frames import decode
from visitors import InOrderClient, RawSocket


def frames_of(client) -> list[tuple[dict, dict]]:
    return [decode(m["args"][0]) for m in client.get_received() if m["name"] == "frame"]


# ---- Flask-SocketIO test client ---------------------------------------------------------

def test_configure_acks_with_the_full_config_and_points(sio):
    ack = sio.emit("configure", {"config": {"data": {"dataset": "moons"}}}, callback=True)
    assert ack["ok"] is True
    assert ack["config"]["data"]["dataset"] == "moons"
    assert ack["config"]["model"]["hidden"] == [8, 8]  # defaults filled in
    assert ack["sizes"] == [2, 8, 8, 1]
    assert len(ack["points"]["train"]) + len(ack["points"]["test"]) == 500
    header, _ = frames_of(sio)[0]  # the untrained network's first frame
    assert header["step"] == 0


@pytest.mark.parametrize("config, field, words", [
    ({"model": {"p": [1.5, 0.2]}}, "model.p.0", "between 0 and 1, but got 1.5"),
    ({"data": {"dataset": "mnist"}}, "data.dataset", "mnist"),
    ({"model": {"hidden": [100]}, }, "model.hidden.0", "but got 100"),
    ({"train": {"lr": "fast"}}, "train.lr", "valid number"),
    ({"colour": "red"}, "colour", "unknown field"),
])
def test_bad_config_gets_a_structured_error(sio, config, field, words):
    ack = sio.emit("configure", {"config": config}, callback=True)
    assert ack["ok"] is False
    fields = [e["field"] for e in ack["errors"]]
    assert field in fields
    entry = ack["errors"][fields.index(field)]
    assert words in entry["message"]
    assert entry["allowed"]
    assert sio.is_connected()


def test_unknown_event_and_bad_payloads_are_answered(sio):
    ack = sio.emit("launch_missiles", {}, callback=True)
    assert ack["ok"] is False and ack["error"]["field"] == "event"
    assert "configure" in ack["error"]["allowed"]
    ack = sio.emit("play", "not an object", callback=True)
    assert ack["ok"] is False and ack["error"]["field"] == "payload"
    ack = sio.emit("play", {}, callback=True)  # no run configured yet
    assert ack["ok"] is False and "configure" in ack["error"]["message"]


def test_step_reset_and_live_changes(sio):
    assert sio.emit("configure", {"config": {}}, callback=True)["ok"]
    sio.get_received()
    ack = sio.emit("step", {"n": 5}, callback=True)
    assert ack == {"ok": True, "run": "main", "step": 5}
    ack = sio.emit("set", {"change": {"param": "p", "layer": 1, "value": 0.75}}, callback=True)
    assert ack["ok"] and ack["config"]["model"]["p"] == [0.3, 0.75]
    ack = sio.emit("set", {"change": {"param": "p", "layer": 7, "value": 0.5}}, callback=True)
    assert ack["ok"] is False and "layer" in ack["error"]["message"]
    ack = sio.emit("set", {"change": {"param": "lr", "value": -1}}, callback=True)
    assert ack["ok"] is False and ack["error"]["field"] == "change.lr.value"
    ack = sio.emit("set", {"change": {"param": "mode", "value": "eval"}}, callback=True)
    assert ack["ok"]
    ack = sio.emit("reset", {}, callback=True)
    assert ack == {"ok": True, "run": "main", "step": 0}


def wait_status(client, state: str, timeout: float = 30) -> dict:
    """The first status event of that state (other messages are dropped)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for m in client.get_received():
            if m["name"] == "status" and m["args"][0]["state"] == state:
                return m["args"][0]
        time.sleep(0.02)
    raise AssertionError(f"no {state!r} status within {timeout} s")


def test_play_until_pauses_exactly_at_that_step(sio):
    assert sio.emit("configure", {"config": {"model": {"hidden": [16, 16]}}}, callback=True)["ok"]
    for until in (700, 1313):  # from step 0, then onwards from where it stopped
        ack = sio.emit("play", {"until": until}, callback=True)
        assert ack == {"ok": True, "run": "main", "state": "playing", "until": until}
        assert wait_status(sio, "paused")["step"] == until
        assert sio.emit("pause", {}, callback=True)["step"] == until  # and it stays there
    # a play while playing moves the stop (the second play comes a few ms after the first)
    assert sio.emit("play", {"until": 150_000}, callback=True)["ok"]
    assert sio.emit("play", {"until": 3313}, callback=True)["ok"]
    assert wait_status(sio, "paused")["step"] == 3313


@pytest.mark.parametrize("until, message", [
    (5, "until has to be between 6 and 200000, but got 5"),
    (0, "until has to be between 6 and 200000, but got 0"),
    (200_001, "until has to be between 6 and 200000, but got 200001"),
    (10**30, "until has to be between 6 and 200000, but got 1000000000000000000000000000000"),
    ("ten", "valid integer, but got 'ten'"),
    (7.5, "valid integer, but got 7.5"),
    (True, "valid integer, but got True"),
])
def test_play_until_out_of_range_is_refused(sio, until, message):
    assert sio.emit("configure", {"config": {}}, callback=True)["ok"]
    assert sio.emit("step", {"n": 5}, callback=True)["step"] == 5
    ack = sio.emit("play", {"until": until}, callback=True)
    assert ack["ok"] is False
    assert ack["error"]["field"] == "until" and message in ack["error"]["message"]
    if isinstance(until, int) and not isinstance(until, bool):
        assert ack["error"]["allowed"] == "6..200000"
        assert ack["error"]["received"] == (until if until < 2**53 else str(until))  # JSON-safe
    assert sio.emit("pause", {}, callback=True) == {"ok": True, "run": "main", "state": "paused", "step": 5}
    assert sio.is_connected()


# ---- a real client against a real server ------------------------------------------------

class Client:
    """A python-socketio client that records (and acknowledges) frames, taking messages
    in arrival order (visitors.InOrderClient: the stock client decodes each on a thread of
    its own, and a frame's attachment, which now arrives in the same write as its header,
    could be taken before it, and a status after it for the attachment)."""

    def __init__(self, url: str, token: str = "real-client-1"):
        self.sio = InOrderClient(reconnection=False)
        self.frames: list[tuple[dict, dict]] = []
        self.arrivals: list[float] = []   # time.monotonic() of each frame
        self.statuses: list[dict] = []
        self.lock = threading.Lock()

        @self.sio.on("frame")
        def on_frame(data):
            with self.lock:
                self.frames.append(decode(data))
                self.arrivals.append(time.monotonic())
            return True

        @self.sio.on("status")
        def on_status(data):
            self.statuses.append(data)

        self.sio.connect(url, auth={"token": token}, transports=["websocket"])

    def call(self, event, payload=None):
        return self.sio.call(event, payload if payload is not None else {}, timeout=10)

    def wait_frames(self, n: int, timeout: float = 10) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.frames) < n:
            time.sleep(0.02)
        return self.frames

    def close(self):
        self.sio.disconnect()


@pytest.fixture
def client(live_server):
    c = Client(live_server.url)
    yield c
    c.close()


def test_real_client_plays_and_frames_are_paced(client):
    assert client.call("configure", {"config": {}})["ok"]
    assert client.call("play")["ok"]
    time.sleep(2.0)
    client.call("pause")
    pairs = [(h, a) for h, a in client.frames if h["step"] > 0]
    playing = [h for h, _ in pairs]
    # paced to the display rate: about 30 per second, never a flood
    assert 20 <= len(playing) <= 2.0 * 30 + 5
    steps = [h["step"] for h in playing]
    assert steps == sorted(steps)
    # many steps per frame at full speed, and the frames account for every step
    assert sum(h["steps"] for h in playing) == steps[-1]
    assert any(h["steps"] > 1 for h in playing)
    assert any("boundary.eval" in a for _, a in pairs)
    assert {"playing", "paused"} <= {s["state"] for s in client.statuses}


def test_slow_speed_gives_every_step_its_own_frame(client):
    assert client.call("configure", {"config": {}})["ok"]
    client.frames.clear()
    assert client.call("set", {"change": {"param": "speed", "value": 10}})["ok"]
    client.frames.clear()
    assert client.call("play")["ok"]
    time.sleep(1.5)
    client.call("pause")
    time.sleep(0.2)
    steps = [h["step"] for h, _ in client.frames if h["steps"] > 0]
    assert len(steps) >= 8
    assert all(h["steps"] == 1 for h, _ in client.frames if h["steps"] > 0)
    assert steps == list(range(steps[0], steps[0] + len(steps)))  # no step without a frame
    # each frame shows the mask of that step
    assert all("mask.0" in a and a["mask.0"].shape == (8,) for h, a in client.frames if h["steps"])


def test_drop_counts_match_p_and_vanish_in_eval_mode(client):
    assert client.call("configure", {"config": {"model": {"hidden": [32, 32], "p": [0.5, 0.2]}}})["ok"]
    client.call("play")
    time.sleep(1.0)
    client.call("set", {"change": {"param": "mode", "value": "eval"}})
    time.sleep(0.2)
    n_before = len(client.frames)
    time.sleep(0.6)
    client.call("pause")
    train = [(h, a) for h, a in client.frames[:n_before] if h["mode"] == "train" and h["steps"]]
    for layer, p in ((0, 0.5), (1, 0.2)):
        dropped = sum(a[f"dropped.{layer}"].sum() for _, a in train)
        seen = sum(h["masked"][layer] * 32 for h, _ in train)
        assert abs(dropped / seen - p) < 0.02
    evals = [(h, a) for h, a in client.frames[n_before:] if h["steps"]]
    assert evals and all(h["mode"] == "eval" and h["masked"] == [0, 0] for h, _ in evals)
    assert all("mask.0" not in a and "dropped.0" not in a for _, a in evals)


def test_view_and_watch_choose_what_the_extras_compute(client):
    """Only the boundary on screen is computed; watching stops when told."""
    assert client.call("configure", {"config": {"model": {"hidden": [4, 4], "p": [0.5, 0.5]}}})["ok"]
    assert client.call("step", {"n": 3})["ok"]

    def frame_after(change):
        seen = len(client.wait_frames(1))
        ack = client.call("set", {"change": change})
        assert ack["ok"], ack
        frames = client.wait_frames(seen + 1)  # paused: a change brings a fresh frame
        assert len(frames) > seen
        return frames[-1]

    header, arrays = frame_after({"param": "view", "value": "thinned"})
    assert header["view"] == "thinned" and "boundary.thinned" in arrays and "boundary.eval" not in arrays
    header, arrays = frame_after({"param": "watch", "layer": 1, "index": 3})
    assert header["watch"] == [1, 3] and "neuron" in arrays
    header, arrays = frame_after({"param": "watch", "layer": None, "index": None})
    assert "watch" not in header and "neuron" not in arrays
    header, arrays = frame_after({"param": "view", "value": "eval"})
    assert header["view"] == "eval" and "boundary.eval" in arrays and "boundary.thinned" not in arrays

    ack = client.call("set", {"change": {"param": "watch", "layer": 1}})
    assert ack["ok"] is False and ack["error"]["field"] == "change.watch"
    assert ack["error"]["message"].endswith("but got layer=1 and index=null")
    assert ack["error"]["allowed"] == "two ints, or both null"
    ack = client.call("set", {"change": {"param": "view", "value": "sideways"}})
    assert ack["ok"] is False and ack["error"]["field"] == "change.view.value"
    assert "eval" in ack["error"]["allowed"] and "sideways" in ack["error"]["message"]


def test_pausing_sends_a_complete_frame_of_the_last_step(client):
    """At full speed most frames lack the slower panels; the paused picture must not mix
    the last step's mask with an older boundary. Three times: a frame taken while playing
    is complete and of the last step now and then by chance, three times in a row hardly."""
    assert client.call("configure", {"config": {}})["ok"]
    client.wait_frames(1)
    for _ in range(3):
        seen = len(client.frames)
        assert client.call("play")["ok"]
        client.wait_frames(seen + 15)
        ack = client.call("pause")
        assert ack["ok"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and client.frames[-1][0]["step"] != ack["step"]:
            time.sleep(0.05)
        time.sleep(0.3)  # nothing more comes
        header, arrays = client.frames[-1]
        assert header["step"] == ack["step"]  # the step the run stopped at
        assert "boundary.eval" in arrays and "weight.0" in arrays and "mask.0" in arrays


def test_two_clients_see_only_their_own_runs(live_server):
    a, b = Client(live_server.url, "client-aaaa"), Client(live_server.url, "client-bbbb")
    try:
        assert a.call("configure", {"config": {"model": {"hidden": [4]  , "p": [0.1]}}})["ok"]
        assert b.call("configure", {"config": {"model": {"hidden": [6, 6], "p": [0.2, 0.2]}}})["ok"]
        a.call("play")
        time.sleep(0.8)
        a.call("pause")
        assert all(h["sizes"] == [2, 4, 1] for h, _ in a.frames)
        assert all(h["sizes"] == [2, 6, 6, 1] for h, _ in b.frames)
        assert all(h["step"] == 0 for h, _ in b.frames)  # b never played
        assert b.call("pause")["ok"]  # b pausing its own (paused) run does not touch a's
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("speed, until", [(1_000_000, 1500), (25, 8)])
def test_play_until_stops_there_with_a_complete_frame_of_that_step(client, speed, until):
    """Full speed: steps run in chunks, none past until. Slow: every step has its frame,
    and the last is the until step. Either way the run pauses like any pause: a 'paused'
    status with the step, and a complete frame whose test evaluation is of that step."""
    assert client.call("configure", {"config": {"model": {"hidden": [16, 16]}}})["ok"]
    assert client.call("set", {"change": {"param": "speed", "value": speed}})["ok"]
    client.wait_frames(1)
    assert client.call("play", {"until": until})["ok"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(s["state"] == "paused" for s in client.statuses):
        time.sleep(0.05)
    assert [s["step"] for s in client.statuses if s["state"] == "paused"] == [until]
    while time.monotonic() < deadline and client.frames[-1][0]["step"] != until:
        time.sleep(0.05)
    time.sleep(0.3)  # nothing more comes
    steps = [h["step"] for h, _ in client.frames]
    assert max(steps) == until and steps == sorted(steps)
    header, arrays = client.frames[-1]
    assert header["step"] == until and header["eval"]["step"] == until
    assert "boundary.eval" in arrays and "weight.0" in arrays
    if speed <= 30:
        moved = [h["step"] for h, _ in client.frames if h["steps"]]
        assert moved == list(range(1, until + 1))
    assert client.call("pause")["step"] == until


@pytest.mark.parametrize("data", [
    None, 1, "text", [1.5, "a", None, True], {"a": [[0.1, 0.2, 1.0]] * 50},
    b"", bytearray(b"x"), [1, [2, [3, b"deep"]]], {"a": {"b": [None, {"c": bytearray()}]}},
    collections.OrderedDict(a=[b"x"]), [{"frame": b"\x00\x01"}, "frame"],
])
def test_our_packet_class_finds_binary_data_as_python_socketio_does(data):
    """app.socketio_internals.Packet (the server's serializer) replaces the stock check,
    which was slow on a configure's answer: the two agree on what is binary."""
    from socketio import packet
    from app.socketio_internals import Packet
    assert Packet.data_is_binary(data) == packet.Packet.data_is_binary(data)
    assert Packet(packet.EVENT, data=["x", data]).packet_type == packet.Packet(packet.EVENT, data=["x", data]).packet_type


def test_the_server_encodes_with_our_packet_class():
    from app import create_app
    from app.socketio_internals import Packet
    assert create_app().extensions["socketio"].server.packet_class is Packet


# ---- the frame lane (app.frame_lane.FrameLane) ---------------------------------------------

@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 200_000])
def test_a_prebuilt_websocket_message_parses_as_wsproto_would_frame_it(size):
    """ws_frame's three length forms, read back by wsproto's own frame parser (a
    client's: server messages are unmasked)."""
    from wsproto.frame_protocol import FrameProtocol, Opcode
    from app.frame_lane import ws_frame
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    reader = FrameProtocol(client=True, extensions=[])
    reader.receive_bytes(ws_frame(0x1, b"451-7[]") + ws_frame(0x2, payload))
    got = list(reader.received_frames())
    assert [(f.opcode, f.message_finished) for f in got] == [(Opcode.TEXT, True), (Opcode.BINARY, True)]
    assert got[0].payload == "451-7[]" and bytes(got[1].payload) == payload


def test_frames_reach_a_raw_websocket_client_as_socketio_binary_events(live_server):
    """On the wire, a frame is what python-socketio would send: a text header
    '451-<id>["frame",{"_placeholder":true,"num":0}]', then its attachment; each short
    acknowledgement (taken on the connection's reading thread) brings the next, and an
    event's answer still comes the usual way."""
    raw = RawSocket(live_server.url)
    try:
        assert raw.call("configure", {"config": {"model": {"hidden": [4, 4]}}})["ok"]
        want = raw.emit("play")
        steps, answered = [], False
        while len(steps) < 20 or not answered:
            msg = raw.ws.recv()
            if msg == "2":
                raw.ws.send("3")
            elif isinstance(msg, str) and msg.startswith("451-"):
                ack_id, rest = msg[4:].split("[", 1)
                assert "[" + rest == '["frame",{"_placeholder":true,"num":0}]'
                header, arrays = decode(raw.ws.recv())
                assert "mask.0" in arrays or header["step"] == 0
                steps.append(header["step"])
                raw.ws.send(f"43{ack_id}[true]")
            elif isinstance(msg, str) and msg.startswith(f"43{want}["):
                assert json.loads(msg[len(f"43{want}"):])[0]["ok"]
                answered = True
        assert steps == sorted(steps) and steps[-1] > steps[0]
        assert raw.call("pause")["ok"]
    finally:
        raw.ws.close()


def test_a_polling_client_gets_its_frames_through_python_socketio(live_server):
    """A client that never upgrades to a websocket cannot take prebuilt WebSocket
    messages: its frames go through the ordinary emit."""
    got = []
    client = InOrderClient(reconnection=False)
    client.on("frame", lambda data: got.append(decode(data)[0]["step"]) or True)
    client.connect(live_server.url, auth={"token": "polling-only-token-1"}, transports=["polling"])
    try:
        assert client.call("configure", {"config": {}}, timeout=30)["ok"]
        assert client.call("play", {}, timeout=30)["ok"]
        deadline = time.monotonic() + 20
        while len(got) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(got) >= 10 and got == sorted(got)
    finally:
        client.disconnect()


def test_a_write_the_socket_cannot_take_at_once_goes_first_later():
    """FrameLane's non-blocking write (app.reader.WholeSends.try_send): what the socket
    does not take at once is written before anything else, by the next send."""
    import socket as socketlib
    from app.reader import WholeSends
    a, b = socketlib.socketpair()
    a.settimeout(10)
    try:
        w = WholeSends(a)
        big = bytes(range(256)) * 40_000  # ~10 MB: more than the socket buffers hold
        assert w.try_send(big) is None  # part of it went
        assert w.try_send(b"later") is False  # the rest waits: nothing may overtake it
        got = bytearray()

        def read_all():
            while len(got) < len(big) + 4:
                got.extend(b.recv(1 << 20))
        reader = threading.Thread(target=read_all)
        reader.start()
        w.send(b"next")  # the writer's send: the rest first, then this
        reader.join(30)
        assert bytes(got) == big + b"next"
        assert w.try_send(b"free") is True and b.recv(16) == b"free"
    finally:
        a.close()
        b.close()


class FakeConnection:
    """What the Reader needs of a connection: a socket, a parser, an event."""

    def __init__(self, sock):
        self.sock, self.receive_bytes, self.connected, self.quiet = sock, 4096, True, False
        self.event, self.got = threading.Event(), bytearray()
        self.reader_fd, self.last_read = -1, 0.0

    def read(self, data):
        self.got.extend(data)

    def ended(self):
        self.connected = False
        self.event.set()


def test_the_reader_takes_a_new_connection_whose_number_an_old_one_had():
    """The web server closes a connection's socket once its handler returns, possibly
    before the Reader has seen the end; the next connection often gets the same file
    number. It must be read, and the old one ended (a new connection was cut at once)."""
    import socket as socketlib
    from app.reader import Reader
    reader = Reader()
    a, peer_a = socketlib.socketpair()
    old = FakeConnection(a)
    reader.add(old)
    deadline = time.monotonic() + 5
    while old.reader_fd < 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    number = a.fileno()
    a.close()  # under the Reader, as the web server does
    b, peer_b = socketlib.socketpair()
    if b.fileno() != number:  # the number went to the other end: swap ends
        b, peer_b = peer_b, b
    assert b.fileno() == number
    new = FakeConnection(b)
    reader.add(new)
    peer_b.sendall(b"hello")
    deadline = time.monotonic() + 5
    while bytes(new.got) != b"hello" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bytes(new.got) == b"hello" and new.connected
    assert old.event.is_set() and not old.connected
    for s in (b, peer_a, peer_b):
        s.close()
