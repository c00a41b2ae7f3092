"""Abuse benchmark: the attacks of docs/limits.md beside one normal visitor.

    python bench/abuse.py                 # ~30 s; one JSON object
    python bench/abuse.py --seconds 40

A server is started as `python -m app` on a free loopback port (DP_LOG_LEVEL=WARNING,
its log in a temporary file). One bystander plays the default network at full speed
and acknowledges every frame at once, as the page does, from a process of its own (the
attackers' hundreds of client threads share this one's interpreter; a visitor's browser
shares nothing with them). After a few seconds, beside it and all from this one address:

    non_readers   2 clients: a sweep stepped 3 x 200, then `sweep result` with boundaries
                  (about 1 MB each) every 50 ms, never reading a byte
    experiments   12 clients on the widest, deepest MLP with 2,000 points, each sending
                  `experiment inverted_scaling {passes: 1024, examples: 256}` (and, when
                  refused, a smaller one) over and over
    max_runs      clients configuring the largest MLP (6 x 64, batch 1,000) and the
                  largest digits CNN (3 x 16, element-wise dropout, BatchNorm, eval_every
                  1) three runs each, until refused, all playing at full speed
    malformed     one client sending 2,000 `42[]` packets

and the attacks of issue 23:

    step_flood    30 clients on a slow digits CNN (3 per address, 127.0.1.1-10), each sending
                  `step {n: 1000}` 19 times a second (a 'step' while the run's last one trains)
    hoarders      from 127.0.0.2-4: paused digits CNNs (3 x 16, batch 1), then default runs,
                  until refused, then a pause of a paused run every 0.5 s (no activity);
                  then a newcomer from 127.0.0.9 configures a default run
    surrogate     5 clients (127.0.0.8) sending a custom point whose x is "\\ud800", 19 times a second
    unclosed      3 clients (127.0.0.11) sending a 60 KB event whose string never closes (escaped
                  quotes all along) twice a second: the check before parsing once took seconds for one
    long_list     3 clients (127.0.0.12) sending a configure whose p holds 32,000 values out of range,
                  19 times a second: each value was once an error of its own (~0.4 s a message)
    heavy         12 configures of that CNN (the largest timeline) at once from 127.0.0.10
    slow_headers  300 sockets from 127.0.0.6 sending one header line every 2 s (reconnecting
                  when cut), while a newcomer asks for GET / every second

Printed: the bystander's frames/s and longest gap over the attack, the server's peak RSS
and log growth, its threads and RSS before, at the peak and 30 s after, and what each
attack got (refusals by message). Goals (issues 15, 23): bystander >= 20 frames/s, no
gap > 0.5 s, peak RSS < 1.5 GB, threads and RSS back within 10% of before 30 s after.

    python bench/abuse.py --server gunicorn     # the Docker image's server command
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import RawClient, frame_head, start_server  # noqa: E402

GOAL = {"bystander_frames_per_s": 20.0, "bystander_max_gap_s": 0.5, "peak_rss_mb": 1536.0}
WIDE = {"data": {"dataset": "circle", "n_points": 2000}, "model": {"hidden": [64] * 6, "p": [0.5] * 6}}
BIG_MLP = {"data": {"dataset": "circle", "n_points": 2000}, "model": {"hidden": [64] * 6, "p": [0.5] * 6},
           "train": {"batch_size": 1000}}
BIG_CNN = {"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [16] * 3, "p": [0.3] * 3,
                                                     "batchnorm": "before_dropout"},
           "train": {"batch_size": 898, "eval_every": 1}}


def short(message: str) -> str:
    return message.split(":")[0][:60]


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def add(self, attack: str, what: str) -> None:
        with self.lock:
            self.counts[attack][what] += 1


def call(c: RawClient, event: str, data) -> dict:
    try:
        return c.call(event, data)
    except RuntimeError as e:  # RawClient raises on a refusal: its text carries the ack
        m = re.search(r'"message": "([^"]*)', str(e))
        return {"ok": False, "error": {"message": m[1] if m else str(e)[:60]}}


def bystander(url: str, pipe) -> None:
    """The honest visitor, in a process of its own (a visitor's browser shares nothing
    with the attackers; in this one it would wait on the interpreter behind their
    hundreds of client threads before it could acknowledge a frame). Sends each frame's
    (arrival time, step) up the pipe until told to stop."""
    stop = threading.Event()
    threading.Thread(target=lambda: (pipe.recv(), stop.set()), daemon=True).start()
    c = RawClient(url, "bystander-token-1")
    on_frame = lambda data: pipe.send((time.monotonic(), frame_head(data)[1]))  # noqa: E731
    c.call("configure", {"config": {}}, on_frame)
    c.call("play", {}, on_frame)
    c.run(on_frame, stop)
    c.close()


def start_bystander(url: str, arrivals: list):
    """The bystander's process; its frames' (time, step) land in arrivals (CLOCK_MONOTONIC
    is the machine's, so its times compare with this process's). Returns the pipe end
    that stops it (send anything)."""
    import multiprocessing
    ours, theirs = multiprocessing.Pipe()
    multiprocessing.get_context("spawn").Process(target=bystander, args=(url, theirs), daemon=True).start()

    def collect():
        try:
            while True:
                arrivals.append(ours.recv())
        except (EOFError, OSError):
            return
    threading.Thread(target=collect, daemon=True).start()
    return ours


def non_reader(url: str, i: int, stop: threading.Event, tally: Tally) -> None:
    c = RawClient(url, f"nonreader-{i}-token")
    call(c, "sweep", {"action": "start"})
    for _ in range(3):
        call(c, "sweep", {"action": "step", "steps": 200})
    n = 0
    try:
        while not stop.is_set():
            n += 1
            c.ws.send(f"42{1000 + n}" + json.dumps(["sweep", {"action": "result", "boundaries": True}]))
            time.sleep(0.05)
        tally.add("non_readers", "sent")
    except OSError:
        tally.add("non_readers", "disconnected")
    c.close()


def experimenter(url: str, i: int, stop: threading.Event, tally: Tally) -> None:
    try:
        c = RawClient(url, f"experiment-{i}-token")
    except Exception:
        tally.add("experiments", "connect refused")
        return
    if not call(c, "configure", {"config": WIDE}).get("ok"):
        tally.add("experiments", "configure refused")
    while not stop.is_set():  # the big one, then (refused as too big) a smaller one, at once
        for params in ({"passes": 1024, "examples": 256}, {"passes": 256, "examples": 16}):
            ack = call(c, "experiment", {"name": "inverted_scaling", "params": params})
            tally.add("experiments", "ok" if ack.get("ok") else short(ack["error"]["message"]))
            if stop.is_set() or not ack.get("ok") and "busy" in ack["error"]["message"]:
                time.sleep(0.5)  # told to retry later: sooner than asked
                break
    c.close()


def max_runs(url: str, stop: threading.Event, tally: Tally, clients: list) -> None:
    for i in range(40):
        if stop.is_set():
            return
        try:
            c = RawClient(url, f"maxruns-{i}-token")
        except Exception:
            tally.add("max_runs", "connect refused")
            continue
        clients.append(c)
        refused = False
        for r in range(3):
            ack = call(c, "configure", {"run": f"r{r}", "config": BIG_CNN if (i + r) % 4 == 0 else BIG_MLP})
            if ack.get("ok"):
                call(c, "play", {"run": f"r{r}"})
                tally.add("max_runs", "running")
            else:
                tally.add("max_runs", short(ack["error"]["message"]))
                refused = True
        threading.Thread(target=c.run, args=(lambda data: None, stop), daemon=True).start()
        if refused:
            return


SLOW_CNN = {"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [16] * 3, "p": [0.3] * 3},
            "train": {"batch_size": 120}}
TIMELINE_CNN = {"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [16] * 3, "p": [0.3] * 3},
                "train": {"batch_size": 1}}
# a string that never closes, full of escaped quotes: 60 KB, under the message limit
UNCLOSED = '["set","' + '\\"' * 30000
# a configure whose p holds 32,000 values out of range: 63 KB, under the message limit
LONG_LIST = json.dumps(["configure", {"config": {"model": {"p": [2] * 32000}}}], separators=(",", ":"))
SURROGATE = ('["configure", {"config": {"data": {"dataset": "custom", "points": '
             '[["\\ud800", 0.1, 0], [0.2, 0.1, 1], [0.3, 0.1, 0], [0.4, 0.1, 1]]}}}]')


class FromClient(RawClient):
    """A RawClient connected from a given loopback address (another client address)."""

    def __init__(self, url: str, token: str, source: str):
        import socket
        import websocket
        host, port = url.split("//")[1].split(":")
        sock = socket.create_connection((host, int(port)), timeout=30, source_address=(source, 0))
        self.ws = websocket.create_connection(url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket",
                                              timeout=30, socket=sock)
        assert self.ws.recv().startswith("0")
        self.ws.send("40" + json.dumps({"token": token}))
        reply = self.ws.recv()
        if not reply.startswith("40"):
            raise RuntimeError(f"connect refused: {reply}")
        self.next_id, self.pending = 0, None


def answers(c: RawClient, attack: str, tally: Tally, stop: threading.Event) -> None:
    """Read a client's socket until stopped, tallying every answer: ok, or its message."""
    try:
        while not stop.is_set():
            msg = c.receive(lambda data: None)
            if msg and msg.startswith("43"):
                ack = json.loads(msg[msg.index("["):])[0]
                tally.add(attack, "ok" if ack.get("ok") else short(ack["error"]["message"]))
            elif msg and msg.startswith("41"):
                tally.add(attack, "disconnected")
                return
    except Exception:
        return


