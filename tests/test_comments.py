"""Comments say why, not how long: no measured time in a comment or docstring of app/,
model_server/ or static/js/. Such figures go stale as the code and the machine change
(issue 25); docs/benchmarks.md keeps them, dated, and a comment points there."""
from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP: set[str] = set()
NUMBER = r"(?<![\w.])\d[\d,]*(?:\.\d+)?"
DECIMAL = r"(?<![\w.])\d+\.\d+"
# a number of milliseconds or microseconds ("0.3 ms", "~15 us", "16 ms -> 3.5 ms"), a
# rough number of seconds ("~0.2 s"), or seconds with decimals ("0.4 s"): what a
# measurement reads like; a setting's whole seconds ("within 10 s") are definitions
TIME = re.compile(rf"{NUMBER}\s?(?:ms|us|µs)\b|~\s?{NUMBER}\s?s\b|{DECIMAL}\s?s\b")


def python_texts(path: Path):
    """(line, text) of every comment and docstring of a Python file."""
    source = path.read_text()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            yield tok.start[0], tok.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                yield node.body[0].lineno, doc


def js_texts(path: Path):
    """(line, text) of every // and /* */ comment of a JS file, skipping string and
    template literals (a regex literal holding a quote would confuse it; the page has none
    that matter here)."""
    src, i = path.read_text(), 0
    n = len(src)
    while i < n:
        c = src[i]
        if c in "'\"`":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            i = j + 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            yield src.count("\n", 0, i) + 1, src[i:j]
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            yield src.count("\n", 0, i) + 1, src[i:j]
            i = j
        else:
            i += 1


def sources():
    for folder in ("app", "model_server"):
        yield from sorted((ROOT / folder).rglob("*.py"))
    yield from sorted(p for p in (ROOT / "static" / "js").rglob("*.js") if "node_modules" not in p.parts)


def measured_times() -> list[str]:
    found = []
    for path in sources():
        rel = path.relative_to(ROOT).as_posix()
        if rel in SKIP:
            continue
        texts = python_texts(path) if path.suffix == ".py" else js_texts(path)
        for line, text in texts:
            for m in TIME.finditer(text):
                found.append(f"{rel}:{line}: {m.group(0)!r} in {text.strip()[:100]!r}")
    return found


def test_no_comment_or_docstring_states_a_measured_time():
    found = measured_times()
    assert not found, ("comments say why; measured figures go in docs/benchmarks.md "
                       "(dated), and the comment points there:\n" + "\n".join(found))


def test_the_pattern_catches_the_figures_it_is_for():
    caught = ["costs ~2 us a block", "went from ~0.3 ms to ~0.1 ms", "(~15-20 ms here)",
              "costs ~0.2 s here", "held everyone up for 0.4 s", "took 2.5ms",
              "~15 µs a call", "(16 ms -> 3.5 ms)", "~1,200 ms"]
    kept = ["within settings.header_timeout_s", "a request within 10 s in all",
            "LOSS_EVERY_MS = 500", "steps/s", "64 * 32 * 32 values", "items", "1.5e8 macs"]
    assert [t for t in caught if not TIME.search(t)] == []
    assert [t for t in kept if TIME.search(t)] == []


def test_the_readers_find_comments_and_docstrings(tmp_path):
    py = tmp_path / "a.py"
    py.write_text('"""Module, 1 ms."""\nx = "3 ms"  # took 2 ms\n\n\ndef f():\n    """4 us."""\n')
    assert [t for _, t in python_texts(py) if TIME.search(t)] == ["# took 2 ms", "Module, 1 ms.", "4 us."]
    js = tmp_path / "a.js"
    js.write_text("const a = '5 ms // no'; // 6 ms\n/* 7 us\n */ const b = `8 ms`;\n")
    assert [t for _, t in js_texts(js) if TIME.search(t)] == ["// 6 ms", "/* 7 us\n */"]
