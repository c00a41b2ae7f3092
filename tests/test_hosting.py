"""Issue 23's attacks on the hosted page, each from real clients against a real server
(the embedded `python -m app` and the Docker image's gunicorn command), with an honest
visitor playing the default network beside it.

Each attack is bounded in time. What is held: the attacker is refused or cut with a
clear message; the honest visitor keeps getting frames; the server's threads come back
to their level within 30 s. (Frame rates and gaps as figures: bench/abuse.py.)
"""
from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from conftest import live
from visitors import RawSocket, Visitor, wait_until

SLOW_CNN = {"data": {"dataset": "digits"},
            "model": {"kind": "cnn", "hidden": [16] * 3, "p": [0.3] * 3},
            "train": {"batch_size": 120}}
# a visitor's frames may pause this long while the server is busy with an attack (the
# bench's goal is 0.5 s; this bound only says the visitor is never starved)
STARVED_S = 5.0


@pytest.fixture(scope="module", params=["embedded", "gunicorn"])
def server(request):
    with live({"DP_PING_INTERVAL": "5", "DP_PING_TIMEOUT": "5"}, request.param) as s:
        yield s


@pytest.fixture
def honest(server):
    v = Visitor(server.url)
    v.ok("configure", {})
    v.ok("play")
    wait_until(lambda: len(v.frame_times) > 10, what="the honest visitor's first frames")
    yield v
    v.close()


def threads_of(server) -> int:
    return psutil.Process(server.proc.pid).num_threads()


def settled_threads(server, seconds: float = 1.0) -> int:
    """The thread count once it has stopped moving (a handshake's threads end late)."""
    last = threads_of(server)
    while True:
        time.sleep(seconds)
        now = threads_of(server)
        if now == last:
            return now
        last = now


def warm_pool(server, n: int = 8) -> None:
    """gunicorn's thread pool grows to the most connections it has seen at once and keeps
    those threads: open that many first, so the baseline counts them."""
    visitors = [Visitor(server.url) for _ in range(n)]
    for v in visitors:
        v.close()


def largest_gap(v: Visitor, t0: float, t1: float) -> float:
    times = [t0] + [t for t in v.frame_times if t0 <= t <= t1] + [t1]
    return max(b - a for a, b in zip(times, times[1:]))


def test_step_events_while_a_step_trains_are_refused_and_leave_no_thread(server, honest):
    """Before: a 'step' arriving while the run's previous one trained replaced its
    promise; the earlier handler waited ten minutes, and 5 clients at 15 'step's a second
    left 2,250 threads behind (30 of them: 24,754 threads, 'can't start new thread')."""
    warm_pool(server)
    base = settled_threads(server)
    attackers = [Visitor(server.url) for _ in range(5)]
    for a in attackers:
        a.ok("configure", {"config": SLOW_CNN})
    replies: list[dict] = []
    t0 = time.monotonic()
    most = sent = 0
    while time.monotonic() - t0 < 6:
        for a in attackers:
            a.sio.emit("step", {"n": 1000}, callback=replies.append)
            sent += 1
        most = max(most, threads_of(server))
        time.sleep(1 / 15)
    t1 = time.monotonic()
    # every 'step' is answered at once but the first of each attacker's, which trains on
    wait_until(lambda: len(replies) >= sent - len(attackers), timeout=30,
               what=f"answers to the {sent} steps sent (got {len(replies)})")
    refused = [r for r in replies if not r["ok"]]
    assert refused and all("still training" in r["error"]["message"] for r in refused), refused[:3]
    assert refused[0]["error"]["field"] == "run"
    assert most < base + 60, (base, most)  # a few event threads at a time, not thousands
    assert largest_gap(honest, t0, t1) < STARVED_S
    for a in attackers:  # leaving ends their runs: the steps still training answer at once
        a.close()
    wait_until(lambda: threads_of(server) <= base * 1.1, timeout=30,
               what=f"the threads to come back to {base} (+10%)")
    assert honest.connected


def log_text(server) -> str:
    return Path(server.log.name).read_text(errors="replace")


def test_a_lone_surrogate_is_refused_before_parsing_and_logs_no_traceback(server, honest):
    """Before: "\\ud800" as a custom point's x raised inside pydantic's error rendering:
    from 5 connections at 19 events/s, 3,802 tracebacks and 3.25 MB of log in 20 s."""
    before = len(log_text(server))
    attackers = [RawSocket(server.url) for _ in range(5)]
    points = '[["\\ud800", 0.1, 0], [0.2, 0.1, 1], [0.3, 0.1, 0], [0.4, 0.1, 1]]'
    event = '["configure", {"config": {"data": {"dataset": "custom", "points": %s}}}]' % points
    t0 = time.monotonic()
    sent = 0
    while time.monotonic() - t0 < 4:
        for a in attackers:
            sent += 1
            a.send_raw(f"42{sent}" + event)
        time.sleep(1 / 19)
    answers = [a.answers() for a in attackers]
    for a in attackers:
        a.close()
    got = [x for per in answers for x in per]
    assert got and all(x["error"]["received"] == "not_unicode" for x in got), got[:2]
    assert "lone surrogate" in got[0]["error"]["message"]
    grown = log_text(server)[before:]
    assert "Traceback" not in grown
    assert len(grown) < 300 * sent  # one short line per refused packet at most
    assert honest.connected and largest_gap(honest, t0, time.monotonic()) < STARVED_S
