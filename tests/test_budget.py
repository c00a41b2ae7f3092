"""One cost budget for runs, sweeps and experiments (app/budget.py, model_server/costs.py),
and lesson work through the shared trainer's turns (app/scheduler.py)."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from app import create_app, socketio_of
from model_server.config import parse_config
from model_server.costs import experiment_cost, run_cost
from model_server.run import Run
from test_socket import Client

WIDE = {"data": {"dataset": "circle", "n_points": 2000}, "model": {"hidden": [64] * 6, "p": [0.5] * 6},
        "train": {"batch_size": 250}}
BIG_CNN = {"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [16] * 3, "p": [0.3] * 3},
           "train": {"batch_size": 898}}


def client_of(app, token: str):
    return socketio_of(app).test_client(app, auth={"token": token})


def call(client, event, payload):
    return client.emit(event, payload, callback=True)


@pytest.mark.parametrize("config", [{}, WIDE, {"data": {"dataset": "digits"},
                                                "model": {"kind": "cnn", "hidden": [8, 8], "p": [0.2, 0.2]}}])
def test_a_runs_estimate_covers_the_tensors_it_really_holds(one_thread, config):
    cfg = parse_config(config)
    run = Run(cfg)
    run.step(3)
    run.frame(extras=True)
    b = run.bucket
    held = sum(t.numel() * t.element_size() for t in vars(b.store).values() if isinstance(t, torch.Tensor)) / b.store.cap
    held += sum(t.numel() * t.element_size() for pre, mask, out in b.records.by_step[b.steps_taken - 1][0]
                for t in (pre, mask, out) if t is not None)
    estimate = run_cost(cfg).bytes
    assert held <= estimate <= 20 * held + 2**20, (held, estimate)


def test_a_run_whose_step_is_too_heavy_is_refused_naming_the_batch_that_fits(sio):
    ack = call(sio, "configure", {"config": BIG_CNN})
    assert ack["ok"] is False
    e = ack["error"]
    assert e["field"] == "train.batch_size" and e["received"] == 898 and "DP_MAX_RUN_STEP_MACS" in e["message"]
    most = int(e["allowed"].split("..")[1].split()[0])
    assert 50 < most < 898
    assert call(sio, "configure", {"config": {**BIG_CNN, "train": {"batch_size": most}}})["ok"]


def test_an_address_budget_refuses_more_and_is_given_back_when_runs_go():
    app = create_app({"limits": {"max_bytes_per_address": 60 * 2**20}})
    clients = [client_of(app, f"budget-token-{i}") for i in range(3)]
    held = []
    for c in clients:
        for r in range(3):
            ack = call(c, "configure", {"run": f"r{r}", "config": WIDE})
            if not ack["ok"]:
                assert ack["error"]["field"] == "run" and "DP_MAX_BYTES_PER_ADDRESS" in ack["error"]["message"]
                break
            held.append((c, f"r{r}"))
        else:
            continue
        break
    assert 1 <= len(held) < 9  # refused before the third client's runs
    c, run = held[0]
    assert call(c, "close", {"run": run})["ok"]  # its bytes come back: one more fits
    assert call(clients[-1], "configure", {"run": "again", "config": WIDE})["ok"]
    for c in clients:
        c.disconnect()
    registry = app.extensions["socketio"].server.namespace_handlers["/"].registry
    assert registry.budget.bytes == pytest.approx(0, abs=1) and registry.budget.by_address == {}


def test_an_experiment_too_big_by_itself_is_refused_naming_its_parameter(sio):
    assert call(sio, "configure", {"config": WIDE})["ok"]
    params = {"passes": 4096, "examples": 256}
    assert experiment_cost("inverted_scaling", parse_config(WIDE), params).bytes > 128 * 2**20
    ack = call(sio, "experiment", {"name": "inverted_scaling", "params": params})
    assert ack["ok"] is False and ack["error"]["field"] == "params.passes"
    assert "DP_MAX_JOB_BYTES" in ack["error"]["message"] and ack["error"]["received"] == 4096
    assert call(sio, "experiment", {"name": "inverted_scaling", "params": {"passes": 256}})["ok"]


def test_jobs_past_max_jobs_are_told_to_retry_and_the_page_would_get_through():
    app = create_app({"limits": {"max_jobs": 1}})
    a, b = client_of(app, "jobs-token-a"), client_of(app, "jobs-token-b")
    for c in (a, b):
        assert call(c, "configure", {"config": WIDE})["ok"]
    registry = app.extensions["socketio"].server.namespace_handlers["/"].registry
    gate, release = threading.Event(), threading.Event()

    def held_job():  # a job that stays in its turns until told
        def work(_):
            gate.set()
            release.wait(10)
        registry.trainer.job(work)
    t = threading.Thread(target=held_job)
    t.start()
    assert gate.wait(10)
    ack = call(b, "experiment", {"name": "train_vs_eval"})
    assert ack["ok"] is False and ack["error"]["field"] == "server" and ack["retry_after_s"] > 0
    release.set()
    t.join(10)
    assert call(b, "experiment", {"name": "train_vs_eval"})["ok"]  # the retry gets through
    a.disconnect()
    b.disconnect()


def test_lesson_jobs_take_turns_with_training_on_the_one_trainer(live_server):
    """A bystander plays at full speed while another visitor's experiments and sweep
    steps run back to back: its frames keep coming (the goal of 20 frames/s lives in
    bench/abuse.py; here: no stall), and the lesson work gets done."""
    bystander, busy = Client(live_server.url, "bystander-1"), Client(live_server.url, "lessons-1")
    try:
        assert bystander.call("configure", {"config": {}})["ok"] and bystander.call("play")["ok"]
        assert busy.call("configure", {"config": WIDE})["ok"]
        assert busy.call("sweep", {"action": "start"})["ok"]
        time.sleep(1.0)
        start, t0 = len(bystander.frames), time.monotonic()
        done = 0
        while time.monotonic() - t0 < 6:
            ok1 = busy.call("experiment", {"name": "inverted_scaling", "params": {"passes": 1024, "examples": 16}})["ok"]
            ok2 = busy.call("sweep", {"action": "step", "steps": 100})["ok"]
            done += ok1 + ok2
        arrivals = bystander.arrivals[start:]
        gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
        assert done >= 4
        assert len(arrivals) / (time.monotonic() - t0) >= 5 and max(gaps) < 2.0, (len(arrivals), max(gaps))
    finally:
        bystander.close()
        busy.close()


def test_lesson_work_stops_at_its_next_checkpoint_when_its_tab_closes():
    """An experiment whose visitor left kept computing to its end, holding a job slot and
    the trainer's turns for an answer nobody would read. It now stops at its next
    checkpoint, and the slot is free for the next visitor at once."""
    from app.errors import JobCancelled
    from app.lessons import as_job
    from model_server.costs import Cost
    from model_server.pacing import checkpoint

    app = create_app({"limits": {"max_jobs": 1}})
    a, b = client_of(app, "cancel-token-a"), client_of(app, "cancel-token-b")
    registry = app.extensions["socketio"].server.namespace_handlers["/"].registry
    session = next(s for s in registry.sessions.values() if s.token == "cancel-token-a")
    assert call(b, "configure", {"config": {}})["ok"]
    started, checkpoints, outcome = threading.Event(), [0], []

    def work(_):  # lesson work that would go on for good: only a cancel ends it
        started.set()
        while True:
            checkpoints[0] += 1
            checkpoint()

    def run():
        try:
            as_job(session, Cost(0, 0), "this experiment", "params.passes", 1, work)
        except JobCancelled as e:
            outcome.append(e)
    t = threading.Thread(target=run)
    t.start()
    assert started.wait(10)
    ack = call(b, "experiment", {"name": "train_vs_eval"})  # the one job slot is taken
    assert ack["ok"] is False and ack["retry_after_s"] > 0
    a.disconnect()  # the tab closes: its session is closed
    t.join(30)
    assert not t.is_alive() and len(outcome) == 1 and checkpoints[0] > 0
    assert call(b, "experiment", {"name": "train_vs_eval"})["ok"]  # the slot is free again
    b.disconnect()
