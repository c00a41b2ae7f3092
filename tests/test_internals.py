"""Library internals live in one module per library, which refuses another version than
the pinned one (issue 25): torch's in model_server/torch_internals.py, gunicorn's in
app/gunicorn_worker.py (tests/test_hosting_serving.py checks that one)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from model_server.pins import check_pinned, pinned_version

ROOT = Path(__file__).resolve().parent.parent
CODE = [p for d in ("app", "model_server") for p in (ROOT / d).rglob("*.py")]


def test_torch_internals_are_used_in_one_module_only():
    private = re.compile(r"torch\._[a-z]\w*|torch\.ops\.aten")
    users = sorted({p.relative_to(ROOT).as_posix() for p in CODE if private.search(p.read_text())})
    assert users == ["model_server/torch_internals.py"], users


def test_another_torch_than_the_pinned_one_stops_start_up_naming_both():
    pinned = pinned_version("torch")
    assert pinned == "2.13.0"
    check_pinned("torch", pinned + "+cpu", "x")  # a local build of the pinned version is it
    with pytest.raises(SystemExit, match=r"torch==2\.13\.0 \(requirements.txt\), but torch 2\.14\.0 is installed"):
        check_pinned("torch", "2.14.0", "model_server/torch_internals.py")
    code = "import torch; torch.__version__ = '2.14.0'; import app.factory"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "torch==2.13.0" in done.stderr and "torch 2.14.0 is installed" in done.stderr
