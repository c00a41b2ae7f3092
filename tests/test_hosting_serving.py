"""Issue 23: one visitor must not take the hosted page down. Both servers, with real
sockets on loopback: the embedded server (`python -m app`, app/webserver.py) and the
Docker image's command (gunicorn with deploy/gunicorn.conf.py, app/gunicorn_worker.py).

Each attack is bounded in time and runs beside an honest visitor that trains and
acknowledges frames (tests/visitors.py). Loopback addresses stand for client addresses:
the honest visitor comes from 127.0.0.2, the attacker from 127.0.0.1, newcomers from
others.
"""
from __future__ import annotations

import math
import select
import socket
import subprocess
import sys
import time

import psutil
import pytest
import requests
import websocket

from conftest import ROOT, free_port, live
from visitors import Visitor, wait_until

CAP = 24          # DP_MAX_CONNECTIONS
PER_ADDRESS = 6   # DP_MAX_CONNECTIONS_PER_ADDRESS
HEADER_S = 2      # DP_HEADER_TIMEOUT_S
ENV = {"DP_MAX_CONNECTIONS": str(CAP), "DP_MAX_CONNECTIONS_PER_ADDRESS": str(PER_ADDRESS),
       "DP_HEADER_TIMEOUT_S": str(HEADER_S), "DP_LOG_LEVEL": "WARNING", "DP_ACCESS_LOG": "-",
       # fillers below open an Engine.IO session and answer no ping: not cut while a test runs
       "DP_PING_INTERVAL": "30", "DP_PING_TIMEOUT": "30"}
ATTACK_S = 6.0
MAX_GAP_S = 5.0   # the honest visitor's largest wait for a frame during an attack (generous)


@pytest.fixture(scope="module", params=["embedded", "gunicorn"])
def server(request):
    with live(ENV, request.param) as s:
        yield s


@pytest.fixture
def honest(server):
    v = Visitor(server.url, source="127.0.0.2")
    v.ok("configure", {})
    v.ok("play")
    wait_until(lambda: len(v.frame_times) >= 10, timeout=30, what="the honest visitor's first frames")
    yield v
    v.close()


def threads(server) -> int:
    return psutil.Process(server.pid).num_threads()


def connect_from(server, address: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=(address, 0))


def whole_answer(s: socket.socket, timeout: float = 10) -> bytes:
    """What the server writes until it closes the connection."""
    s.settimeout(timeout)
    out = b""
    try:
        while chunk := s.recv(4096):
            out += chunk
    except ConnectionResetError:
        pass
    return out


def secure(answer: bytes) -> bool:
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    return b"content-security-policy: default-src 'none'; frame-ancestors *" in head and \
        b"x-content-type-options: nosniff" in head


def largest_gap(times: list[float], start: float, end: float) -> float:
    inside = [start] + [t for t in times if start <= t <= end] + [end]
    return max(b - a for a, b in zip(inside, inside[1:]))


def get_page(server, address: str) -> bytes:
    s = connect_from(server, address)
    s.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n\r\n".encode())
    try:
        return whole_answer(s)
    finally:
        s.close()


def engineio_socket(server, address: str) -> websocket.WebSocket:
    """An open Engine.IO websocket from address (it holds a connection slot)."""
    ws = websocket.create_connection(f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket",
                                     timeout=10, socket=connect_from(server, address))
    assert ws.recv().startswith("0")  # Engine.IO open
    return ws


def test_one_address_gets_its_share_and_slow_headers_are_cut(server, honest):
    """The issue's attack, bounded: sockets from one address that send a header line
    every 0.5 s and reconnect when cut. The address holds PER_ADDRESS slots at most (the
    rest are refused 503 naming the limit), each for at most HEADER_S (then 408 and cut);
    a newcomer gets the page and a websocket; the honest visitor keeps its frames."""
    before = threads(server)
    start = time.monotonic()
    socks: dict[socket.socket, bytes] = {}
    answers: list[bytes] = []
    newcomer_page = newcomer_ws = None
    next_line = 0.0

    def open_one():
        s = connect_from(server, "127.0.0.1")
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        s.setblocking(False)
        socks[s] = b""

    for _ in range(3 * PER_ADDRESS):
        open_one()
    while time.monotonic() - start < ATTACK_S:
        readable, _, _ = select.select(list(socks), [], [], 0.1)
        for s in readable:
            try:
                chunk = s.recv(4096)
            except OSError:
                chunk = b""
            if chunk:
                socks[s] += chunk
                continue
            answers.append(socks.pop(s))  # closed by the server: keep its answer, reconnect
            s.close()
            open_one()
        if time.monotonic() >= next_line:
            next_line = time.monotonic() + 0.5
            for s in list(socks):
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
        if newcomer_page is None and time.monotonic() - start > ATTACK_S / 3:
            newcomer_page = get_page(server, "127.0.0.3")
            v = Visitor(server.url, source="127.0.0.3")
            newcomer_ws = v.connected
            v.close()
    end = time.monotonic()
    for s in socks:
        s.close()

    busy = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
    cut = [a for a in answers if a.startswith(b"HTTP/1.1 408")]
    assert busy, answers[:3]
    assert b"server busy: too many connections from your address (at most %d at once)" % PER_ADDRESS in busy[0]
    assert cut, "the slow requests should have been cut with a 408"
    assert b"request headers took longer than %d s" % HEADER_S in cut[0]
    assert all(secure(a) for a in busy + cut)
    assert newcomer_page.startswith(b"HTTP/1.1 200"), newcomer_page[:200]
    assert newcomer_ws
    assert honest.frames_since(start) > 0
    assert largest_gap(list(honest.frame_times), start, end) < MAX_GAP_S
    allowed = math.ceil(before * 1.1)
    wait_until(lambda: threads(server) <= allowed, timeout=30,
               what=f"the server's threads to return to {allowed} (before the attack: {before})")


