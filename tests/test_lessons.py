"""The lessons' socket events ('experiment', 'sweep', app/lessons.py) through the
Flask-SocketIO test client, and the /lessons and /compare pages over HTTP."""
from __future__ import annotations

import re

import pytest

from app import lessons, socketio_of
from model_server.sweep import DEFAULT_PS

MOONS = {"data": {"dataset": "moons", "n_points": 200, "noise": 0.2},
         "model": {"hidden": [16, 16], "p": [0.5, 0.5]}, "train": {"batch_size": 20, "device": "cpu"}}
CNN = {"data": {"dataset": "digits"},
       "model": {"kind": "cnn", "hidden": [4], "p": [0.5], "dropout_kind": "dropout2d"},
       "train": {"batch_size": 16, "device": "cpu"}}


pytestmark = pytest.mark.usefixtures("one_thread")


def call(sio, event, payload):
    return sio.emit(event, payload, callback=True)


@pytest.fixture
def mlp(sio):
    """A trained-a-little MLP run 'main' (paused)."""
    assert call(sio, "configure", {"config": MOONS})["ok"]
    assert call(sio, "step", {"n": 50})["step"] == 50
    return sio


def namespace_of(app):
    return socketio_of(app).server.namespace_handlers["/"]


# ---- experiment: good payloads ---------------------------------------------------------------
@pytest.mark.parametrize("name, params, keys", [
    ("train_vs_eval", {"passes": 12, "example": 3}, {"train", "eval", "train_std", "eval_std"}),
    ("forgot_eval_boundary", {"grids": 2, "size": 16}, {"train", "eval", "flicker", "train_vs_eval"}),
    ("inverted_scaling", {"layer": 1, "passes": 200}, {"mean_inverted", "mean_no_rescale", "kept_scale"}),
    ("mc_dropout", {"thinned": 4, "size": 12}, {"boundaries", "mean", "eval", "std", "test_loss"}),
    ("batchnorm_shift", {"passes": 2}, {"blocks", "batchnorm"}),
    ("myths", {}, {"params", "params_without_dropout", "sizes_train"}),
    ("mc_dropout", {"thinned": 4, "size": 8, "draws": 3}, {"draws", "mean", "single_vs_mean"}),
    ("placement_seeds", {"seeds": 2, "steps": 20}, {"after", "before", "diff", "verdict"}),
])
def test_each_experiment_answers_with_its_result_and_leaves_the_run_alone(mlp, name, params, keys):
    ack = call(mlp, "experiment", {"name": name, "params": params})
    assert ack["ok"] is True, ack
    assert ack["run"] == "main" and ack["name"] == name and ack["step"] == 50
    assert keys <= set(ack["result"])
    # the run was looked at, not trained
    assert call(mlp, "step", {"n": 1})["step"] == 51


def test_experiment_results_carry_the_lesson_claims(mlp):
    r = call(mlp, "experiment", {"name": "train_vs_eval", "params": {"passes": 20}})["result"]
    assert r["train_distinct"] > 1 and r["eval_distinct"] == 1 and r["eval_std"] == 0.0
    r = call(mlp, "experiment", {"name": "inverted_scaling", "params": {"passes": 2000}})["result"]
    assert r["kept_scale"] == pytest.approx(2.0) and r["scale_no_rescale"] == pytest.approx(0.5, abs=0.03)
    r = call(mlp, "experiment", {"name": "myths"})["result"]
    assert r["params"] == r["params_without_dropout"]
    r = call(mlp, "experiment", {"name": "forgot_eval_boundary", "params": {"size": 8}})["result"]
    assert len(r["eval"]) == 8 and len(r["train"]) == 3  # defaults: 3 grids


def test_placement_seeds_reads_only_the_config(mlp):
    """It trains copies of its own from the run's config: the run is not trained."""
    ack = call(mlp, "experiment", {"name": "placement_seeds", "params": {"seeds": 3, "steps": 30}})
    assert ack["ok"] is True and ack["step"] == 50
    r = ack["result"]
    assert r["verdict"] == "identical" and r["seeds"] == [0, 1, 2] and r["activation"] == "relu"
    assert call(mlp, "step", {"n": 1})["step"] == 51
    again = call(mlp, "experiment", {"name": "placement_seeds", "params": {"seeds": 3, "steps": 30}})
    assert again["result"] == r  # the same config, seeds and steps: the same measurement


