"""The 'export' socket event: a run as code, metrics or weights, in the acknowledgement.

    emit('export', {run: 'main', what: 'code' | 'metrics_csv' | 'metrics_json' | 'weights'})
    -> {ok: true, run, what, filename, mime, data}   data: text, or bytes for 'weights'

The content comes from model_server.export; this module only validates, picks the run
and names the file. Weights are safetensors (never pickle).
"""
from __future__ import annotations

from typing import Any, Literal

from model_server import export
from model_server.config import parse
from model_server.runstate import RunState

from .events import RunRef
from .sessions import Session

DEFAULT_STEPS = 2000  # the exported script trains this long when the run has not trained yet


class Export(RunRef):
    what: Literal["code", "metrics_csv", "metrics_json", "weights"]


FORMATS = {  # what -> (file suffix, MIME type)
    "code": (".py", "text/x-python"),
    "metrics_csv": ("-metrics.csv", "text/csv"),
    "metrics_json": ("-metrics.json", "application/json"),
    "weights": (".safetensors", "application/octet-stream"),
}


def export_run(session: Session, payload: Any) -> dict:
    msg = parse(Export, payload)
    slot = session.slot(msg.run)
    run = slot.look(RunState.frozen)  # a copy at one step: training goes on meanwhile
    step = run.step_count
    stem = f"dropout-{run.cfg.data.dataset}-{run.cfg.model.kind}-step{step}"
    if msg.what == "code":
        data = export.script(run.cfg, steps=step or DEFAULT_STEPS, filename=stem.replace("-", "_") + ".py",
                             changes=run.changes)
    elif msg.what == "metrics_csv":
        data = export.metrics_csv(run)
    elif msg.what == "metrics_json":
        data = export.metrics_json(run)
    else:
        data = export.weights(run)
    suffix, mime = FORMATS[msg.what]
    filename = stem.replace("-", "_") + ".py" if msg.what == "code" else stem + suffix
    return {"run": msg.run, "what": msg.what, "step": step, "filename": filename, "mime": mime, "data": data}


HANDLERS = {"export": export_run}  # taken by the Playground namespace at its construction
