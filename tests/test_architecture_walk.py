"""docs/architecture.md's slider walk names the files and functions the code runs: every
step's file exists, and every name the step quotes is found in that file (a renamed or
moved function makes the walk stale, and this test says where)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
STEP = re.compile(r"^\d+\. `([\w/.]+\.(?:py|js))`(.*)$")
NAME = re.compile(r"`([A-Za-z_][\w.]*)(?:\([^`]*\))?`")


def walk_steps() -> list[tuple[str, str]]:
    """(file, the step's text) for each numbered step of the walk, continuation lines joined."""
    text = DOC.read_text()
    section = text[text.index("## One p slider change"):]
    section = section[:section.index("\n## ", 3)]
    steps: list[list[str]] = []
    for line in section.splitlines():
        m = STEP.match(line)
        if m:
            steps.append([m.group(1), m.group(2)])
        elif steps and line.startswith("   ") and line.strip():
            steps[-1][1] += " " + line.strip()
    return [(f, t) for f, t in steps]


def test_the_walk_has_both_legs():
    steps = walk_steps()
    assert steps[0][0] == "static/js/controls.js"
    assert steps[-1][0] == "static/js/views/network_draw.js"
    assert any(f == "model_server/engine/rows.py" for f, _ in steps)


def test_every_step_names_a_file_that_exists_and_functions_in_it():
    stale = []
    for file, text in walk_steps():
        path = ROOT / file
        if not path.exists():
            stale.append(f"{file}: no such file")
            continue
        source = path.read_text()
        # the step's own names: those before the first other file it mentions
        own = re.split(r"`[\w/]+\.(?:py|js)`", text)[0]
        for name in NAME.findall(own):
            last = name.split(".")[-1]
            if name.islower() and "." not in name and "_" not in name and "(" not in name:
                continue   # a plain word: an event's or a field's name, not a function
            if len(last) > 2 and not re.search(rf"\b{re.escape(last)}\b", source):
                stale.append(f"{file}: {name}")
    assert not stale, stale