def test_experiment_on_a_named_run_and_the_cnn(sio):
    assert call(sio, "configure", {"run": "cnn", "config": CNN})["ok"]
    ack = call(sio, "experiment", {"run": "cnn", "name": "spatial_dropout", "params": {"example": 5, "p": 0.5, "seed": 3}})
    assert ack["ok"] is True and ack["run"] == "cnn"
    r = ack["result"]
    assert r["example"] == 5 and r["p"] == 0.5 and len(r["input"]) == 4
    assert len(r["dropout2d"]["channel_kept"]) == 4
    again = call(sio, "experiment", {"run": "cnn", "name": "spatial_dropout", "params": {"example": 5, "p": 0.5, "seed": 3}})
    assert again["result"] == r  # a seed repeats its masks


# ---- experiment: bad payloads name the field, the range and the value --------------------
@pytest.mark.parametrize("payload, field, words, allowed", [
    ({"name": "no_such"}, "name", "but got 'no_such'", "mc_dropout"),
    ({}, "name", "required", "required"),
    ({"name": "train_vs_eval", "params": {"passes": 500}}, "params.passes", "between 1 and 100, but got 500", "1..100"),
    ({"name": "mc_dropout", "params": {"thinned": 0}}, "params.thinned", "between 1 and 64, but got 0", "1..64"),
    ({"name": "mc_dropout", "params": {"thinned": "many"}}, "params.thinned", "but got 'many'", "int"),
    ({"name": "mc_dropout", "params": {"colour": "red"}}, "params.colour", "unknown field", "no such field"),
    ({"name": "spatial_dropout", "params": {"p": 1.5}}, "params.p", "between 0 and 1, but got 1.5", "0..1"),
    ({"name": "inverted_scaling", "params": {"layer": 7}}, "params.layer", "between 0 and 1, but got 7", "0..1"),
    ({"name": "train_vs_eval", "params": {"example": 5000}}, "params.example", "but got 5000", "0..99"),
    ({"name": "spatial_dropout"}, "name", "needs the CNN", "fits this run"),
    ({"name": "mc_dropout", "params": {"size": 200}}, "params.size", "between 2 and 64, but got 200", "2..64"),
    ({"name": "mc_dropout", "params": {"draws": 17}}, "params.draws", "between 1 and 16, but got 17", "1..16"),
    ({"name": "placement_seeds", "params": {"seeds": 9}}, "params.seeds", "between 2 and 8, but got 9", "2..8"),
    ({"name": "placement_seeds", "params": {"steps": 6000}}, "params.steps", "between 1 and 5000, but got 6000", "1..5000"),
    ({"name": "mc_dropout", "params": {"thinned": 64, "size": 48}}, "params.thinned", "at most 65536, but got 64 x 48 x 48",
     "thinned x size x size <= 65536"),
    ({"name": "myths", "params": [1, 2]}, "params", "valid dictionary", "object"),
    ({"name": "myths", "run": "other"}, "run", "no run 'other'", ""),
    ({"name": "myths", "run": "bad id!"}, "run", "pattern", ""),
    ("myths", "payload", "has to be an object", "object"),
])
def test_bad_experiment_payloads_get_structured_errors(mlp, payload, field, words, allowed):
    ack = call(mlp, "experiment", payload)
    assert ack["ok"] is False
    fields = [e["field"] for e in ack["errors"]]
    assert field in fields, ack
    entry = ack["errors"][fields.index(field)]
    assert words in entry["message"]
    assert allowed in entry["allowed"]
    assert mlp.is_connected()
    assert call(mlp, "experiment", {"name": "myths"})["ok"]  # and the session carries on


def test_experiment_without_a_run_says_to_configure(sio):
    ack = call(sio, "experiment", {"name": "myths"})
    assert ack["ok"] is False and ack["error"]["field"] == "run" and "configure" in ack["error"]["message"]


# ---- preset experiments: no run needed --------------------------------------------------------
@pytest.mark.parametrize("name, params, keys", [
    ("data_size", {"sizes": [20, 40], "steps": 10, "seeds": 2}, {"sizes", "none", "dropout", "benefit", "trend"}),
    ("alternatives", {"steps": 10, "seeds": 2}, {"names", "runs", "best", "weight_decay", "input_noise"}),
    ("noise_injection", {"steps": 10, "seeds": 2, "p": 0.3}, {"theory", "dropout", "gauss", "runs", "gauss_vs_dropout"}),
])
def test_preset_experiments_answer_without_a_run(sio, name, params, keys):
    ack = call(sio, "experiment", {"name": name, "params": params})
    assert ack["ok"] is True, ack
    assert ack["run"] is None and ack["step"] is None and ack["name"] == name
    assert keys <= set(ack["result"])
    assert ack["result"]["seeds"] == [0, 1]