def test_past_capacity_is_refused_at_once_with_server_busy(server, honest):
    """CAP connections from several addresses (none over its share) fill the server: the
    next one gets 503 "server busy" naming the cap, a page and a websocket alike, and
    does not wait; once they close, newcomers get in and the threads go back."""
    before = threads(server)
    start = time.monotonic()
    fillers = []
    addresses = [f"127.0.0.{10 + i}" for i in range(CAP // PER_ADDRESS + 1)]
    try:
        for i in range(CAP - 1):  # the honest visitor holds one
            fillers.append(engineio_socket(server, addresses[i // PER_ADDRESS]))
        page = get_page(server, "127.0.0.30")
        assert page.startswith(b"HTTP/1.1 503"), page[:200]
        assert b"server busy: too many connections (at most %d at once), retry soon" % CAP in page
        assert secure(page)
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            engineio_socket(server, "127.0.0.30")
        assert refused.value.status_code == 503
        assert b"server busy" in refused.value.resp_body
        end = time.monotonic()
        assert honest.frames_since(start) > 0
        assert largest_gap(list(honest.frame_times), start, end) < MAX_GAP_S
    finally:
        for ws in fillers:
            ws.close(timeout=1)
    wait_until(lambda: get_page(server, "127.0.0.31").startswith(b"HTTP/1.1 200"), timeout=30,
               what="a newcomer's page once the fillers closed")
    v = Visitor(server.url, source="127.0.0.31")
    assert v.connected
    v.close()
    allowed = math.ceil(before * 1.1)
    wait_until(lambda: threads(server) <= allowed, timeout=30,
               what=f"the server's threads to return to {allowed} (before: {before})")


@pytest.mark.parametrize("request_bytes, status", [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(120)) + b"\r\n", b"431"),
])
def test_the_servers_own_error_pages_carry_the_security_headers(server, request_bytes, status):
    s = connect_from(server, "127.0.0.4")
    s.sendall(request_bytes)
    answer = whole_answer(s)
    s.close()
    assert answer.startswith(b"HTTP/1.1 " + status) or answer.startswith(b"HTTP/1.0 " + status), answer[:200]
    assert secure(answer), answer[:400]


def test_the_access_log_follows_the_log_level(server):
    """DP_LOG_LEVEL=WARNING (with DP_ACCESS_LOG=- on gunicorn): the requests of this
    module's tests, long answered, left no access line."""
    for _ in range(3):
        assert requests.get(server.url + "/healthz", timeout=5).ok
    wait_until(lambda: server.log_path.exists(), what="the server's log file")
    text = server.log_path.read_text()
    assert "GET /" not in text, text[-2000:]


def test_gunicorn_other_than_the_pinned_version_refuses_to_start():
    """app/gunicorn_worker.py uses gunicorn's internals: it names both versions and stops."""
    from app.gunicorn_worker import check_version
    from model_server.pins import pinned_version

    pinned = pinned_version("gunicorn")
    assert pinned and check_version(pinned, pinned) is None
    with pytest.raises(SystemExit, match=rf"gunicorn=={pinned}.*gunicorn 0\.1 is installed"):
        check_version("0.1", pinned)
    code = ("import sys, gunicorn; gunicorn.__version__ = '0.1'; "
            "sys.argv = ['gunicorn', '--config', 'deploy/gunicorn.conf.py', '--bind', '127.0.0.1:%d', 'app.wsgi:app']; "
            "from gunicorn.app.wsgiapp import run; run()" % free_port())
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"gunicorn=={pinned}" in done.stderr + done.stdout and "gunicorn 0.1 is installed" in done.stderr + done.stdout
