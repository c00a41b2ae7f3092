"""Shared fixtures, each building on the one before (flaskr style):

    app -> http (Flask test client) -> sio (Flask-SocketIO test client)
    live_server -> a real `python -m app` process on a free loopback port
    browser -> headless system Chromium through Playwright; page -> a fresh tab
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app import create_app, socketio_of  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = ROOT / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread, as the server runs: tiny ops on 2 threads are slower here."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# The Flask-SocketIO test client never acknowledges a frame: with the server's 10 s
# acknowledgement timeout, every frame after the first waited for it (and a test waiting
# 10 s for that frame raced it). Here each frame counts as taken at once; the flow
# control itself is tested with real clients against a live server (test_public_server).
TEST_CLIENT_LIMITS = {"idle_timeout_s": 60, "ack_timeout_s": 0}


@pytest.fixture
def app():
    return create_app({"limits": TEST_CLIENT_LIMITS})


@pytest.fixture
def http(app):
    return app.test_client()


@pytest.fixture
def sio(app):
    client = socketio_of(app).test_client(app, auth={"token": "test-token-1"})
    yield client
    if client.is_connected():
        client.disconnect()


class LiveServer:
    """A real server process: `python -m app` with DP_* settings from env."""

    def __init__(self, env: dict | None = None, module: str = "app", argv: list[str] | None = None):
        """argv: the command after the interpreter (default: -m <module>)."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full = {**os.environ, "DP_PORT": str(self.port), "DP_HOST": "127.0.0.1",
                "PYTHONUNBUFFERED": "1", **(env or {})}
        self.log = open(ARTIFACTS.joinpath(f"server-{self.port}.log"), "w") if ARTIFACTS.exists() else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, *(argv or ["-m", module])], cwd=ROOT, env=full,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()
        # the process that serves (and trains): gunicorn's one worker, not its arbiter
        workers = psutil.Process(self.proc.pid).children() if argv == GUNICORN else []
        self.pid = workers[0].pid if workers else self.proc.pid
        self.log_path = Path(self.log.name) if self.log is not subprocess.DEVNULL else None

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become healthy")

    def stacks(self) -> str:
        """Every thread's stack in the server now (SIGUSR1: app/__main__.py), from its log."""
        if self.log_path is None or self.proc.poll() is not None or self.pid != self.proc.pid:
            return "(no log, or the server is not python -m app)"
        before = self.log_path.stat().st_size
        os.kill(self.pid, signal.SIGUSR1)
        size, deadline = before, time.monotonic() + 10
        while time.monotonic() < deadline:  # until the dump has stopped growing
            time.sleep(0.5)
            now = self.log_path.stat().st_size
            if now > before and now == size:
                break
            size = now
        return self.log_path.read_text(errors="replace")[before:][-30000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.log is not subprocess.DEVNULL:
            self.log.close()


# the Docker image's server command (its CMD), run from the checkout
GUNICORN = ["-m", "gunicorn", "--config", "deploy/gunicorn.conf.py", "app.wsgi:app"]


@contextmanager
def live(env: dict | None = None, server: str = "embedded"):
    """server: "embedded" (`python -m app`) or "gunicorn" (the image's server command)."""
    ARTIFACTS.mkdir(exist_ok=True)
    server = LiveServer(env, argv=GUNICORN if server == "gunicorn" else None)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def live_server():
    with live() as server:
        yield server


@pytest.fixture(scope="session")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (make test does)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.errors = errors
    yield tab
    context.close()
