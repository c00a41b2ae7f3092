"""The embedded web server (`python -m app`, app/webserver.py) under connection abuse, with
real sockets on loopback: half-sent requests and piles of connections hold a bounded
number of threads, and each is let go after the header timeout."""
from __future__ import annotations

import socket
import time

import psutil
import pytest
import requests

from conftest import live
from visitors import RawSocket, wait_until

CAP = 12


@pytest.fixture(scope="module")
def capped():
    with live({"DP_MAX_CONNECTIONS": str(CAP), "DP_HEADER_TIMEOUT_S": "2", "DP_READ_TIMEOUT_S": "5"}) as server:
        yield server


def half_sent(url: str) -> socket.socket:
    """A connection that sends part of a request's headers and then nothing."""
    port = int(url.rsplit(":", 1)[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    return s


def closed_by_server(s: socket.socket) -> bool:
    s.settimeout(0.05)
    try:
        return s.recv(4096) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def whole_answer(s: socket.socket) -> bytes:
    """What the server writes until it closes the connection."""
    s.settimeout(10)
    out = b""
    while chunk := s.recv(4096):
        out += chunk
    return out


def test_half_sent_requests_are_dropped_after_the_header_timeout(capped):
    """Before, 500 of them each held a thread for 47 s and more."""
    socks = [half_sent(capped.url) for _ in range(CAP // 2)]
    for line in (b"X-Slow: 1\r\n", b"X-Slow: 2\r\n"):  # a byte now and then does not extend the deadline
        for s in socks:
            try:
                s.sendall(line)
            except OSError:  # cut already (a loaded machine took the header timeout to get here)
                pass
        time.sleep(1)
    wait_until(lambda: all(closed_by_server(s) for s in socks), timeout=10,
               what="the server to drop the half-sent requests")
    for s in socks:
        s.close()
    assert requests.get(capped.url + "/healthz").json()["ok"] is True


def test_connections_past_the_cap_are_answered_busy_without_a_thread(capped):
    """Before, 400 websockets made 1,521 threads. Here CAP websockets fill the server;
    more connections get a 503 from the accepting thread and take no thread; a closed
    websocket frees its slot."""
    server = psutil.Process(capped.proc.pid)
    held = [RawSocket(capped.url) for _ in range(CAP)]
    full = server.num_threads()
    answers = []
    for _ in range(3 * CAP):
        s = socket.create_connection(("127.0.0.1", capped.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answers.append(whole_answer(s))
        s.close()
    assert all(a.startswith(b"HTTP/1.1 503") for a in answers), answers[:3]
    assert b"server busy: too many connections (at most %d at once)" % CAP in answers[0]
    assert server.num_threads() <= full + 2  # the refused ones got none
    for s in held:
        s.close()
    wait_until(lambda: requests.get(capped.url + "/healthz", timeout=2).status_code == 200,
               what="the closed websockets to free their slots")


def test_a_socket_failing_under_a_request_is_one_line_in_the_log_not_a_traceback(caplog, capsys):
    """Every attack at once (bench/abuse.py) left one traceback on stderr: a client cut
    for malformed packets, whose connection http.server then answered 400 on a socket
    the transport had closed (EBADF). socketserver prints any exception of a request's
    thread; the server now logs a failing socket as one line and the rest as errors."""
    import errno
    import logging

    from app import create_app, webserver
    app = create_app({"port": 0})
    server = webserver.make(app, app.config["SETTINGS"])
    try:
        with caplog.at_level(logging.INFO, logger="dropout.webserver"):
            for error in (OSError(errno.EBADF, "Bad file descriptor"), ConnectionResetError(), BrokenPipeError()):
                try:
                    raise error
                except OSError:
                    server.handle_error(None, ("127.0.0.8", 5000))
            try:
                raise KeyError("a bug of ours")
            except KeyError:
                server.handle_error(None, ("127.0.0.9", 5000))
    finally:
        server.server_close()
    assert "Traceback" not in capsys.readouterr().err
    lines = [r for r in caplog.records if r.name == "dropout.webserver"]
    assert [r.levelname for r in lines] == ["INFO"] * 3 + ["ERROR"]
    assert all("peer=127.0.0.8" in r.getMessage() for r in lines[:3])
    assert lines[3].exc_info is not None   # ours: with its traceback, in the log
