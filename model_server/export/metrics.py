"""A run's recorded numbers as files: one row per test evaluation, with the settings
(p, learning rate, mode) its step trained with."""
from __future__ import annotations

import csv
import io
import json

from ..runstate import FrozenRun, settings_at

HISTORY_FIELDS = ("step", "train_loss", "test_loss", "test_acc")
SETTINGS_FIELDS = ("p", "lr", "mode")


def metrics_rows(run: FrozenRun) -> list[dict]:
    """One row per test evaluation, with the settings its step trained with."""
    rows = []
    for point in run.history:
        row = {k: point.get(k) for k in HISTORY_FIELDS}
        settings = settings_at(run.changes, point["step"]) if point.get("step") else None
        if settings is not None:
            _, p, lr, mode = settings
            row.update(p=" ".join(f"{x:g}" for x in p), lr=lr, mode=mode)
        rows.append(row)
    return rows


def metrics_csv(run: FrozenRun) -> str:
    """step,train_loss,test_loss,test_acc,p,lr,mode: one row per test evaluation (empty =
    not a number); p per layer, space-separated, as the step trained with."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HISTORY_FIELDS + SETTINGS_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in metrics_rows(run):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def metrics_json(run: FrozenRun) -> str:
    """The config, the step reached and the history, as one JSON document."""
    return json.dumps({"config": run.cfg.model_dump(), "step": run.step_count,
                       "fields": list(HISTORY_FIELDS + SETTINGS_FIELDS), "history": metrics_rows(run),
                       "changes": [{"from_step": first, "p": list(p), "lr": lr, "mode": mode}
                                   for first, p, lr, mode in run.changes]}, indent=1)
