"""Library internals live in one module per library, which refuses another version than
the pinned one (issue 25): torch's in model_server/torch_internals.py, gunicorn's in
app/gunicorn_worker.py (tests/test_hosting_serving.py checks that one), python-engineio's
in app/engineio_internals.py, python-socketio's in app/socketio_internals.py and
simple-websocket's in app/websocket_internals.py. Each use of an internal is held here to
the library's public behaviour."""
from __future__ import annotations

import ast
import inspect
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from model_server.pins import check_pinned, pinned_version

ROOT = Path(__file__).resolve().parent.parent


def code_files() -> list[Path]:
    return [p for d in ("app", "model_server") for p in (ROOT / d).rglob("*.py")]


INTERNALS = {  # library (as requirements.txt names it) -> the one module that may use its internals
    "torch": "model_server/torch_internals.py",
    "python-engineio": "app/engineio_internals.py",
    "python-socketio": "app/socketio_internals.py",
    "simple-websocket": "app/websocket_internals.py",
}
OWN_MODULES = set(INTERNALS.values()) | {"app/gunicorn_worker.py"}


def test_torch_internals_are_used_in_one_module_only():
    private = re.compile(r"torch\._[a-z]\w*|torch\.ops\.aten")
    users = sorted({p.relative_to(ROOT).as_posix() for p in code_files() if private.search(p.read_text())})
    assert users == ["model_server/torch_internals.py"], users


def _our_names() -> set[str]:
    """Every private name our own code defines (functions, classes, attributes, variables)."""
    names = set()
    for path in code_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.ImportFrom):
                names.update(a.asname for a in node.names if a.asname)
    return {n for n in names if n.startswith("_")}


def test_library_private_names_only_in_their_internals_modules():
    """What `grep -rnE "\\._[a-z]" app/ | grep -v "self\\._"` finds outside the internals
    modules is our own private names (and os._exit, the documented way to exit at once)."""
    ours = _our_names() | {"_exit"}
    found = []
    for path in (ROOT / "app").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel in OWN_MODULES:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in re.finditer(r"(?<!self)\.(_[a-z]\w*)", line):
                if m[1] not in ours:
                    found.append(f"{rel}:{n}: {m[1]}")
    assert not found, found
    # and each library's own internals in its module only
    marks = {"python-engineio": r"_websocket_wsgi|SimpleWebSocketWSGI|\._async\b",
             "python-socketio": r"_send_packet|_handle_eio_message|_generate_ack_id|_emit_internal|_handle_ack",
             "simple-websocket": r"_handle_events|\b_thread\b|import simple_websocket"}
    for package, mark in marks.items():
        users = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "app").rglob("*.py")
                       if re.search(mark, _code_of(p)))
        assert users == [INTERNALS[package]], (package, users)


def _code_of(path: Path) -> str:
    """The code of a module without its docstrings and comments."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body[0] = ast.Pass()
    return ast.unparse(tree)


def test_another_torch_than_the_pinned_one_stops_start_up_naming_both():
    pinned = pinned_version("torch")
    assert pinned == "2.13.0"
    check_pinned("torch", pinned + "+cpu", "x")  # a local build of the pinned version is it
    with pytest.raises(SystemExit, match=r"torch==2\.13\.0 \(requirements.txt\), but torch 2\.14\.0 is installed"):
        check_pinned("torch", "2.14.0", "model_server/torch_internals.py")
    code = "import torch; torch.__version__ = '2.14.0'; import app.factory"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "torch==2.13.0" in done.stderr and "torch 2.14.0 is installed" in done.stderr


@pytest.mark.parametrize("package", ["python-engineio", "python-socketio", "simple-websocket"])
def test_another_socket_library_than_the_pinned_one_stops_start_up_naming_both(package):
    from importlib.metadata import version
    pinned = pinned_version(package)
    assert pinned and version(package) == pinned
    code = textwrap.dedent(f"""
        import importlib.metadata as m
        real = m.version
        m.version = lambda name: "99.0.1" if name == {package!r} else real(name)
        import app.factory
    """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stdout
    assert f"{package}=={pinned} (requirements.txt), but {package} 99.0.1 is installed" in done.stderr
    assert INTERNALS[package] in done.stderr


# ---- python-socketio ---------------------------------------------------------------------------
def _socketio_server(lane=None):
    import socketio
    from app.socketio_internals import Packet, whole_packets
    server = socketio.Server(async_mode="threading", serializer=Packet, async_handlers=False)
    sent = []
    server.eio.send = lambda eio_sid, message: sent.append((eio_sid, message))
    whole_packets(server, lane)
    return server, sent


def test_a_frame_sent_with_the_public_emit_reaches_the_lane_with_its_ack_id():
    """Frames go out with Server.emit(callback=...): python-socketio picks the ack id and
    hands the packet to _send_packet (whole_packets), whose lane sees it; the client's
    acknowledgement of that id calls the callback."""
    taken, acked = [], []
    server, sent = _socketio_server(lambda eio_sid, pkt: taken.append((eio_sid, pkt)) or True)
    sid = server.manager.connect("e1", "/")
    server.emit("frame", b"\x00\x01", to=sid, callback=lambda *a: acked.append(a))
    (eio_sid, pkt), = taken
    assert eio_sid == "e1" and pkt.data == ["frame", b"\x00\x01"] and isinstance(pkt.id, int) and not sent
    server.eio.handlers["message"]("e1", f"3{pkt.id}[true]")  # the client's acknowledgement
    assert acked == [(True,)]


def test_a_packet_the_lane_leaves_is_sent_as_python_socketio_sends_it():
    from socketio import packet
    server, sent = _socketio_server(lambda eio_sid, pkt: False)
    sid = server.manager.connect("e1", "/")
    server.emit("frame", b"abc", to=sid, callback=lambda *a: None)
    stock = packet.Packet(packet.EVENT, namespace="/", data=["frame", b"abc"], id=1).encode()
    assert [m for _, m in sent] == stock


def test_an_emit_without_callback_waits_for_a_packet_being_queued():
    """A status (an emit without a callback, queued through _send_eio_packet) never lands
    between another packet's messages: it takes the same lock."""
    import threading
    server, _ = _socketio_server()
    queued = []
    server.eio.send_packet = lambda eio_sid, pkt: queued.append(pkt.data)
    sid = server.manager.connect("e1", "/")
    with server.packet_lock:
        emitter = threading.Thread(target=server.emit, args=("status", {"state": "paused"}), kwargs={"to": sid})
        emitter.start()
        emitter.join(0.2)
        assert emitter.is_alive() and not queued  # it waits for the packet in hand
    emitter.join(5)
    assert queued == ['2["status",{"state":"paused"}]']


