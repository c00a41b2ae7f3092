"""The versions requirements.txt pins, and the check that a library whose internals a
module uses is that version (one such module per library: model_server/torch_internals.py,
app/gunicorn_worker.py, app/socketio_internals.py).

    check_pinned("torch", torch.__version__, "model_server/torch_internals.py")
"""
from __future__ import annotations

import re
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent.parent / "requirements.txt"


def pinned_version(package: str, requirements: Path = REQUIREMENTS) -> str | None:
    """The version requirements.txt pins for package (`package==X`), or None."""
    if not requirements.exists():
        return None
    m = re.search(rf"^{re.escape(package)}==([\w.]+)\s*(?:#.*)?$", requirements.read_text(), re.M)
    return m.group(1) if m else None


def check_pinned(package: str, installed: str, user: str, pinned: str | None = None) -> None:
    """SystemExit, naming both versions, unless the installed package is the pinned one
    (a local build tag, "+cpu", does not count)."""
    pinned = pinned if pinned is not None else pinned_version(package)
    if installed.split("+", 1)[0] != pinned:
        raise SystemExit(
            f"{user} uses internals of {package} and was written for {package}=={pinned} (requirements.txt), "
            f"but {package} {installed} is installed: install {package}=={pinned}, or check {user} against "
            f"{installed} and pin that version")
