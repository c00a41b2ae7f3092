"""A public server that survives load, abuse and faults, checked with real clients on
loopback against a real `python -m app` process (tests/visitors.py).

Each server below runs with small limits so that a few clients reach them; docs/limits.md
lists every limit and what a visitor sees over it.
"""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests
import socketio
import websocket

from app.settings import Serving
from conftest import live
from model_server import Limits
from visitors import RawSocket, Visitor, metric, rss_mb, wait_until

ROOT = Path(__file__).resolve().parent.parent
COURSE = "http://course.example"
TIGHT = {"DP_MAX_RUNS": "3", "DP_MAX_RUNS_PER_CLIENT": "2", "DP_MAX_WIDTH": "16",
         "DP_EVENTS_PER_S": "5", "DP_EVENT_BURST": "10", "DP_CORS_ORIGINS": COURSE,
         "DP_PING_INTERVAL": "2", "DP_PING_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def tight():
    with live(TIGHT) as server:
        yield server


@pytest.fixture
def visitors(tight):
    """Make visitors of the tight server; all leave (and their runs end) after the test."""
    made: list[Visitor] = []

    def make(**kw) -> Visitor:
        v = Visitor(tight.url, **kw)
        made.append(v)
        return v

    yield make
    for v in made:
        v.close()
    wait_until(lambda: metric(tight.url, "dropout_runs_active") == 0, what="runs to end")


def log_lines(server) -> list[str]:
    return Path(server.log.name).read_text().splitlines()


# ---- limits: documented, settable, enforced ----------------------------------------------
def test_every_limit_is_documented_with_its_env_var_and_default():
    text = (ROOT / "docs/limits.md").read_text()
    rows = {m[0]: (m[1], m[2]) for m in re.findall(r"^\| (\w+) \| (DP_\w+) \| ([^|]+?) \|", text, re.M)}
    for name, field in {**Limits.model_fields, **Serving.model_fields}.items():
        assert name in rows, f"docs/limits.md has no row for {name}"
        env, default = rows[name]
        assert env == f"DP_{name.upper()}"
        assert float(default) == float(field.default), f"{name}: docs say {default}, the code says {field.default}"


def test_connection_settings_are_documented():
    text = (ROOT / "docs/limits.md").read_text()
    for name in ("cors_origins", "ping_interval", "ping_timeout", "public_origin", "max_connections",
                 "header_timeout_s", "read_timeout_s", "metrics_token", "metrics_port", "metrics_host"):
        assert f"DP_{name.upper()}" in text, f"docs/limits.md does not name DP_{name.upper()}"


def test_each_limit_is_read_from_its_env_var(monkeypatch):
    for cls in (Limits, Serving):
        for name in cls.model_fields:
            monkeypatch.setenv(f"DP_{name.upper()}", "7")
        limits = cls()
        for name in cls.model_fields:
            assert getattr(limits, name) == 7, name


def test_server_busy_is_refused_with_a_clear_message_and_others_notice_nothing(tight, visitors):
    first = visitors()
    first.ok("configure", {"config": {"model": {"hidden": [4, 4]}}})
    first.ok("play")
    second = visitors()
    second.ok("configure", {"run": "a"})
    second.ok("configure", {"run": "b"})
    assert requests.get(tight.url + "/readyz").status_code == 503

    late = visitors()
    t = time.monotonic()
    reply = late.call("configure", {})
    assert reply["ok"] is False
    assert reply["error"]["field"] == "run"
    assert reply["error"]["message"] == "server busy: 3 runs active, try again in a minute"
    wait_until(lambda: first.frames_since(t) >= 5, what="frames to the first visitor after the refusal")
    assert metric(tight.url, "dropout_errors_total", kind="busy") >= 1

    second.close()  # a tab closes: its runs end, there is room again
    wait_until(lambda: metric(tight.url, "dropout_runs_active") == 1, what="the runs of a closed tab to end")
    assert requests.get(tight.url + "/readyz").status_code == 200
    late.ok("configure", {})


def test_runs_per_visitor_are_limited_even_when_configures_race(visitors):
    v = visitors()
    replies: list[dict] = []
    threads = [threading.Thread(target=lambda i=i: replies.append(v.call("configure", {"run": f"r{i}"})))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["ok"] for r in replies) == 2
    refused = [r for r in replies if not r["ok"]]
    assert {r["error"]["message"] for r in refused} == {
        "too many runs: 2 per visitor allowed; close one (or reload the page) first"}


def test_model_size_limits_come_from_the_environment(visitors):
    v = visitors()
    wide = v.call("configure", {"config": {"model": {"hidden": [32], "p": [0.5]}}})
    assert not wide["ok"]
    assert wide["error"] == {"field": "model.hidden.0", "allowed": "1..16", "received": 32,
                             "message": "neurons per layer has to be between 1 and 16, but got 32"}
    deep = v.call("configure", {"config": {"model": {"hidden": [2] * 7, "p": [0.1] * 7}}})
    assert deep["error"]["message"] == "number of hidden layers has to be between 1 and 6, but got 7"
    assert v.ok("configure", {"config": {"model": {"hidden": [16], "p": [0.5]}}})["sizes"] == [2, 16, 1]


def test_events_over_the_rate_are_refused_for_that_client_only(visitors):
    fast, calm = visitors(), visitors()
    replies = [fast.call("pause") for _ in range(30)]
    limited = [r for r in replies if not r["ok"] and r["error"]["message"].startswith("too many events")]
    assert replies[0]["error"]["field"] == "run"  # not configured: refused on its merits
    assert len(limited) >= 15
    assert limited[0]["error"]["message"] == "too many events: 5 per second allowed (bursts of 10); slow down"
    assert calm.call("pause")["error"]["field"] == "run"  # the other client is not limited
    time.sleep(1.0)  # the bucket refills
    assert fast.call("pause")["error"]["field"] == "run"
    assert fast.connected


def test_a_flooding_client_is_disconnected_and_others_keep_streaming(tight, visitors):
    watcher = visitors()
    watcher.ok("configure", {})
    watcher.ok("play")
    flood = RawSocket(tight.url)
    flood.emit("configure", {})
    for _ in range(3000):
        try:
            flood.emit("pause")
        except (websocket.WebSocketException, OSError):
            break
    wait_until(lambda: not flood.alive(), timeout=20, what="the flooding client to be disconnected")
    flood.close()
    assert metric(tight.url, "dropout_errors_total", kind="flood") >= 1
    t = time.monotonic()
    wait_until(lambda: watcher.frames_since(t) >= 5, what="frames to the other client")
    assert watcher.call("pause")["ok"]


def test_an_oversized_message_closes_only_that_connection(tight, visitors):
    limit = Serving().max_message_bytes
    watcher, big = visitors(), visitors()
    watcher.ok("configure", {})
    watcher.ok("play")
    big.ok("configure", {"run": "x"})
    near = big.call("configure", {"config": {"pad": "x" * (limit // 2)}})  # under the limit: answered
    assert near["error"]["message"] == "unknown field 'pad'"
    big.sio.emit("configure", {"config": {"pad": "x" * (limit + 100)}})
    wait_until(lambda: not big.connected, what="the server to close the connection")
    wait_until(lambda: metric(tight.url, "dropout_runs_active") == 1, what="the closed client's run to end")
    t = time.monotonic()
    wait_until(lambda: watcher.frames_since(t) >= 5, what="frames to the other client")
    assert requests.get(tight.url + "/healthz").json()["ok"] is True


def test_binary_attachments_are_not_collected(tight):
    base = rss_mb(tight.proc.pid)
    raw = RawSocket(tight.url)
    raw.send_raw('451-999999["configure",{"_placeholder":true,"num":0}]')
    raw.send_raw(b"\0" * 8000)
    raw.ws.settimeout(5)
    # the next event is answered, not taken for one more attachment
    assert raw.call("pause")["error"]["field"] == "run"
    flood0 = metric(tight.url, "dropout_errors_total", kind="flood")
    for _ in range(4000):  # 32 MB in messages each well under max_message_bytes
        try:
            raw.send_raw(b"\0" * 8000)
        except (websocket.WebSocketException, OSError):
            break  # each counted as an event: the flood disconnect came first
    try:
        wait_until(lambda: not raw.alive(), what="the sender to be disconnected as a flood")
        assert metric(tight.url, "dropout_errors_total", kind="flood") == flood0 + 1
        assert rss_mb(tight.proc.pid) - base < 16
    finally:
        raw.close()


def test_a_huge_message_is_not_read_into_memory(tight):
    base, peak, done = rss_mb(tight.proc.pid), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb(tight.proc.pid))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    raw = RawSocket(tight.url)
    raw.ws.settimeout(5)
    try:
        raw.send_raw('42["configure",{"pad":"' + "x" * (64 * 2**20) + '"}]')
    except (websocket.WebSocketException, OSError):
        pass  # the server stopped reading: as it should
    finally:
        time.sleep(0.5)
        done.set()
        sampler.join()
        raw.close()
    assert requests.get(tight.url + "/healthz").ok
    assert peak[0] - base < 16, f"server RSS rose {peak[0] - base:.0f} MB for one message"


# ---- isolation and cors -----------------------------------------------------------------------
def test_clients_control_and_receive_only_their_own_runs(tight, visitors):
    a = visitors()
    a.ok("configure", {"config": {"model": {"hidden": [4, 4]}}})
    a.ok("play")
    b = visitors()
    assert b.call("pause")["error"]["message"] == "no run 'main': send 'configure' for it first"
    thief = visitors(tok=a.token)  # even with a's token, a's runs are out of reach
    assert thief.call("pause", {"run": "main"})["ok"] is False
    b.ok("configure", {"config": {"model": {"hidden": [6], "p": [0.2]}}})
    b.ok("play")
    b.ok("pause")
    t = time.monotonic()
    wait_until(lambda: a.frames_since(t) >= 5, what="a's run to keep playing")
    assert all(h["sizes"] == [2, 4, 4, 1] for h in a.headers)
    assert all(h["sizes"] == [2, 6, 1] for h in b.headers)
    assert not thief.headers


def test_client_emitted_connect_and_disconnect_are_just_unknown_events(visitors):
    v = visitors()
    v.ok("configure", {})
    for name in ("connect", "disconnect"):
        reply = v.sio.call(name, {"token": "x" * 10}, timeout=10)
        assert reply["ok"] is False and reply["error"]["field"] == "event", reply
    assert v.ok("play")["state"] == "playing"


def test_cross_origin_handshake_is_refused(tight):
    with pytest.raises(socketio.exceptions.ConnectionError):
        Visitor(tight.url, origin="http://evil.example")
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        RawSocket(tight.url, origin="http://evil.example")
    assert refused.value.status_code == 400
    for origin in (COURSE, tight.url):  # listed in DP_CORS_ORIGINS; the server's own
        RawSocket(tight.url, origin=origin).close()
        Visitor(tight.url, origin=origin).close()


def test_disconnect_ends_runs_and_their_threads(tight, visitors):
    server = psutil.Process(tight.proc.pid)
    before = server.num_threads()
    runs = [visitors() for _ in range(3)]
    for v in runs:
        v.ok("configure", {})
        v.ok("play")
    assert metric(tight.url, "dropout_runs_active") == 3
    assert server.num_threads() > before
    for v in runs:
        v.close()
    wait_until(lambda: metric(tight.url, "dropout_runs_active") == 0, what="runs to end")
    wait_until(lambda: server.num_threads() <= before, what="run and socket threads to end")


# ---- observability ------------------------------------------------------------------------------
def test_health_readiness_and_metrics(tight, visitors):
    assert requests.get(tight.url + "/healthz").json()["ok"] is True
    ready = requests.get(tight.url + "/readyz").json()
    assert {k: ready[k] for k in ("ready", "runs", "max_runs")} == {"ready": True, "runs": 0, "max_runs": 3}
    assert ready["free_bytes"] == Serving().max_bytes  # nothing reserved yet
    sent0 = metric(tight.url, "dropout_frames_sent_total")
    dropped0 = metric(tight.url, "dropout_frames_dropped_total")
    invalid0 = metric(tight.url, "dropout_errors_total", kind="invalid")

    holder = visitors(hold_frames=True)  # takes a frame and does not acknowledge it
    holder.ok("configure", {})
    holder.ok("play")
    assert metric(tight.url, "dropout_runs_active") == 1
    t = time.monotonic()
    time.sleep(1.5)
    dropped = metric(tight.url, "dropout_frames_dropped_total") - dropped0
    elapsed = time.monotonic() - t
    assert len(holder.frame_times) == 1
    assert 0 < dropped <= Serving().frame_rate * (elapsed + 0.5)  # one per frame period missed
    holder.release.set()
    wait_until(lambda: len(holder.frame_times) > 3, what="frames after the client acknowledged")
    assert metric(tight.url, "dropout_frames_sent_total") > sent0 + 3

    holder.call("set", {"change": {"param": "p", "layer": 0, "value": 1.5}})
    assert metric(tight.url, "dropout_errors_total", kind="invalid") == invalid0 + 1
    assert metric(tight.url, "dropout_events_total", event="set") >= 1


def test_logs_have_one_key_value_line_per_connect_configure_error_disconnect(tight, visitors):
    v = visitors()
    sid = v.sid
    v.ok("configure", {})
    v.call("configure", {"config": {"model": {"hidden": [99]}}})
    v.close()
    wait_until(lambda: any(f"event=disconnect sid={sid} " in line for line in log_lines(tight)),
               what="the disconnect line")
    mine = [line for line in log_lines(tight) if f"sid={sid} " in line]
    assert sum("event=connect " in x and "outcome=ok" in x for x in mine) == 1
    assert sum("event=configure " in x and "outcome=ok" in x for x in mine) == 1
    refused = [x for x in mine if "event=configure " in x and "outcome=refused" in x]
    assert len(refused) == 1 and "kind=invalid field=model.hidden.0" in refused[0]
    assert sum("event=disconnect " in x and "runs_ended=1" in x for x in mine) == 1


# ---- time-based limits and heartbeats -------------------------------------------------------------
@pytest.fixture(scope="module")
def brisk():
    with live({"DP_IDLE_TIMEOUT_S": "1.5", "DP_PING_INTERVAL": "1", "DP_PING_TIMEOUT": "1",
               "DP_MAX_STEPS": "500", "DP_MAX_RUN_SECONDS": "2"}) as server:
        yield server


@pytest.fixture(scope="module")
def limited():
    """Short step and time limits; runs stay however long they idle (a finished run stops
    playing: with brisk's idle timeout it would end while the other one still plays)."""
    with live({"DP_MAX_STEPS": "500", "DP_MAX_RUN_SECONDS": "2"}) as server:
        yield server


def test_step_and_time_limits_end_a_run_with_the_reason(limited):
    v = Visitor(limited.url)
    try:
        v.ok("configure", {"run": "fast"})
        v.ok("configure", {"run": "slow"})
        v.ok("set", {"run": "slow", "change": {"param": "speed", "value": 100}})
        v.ok("play", {"run": "fast"})
        v.ok("play", {"run": "slow"})
        wait_until(lambda: {s["run"] for s in v.statuses if s["state"] == "finished"} == {"fast", "slow"},
                   timeout=15, what="both runs to finish")
        reasons = {s["run"]: s["reason"] for s in v.statuses if s["state"] == "finished"}
        assert reasons["fast"] == "step limit reached: a run may train 500 steps"
        assert reasons["slow"] == "time limit reached: a run may train 2 s"
        assert v.call("step", {"run": "fast", "n": 1})["error"]["message"] == reasons["fast"]
        assert v.call("play", {"run": "slow"})["error"]["message"] == reasons["slow"]
    finally:
        v.close()


def test_idle_runs_end_and_free_their_memory(brisk):
    v = Visitor(brisk.url)
    try:
        v.ok("configure", {})
        wait_until(lambda: any(s["state"] == "ended" for s in v.statuses), timeout=10, what="the idle status")
        ended = next(s for s in v.statuses if s["state"] == "ended")
        assert ended["reason"] == "ended after 1.5 s without activity; configure to start again"
        assert metric(brisk.url, "dropout_runs_active") == 0
        assert v.connected  # the connection stays; the visitor may configure again
        v.ok("configure", {})
    finally:
        v.close()


def test_heartbeats_close_a_dead_connection_and_end_its_runs(brisk):
    dead = RawSocket(brisk.url)
    assert dead.call("configure", {})["ok"]
    dead.emit("play")  # ... and from now on reads nothing and answers no ping
    wait_until(lambda: metric(brisk.url, "dropout_sessions") == 0, timeout=15, what="the dead connection to close")
    assert metric(brisk.url, "dropout_runs_active") == 0
    lines = [x for x in log_lines(brisk) if f"event=disconnect sid={dead.sid} " in x]
    assert len(lines) == 1 and 'reason="ping timeout"' in lines[0]
    dead.close()


# ---- churn and slow readers (long) --------------------------------------------------------------
@pytest.mark.slow
def test_churn_does_not_grow_server_memory():
    """500 connect/configure/play/disconnect cycles: RSS ends within 10% of its level
    after the first 50."""
    with live() as server:
        pid = server.proc.pid

        def cycles(n: int, workers: int = 4) -> None:
            errors: list[BaseException] = []

            def work(k: int) -> None:
                try:
                    for _ in range(k):
                        v = Visitor(server.url)
                        v.ok("configure", {})
                        v.ok("play")
                        wait_until(lambda: v.frame_times, what="a frame")
                        v.close()
                except BaseException as e:  # reported below
                    errors.append(e)

            threads = [threading.Thread(target=work, args=(n // workers,)) for _ in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors[:3]
            wait_until(lambda: metric(server.url, "dropout_sessions") == 0, what="all sessions to close")
            assert metric(server.url, "dropout_runs_active") == 0

        cycles(50)
        time.sleep(1)
        after_50 = rss_mb(pid)
        cycles(450)
        time.sleep(1)
        end = rss_mb(pid)
        print(f"server RSS after 50 cycles {after_50:.1f} MB, after 500 {end:.1f} MB")
        assert end <= after_50 * 1.10
        assert requests.get(server.url + "/healthz").ok


@pytest.mark.slow
def test_a_client_that_stops_reading_costs_bounded_memory_and_slows_nobody():
    """For 60 s: one client holds its frames unacknowledged (its handler blocks) and one
    never reads its socket at all; a third keeps its frame rate and server RSS stays
    bounded."""
    seconds = 60
    # The holder's client (python-engineio's) gives up on a server whose pings stop for
    # max(interval, timeout) + 5 s; at 10 s + 10 s a ping scheduled late on a machine
    # busy with something else once cut it off. 10 s + 25 s: the deaf client is still
    # cut within the minute, by heartbeats, after 35 s.
    with live({"DP_PING_INTERVAL": "10", "DP_PING_TIMEOUT": "25"}) as server:
        pid = server.proc.pid
        good = Visitor(server.url)
        good.ok("configure", {})
        good.ok("play")
        holder = Visitor(server.url, hold_frames=True)
        holder.ok("configure", {})
        holder.ok("play")
        deaf = RawSocket(server.url, rcvbuf=4096)
        assert deaf.call("configure", {})["ok"]
        deaf.emit("play")
        time.sleep(2)
        base = rss_mb(pid)
        t0, peak = time.monotonic(), base
        while time.monotonic() - t0 < seconds:
            time.sleep(1)
            peak = max(peak, rss_mb(pid))
        rate = good.frames_since(t0) / (time.monotonic() - t0)
        print(f"good client {rate:.1f} frames/s; server RSS {base:.1f} -> peak {peak:.1f} MB")
        # (how fast the good client goes beside them is bench/abuse.py's to say: here, that
        # its frames kept coming all minute, in every tenth of it)
        times = [t for t in good.frame_times if t >= t0]
        assert all(any(t0 + i * seconds / 10 <= t < t0 + (i + 1) * seconds / 10 for t in times) for i in range(10))
        # it took a frame, and another only each time one was presumed lost: nothing queued,
        # and a lost acknowledgement does not stall the run for good
        assert 2 <= len(holder.frame_times) <= 1 + seconds / Serving().ack_timeout_s
        assert peak - base <= 30
        assert metric(server.url, "dropout_sessions") == 2  # the deaf one was cut off by heartbeats
        holder.release.set()
        wait_until(lambda: len(holder.frame_times) > 3, what="frames once the holder acknowledges")
        for c in (good, holder, deaf):
            c.close()
