"""The page holds no copy of a server table: every range, limit and lesson parameter it
needs comes from the served schema (GET /schema.json, inline in every page), and it
never recognises a refusal by the words of its message. (A copy drifted before: the
compare page capped steps at 100,000 while the server allowed 200,000.)"""
from __future__ import annotations

import re
from pathlib import Path

from app.schema import document
from app.settings import Serving
from model_server import Limits

JS = sorted((Path(__file__).resolve().parent.parent / "static" / "js").rglob("*.js"))
# a ceiling written into the page as a whole number (the kind of copy that drifted: a
# step limit, a count of thinned networks); the lessons' own slider ranges for p are
# choices of what to show within the server's 0..1, not copies
CEILING = re.compile(r"\b(?:max|maximum)\s*:\s*(\d+)\b(?!\.)")


def numbers(node) -> set[float]:
    """Every bound and limit the schema states (minimum, maximum, and the limits' values)."""
    found: set[float] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("minimum", "maximum", "exclusiveMaximum") and isinstance(v, (int, float)):
                found.add(float(v))
            found |= numbers(v)
    elif isinstance(node, list):
        for v in node:
            found |= numbers(v)
    return found


def test_no_range_in_the_page_repeats_one_of_the_servers():
    doc = document(Limits(), Serving())
    served = numbers(doc["experiments"]) | {float(v) for v in doc["limits"].values() if isinstance(v, (int, float))}
    served = {v for v in served if v >= 10 and v == int(v)}
    copies = [(path.name, m.group(0)) for path in JS for m in CEILING.finditer(path.read_text())
              if float(m.group(1)) in served]
    assert copies == [], f"ranges written into the page that the schema serves: {copies}"


def test_the_page_never_reads_a_refusal_by_its_words():
    pattern = re.compile(r"\.test\([^)]*message|message\.(?:includes|match|startsWith)\(")
    found = [(path.name, m.group(0)) for path in JS for m in pattern.finditer(path.read_text())]
    assert found == [], found


# a count of runs compared with a whole number (`runs.length >= 3`), or the counts allowed
# listed (`['2', '3']`)
RUN_COUNT = re.compile(r"\bruns(?:\.length)?\s*(?:[<>]=?|===?)\s*'?(\d+)|\[\s*'\d+'\s*,\s*'(\d+)'\s*\]")


def test_no_run_cap_of_the_server_is_written_into_the_page():
    """The runs one visitor may hold is the server's (Serving.max_runs_per_client, served
    as serving.max_runs_per_client); compare.js once capped its runs at a copy of it."""
    doc = document(Limits(), Serving(max_runs_per_client=5))
    assert doc["serving"] == {"max_runs_per_client": 5}
    cap = Serving().max_runs_per_client
    copies = [(path.name, m.group(0)) for path in JS for m in RUN_COUNT.finditer(path.read_text())
              if int(m.group(1) or m.group(2)) == cap]
    assert copies == [], f"the server's run cap written into the page: {copies}"
    assert "SCHEMA.serving.max_runs_per_client" in (JS[0].parent / "compare.js").read_text()


def test_the_schema_serves_what_the_lesson_views_read():
    doc = document(Limits(), Serving())
    thinned = doc["experiments"]["mc_dropout"]["properties"]["thinned"]
    assert (thinned["minimum"], thinned["maximum"]) == (1, 64)
    assert doc["limits"]["max_steps"] == Limits().max_steps


# the words a server refusal starts with (a Busy or JobsBusy raised in app/): the page
# reads a refusal by its field and retry_after_s, never by its text, so none appears in it
REFUSAL = re.compile(r"\b(?:Job)?Busy\(f?\"([^\"{]{12,})")


def test_no_refusal_text_of_the_server_is_written_into_the_page():
    app_dir = Path(__file__).resolve().parent.parent / "app"
    words = {m.group(1).split(":")[0].strip() for path in app_dir.rglob("*.py") for m in REFUSAL.finditer(path.read_text())}
    assert "too many runs" in words  # (the copy that was removed: common.js matched it)
    found = [(path.name, w) for path in JS for w in words if w.lower() in path.read_text().lower()]
    assert found == [], found