def flooder(url: str, attack: str, i: int, stop: threading.Event, tally: Tally, setup: dict | None,
            event: str, source: str, rate: float = 19.0) -> None:
    """A client from address `source` sending one event `rate` times a second (its answers tallied)."""
    try:
        c = FromClient(url, f"{attack}-{i}-token", source)
    except Exception:
        tally.add(attack, "connect refused")
        return
    if setup is not None:
        call(c, "configure", {"config": setup})
    threading.Thread(target=answers, args=(c, attack, tally, stop), daemon=True).start()
    n = 0
    try:
        while not stop.is_set():
            n += 1
            c.ws.send(f"42{10_000 + n}" + event)
            time.sleep(1 / rate)
    except Exception:
        tally.add(attack, "send failed")
    c.close()


def hoarders(url: str, stop: threading.Event, tally: Tally, clients: list) -> None:
    for a, address in enumerate(("127.0.0.2", "127.0.0.3", "127.0.0.4")):
        for config in (TIMELINE_CNN, {}):
            refused = False
            for i in range(60):
                try:
                    c = FromClient(url, f"hoard-{a}-{id(config)}-{i}-tok", address)
                except Exception:
                    tally.add("hoarders", "connect refused")
                    break
                clients.append(c)
                for r in range(3):
                    ack = call(c, "configure", {"run": f"r{r}", "config": config})
                    tally.add("hoarders", "held" if ack.get("ok") else short(ack["error"]["message"]))
                    refused = refused or not ack.get("ok")
                if refused:
                    break
    newcomer = FromClient(url, "newcomer-token-1", "127.0.0.9")
    ack = call(newcomer, "configure", {"config": {}})
    tally.add("hoarders", "newcomer " + ("ok" if ack.get("ok") else short(ack["error"]["message"])))
    newcomer.close()
    while not stop.is_set():  # not activity: they must not keep the runs
        for c in clients:
            try:
                c.ws.send("42" + json.dumps(["pause", {"run": "r0"}]))
            except Exception:
                pass
        stop.wait(0.5)


