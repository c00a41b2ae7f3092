"""Scale-out for real: Redis, two instances, nginx in front (deploy/nginx.conf), all on loopback.

    redis-server (message queue) <- instance a, instance b (python -m app) <- nginx (ip_hash)

nginx's ip_hash sends every client of one address to one instance, so the clients through
nginx (all from 127.0.0.1) share an instance; another client connects straight to the other
instance, so both carry runs. /healthz names the instance, /readyz counts its runs: the
tests assert who served whom with those.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import ARTIFACTS, ROOT, LiveServer, free_port
from visitors import InOrderClient
from model_server.frames import decode

NGINX_CONF = ROOT / "deploy" / "nginx.conf"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
SMALL_RUN = {"data": {"dataset": "xor", "n_points": 200}, "model": {}, "train": {}}


def wait_for(predicate, timeout: float = 15, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def instance_of(url: str) -> str:
    return requests.get(url + "/healthz", timeout=5).json()["instance"]


def runs_on(url: str) -> int:
    return requests.get(url + "/readyz", timeout=5).json()["runs"]


def require(program: str) -> str:
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin")
    if path is None:
        pytest.fail(f"{program} not found: install Debian's package (make test does, SYSTEM_PACKAGES)")
    return path


class Player:
    """A python-socketio client that trains one run and keeps what the server sent."""

    def __init__(self, url: str, name: str):
        self.url, self.name = url, name
        self.frames: list[dict] = []
        self.statuses: list[dict] = []
        self.broadcasts: list[dict] = []
        self.connects = 0
        self.lock = threading.Lock()
        self.sio = InOrderClient(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)
        self.sio.on("connect", self._connected)
        self.sio.on("frame", self._frame)
        self.sio.on("status", lambda d: self._keep(self.statuses, d))
        self.sio.on("broadcast", lambda d: self._keep(self.broadcasts, d))

    def _keep(self, where: list, item) -> None:
        with self.lock:
            where.append(item)

    def _connected(self) -> None:
        self.connects += 1

    def _frame(self, data: bytes) -> bool:
        header, _ = decode(data)
        self._keep(self.frames, header)
        return True  # the acknowledgement that lets the server send the next frame

    def connect(self) -> "Player":
        self.sio.connect(self.url, transports=["websocket"], auth={"token": f"player-{self.name}"},
                         wait_timeout=10)
        return self

    def play(self) -> None:
        ack = self.sio.call("configure", {"run": "main", "config": SMALL_RUN}, timeout=20)
        assert ack["ok"], ack
        ack = self.sio.call("set", {"run": "main", "change": {"param": "speed", "value": 200}}, timeout=10)
        assert ack["ok"], ack
        ack = self.sio.call("play", {"run": "main"}, timeout=10)
        assert ack == {"ok": True, "run": "main", "state": "playing"}, ack

    def frames_after(self, n: int, more: int = 3, timeout: float = 20) -> list[dict]:
        wait_for(lambda: len(self.frames) >= n + more, timeout, f"{more} more frames for {self.name}")
        return self.frames[n:]

    def ended(self) -> list[dict]:
        return [s for s in self.statuses if s.get("state") == "ended"]

    def close(self) -> None:
        self.sio.shutdown()  # disconnects, or stops trying to reconnect


# ---- the services ----

@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = require("redis-server")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path_factory.mktemp("redis"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)

    def pong():
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    try:
        wait_for(pong, 10, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def start_instance(name: str, redis_url: str) -> LiveServer:
    ARTIFACTS.mkdir(exist_ok=True)
    return LiveServer({"SOCKETIO_MESSAGE_QUEUE": redis_url, "DP_INSTANCE": name})


def nginx_config(tmp: Path, port: int, upstreams: list[str]) -> Path:
    """deploy/nginx.conf with its upstream servers and listen port swapped for these, inside a
    main config whose pid, logs and temp files all live in tmp."""
    site = NGINX_CONF.read_text()
    servers = re.findall(r"^\s*server\s+app\d+:8000\b[^;]*;\n", site, flags=re.M)
    assert len(servers) >= 2, "deploy/nginx.conf should list the app instances (server appN:8000)"
    site = site.replace(servers[0], "".join(f"    server {u} max_fails=1 fail_timeout=30s;\n" for u in upstreams))
    for line in servers[1:]:
        site = site.replace(line, "")
    site, n = re.subn(r"listen\s+80\s*;", f"listen 127.0.0.1:{port};", site)
    assert n == 1, "deploy/nginx.conf should listen on port 80 once"
    (tmp / "site.conf").write_text(site)
    temp_paths = "".join(f"    {kind}_temp_path {tmp}/{kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = tmp / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\nerror_log {tmp}/error.log info;\npid {tmp}/nginx.pid;\n"
        + "events { worker_connections 256; }\n"
        + f"http {{\n    access_log {tmp}/access.log;\n{temp_paths}    include {tmp}/site.conf;\n}}\n")
    return main


@pytest.fixture(scope="module")
def cluster(redis_url, tmp_path_factory):
    """Instances a and b on the queue, nginx in front of both."""
    nginx = require("nginx")
    a = start_instance("a", redis_url)
    b = start_instance("b", redis_url)
    tmp = tmp_path_factory.mktemp("nginx")
    port = free_port()
    conf = nginx_config(tmp, port, [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"])
    check = subprocess.run([nginx, "-t", "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen([nginx, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf),
                             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(url + "/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        wait_for(up, 15, "nginx")
        yield {"a": a, "b": b, "nginx": url, "log": tmp / "error.log"}
    finally:
        proc.terminate()
        proc.wait(10)
        a.stop()
        b.stop()
        if ARTIFACTS.exists():
            shutil.copy(tmp / "error.log", ARTIFACTS / "nginx-error.log")


# ---- the tests ----

def test_nginx_serves_the_page_and_sticks_to_one_instance(cluster):
    nginx = cluster["nginx"]
    names = {instance_of(nginx) for _ in range(6)}
    assert len(names) == 1 and names <= {"a", "b"}, names  # ip_hash: one address, one instance
    page = requests.get(nginx + "/", timeout=5)
    assert page.ok and "<html" in page.text.lower()
    js = requests.get(nginx + "/vendor/socket.io.esm.min.js", timeout=5)
    assert js.ok and len(js.content) > 10_000


def test_broadcast_reaches_both_instances_and_a_stop_ends_only_its_own_runs(cluster, redis_url):
    nginx = cluster["nginx"]
    first = instance_of(nginx)                  # the instance nginx sends 127.0.0.1 to
    second = "b" if first == "a" else "a"
    direct_url = cluster[second].url
    via = Player(nginx, "via-nginx").connect()   # websocket through nginx -> first
    direct = Player(direct_url, "direct").connect()  # straight to the other instance
    try:
        via.play()
        direct.play()
        via.frames_after(0)
        direct.frames_after(0)
        assert runs_on(cluster[first].url) == 1, "the nginx client's run should be on the instance nginx picked"
        assert runs_on(direct_url) == 1

        # An operator message, published from outside through the queue, reaches both.
        text = "server restarting in 1 minute"
        sent = subprocess.run([sys.executable, "-m", "app.broadcast", text], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, env={**os.environ, "SOCKETIO_MESSAGE_QUEUE": redis_url})
        assert sent.returncode == 0, sent.stderr
        for player in (via, direct):
            wait_for(lambda: player.broadcasts, 10, f"the broadcast at {player.name}")
            assert player.broadcasts == [{"message": text}]

        # Stop the instance nginx picked: only its client's run ends, with the reason.
        seen = len(direct.frames)
        cluster[first].stop()  # SIGTERM
        assert cluster[first].proc.returncode == 0
        ended = wait_for(via.ended, 10, "the stopped instance's 'ended' status")
        assert ended[0]["run"] == "main"
        assert "stopping" in ended[0]["reason"] and "reconnect" in ended[0]["reason"], ended
        assert f"instance {first}" in ended[0]["reason"]
        late = direct.frames_after(seen, more=5)
        assert late[-1]["step"] > late[0]["step"], "the other instance's run should keep training"
        assert direct.ended() == []

        # The client reconnects (python-socketio does it by itself) through nginx, which now
        # sends it to the instance still up, and starts again there.
        wait_for(lambda: via.connects >= 2 and via.sio.connected, 20, "the reconnect through nginx")
        assert instance_of(nginx) == second
        seen_via = len(via.frames)
        via.play()
        again = via.frames_after(seen_via)
        assert again[0]["step"] == 0 or again[-1]["step"] > again[0]["step"]
        assert runs_on(direct_url) == 2
        assert direct.frames_after(len(direct.frames), more=3)
    finally:
        via.close()
        direct.close()


def test_gunicorn_instance_ends_its_runs_on_sigterm(redis_url, tmp_path):
    """The image's server: gunicorn with deploy/gunicorn.conf.py, on the queue."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DP_HOST": "127.0.0.1", "DP_PORT": str(port), "DP_INSTANCE": "g",
           "DP_THREADS": "8", "DP_GRACEFUL_TIMEOUT": "2", "SOCKETIO_MESSAGE_QUEUE": redis_url,
           "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path / "gunicorn.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONF), "app.wsgi:app"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    player = None
    try:
        def up():
            try:
                return requests.get(url + "/healthz", timeout=1).json()["instance"] == "g"
            except requests.RequestException:
                return proc.poll() is not None and pytest.fail((tmp_path / "gunicorn.log").read_text())

        wait_for(up, 40, "gunicorn")
        player = Player(url, "gunicorn").connect()
        player.play()
        player.frames_after(0)
        t = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        ended = wait_for(player.ended, 10, "the 'ended' status from gunicorn")
        assert "instance g stopping" in ended[0]["reason"], ended
        assert proc.wait(15) == 0
        assert time.monotonic() - t < 10, "gunicorn should stop within docker's default 10 s"
    finally:
        if player is not None:
            player.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        if ARTIFACTS.exists():
            shutil.copy(tmp_path / "gunicorn.log", ARTIFACTS / "gunicorn.log")


def test_compose_file_matches_nginx_conf():
    """deploy/docker-compose.yml and deploy/nginx.conf name the same instances, and every
    instance is single-process on the shared queue (text checks: no YAML parser needed)."""
    compose = (ROOT / "deploy" / "docker-compose.yml").read_text()
    upstream = re.findall(r"^\s*server\s+(app\d+):8000\b", NGINX_CONF.read_text(), flags=re.M)
    services = re.findall(r"^  (app\d+):\s*$", compose, flags=re.M)
    assert len(upstream) >= 3 and upstream == services, (upstream, services)
    for name in services:
        assert re.search(rf"^      DP_INSTANCE: {name}\s*$", compose, flags=re.M), name
    assert re.search(r"^\s*SOCKETIO_MESSAGE_QUEUE: redis://redis:6379/0\s*$", compose, flags=re.M)
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf" in compose
    assert re.search(r'"127\.0\.0\.1:\d+:80"', compose), "nginx should publish on loopback by default"
    assert "ip_hash;" in NGINX_CONF.read_text()
    gunicorn = GUNICORN_CONF.read_text()
    assert re.search(r"^workers = 1$", gunicorn, flags=re.M)