@pytest.mark.parametrize("payload, field, words, allowed", [
    ({"name": "data_size", "params": {"sizes": [50]}}, "params.sizes", "between 2 and 8, but got 1", "2..8"),
    ({"name": "data_size", "params": {"sizes": [50, 5000]}}, "params.sizes.1", "training points has to be between 10 and 2000, but got 5000", "10..2000"),
    ({"name": "data_size", "params": {"sizes": [50, 50]}}, "params.sizes", "counting different sizes, but got 1", "2..8"),
    ({"name": "data_size", "params": {"sizes": "all"}}, "params.sizes", "valid list", "list"),
    ({"name": "data_size", "params": {"seeds": 5}}, "params.steps", "between 1 and 466, as copies x steps", "1..466"),
    ({"name": "data_size", "params": {"sizes": [50, 100, 150, 200, 250, 300, 350, 400], "seeds": 6, "steps": 1}},
     "params.seeds", "seeds has to be between 2 and 4, but got 6", "2..4"),
    ({"name": "data_size", "params": {"p": 1.0}}, "params.p", "dropout probability has to be between 0.05 and 0.9, but got 1.0", "0.05..0.9"),
    ({"name": "alternatives", "params": {"weight_decay": 0.5}}, "params.weight_decay", "weight decay has to be between 0 and 0.1, but got 0.5", "0..0.1"),
    ({"name": "alternatives", "params": {"input_noise": -0.1}}, "params.input_noise", "input noise has to be between 0 and 1, but got -0.1", "0..1"),
    ({"name": "alternatives", "params": {"steps": 0}}, "params.steps", "steps has to be between 1 and 2000, but got 0", "1..2000"),
    ({"name": "noise_injection", "params": {"seeds": 9}}, "params.seeds", "seeds has to be between 2 and 8, but got 9", "2..8"),
    ({"name": "noise_injection", "params": {"seed": -3}}, "params.seed", "seed has to be between 0 and", "0.."),
    ({"name": "noise_injection", "params": {"sigma": 1}}, "params.sigma", "unknown field", "no such field"),
    ({"name": "noise_injection", "params": {"steps": "many"}}, "params.steps", "but got 'many'", "int"),
])
def test_bad_preset_experiment_params_get_structured_errors(sio, payload, field, words, allowed):
    ack = call(sio, "experiment", payload)
    assert ack["ok"] is False
    fields = [e["field"] for e in ack["errors"]]
    assert field in fields, ack
    entry = ack["errors"][fields.index(field)]
    assert words in entry["message"], entry
    assert allowed in entry["allowed"], entry
    assert sio.is_connected()


# ---- sweep ----------------------------------------------------------------------------------
def test_sweep_start_step_result(sio):
    ack = call(sio, "sweep", {"action": "start"})
    assert ack["ok"] is True and ack["action"] == "start"
    s = ack["sweep"]
    assert s["ps"] == list(DEFAULT_PS) and s["step"] == 0 and len(s["test_loss"]) == len(DEFAULT_PS)
    s = call(sio, "sweep", {"action": "step", "steps": 30})["sweep"]
    assert s["step"] == 30 and s["curve"]["step"] == [0, 10, 20, 30]
    s = call(sio, "sweep", {"action": "step"})["sweep"]
    assert s["step"] == 50  # 20 steps by default
    s = call(sio, "sweep", {"action": "result", "boundaries": True})["sweep"]
    assert s["step"] == 50 and len(s["boundaries"]) == len(DEFAULT_PS)
    # a new start replaces the sweep
    s = call(sio, "sweep", {"action": "start", "ps": [0, 0.5, 1], "every": 5})["sweep"]
    assert s["ps"] == [0, 0.5, 1] and s["step"] == 0


def test_sweep_with_p_one_learns_only_the_class_balance(sio):
    call(sio, "sweep", {"action": "start", "ps": [0.0, 1.0]})
    for _ in range(5):
        s = call(sio, "sweep", {"action": "step", "steps": 100})["sweep"]
    assert s["step"] == 500
    assert s["train_loss"][1] == pytest.approx(0.693, abs=0.02)   # the label entropy, about log 2
    assert s["train_loss"][0] < 0.2


