"""Issue 23's attacks on the hosted page, each from real clients against a real server
(the embedded `python -m app` and the Docker image's gunicorn command), with an honest
visitor playing the default network beside it.

Each attack is bounded in time. What is held: the attacker is refused or cut with a
clear message; the honest visitor keeps getting frames; the server's threads come back
to their level within 30 s. (Frame rates and gaps as figures: bench/abuse.py.)
"""
from __future__ import annotations

import json
import time

import psutil
import pytest
import requests
import websocket

from conftest import live
from model_server import Limits, parse_config
from model_server.costs import run_cost
from visitors import RawSocket, Visitor, rss_mb, wait_until

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
    return psutil.Process(server.pid).num_threads()


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
    rss0 = rss_mb(server.pid)
    attackers = [Visitor(server.url, source=f"127.0.0.{20 + i}") for i in range(5)]
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
    # (with glibc's default arenas, one per thread that allocated, RSS settled 10-16% above)
    wait_until(lambda: rss_mb(server.pid) <= rss0 * 1.1, timeout=30,
               what=f"the memory to come back to {rss0:.0f} MB (+10%)")
    assert honest.connected


def log_text(server) -> str:
    return server.log_path.read_text(errors="replace")


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


# ---- hole 3: a few addresses holding the memory budget with runs nobody plays ----------
def default_run_mb() -> float:
    return run_cost(parse_config({}), Limits()).bytes / 2**20


@pytest.fixture(scope="module", params=["embedded", "gunicorn"])
def tight(request):
    """A budget of 40 default runs, a quarter of it per address; idle runs give way after 1 s."""
    c = default_run_mb() * 2**20
    env = {"DP_MAX_BYTES": str(40.5 * c), "DP_MAX_BYTES_PER_ADDRESS": str(10.5 * c), "DP_EVICT_IDLE_S": "1",
           "DP_PING_INTERVAL": "5", "DP_PING_TIMEOUT": "5"}
    with live(env, request.param) as s:
        yield s


def hoard(url: str, address: str) -> tuple[list[Visitor], list[dict]]:
    """Paused default runs from one address until its configure is refused (3 per tab)."""
    visitors, refusals = [], []
    while not refusals:
        v = Visitor(url, source=address)
        visitors.append(v)
        for r in range(3):
            ack = v.call("configure", {"run": f"r{r}", "config": {}})
            if not ack["ok"]:
                refusals.append(ack)
                break
    return visitors, refusals


def ready(url: str) -> bool:
    return requests.get(url + "/readyz", timeout=5).status_code == 200


def test_three_addresses_cannot_take_the_memory_budget(tight):
    """Before: 92 paused runs from 127.0.0.2-4 took the whole budget in 3.5 s; every
    newcomer was refused while /readyz answered 200."""
    honest = Visitor(tight.url)
    honest.ok("configure", {})
    honest.ok("play")
    held = []
    for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
        visitors, refusals = hoard(tight.url, address)
        held += visitors
        assert "DP_MAX_BYTES_PER_ADDRESS" in refusals[0]["error"]["message"], refusals[0]
    assert ready(tight.url)

    def ended() -> int:  # (an address past its share ends its own idle runs first)
        return sum(s["state"] == "ended" for v in held for s in v.statuses)
    before = ended()
    newcomer = Visitor(tight.url, source="127.0.0.9")
    assert newcomer.call("configure", {})["ok"]
    time.sleep(0.5)
    assert ended() == before  # nobody had to go for the newcomer
    for v in held + [newcomer, honest]:
        v.close()


def test_runs_nobody_plays_give_way_to_a_newcomer_and_readyz_tells_the_truth(tight):
    honest = Visitor(tight.url)
    honest.ok("configure", {})
    honest.ok("play")
    held = []
    for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
        held += hoard(tight.url, address)[0]
    # the hoarders keep sending events that are not activity on a run: pauses of paused
    # runs, unknown events. Before, any event reset the idle timer for ever.
    for _ in range(3):
        for v in held:
            v.sio.emit("pause", {"run": "r0"})
            v.sio.emit("nonsense", {})
        time.sleep(0.5)
    wait_until(lambda: ready(tight.url), timeout=15, what="/readyz to count the idle runs as room")
    newcomer = Visitor(tight.url, source="127.0.0.9")
    assert newcomer.ok("configure", {})
    ended = [s for v in held for s in v.statuses if s["state"] == "ended"]
    assert ended and "to make room for another visitor" in ended[0]["reason"], ended[:1]
    assert honest.connected and not any(s["state"] == "ended" for s in honest.statuses)  # it plays: it stays
    for v in held + [newcomer, honest]:
        v.close()


def test_readyz_answers_503_when_a_default_run_would_be_refused():
    c = default_run_mb() * 2**20
    with live({"DP_MAX_BYTES": str(3.5 * c), "DP_EVICT_IDLE_S": "600"}) as s:
        players = [Visitor(s.url) for _ in range(3)]
        for p in players:
            p.ok("configure", {})
        assert requests.get(s.url + "/readyz", timeout=5).status_code == 503
        refused = Visitor(s.url).call("configure", {})
        assert not refused["ok"] and "memory budget" in refused["error"]["message"]
        players[0].close()
        wait_until(lambda: ready(s.url), what="/readyz to see the room a leaving visitor left")
        for p in players[1:]:
            p.close()


# ---- hole 6: heavy configures at once ------------------------------------------------------
TIMELINE_CNN = {"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [16] * 3, "p": [0.3] * 3},
                "train": {"batch_size": 1}}


def test_heavy_configures_at_once_do_not_stall_the_others(server, honest):
    """Before: 12 configures of the CNN with the largest timeline (18 MB a row), at once
    from one address, grew one bucket by copying all its rows between two steps (cap 8 to
    16: 0.4 s) and stalled everyone 0.8-1.8 s. A bucket now holds at most
    DP_MAX_BUCKET_BYTES of rows, so a join copies a few."""
    rss0 = rss_mb(server.pid)
    attackers = [Visitor(server.url) for _ in range(4)]
    replies: list[dict] = []
    t0 = time.monotonic()
    for a in attackers:
        for r in range(3):
            a.sio.emit("configure", {"run": f"r{r}", "config": TIMELINE_CNN}, callback=replies.append)
    wait_until(lambda: len(replies) == 12, timeout=60, what="answers to the 12 configures")
    t1 = time.monotonic()
    refusals = [r["error"]["message"] for r in replies if not r["ok"]]  # (an address's share of memory)
    assert all("DP_MAX_BYTES_PER_ADDRESS" in m or "server busy" in m for m in refusals), refusals
    assert sum(r["ok"] for r in replies) >= 3
    assert largest_gap(honest, t0, t1) < STARVED_S
    for a in attackers:
        a.close()
    wait_until(lambda: rss_mb(server.pid) <= rss0 * 1.1, timeout=30,
               what=f"the memory to come back to {rss0:.0f} MB (+10%)")


def test_a_refused_token_hears_why(server):
    """Before: "Connection refused by server" (the builtin exception's fallback text)."""
    raw = websocket.create_connection(server.url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
                                      timeout=10)
    assert raw.recv().startswith("0")
    raw.send("40" + json.dumps({"token": "no spaces allowed"}))
    reply = raw.recv()
    assert reply.startswith("44"), reply
    error = json.loads(reply[2:])
    assert error["message"] == "token has to be 8 to 64 letters, digits, '-' or '_'"
    assert error["data"]["field"] == "token" and error["data"]["received"] == "no spaces allowed"
    raw.close()
