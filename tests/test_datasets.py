"""model_server.datasets: the digits set is parsed once, however many configures ask for
it at once, and a run can never write into the copy every run shares."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from model_server import datasets, parse_config


def test_a_crowd_of_digits_configures_parses_the_set_once(monkeypatch):
    """30 configures of a digits run at once each parsed sklearn's CSV (tens of ms holding
    the interpreter each): a bystander's frames waited 0.7-0.9 s for all of them."""
    monkeypatch.setattr(datasets, "_DIGITS", [])
    calls = []
    real = datasets.load_digits
    gate = threading.Barrier(12)

    def counted():
        calls.append(1)
        return real()
    monkeypatch.setattr(datasets, "load_digits", counted)
    cfg = parse_config({"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [16], "p": [0.3]}}).data
    out = []

    def configure():
        gate.wait()
        out.append(datasets.make_dataset(cfg))
    threads = [threading.Thread(target=configure) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(calls) == 1 and len(out) == 12
    assert all(torch.equal(d.x_train, out[0].x_train) for d in out)
    # each run gets its own tensors; the shared arrays are read-only
    out[0].x_train[0].fill_(7.0)
    assert not torch.equal(out[0].x_train, out[1].x_train)
    x, _ = datasets._digits()
    with pytest.raises(ValueError):
        x[0, 0, 0, 0] = 1.0
    assert float(np.max(x)) <= 1.0
