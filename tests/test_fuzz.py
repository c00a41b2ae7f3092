"""Fuzzing a real server with real clients: random event names and payloads, random
event sequences (a hypothesis state machine), and protocol-level garbage. Throughout, the
server must not crash, every event must get a structured answer ({"ok": true, ...} or
{"ok": false, "error": {field, message, allowed, received}, "errors": [...]}, strict
JSON: no NaN), and a well-behaved client playing alongside must keep receiving frames.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from conftest import live
from app.settings import Serving
from visitors import RawSocket, Visitor, metric, wait_until

EVENTS = ["configure", "play", "pause", "step", "reset", "set", "close"]
MAX_RUNS_PER_CLIENT = Serving().max_runs_per_client
MAX_MESSAGE = Serving().max_message_bytes
MAX_GAP_S = 3.0  # the watcher must never wait longer than this for a frame


# ---- the server, a watcher, and what every answer must look like --------------------------
class Watcher:
    """A well-behaved client playing the whole time; remembers its longest frame gap."""

    def __init__(self, url: str):
        self.visitor = Visitor(url)
        self.visitor.ok("configure", {})
        self.visitor.ok("play")
        wait_until(lambda: self.visitor.frame_times, what="the watcher's first frame")

    def longest_gap(self) -> float:
        times = list(self.visitor.frame_times) + [time.monotonic()]
        return max(b - a for a, b in zip(times, times[1:]))


@pytest.fixture(scope="module")
def server():
    # a generous rate limit: the fuzzer is fast on purpose (test_public_server checks the limit)
    with live({"DP_EVENTS_PER_S": "100000", "DP_EVENT_BURST": "100000"}) as srv:
        srv.watcher = Watcher(srv.url)
        yield srv
        gap = srv.watcher.longest_gap()
        srv.watcher.visitor.close()
        assert srv.proc.poll() is None, "the server process died"
        assert gap <= MAX_GAP_S, f"the watcher waited {gap:.2f} s for a frame"


@pytest.fixture
def fuzzer(server):
    holder = {"v": Visitor(server.url)}
    yield holder
    holder["v"].close()
    wait_until(lambda: metric(server.url, "dropout_runs_active") == 1, what="the fuzzer's runs to end")


def finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and finite(v) for k, v in value.items())
    if isinstance(value, list):
        return all(finite(v) for v in value)
    return value is None or isinstance(value, (str, int, bool, bytes))


def check_answer(reply) -> None:
    assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply
    assert finite(reply), f"not strict JSON: {reply!r:.300}"
    if not reply["ok"]:
        errors = reply["errors"]
        assert errors and reply["error"] == errors[0]
        for e in errors:
            assert set(e) == {"field", "message", "allowed", "received"}, e
            assert isinstance(e["field"], str) and e["field"]
            assert isinstance(e["message"], str) and e["message"]
            received = e["received"]  # echoed back bounded: a short string or a scalar
            assert received is None or isinstance(received, (bool, int, float)) or len(received) <= 120, e


def call(holder: dict, url: str, event: str, payload) -> dict:
    """One event from the fuzzing client (reconnecting it if the server cut it off)."""
    v = holder["v"]
    if not v.connected:
        v.close()
        v = holder["v"] = Visitor(url)
    return v.call(event, payload, timeout=20)


# ---- random payloads ------------------------------------------------------------------------
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-2**200, max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 2**63, 2**53 + 1]),
    st.text(max_size=40),
    st.text(alphabet="x", min_size=1000, max_size=3000),
    st.sampled_from(["main", "a", "", "../../etc/passwd", "\x00", "é" * 30, "<script>"]),
)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=25)


def deep(depth: int, leaf=0):
    for i in range(depth):
        leaf = [leaf] if i % 2 else {"a": leaf}
    return leaf


def mutate(template: dict) -> st.SearchStrategy:
    """A valid-looking dict with fields dropped, replaced by junk, or added."""
    keys = sorted(template)
    return st.fixed_dictionaries(
        {}, optional={k: st.one_of(st.just(template[k]), json_values) for k in keys}
    ).flatmap(lambda d: st.dictionaries(st.text(max_size=10), json_values, max_size=2).map(lambda extra: {**extra, **d}))


config_like = st.fixed_dictionaries({}, optional={
    "data": mutate({"dataset": "spiral", "n_points": 300, "noise": 0.2, "train_fraction": 0.5, "seed": 1}),
    "model": mutate({"kind": "mlp", "hidden": [8, 8], "p": [0.5, 0.5], "activation": "tanh",
                     "dropout_kind": "dropout", "placement": "after_activation", "batchnorm": "none"}),
    "train": mutate({"optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0, "batch_size": 20,
                     "eval_every": 0, "device": "cpu"}),
})
changes = st.one_of(
    mutate({"param": "p", "layer": 0, "value": 0.4}), mutate({"param": "lr", "value": 0.05}),
    mutate({"param": "mode", "value": "eval"}), mutate({"param": "speed", "value": 50}),
    mutate({"param": "watch", "layer": 0, "index": 1}), json_values)
payloads = st.one_of(
    json_values,
    st.builds(deep, st.integers(1, 120)),
    st.fixed_dictionaries({}, optional={"run": json_values, "config": st.one_of(config_like, json_values)}),
    st.fixed_dictionaries({"config": config_like}),
    st.fixed_dictionaries({}, optional={"run": st.sampled_from(["main", "b"]), "n": json_values}),
    st.fixed_dictionaries({"change": changes}, optional={"run": st.sampled_from(["main", "b"])}),
)
event_names = st.one_of(st.sampled_from(EVENTS), st.sampled_from(["connect", "disconnect", "message", "frame", "export"]),
                        st.text(max_size=30))


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(event=event_names, payload=payloads)
def test_random_events_get_a_structured_answer(server, fuzzer, event, payload):
    assume(len(json.dumps([event, payload])) < MAX_MESSAGE - 100)  # bigger ones: test_public_server
    check_answer(call(fuzzer, server.url, event, payload))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(args=st.lists(json_values, min_size=2, max_size=4), event=st.sampled_from(EVENTS))
def test_events_with_several_arguments_are_answered(server, fuzzer, event, args):
    assume(len(json.dumps(args)) < MAX_MESSAGE - 100)
    check_answer(fuzzer["v"].sio.call(event, tuple(args), timeout=20) if fuzzer["v"].connected
                 else call(fuzzer, server.url, event, args[0]))


def test_protocol_garbage_closes_at_most_that_connection(server):
    """Malformed Socket.IO packets and absurd JSON: at worst that client's connection
    closes; the server and everyone else carry on, and the log has no traceback."""
    log_start = Path(server.log.name).stat().st_size
    garbage = [
        "42", "42[", "42{}", "42[]", "42[1]", "42[null]", "4x", "49", "4", "6", "9", "",
        '42["play",' + "[" * 5000 + "]" * 5000 + "]",   # nesting past the JSON parser's recursion limit
        '42["step",{"n":' + "9" * 5000 + "}]",            # an integer past int()'s digit limit
        "451-" + '["configure",{"_placeholder":true,"num":0}]',  # a binary event from a client
        b"\x00\x01\x02",
        "452-9999999999" + '["configure",{}]',
    ]
    for bad in garbage:
        raw = RawSocket(server.url)
        try:
            raw.send_raw(bad)
            raw.alive()
        except Exception:
            pass
        finally:
            raw.close()
    v = Visitor(server.url)
    try:
        assert v.ok("configure", {})["sizes"] == [2, 8, 8, 1]
    finally:
        v.close()
    assert requests.get(server.url + "/healthz").json()["ok"] is True
    assert "Traceback" not in Path(server.log.name).read_text()[log_start:]


# ---- random sequences: a state machine that knows what each answer should be -------------------
RUNS = st.sampled_from(["main", "b", "c", "d"])
GOOD_CONFIGS = st.fixed_dictionaries({}, optional={
    "data": st.fixed_dictionaries({}, optional={"dataset": st.sampled_from(["circle", "xor", "spiral", "digits"]),
                                                "noise": st.floats(0, 0.5), "seed": st.integers(0, 99)}),
    "model": st.integers(1, 3).flatmap(lambda n: st.fixed_dictionaries({
        "hidden": st.lists(st.integers(1, 16), min_size=n, max_size=n),
        "p": st.lists(st.floats(0, 1), min_size=n, max_size=n)})),
    "train": st.fixed_dictionaries({}, optional={"batch_size": st.integers(1, 100), "lr": st.floats(1e-4, 1.0)}),
})


class Sequences(RuleBasedStateMachine):
    """The model: which runs this client has and which play. Each answer is checked
    against it, and the server's runs_active gauge must agree after every step."""

    url: str = ""

    def __init__(self):
        super().__init__()
        self.client = Visitor(self.url)
        self.runs: dict[str, bool] = {}  # run -> playing

    def teardown(self):
        self.client.close()
        wait_until(lambda: metric(self.url, "dropout_runs_active") == 1, what="this client's runs to end")

    def answer(self, event: str, payload) -> dict:
        reply = self.client.call(event, payload, timeout=30)
        check_answer(reply)
        return reply

    @rule(run=RUNS, config=GOOD_CONFIGS)
    def configure(self, run, config):
        reply = self.answer("configure", {"run": run, "config": config})
        self.runs.pop(run, None)  # a run of the same name ends whatever happens
        if len(self.runs) < MAX_RUNS_PER_CLIENT:
            assert reply["ok"], reply
            self.runs[run] = False
        else:
            assert reply["error"]["message"].startswith("too many runs"), reply

    @rule(run=RUNS)
    def play(self, run):
        reply = self.answer("play", {"run": run})
        assert reply["ok"] == (run in self.runs), reply
        if reply["ok"]:
            self.runs[run] = True

    @rule(run=RUNS)
    def pause(self, run):
        reply = self.answer("pause", {"run": run})
        assert reply["ok"] == (run in self.runs), reply
        if reply["ok"]:
            self.runs[run] = False

    @rule(run=RUNS, n=st.one_of(st.integers(1, 1000), st.integers(-5, 0), st.integers(1001, 10**6)))
    def step(self, run, n):
        reply = self.answer("step", {"run": run, "n": n})
        assert reply["ok"] == (run in self.runs and not self.runs[run] and 1 <= n <= 1000), reply

    @rule(run=RUNS)
    def reset(self, run):
        reply = self.answer("reset", {"run": run})
        assert reply["ok"] == (run in self.runs), reply
        if reply["ok"]:
            assert reply["step"] == 0

    @rule(run=RUNS, change=st.sampled_from([{"param": "p", "layer": 0, "value": 0.9},
                                            {"param": "lr", "value": 0.2}, {"param": "mode", "value": "eval"},
                                            {"param": "speed", "value": 40}, {"param": "p", "layer": 9, "value": 0.1},
                                            {"param": "lr", "value": float("nan")}]))
    def set(self, run, change):
        reply = self.answer("set", {"run": run, "change": change})
        valid = change.get("layer", 0) == 0 and change["value"] == change["value"]
        assert reply["ok"] == (run in self.runs and valid), reply

    @rule(run=RUNS)
    def close(self, run):
        reply = self.answer("close", {"run": run})
        assert reply["ok"] == (run in self.runs), reply
        self.runs.pop(run, None)

    @rule()
    def reconnect(self):
        self.client.close()
        wait_until(lambda: metric(self.url, "dropout_runs_active") == 1, what="the runs of the closed socket to end")
        self.client = Visitor(self.url)
        self.runs = {}

    @invariant()
    def server_agrees_on_the_runs(self):
        assert metric(self.url, "dropout_runs_active") == len(self.runs) + 1  # + the watcher's


def test_random_event_sequences(server):
    wait_until(lambda: metric(server.url, "dropout_runs_active") == 1, what="only the watcher's run")
    Sequences.url = server.url
    Sequences.TestCase.settings = settings(max_examples=12, stateful_step_count=25, deadline=None,
                                           suppress_health_check=list(HealthCheck))
    Sequences.TestCase().runTest()
