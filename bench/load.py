"""Load benchmark: N concurrent clients training at full speed.

    python bench/load.py                    # 100 clients, default network; one JSON object
    python bench/load.py --clients 50       # fewer
    python bench/load.py --mix              # 80 default, 10 lesson presets, 10 odd shapes
    python bench/load.py --url http://host:5000   # against a running server (no RSS/CPU
                                                  # unless --pid names its process)
    python bench/load.py --server gunicorn  # the Docker image's server command, started here
    python bench/load.py --task regression --clients 20 --speed 300   # regression runs (sine
                                            # with a gap, T = 30 MC passes: a band in every
                                            # slow-panel frame); compare server CPU with the
                                            # same command without --task at the same speed

Each client connects, sends 'configure' and 'play', and acknowledges every frame the
moment it arrives (what the page does once it has drawn it). With --mix, 10 clients use
lesson presets (static/js/lessons.js, at full speed: speed is not part of a shape) and 10
odd shapes: five 2-64-64-64-1 MLPs at batch 256 and five digits CNNs. Printed, as one
JSON object:

    clients                   N
    frames_per_s_per_client   median over clients, measured after a warm-up
    frames_per_s_min          the slowest client's
    latency_p95_ms            frame header "t" (server wall clock at frame creation, ms)
                              -> time.time() * 1000 at receipt, over all frames
    run_steps_per_s_median/min  each client's run's training steps a second, from its
                              frames' step numbers over the same window
    server_cpu_percent        of one core (200 = both cores of this machine), same window
    server_rss_mb             the server's resident memory at the end
    rss_per_run_mb            (end - before any client) / clients
    by_shape                  with --mix: the same per group of clients
    task, speed               the runs' task and speed (steps a second; null: full speed)
    never_connected           clients whose websocket or Socket.IO connect failed or had not
                              completed by the end (e.g. refused "server busy", or hanging)
    never_framed              clients connected but without a single frame, warm-up included
    failed_clients            the two together: any failure makes goal_met false; their
                              0 frames/s count in the median and the minimum

The server is started here on a free loopback port unless --url is given: `python -m
app`, or with --server gunicorn the image's command (`gunicorn --config
deploy/gunicorn.conf.py app.wsgi:app`). Every client comes from loopback, so the server
started here allows them all from one address (DP_MAX_CONNECTIONS_PER_ADDRESS); a server
given by --url needs that setting too. Clients run in --procs processes (several clients each), so that the clients'
own Python does not serialise on one GIL. Two kinds:

    raw       (default) Engine.IO/Socket.IO spoken directly over websocket-client: a
              blocking recv loop per client, a few microseconds of client CPU per frame,
              so the numbers measure the server and not the load generator
    socketio  python-socketio Client (messages taken in arrival order on its reading
              thread: its stock client hands each to a new thread, and under load a
              frame's attachment can overtake its header); several times the client CPU
              of raw, which on this machine competes with the server for the same cores
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOAL = {"frames_per_s_per_client": 15.0, "frames_per_s_min": 10.0, "latency_p95_ms": 100.0,
        "run_steps_per_s_min": 200.0}
MIX_GOAL = {"frames_per_s_min": 10.0}
# the lesson presets' shapes (static/js/lessons.js), as configs
LESSONS = [
    {"model": {"hidden": [12, 12], "p": [0.5, 0.25]}},
    {"data": {"dataset": "moons", "n_points": 300, "noise": 0.2}, "model": {"hidden": [32, 32], "p": [0.5, 0.5]}},
    {"data": {"dataset": "moons", "n_points": 300, "noise": 0.2}, "model": {"hidden": [16, 16], "p": [0.5, 0.5]}},
    {"data": {"dataset": "xor", "n_points": 100, "noise": 0.35}, "model": {"hidden": [64, 64], "p": [0.5, 0.5]},
     "train": {"lr": 0.003, "batch_size": 50}},
    {"data": {"dataset": "moons", "n_points": 300, "noise": 0.2},
     "model": {"hidden": [16, 16], "p": [0.5, 0.5], "batchnorm": "after_dropout"}, "train": {"batch_size": 20}},
]
ODD = [
    {"data": {"n_points": 1000, "train_fraction": 0.6}, "model": {"hidden": [64, 64, 64], "p": [0.3, 0.3, 0.3]},
     "train": {"batch_size": 256}},
    {"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [8, 8], "p": [0.5, 0.5],
                                              "dropout_kind": "dropout2d"}, "train": {"batch_size": 32}},
]


# a regression run of the default network's shape: one input, the sine with a gap, T passes
REGRESSION = {"data": {"task": "regression", "dataset": "sine_gap"}, "train": {"mc_passes": 30}}


def config_of(i: int, mix: bool, task: str = "classification") -> tuple[str, dict]:
    """Client i's shape: (group name, config)."""
    if task == "regression":
        return "regression", REGRESSION
    if not mix or i < 80:
        return "default", {}
    if i < 90:
        return "lesson", LESSONS[i % len(LESSONS)]
    return ("mlp 64-64-64 b256", ODD[0]) if i % 2 else ("digits cnn", ODD[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def frame_head(data: bytes) -> tuple[float, int]:
    """The header's "t" and "step", without decoding the arrays."""
    _, n = struct.unpack_from("<BI", data, 0)
    head = json.loads(data[5:5 + n])
    return head["t"], head["step"]


# ---- clients ---------------------------------------------------------------------------
class RawClient:
    """Socket.IO v5 over Engine.IO v4, websocket transport, by hand (see docs/protocol.md)."""

    def __init__(self, url: str, token: str):
        import websocket  # websocket-client
        ws_url = url.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
        self.ws = websocket.create_connection(ws_url, timeout=30)
        opened = self.ws.recv()
        assert opened.startswith("0"), opened
        self.ws.send("40" + json.dumps({"token": token}))
        reply = self.ws.recv()
        if not reply.startswith("40"):
            raise RuntimeError(f"connect refused: {reply}")
        self.next_id, self.pending = 0, None

    def call(self, event: str, data, on_frame=lambda data: None) -> dict:
        """Emit with an acknowledgement and wait for it, taking frames meanwhile."""
        self.next_id += 1
        want = f"43{self.next_id}["
        self.ws.send(f"42{self.next_id}" + json.dumps([event, data]))
        while True:
            msg = self.receive(on_frame)
            if msg is not None and msg.startswith(want):
                ack = json.loads(msg[len(want) - 1:])[0]
                if not ack.get("ok"):
                    raise RuntimeError(f"{event} refused: {json.dumps(ack)[:300]}")
                return ack

    def receive(self, on_frame) -> str | None:
        """One message: answer a ping, acknowledge a frame, or return it."""
        msg = self.ws.recv()
        if isinstance(msg, bytes):          # the attachment of the pending binary event
            on_frame(msg)
            self.ws.send(f"43{self.pending}[true]")
        elif msg == "2":
            self.ws.send("3")
        elif msg.startswith("451-"):        # binary event with ack id: 451-<id>["frame",...]
            self.pending = msg[4:msg.index("[")]
        else:
            return msg
        return None

    def run(self, on_frame, stop: threading.Event) -> None:
        while not stop.is_set():
            self.receive(on_frame)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass


class SioClient:
    def __init__(self, url: str, token: str):
        sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]
        from visitors import InOrderClient  # frames taken in arrival order

        self.c = InOrderClient(reconnection=False)
        self.url, self.token = url, token

    def start(self, on_frame, config: dict, speed: float | None) -> None:
        def frame(data):
            on_frame(data)
            return True
        self.c.on("frame", frame)
        self.c.connect(self.url, auth={"token": self.token}, transports=["websocket"])
        calls = [("configure", {"config": config})]
        if speed is not None:
            calls.append(("set", {"change": {"param": "speed", "value": speed}}))
        for event, data in calls + [("play", {})]:
            ack = self.c.call(event, data, timeout=30)
            if not ack.get("ok"):
                raise RuntimeError(f"{event} refused: {ack}")


def client_proc(url: str, kind: str, ids: list[int], mix: bool, t_start: float, t_stop: float, out,
                task: str = "classification", speed: float | None = None) -> None:
    """One process with several clients; sends back per-client frame counts, latencies
    and the steps their runs took in the window."""
    stop = threading.Event()
    results = {i: {"frames": 0, "lat": [], "error": None, "group": config_of(i, mix, task)[0],
                   "first": None, "last": None, "connected": False, "all_frames": 0} for i in ids}

    def on_frame_for(i):
        r = results[i]

        def on_frame(data: bytes) -> None:
            now = time.time()
            r["all_frames"] += 1
            if t_start <= now < t_stop:
                t, step = frame_head(data)
                r["frames"] += 1
                r["lat"].append(now * 1000 - t)
                r["first"] = r["first"] or (t, step)
                r["last"] = (t, step)
        return on_frame

    def raw_client(i):
        try:
            c = RawClient(url, f"load-{i:04d}-token")
        except Exception as e:  # refused or failed: a failure, reported whenever it happens
            body = getattr(e, "resp_body", None)  # a refusal's answer, e.g. 503 "server busy: ..."
            why = f"{getattr(e, 'status_code', '')} {body.decode(errors='replace').strip()}" if body else repr(e)
            results[i]["error"] = "never connected: " + why[:200]
            return
        results[i]["connected"] = True
        try:
            on_frame = on_frame_for(i)
            c.call("configure", {"config": config_of(i, mix, task)[1]}, on_frame)
            if speed is not None:
                c.call("set", {"change": {"param": "speed", "value": speed}}, on_frame)
            c.call("play", {}, on_frame)
            c.run(on_frame, stop)
            c.close()
        except Exception as e:  # reported, not raised: the others go on
            if not stop.is_set():
                results[i]["error"] = repr(e)[:200]

    threads, clients = [], []
    for i in ids:
        if kind == "raw":
            t = threading.Thread(target=raw_client, args=(i,), daemon=True)
            t.start()
            threads.append(t)
        else:
            c = SioClient(url, f"load-{i:04d}-token")
            try:
                c.start(on_frame_for(i), config_of(i, mix, task)[1], speed)
                results[i]["connected"] = True
                clients.append(c)
            except Exception as e:
                results[i]["connected"] = c.c.connected
                results[i]["error"] = ("" if c.c.connected else "never connected: ") + repr(e)[:200]
    time.sleep(max(0.0, t_stop - time.time()))
    stop.set()
    out.put(results)  # and exit: the clients' connections close with the process


# ---- the server --------------------------------------------------------------------------
def start_server(env: dict, log: str | None, kind: str = "app") -> tuple[subprocess.Popen, str]:
    import requests
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full = {**os.environ, "DP_PORT": str(port), "DP_HOST": "127.0.0.1", "DP_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1", **env}
    out = open(log, "w") if log else subprocess.DEVNULL
    command = ([sys.executable, "-m", "app"] if kind == "app" else
               [sys.executable, "-m", "gunicorn", "--config", os.path.join(ROOT, "deploy", "gunicorn.conf.py"),
                "app.wsgi:app"])
    proc = subprocess.Popen(command, cwd=ROOT, env=full, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if requests.get(url + "/healthz", timeout=1).ok:
                return proc, url
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not become healthy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--mix", action="store_true", help="80 default, 10 lesson presets, 10 odd shapes (100 clients)")
    ap.add_argument("--kind", choices=("raw", "socketio"), default="raw")
    ap.add_argument("--procs", type=int, default=2, help="client processes")
    ap.add_argument("--warmup", type=float, default=8.0, help="seconds before measuring")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds measured")
    ap.add_argument("--url", help="a running server (default: start one here)")
    ap.add_argument("--server", choices=("app", "gunicorn"), default="app",
                    help="the server started here: python -m app, or the image's gunicorn command")
    ap.add_argument("--pid", type=int, help="with --url: the server's pid, for CPU and RSS")
    ap.add_argument("--server-log", help="file for the output of the server started here")
    ap.add_argument("--task", choices=("classification", "regression"), default="classification",
                    help="every client's run: the default network, or a regression with T = 30 MC passes")
    ap.add_argument("--speed", type=float, help="steps a second of every run (default: full speed)")
    ap.add_argument("--env", action="append", default=[], metavar="DP_NAME=VALUE",
                    help="a setting for the server started here (repeatable)")
    args = ap.parse_args()

    import psutil
    env = dict(kv.split("=", 1) for kv in args.env)
    if args.mix:
        args.clients = 100
    env.setdefault("DP_MAX_RUNS", str(max(50, args.clients)))
    env.setdefault("DP_MAX_RUNS_PER_ADDRESS", str(max(100, args.clients)))  # every client is on loopback
    env.setdefault("DP_MAX_CONNECTIONS_PER_ADDRESS", str(max(64, args.clients + 16)))
    proc, url = (None, args.url) if args.url else start_server(env, args.server_log, args.server)
    if proc is not None and args.server == "gunicorn":  # the worker process serves (and trains)
        import psutil as _ps
        deadline = time.monotonic() + 10
        while not _ps.Process(proc.pid).children() and time.monotonic() < deadline:
            time.sleep(0.1)
        kids = _ps.Process(proc.pid).children()
        pid_served = kids[0].pid if kids else proc.pid
    else:
        pid_served = None
    pid = args.pid if args.url else (pid_served or proc.pid)
    server = psutil.Process(pid) if pid else None
    rss_before = server.memory_info().rss / 2**20 if server else None
    try:
        n, procs = args.clients, max(1, min(args.procs, args.clients))
        t_start = time.time() + args.warmup
        t_stop = t_start + args.seconds
        out = mp.get_context("spawn").Queue()
        workers = [mp.get_context("spawn").Process(
            target=client_proc, args=(url, args.kind, list(range(k, n, procs)), args.mix, t_start, t_stop, out,
                                       args.task, args.speed))
            for k in range(procs)]
        for w in workers:
            w.start()
        time.sleep(max(0.0, t_start - time.time()))
        if server:
            server.cpu_percent()
        time.sleep(max(0.0, t_stop - time.time()))
        cpu = server.cpu_percent() if server else None
        rss = server.memory_info().rss / 2**20 if server else None
        results: dict = {}
        for _ in workers:
            results.update(out.get(timeout=60))
        for w in workers:
            w.join(10)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)

    errors = [r["error"] for r in results.values() if r["error"]]
    never_connected = sum(1 for r in results.values() if not r["connected"])
    never_framed = sum(1 for r in results.values() if r["connected"] and not r["all_frames"])
    report = {"clients": n, "server": "url" if args.url else args.server, **summary(results.values(), args.seconds),
              "never_connected": never_connected, "never_framed": never_framed,
              "failed_clients": never_connected + never_framed,
              "server_cpu_percent": round(cpu, 1) if cpu is not None else None,
              "server_rss_mb": round(rss, 1) if rss is not None else None,
              "rss_per_run_mb": round((rss - rss_before) / n, 2) if rss is not None else None,
              "kind": args.kind, "mix": args.mix, "task": args.task, "speed": args.speed,
              "errors": errors[:5]}
    if args.mix:
        groups = sorted({r["group"] for r in results.values()})
        report["by_shape"] = {g: summary([r for r in results.values() if r["group"] == g], args.seconds)
                              for g in groups}
        report["goal_met"] = (not errors and not report["failed_clients"]
                              and report["frames_per_s_min"] >= MIX_GOAL["frames_per_s_min"])
    else:
        report["goal_met"] = not errors and not report["failed_clients"] and all(
            report[k] is not None and (report[k] <= v if k.startswith("latency") else report[k] >= v)
            for k, v in GOAL.items())
    print(json.dumps(report), flush=True)


def summary(results, seconds: float) -> dict:
    """Frames a second (median, min), latency percentiles, run steps a second (median, min)."""
    results = list(results)
    rates = [r["frames"] / seconds for r in results]
    lat = sorted(x for r in results for x in r["lat"])
    steps = [(r["last"][1] - r["first"][1]) / max(1e-9, (r["last"][0] - r["first"][0]) / 1000)
             for r in results if r["first"] and r["last"] and r["last"][0] > r["first"][0]]
    return {
        "frames_per_s_per_client": round(statistics.median(rates), 1) if rates else 0.0,
        "frames_per_s_min": round(min(rates), 1) if rates else 0.0,
        "latency_p50_ms": round(lat[len(lat) // 2], 1) if lat else None,
        "latency_p95_ms": round(lat[int(0.95 * (len(lat) - 1))], 1) if lat else None,
        "run_steps_per_s_median": round(statistics.median(steps)) if steps else None,
        "run_steps_per_s_min": round(min(steps)) if steps else None,
    }


if __name__ == "__main__":
    main()
