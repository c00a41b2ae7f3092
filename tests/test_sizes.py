"""Files with one job, of a size a reader can hold (issue 25): no module over 400 lines,
no class over 250, no function over 60, in app/ and model_server/ (tests and bench/
excluded); in static/js by module lines here and by function and class lines through
tests/js_sizes.mjs, which parses each module with acorn (a devDependency: `npm ci`)."""
from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE, MAX_CLASS, MAX_FUNCTION = 400, 250, 60
PYTHON = sorted(p for d in ("app", "model_server") for p in (ROOT / d).rglob("*.py"))
JS = sorted((ROOT / "static" / "js").rglob("*.js"))


def too_big(path: Path) -> list[str]:
    """What in one Python file is over its limit: 'path: what N lines'."""
    text = path.read_text()
    rel = path.relative_to(ROOT).as_posix()
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE:
        found.append(f"{rel}: module {lines} lines")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            n = node.end_lineno - start + 1
            limit = MAX_CLASS if isinstance(node, ast.ClassDef) else MAX_FUNCTION
            if n > limit:
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                found.append(f"{rel}:{node.lineno}: {kind} {node.name} {n} lines")
    return found


@pytest.mark.parametrize("path", PYTHON, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_sizes(path):
    assert not too_big(path)


@pytest.mark.parametrize("path", JS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_js_module_lines(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE, f"{path.relative_to(ROOT).as_posix()}: {lines} lines"


def test_js_functions_and_classes():
    """Every JS function (declaration, method, block-bodied arrow) within 60 lines and
    every class within 250, as acorn parses them."""
    out = subprocess.run(["node", str(ROOT / "tests" / "js_sizes.mjs")], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    found = [f"{f['file']}:{f['line']}: {f['kind']} {f['name']} {f['lines']} lines"
             for f in json.loads(out)]
    assert not found, "\n".join(found)