@pytest.mark.parametrize("payload, field, words, allowed", [
    ({"action": "go"}, "action", "but got 'go'", "start, step, result"),
    ({}, "action", "required", "start, step, result"),
    ({"action": "start", "ps": [0.5, 1.5]}, "ps.1", "between 0 and 1, but got 1.5", "0..1"),
    ({"action": "start", "ps": []}, "ps", "between 1 and 16, but got 0", "1..16"),
    ({"action": "start", "ps": [0.1] * 17}, "ps", "but got 17", "1..16"),
    ({"action": "start", "ps": "0.5"}, "ps", "valid list", "list"),
    ({"action": "start", "every": 0}, "every", "between 1 and 100, but got 0", "1..100"),
    ({"action": "step", "steps": 0}, "steps", "between 1 and 200, but got 0", "1..200"),
    ({"action": "step", "steps": 5000}, "steps", "but got 5000", "1..200"),
    ({"action": "step", "steps": 2.5}, "steps", "but got 2.5", "int"),
    ({"action": "result", "colour": 1}, "colour", "unknown field", "no such field"),
    (["start"], "payload", "has to be an object", "object"),
])
def test_bad_sweep_payloads_get_structured_errors(sio, payload, field, words, allowed):
    assert call(sio, "sweep", {"action": "start", "ps": [0.0, 0.5]})["ok"]
    ack = call(sio, "sweep", payload)
    assert ack["ok"] is False
    fields = [e["field"] for e in ack["errors"]]
    assert field in fields, ack
    entry = ack["errors"][fields.index(field)]
    assert words in entry["message"] and allowed in entry["allowed"]
    assert call(sio, "sweep", {"action": "step", "steps": 1})["ok"]  # the sweep is still there


def test_step_before_start_names_the_action(sio):
    ack = call(sio, "sweep", {"action": "step", "steps": 5})
    assert ack["ok"] is False and ack["error"]["field"] == "action" and "start" in ack["error"]["message"]


def test_a_sweep_stops_at_its_step_budget(sio, monkeypatch):
    monkeypatch.setattr(lessons, "MAX_SWEEP_STEPS", 30)
    call(sio, "sweep", {"action": "start", "ps": [0.0]})
    assert call(sio, "sweep", {"action": "step", "steps": 25})["sweep"]["step"] == 25
    assert call(sio, "sweep", {"action": "step", "steps": 25})["sweep"]["step"] == 30  # cut to the budget
    ack = call(sio, "sweep", {"action": "step", "steps": 1})
    assert ack["ok"] is False and ack["error"]["field"] == "steps" and "30" in ack["error"]["message"]


def sweeps_of(app) -> list:
    """The sweeps tabs hold now."""
    return [s.sweep for s in namespace_of(app).registry.sessions.values() if s.sweep is not None]


def test_a_busy_sweep_answers_instead_of_waiting(app, sio):
    call(sio, "sweep", {"action": "start", "ps": [0.0]})
    held, = sweeps_of(app)
    with held.lock:  # as if another event of this tab were training it right now
        ack = call(sio, "sweep", {"action": "step", "steps": 1})
    assert ack["ok"] is False and "busy" in ack["error"]["message"]
    assert call(sio, "sweep", {"action": "step", "steps": 1})["ok"]


def test_one_sweep_per_tab_freed_with_its_budget_when_the_tab_goes(app, sio):
    budget = namespace_of(app).registry.budget
    call(sio, "sweep", {"action": "start", "ps": [0.0, 0.5]})
    two = budget.bytes
    call(sio, "sweep", {"action": "start", "ps": [0.0]})
    assert len(sweeps_of(app)) == 1 and 0 < budget.bytes < two  # the first one went, with its bytes
    other = socketio_of(app).test_client(app, auth={"token": "test-token-2"})
    call(other, "sweep", {"action": "start", "ps": [0.0]})
    assert len(sweeps_of(app)) == 2
    sio.disconnect()  # freed when the tab goes, not at some later event
    assert len(sweeps_of(app)) == 1
    other.disconnect()
    assert sweeps_of(app) == [] and budget.bytes == 0


def test_the_events_are_listed_for_unknown_event_errors(sio):
    ack = call(sio, "launch", {})
    assert "experiment" in ack["error"]["allowed"] and "sweep" in ack["error"]["allowed"]


# ---- pages -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/lessons", "/lessons/placement", "/compare"])
def test_pages_render_with_the_nav_and_no_inline_script(http, path):
    resp = http.get(path)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    for href in ('href="/"', 'href="/lessons"', 'href="/compare"'):
        assert href in html
    assert 'aria-current="page"' in html
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    scripts = re.findall(r"<script([^>]*)>", html)
    assert scripts and all("src=" in s or "application/json" in s for s in scripts)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


def test_lesson_path_carries_the_lesson_and_bad_ids_are_404(http):
    assert 'data-lesson="ensemble"' in http.get("/lessons/ensemble").get_data(as_text=True)
    assert http.get("/lessons/Not_A+Lesson").status_code == 404


def test_the_playground_page_has_the_same_nav(http):
    html = http.get("/").get_data(as_text=True)
    assert 'href="/lessons"' in html and 'href="/compare"' in html