def test_send_ack_answers_as_python_socketio_answers_an_event():
    from app.socketio_internals import send_ack
    server, sent = _socketio_server()
    server.manager.connect("e1", "/")
    server.on("ask", lambda sid, data: {"ok": False, "n": data})
    server.eio.handlers["message"]("e1", '27["ask",3]')  # the stock path: socketio's handler
    send_ack(server, "e1", "/", 7, [{"ok": False, "n": 3}])
    assert sent[0] == sent[1] == ("e1", '37[{"ok":false,"n":3}]')


# ---- python-engineio ---------------------------------------------------------------------------
def test_the_websocket_driver_copies_simple_websocket_wsgis_call():
    """WebSocketDriver.__call__ is SimpleWebSocketWSGI.__call__ with the connection built
    by connect(): the stock body is still the one copied."""
    from engineio.async_drivers._websocket_wsgi import SimpleWebSocketWSGI
    body = textwrap.dedent(inspect.getsource(SimpleWebSocketWSGI.__call__))
    assert body == textwrap.dedent('''\
        def __call__(self, environ, start_response):
            self.ws = simple_websocket.Server(environ, **self.server_args)
            ret = self.app(self)
            if self.ws.mode == 'gunicorn':
                raise StopIteration()
            elif self.ws.mode == 'werkzeug':
                raise ConnectionError()
            return ret
        ''')


def test_the_servers_queues_and_websockets_are_ours():
    """install() sets engineio's drivers: the public create_queue() gives our SendQueue,
    and an upgrade builds our websocket class (a raw client talks through it:
    tests/test_socket.py)."""
    from app import create_app
    from app.transport import SendQueue, WebSocket
    eio = create_app().extensions["socketio"].server.eio
    assert isinstance(eio.create_queue(), SendQueue)
    assert issubclass(eio._async["websocket"], WebSocket)


# ---- simple-websocket --------------------------------------------------------------------------
def _connection(max_message_size=None):
    """A server Connection on one end of a socket pair, a wsproto client on the other."""
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, Request
    from app.websocket_internals import Connection, connection_of
    a, b = socket.socketpair()
    client = WSConnection(ConnectionType.CLIENT)
    request = client.send(Request(host="localhost", target="/socket.io/"))
    key = re.search(rb"Sec-WebSocket-Key: (\S+)", request, re.I)[1].decode()
    environ = {"werkzeug.socket": a, "HTTP_HOST": "localhost", "HTTP_CONNECTION": "Upgrade",
               "HTTP_UPGRADE": "websocket", "HTTP_SEC_WEBSOCKET_KEY": key, "HTTP_SEC_WEBSOCKET_VERSION": "13"}
    started = []

    class Start:
        name = "reader"

        def __init__(self, target, **_):
            started.append(connection_of(target))

        def start(self):
            pass
    conn = Connection(environ, thread_class=Start, max_message_size=max_message_size)
    assert started == [conn]  # simple-websocket handed its reading to thread_class
    client.receive_data(b.recv(65536))
    assert any(isinstance(e, AcceptConnection) for e in client.events())
    return conn, client, a, b


def test_a_connection_read_by_the_reader_receives_as_simple_websocket_does():
    from wsproto.events import TextMessage
    conn, client, a, b = _connection()
    try:
        acks = []
        conn.on_ack = lambda m: m.startswith("431") and not acks.append(m)
        b.sendall(client.send(TextMessage(data="42[\"play\"]")) + client.send(TextMessage(data="431[true]")))
        conn.read(a.recv(65536))
        assert conn.receive(timeout=0) == '42["play"]' and acks == ["431[true]"]
        assert conn.receive(timeout=0) is None and conn.connected  # the acknowledgement was not queued
    finally:
        a.close()
        b.close()


def test_a_message_over_the_limit_closes_the_connection_and_wakes_its_reader():
    from wsproto.events import TextMessage
    from app.websocket_internals import ConnectionClosed
    conn, client, a, b = _connection(max_message_size=16)
    try:
        b.sendall(client.send(TextMessage(data="x" * 100)))
        conn.read(a.recv(65536))
        assert not conn.connected and conn.event.is_set()
        with pytest.raises(ConnectionClosed):
            conn.receive(timeout=0)
    finally:
        a.close()
        b.close()