def heavy(url: str, tally: Tally, clients: list) -> None:
    def one(i: int) -> None:
        c = FromClient(url, f"heavy-{i}-token", "127.0.0.10")
        clients.append(c)
        for r in range(3):
            ack = call(c, "configure", {"run": f"r{r}", "config": TIMELINE_CNN})
            tally.add("heavy", "ok" if ack.get("ok") else short(ack["error"]["message"]))
    workers = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)


def slow_headers(url: str, stop: threading.Event, tally: Tally) -> None:
    import socket
    import requests
    host, port = url.split("//")[1].split(":")

    def opened():
        s = socket.create_connection((host, int(port)), timeout=5, source_address=("127.0.0.6", 0))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        return s
    socks = []
    for _ in range(300):
        try:
            socks.append(opened())
        except OSError:
            tally.add("slow_headers", "connect failed")
    while not stop.is_set():
        for k, s in enumerate(socks):
            try:
                s.sendall(b"X-Slow: 1\r\n")
            except OSError:
                tally.add("slow_headers", "cut")
                s.close()
                try:
                    socks[k] = opened()
                except OSError:
                    tally.add("slow_headers", "connect failed")
        try:
            code = requests.get(url + "/", timeout=5).status_code
            tally.add("slow_headers", f"newcomer GET / {code}")
        except requests.RequestException as e:
            tally.add("slow_headers", f"newcomer GET / {type(e).__name__}")
        stop.wait(2)
    for s in socks:
        s.close()


