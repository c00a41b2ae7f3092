"""Attacks on a real `python -m app` process from real clients on loopback, each reproduced
as it was found (issue 15) and each held to its bound (docs/limits.md):

1. replies: a client that stops reading is cut off at its reply budget; when a session
   ends, whatever its socket does, its transport and queued answers are freed; error
   lists are capped;
2. malformed packets count against the event rate and the flood disconnect and log one
   line each, never a traceback;
3. oversized messages end runs at once; security headers on polling answers; the origin
   check and oEmbed follow DP_PUBLIC_ORIGIN; /metrics behind a token or its own port.
(The embedded server's connection cap and timeouts: tests/test_abuse_server.py.)
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
import pytest
import requests
import websocket

from app.settings import Serving
from conftest import free_port, live
from visitors import RawSocket, Visitor, metric, rss_mb, wait_until

# memory margins, in MB of server RSS. A sweep's boundary answer is ~1 MB; before the
# budget one non-reading client took RSS up 200-266 MB in 20-30 s, and kept it after its
# session was gone. Computing the answers (a sweep's boundary grids) costs tens of MB of
# allocator churn that Python keeps for reuse: the margins leave room for that, not for
# a queue of answers.
FLOOD_MARGIN_MB = 80
AFTER_MARGIN_MB = 40


def log_of(server) -> Path:
    return Path(server.log.name)


def sweep_ready(raw: RawSocket) -> None:
    """A sweep started and trained 3 x 200 steps, as in the report."""
    raw.ws.settimeout(60)  # a loaded machine trains slowly
    assert raw.call("sweep", {"action": "start"})["ok"]
    for _ in range(3):
        assert raw.call("sweep", {"action": "step", "steps": 200})["ok"]


def established(pid: int, port: int) -> bool:
    """Whether the server process still has an open TCP connection to local port `port`."""
    return any(c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
               for c in psutil.Process(pid).net_connections(kind="tcp"))


# ---- 1. replies -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def patient():
    """Pings far apart: only the reply budget can cut a client off here."""
    with live({"DP_PING_INTERVAL": "30", "DP_PING_TIMEOUT": "30"}) as server:
        server.watcher = Visitor(server.url)
        server.watcher.ok("configure", {})
        server.watcher.ok("play")
        yield server
        server.watcher.close()


def test_a_client_asking_for_answers_it_does_not_read_is_cut_off_at_its_budget(patient):
    pid = patient.proc.pid
    raw = RawSocket(patient.url, rcvbuf=4096)
    port = raw.ws.sock.getsockname()[1]
    sweep_ready(raw)
    time.sleep(0.5)
    base, peak, sent = rss_mb(pid), 0.0, 0
    budget0 = metric(patient.url, "dropout_errors_total", kind="reply_budget")
    t = time.monotonic()
    while time.monotonic() - t < 30:  # the report's attack: every 50 ms, never read
        try:
            raw.emit("sweep", {"action": "result", "boundaries": True})
        except (websocket.WebSocketException, OSError):
            break  # the server has cut the connection
        sent += 1
        peak = max(peak, rss_mb(pid))
        time.sleep(0.05)
    wait_until(lambda: not established(pid, port), what="the server to cut the client off")
    raw.close()
    print(f"{sent} requests; server RSS {base:.0f} MB, peak +{peak - base:.0f} MB")
    assert metric(patient.url, "dropout_errors_total", kind="reply_budget") == budget0 + 1
    assert peak - base < FLOOD_MARGIN_MB
    wait_until(lambda: metric(patient.url, "dropout_sessions") == 1, what="the session to end")
    line = next(x for x in log_of(patient).read_text().splitlines() if "kind=reply_budget" in x)
    assert "event=disconnect" in line and "limit=131072" in line
    t = time.monotonic()
    wait_until(lambda: patient.watcher.frames_since(t) >= 5, what="frames to the watcher")


def test_a_client_that_reads_is_told_why_it_was_cut_off(patient):
    """A client asks for large answers faster than it reads them (the kernel's socket
    buffers take a few MB first). Once it is over its budget it gets a status naming the
    limit, then Socket.IO's disconnect, provided it reads within the second the server
    gives it before cutting the connection."""
    budget0 = metric(patient.url, "dropout_errors_total", kind="reply_budget")
    raw = RawSocket(patient.url, rcvbuf=4096)
    sweep_ready(raw)
    for _ in range(60):
        raw.emit("sweep", {"action": "result", "boundaries": True})
        time.sleep(0.25)
        if metric(patient.url, "dropout_errors_total", kind="reply_budget") > budget0:
            break
    texts = []
    raw.ws.settimeout(5)
    try:
        while True:
            msg = raw.ws.recv()
            if isinstance(msg, str) and len(msg) < 1000:
                texts.append(msg)
    except (websocket.WebSocketException, OSError):
        pass
    raw.close()
    statuses = [json.loads(m[2:])[1] for m in texts if m.startswith('42["status"')]
    assert statuses and statuses[-1]["state"] == "disconnected", texts[-5:]
    assert statuses[-1]["reason"].startswith("disconnected: a large answer (over 128 KB) was still unread")
    assert "41" in texts  # Socket.IO's disconnect: the client knows the server ended it


def test_error_lists_are_capped(patient):
    v = Visitor(patient.url)
    try:
        reply = v.call("configure", {"config": {"data": {"dataset": "custom", "points": [["a", 0, 0]] * 2000}}})
        too_long = v.call("configure", {"config": {"model": {"hidden": [0] * 5000}}})
    finally:
        v.close()
    # a per-layer list is refused by its length before its items are looked at
    assert too_long["errors"] == [{"field": "model.hidden", "message": "model.hidden has to hold at most 64 items, "
                                   "but got 5000", "allowed": "at most 64 items", "received": too_long["error"]["received"]}]
    assert not reply["ok"]
    errors = reply["errors"]
    assert len(errors) == 21 and errors[0] == reply["error"]
    rest = errors[-1]
    assert rest["field"] == "errors"
    assert rest["message"] == f"and {rest['received']} more errors (the first 20 are listed)"
    assert rest["received"] == 1980
    assert len(json.dumps(reply)) < 8_000  # 5,000 listed made 684 KB


def test_an_oversized_message_ends_runs_at_once(patient):
    """Before, simple-websocket's close raced engineio's reader, and the runs ended at the
    ping timeout (here 60 s)."""
    v = Visitor(patient.url)
    v.ok("configure", {"run": "x"})
    v.ok("play", {"run": "x"})
    assert metric(patient.url, "dropout_runs_active") == 2
    v.sio.emit("configure", {"config": {"pad": "x" * (Serving().max_message_bytes + 1000)}})
    wait_until(lambda: metric(patient.url, "dropout_runs_active") == 1, timeout=10,
               what="the oversized client's run to end, long before the ping timeout")
    v.close()


def test_sweep_with_an_object_for_action_gets_a_field_error(patient):
    v = Visitor(patient.url)
    try:
        reply = v.call("sweep", {"action": {}})
    finally:
        v.close()
    assert reply["error"]["field"] == "action"
    assert reply["error"]["message"] == "action has to be one of start, step, result, but got '{}'"
    assert "kind=internal" not in log_of(patient).read_text()


# ---- 1b. the session ends: everything it held goes, whatever the socket does -------------------
@pytest.fixture(scope="module")
def brisk():
    with live({"DP_PING_INTERVAL": "3", "DP_PING_TIMEOUT": "2"}) as server:
        Visitor(server.url).close()  # the first session starts the idle reaper: not this test's
        yield server


def test_a_dead_clients_queued_answers_and_transport_are_freed_at_the_ping_timeout(brisk):
    """A client has the server queue all its budget allows (one large answer, small ones
    behind it), then reads nothing, answers no ping and never closes its socket. At the ping
    timeout the server drops what is still queued, cuts the connection and its threads
    end; server RSS comes back to within AFTER_MARGIN_MB of what it was before."""
    pid = brisk.proc.pid
    server = psutil.Process(pid)
    warm = RawSocket(brisk.url)  # the same work once by a client that reads: what the
    sweep_ready(warm)            # process keeps after it (torch's and the allocator's) is
    warm.call("sweep", {"action": "result", "boundaries": True})  # the baseline
    warm.close()
    wait_until(lambda: metric(brisk.url, "dropout_sessions") == 0, what="no session")
    time.sleep(1)
    threads_before, base = server.num_threads(), rss_mb(pid)
    raw = RawSocket(brisk.url, rcvbuf=4096)
    port = raw.ws.sock.getsockname()[1]
    sweep_ready(raw)  # answers pings while it waits; from here on, nothing is read
    raw.emit("sweep", {"action": "result", "boundaries": True})  # the most its budget allows
    for _ in range(30):  # and small answers behind it
        raw.emit("pause")
    assert server.num_threads() > threads_before
    wait_until(lambda: metric(brisk.url, "dropout_sessions") == 0, what="the ping timeout")
    # the client has neither read nor closed anything: the server let go of it all the same
    wait_until(lambda: not established(pid, port), what="the server to close the connection")
    wait_until(lambda: server.num_threads() <= threads_before, what="the connection's threads to end")
    lines = [x for x in log_of(brisk).read_text().splitlines() if f"event=disconnect sid={raw.sid} " in x]
    assert len(lines) == 1 and 'reason="ping timeout"' in lines[0]
    time.sleep(1)
    after = rss_mb(pid)
    print(f"server RSS {base:.0f} MB before, {after:.0f} MB after the ping timeout; {lines[0]}")
    assert after - base < AFTER_MARGIN_MB
    raw.close()


# ---- 2. malformed packets -----------------------------------------------------------------------
MALFORMED = [
    "42[]", "42", "42{}", "4x", "",
    '42["play",' + "[" * 3000 + "]" * 3000 + "]",   # past the JSON parser's recursion limit
    '42["step",{"n":' + "9" * 5000 + "}]",            # past int()'s digit limit
    b"\x00\x01\x02",                                  # a binary message
    '42["set","' + '\\"' * 30000,                     # a string that never closes, of escaped quotes
    '42/?",["pause",{"run":"\\ud800"}]',            # a namespace whose '?' python-socketio cuts off
]


def test_two_thousand_malformed_packets_cost_little_log_and_disconnect_the_sender(brisk):
    watcher = Visitor(brisk.url)
    watcher.ok("configure", {})
    watcher.ok("play")
    log = log_of(brisk)
    size0 = log.stat().st_size
    flood0 = metric(brisk.url, "dropout_errors_total", kind="flood")
    raw = RawSocket(brisk.url)
    sent = 0
    for _ in range(2000):
        try:
            raw.send_raw("42[]")
        except (websocket.WebSocketException, OSError):
            break
        sent += 1
    wait_until(lambda: not raw.alive(), what="the sender to be disconnected")
    raw.close()
    wait_until(lambda: metric(brisk.url, "dropout_errors_total", kind="flood") == flood0 + 1, what="the flood count")
    grown = log.stat().st_size - size0
    new = log.read_text()[size0:]
    print(f"{sent} malformed packets sent; the log grew {grown} bytes")
    assert grown < 200_000
    assert "Traceback" not in new
    mine = [x for x in new.splitlines() if f"sid={raw.sid} " in x]
    assert any("event=malformed" in x and "kind=no_event" in x for x in mine)
    assert any("kind=flood" in x for x in mine)
    t = time.monotonic()
    wait_until(lambda: watcher.frames_since(t) >= 5, what="frames to the watcher")
    watcher.close()


def test_every_kind_of_malformed_packet_is_one_line_and_counted(brisk):
    log = log_of(brisk)
    for bad in MALFORMED:
        raw = RawSocket(brisk.url)
        size0 = log.stat().st_size
        malformed0 = metric(brisk.url, "dropout_errors_total", kind="malformed")
        raw.send_raw(bad)
        assert raw.call("pause")["error"]["field"] == "run"  # the connection carries on
        assert metric(brisk.url, "dropout_errors_total", kind="malformed") == malformed0 + 1
        new = log.read_text()[size0:]
        assert "Traceback" not in new and "ERROR" not in new, (bad[:20], new[:500])
        assert sum(f"event=malformed sid={raw.sid} " in x for x in new.splitlines()) == 1, (bad[:20], new)
        raw.close()


def test_nesting_and_long_numbers_are_refused_before_parsing_with_an_answer(brisk):
    raw = RawSocket(brisk.url)
    try:
        raw.send_raw('4291["play",' + "[" * 40 + "]" * 40 + "]")
        raw.send_raw('4297["step",{"n":' + "9" * 50 + "}]")
        raw.ws.settimeout(5)
        answers = {}
        while not {91, 97} <= set(answers):
            msg = raw.ws.recv()
            if isinstance(msg, str) and msg.startswith("43"):
                i = msg.index("[")
                answers[int(msg[2:i])] = json.loads(msg[i:])[0]
        assert raw.call("pause")["error"]["field"] == "run"  # the connection carries on
    finally:
        raw.close()
    assert answers[91]["error"] == {"field": "packet", "message": "malformed packet: nesting deeper than 32 levels",
                                    "allowed": answers[91]["error"]["allowed"], "received": "too_deep"}
    assert answers[97]["error"]["message"] == "malformed packet: a number longer than 40 digits"


@pytest.fixture(scope="module")
def quiet():
    with live({"DP_LOG_LEVEL": "WARNING"}) as server:
        yield server


def test_malformed_packets_log_nothing_at_warning(quiet):
    log = log_of(quiet)
    size0 = log.stat().st_size
    for bad in MALFORMED:
        raw = RawSocket(quiet.url)
        raw.send_raw(bad)
        assert raw.call("pause")["error"]["field"] == "run"
        raw.close()
    assert "Traceback" not in log.read_text()[size0:]
    assert log.stat().st_size - size0 < 2_000  # werkzeug's request lines at most


# ---- 3. headers, origins, metrics -----------------------------------------------------------------
def test_security_headers_on_polling_answers_and_errors(brisk):
    for path in ("/socket.io/?EIO=4&transport=polling", "/no-such-page", "/healthz"):
        r = requests.get(brisk.url + path)
        assert r.headers["X-Content-Type-Options"] == "nosniff", path
        assert "frame-ancestors" in r.headers["Content-Security-Policy"], path
        assert r.headers["Referrer-Policy"] == "no-referrer", path
    polling = requests.get(brisk.url + "/socket.io/?EIO=4&transport=polling")
    assert polling.headers["Content-Security-Policy"].startswith("default-src 'none'")
    page = requests.get(brisk.url + "/")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]  # pages keep their own


PUBLIC = "http://play.example:8080"


@pytest.fixture(scope="module")
def public():
    with live({"DP_PUBLIC_ORIGIN": PUBLIC, "DP_METRICS_TOKEN": "s3cret-token"}) as server:
        yield server


def test_the_origin_check_follows_the_public_origin(public):
    RawSocket(public.url, origin=PUBLIC).close()
    # the server's own address is no longer its origin, and a rebinding page (Host and
    # Origin both the attacker's name) is refused
    for origin, host in ((public.url, None), ("http://evil.example", "evil.example")):
        headers = [f"Host: {host}"] if host else None
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(public.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
                                        origin=origin, header=headers, timeout=5)
        assert refused.value.status_code == 400


def test_oembed_uses_the_public_origin_not_the_host_header(public):
    r = requests.get(public.url + "/oembed", params={"url": PUBLIC + "/lessons/thinned"},
                     headers={"Host": "evil.example"})
    assert r.status_code == 200
    body = r.json()
    assert f'src="{PUBLIC}/embed?lesson=thinned"' in body["html"]
    assert body["provider_url"] == PUBLIC + "/"
    assert "evil" not in r.text
    foreign = requests.get(public.url + "/oembed", params={"url": "http://evil.example/"},
                           headers={"Host": "evil.example"})
    assert foreign.status_code == 404


def test_metrics_need_the_token(public):
    assert requests.get(public.url + "/metrics").status_code == 401
    assert requests.get(public.url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    ok = requests.get(public.url + "/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200 and "dropout_sessions" in ok.text
    assert requests.get(public.url + "/metrics", params={"token": "s3cret-token"}).status_code == 200


def test_metrics_on_their_own_port():
    port = free_port()
    with live({"DP_METRICS_PORT": str(port)}) as server:
        assert requests.get(server.url + "/metrics").status_code == 404
        r = requests.get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200 and "dropout_sessions" in r.text
        assert requests.get(f"http://127.0.0.1:{port}/").status_code == 404