def malformed(url: str, tally: Tally) -> None:
    c = RawClient(url, "malformed-token-1")
    try:
        for _ in range(2000):
            c.ws.send("42[]")
        tally.add("malformed", "sent 2000")
        c.ws.settimeout(5)
        while True:
            c.receive(lambda data: None)
    except Exception as e:
        tally.add("malformed", f"connection ended ({type(e).__name__})")
    c.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=25.0, help="length of the attack")
    ap.add_argument("--only", default="non_readers,experiments,max_runs,malformed,step_flood,hoarders,surrogate,"
                                      "unclosed,long_list,heavy,slow_headers",
                    help="comma-separated attacks to run (default: all)")
    ap.add_argument("--server", choices=["app", "gunicorn"], default="app",
                    help="python -m app, or the Docker image's gunicorn command")
    ap.add_argument("--log", help="keep the server's log at this path")
    args = ap.parse_args()
    only = set(args.only.split(","))
    import psutil

    log = args.log or tempfile.NamedTemporaryFile(prefix="abuse-", suffix=".log", delete=False).name
    proc, url = start_server({"DP_PING_INTERVAL": "5", "DP_PING_TIMEOUT": "5"}, log, args.server)
    server = psutil.Process(proc.pid)
    if args.server == "gunicorn":  # its one worker serves and trains (the arbiter only watches it)
        server = server.children()[0]
    stop_all, stop_attack = threading.Event(), threading.Event()
    arrivals: list = []
    tally = Tally()
    peak = [0.0]

    def watch_rss():
        while not stop_all.is_set():
            try:
                peak[0] = max(peak[0], server.memory_info().rss / 2**20)
            except psutil.Error:
                return
            time.sleep(0.1)

    stop_bystander = start_bystander(url, arrivals)
    threading.Thread(target=watch_rss, daemon=True).start()
    time.sleep(4)  # warm-up: the bystander alone
    alone = [a for a in arrivals if a[0] >= time.monotonic() - 2]
    threads0, rss0 = server.num_threads(), server.memory_info().rss / 2**20
    peak_threads = [threads0]

    def watch_threads():
        while not stop_all.is_set():
            try:
                peak_threads[0] = max(peak_threads[0], server.num_threads())
            except psutil.Error:
                return
            time.sleep(0.2)
    threading.Thread(target=watch_threads, daemon=True).start()
    log0 = os.path.getsize(log)
    t0 = time.monotonic()
    held: list = []
    attackers = []
    if "non_readers" in only:
        attackers += [threading.Thread(target=non_reader, args=(url, i, stop_attack, tally), daemon=True)
                      for i in range(2)]
    if "experiments" in only:
        attackers += [threading.Thread(target=experimenter, args=(url, i, stop_attack, tally), daemon=True)
                      for i in range(12)]
    if "max_runs" in only:
        attackers.append(threading.Thread(target=max_runs, args=(url, stop_attack, tally, held), daemon=True))
    if "malformed" in only:
        attackers.append(threading.Thread(target=malformed, args=(url, tally), daemon=True))
    if "step_flood" in only:
        step = json.dumps(["step", {"n": 1000}])
        attackers += [threading.Thread(target=flooder, args=(url, "step_flood", i, stop_attack, tally, SLOW_CNN, step,
                                                             f"127.0.1.{i // 3 + 1}"),
                                       daemon=True) for i in range(30)]
    if "surrogate" in only:
        attackers += [threading.Thread(target=flooder, args=(url, "surrogate", i, stop_attack, tally, None, SURROGATE,
                                                             "127.0.0.8"),
                                       daemon=True) for i in range(5)]
    if "unclosed" in only:
        attackers += [threading.Thread(target=flooder, args=(url, "unclosed", i, stop_attack, tally, None, UNCLOSED,
                                                             "127.0.0.11", 2.0),
                                       daemon=True) for i in range(3)]
    if "long_list" in only:
        attackers += [threading.Thread(target=flooder, args=(url, "long_list", i, stop_attack, tally, None, LONG_LIST,
                                                             "127.0.0.12"),
                                       daemon=True) for i in range(3)]
    if "hoarders" in only:
        attackers.append(threading.Thread(target=hoarders, args=(url, stop_attack, tally, held), daemon=True))
    if "heavy" in only:
        attackers.append(threading.Thread(target=heavy, args=(url, tally, held), daemon=True))
    if "slow_headers" in only:
        attackers.append(threading.Thread(target=slow_headers, args=(url, stop_attack, tally), daemon=True))
    for t in attackers:
        t.start()
    time.sleep(args.seconds)
    t1 = time.monotonic()
    stop_attack.set()
    for t in attackers:
        t.join(timeout=15)
    for c in held:  # every attacker gone: what comes back, and how soon
        c.close()
    settled = None
    while time.monotonic() - t1 < 30:
        if (server.num_threads() <= 1.1 * threads0 and server.memory_info().rss / 2**20 <= 1.1 * rss0):
            settled = round(time.monotonic() - t1, 1)
            break
        time.sleep(0.5)
    threads_after, rss_after = server.num_threads(), server.memory_info().rss / 2**20
    stop_all.set()
    stop_bystander.send("stop")
    during = [a for a in arrivals if t0 <= a[0] <= t1]
    gaps = [b[0] - a[0] for a, b in zip(during, during[1:])]
    worst_at = max(zip(gaps, during), key=lambda t: t[0])[1][0] - t0 if gaps else None
    if during:
        gaps += [during[0][0] - t0, t1 - during[-1][0]]
    rss_end = server.memory_info().rss / 2**20
    log_bytes = os.path.getsize(log) - log0
    proc.terminate()
    proc.wait(10)
    result = {
        "server": args.server,
        "seconds": round(t1 - t0, 1),
        "bystander_frames_per_s_alone": round(len(alone) / 2, 1),
        "bystander_frames_per_s": round(len(during) / (t1 - t0), 1),
        "bystander_max_gap_s": round(max(gaps), 3) if gaps else None,
        "bystander_max_gap_at_s": round(worst_at, 2) if worst_at is not None else None,
        "bystander_gap_p99_s": round(statistics.quantiles(gaps, n=100)[98], 3) if len(gaps) > 100 else None,
        "bystander_steps": during[-1][1] - during[0][1] if len(during) > 1 else 0,
        "peak_rss_mb": round(peak[0]), "end_rss_mb": round(rss_end),
        "threads_before": threads0, "threads_peak": peak_threads[0], "threads_30s_after": threads_after,
        "rss_before_mb": round(rss0), "rss_30s_after_mb": round(rss_after),
        "back_within_10pct_after_s": settled,
        "log_bytes": log_bytes,
        "attacks": {k: dict(v) for k, v in tally.counts.items()},
        "goal": GOAL,
    }
    result["met"] = (result["bystander_frames_per_s"] >= GOAL["bystander_frames_per_s"]
                     and (result["bystander_max_gap_s"] or 99) <= GOAL["bystander_max_gap_s"]
                     and result["peak_rss_mb"] < GOAL["peak_rss_mb"] and settled is not None)
    print(json.dumps(result))
    if not args.log:
        os.unlink(log)


if __name__ == "__main__":
    main()
