"""The timeline: a paused run replays any of its last TIMELINE steps, each exactly as the
frame taken right after that step showed it (mask, the shown example's values, loss,
settings), including steps that no frame ever showed."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from model_server.bucket import TIMELINE, Bucket, key_of
from model_server.config import parse_config
from model_server.frames import decode, encode
from model_server.run import Run
from model_server.runstate import RunState
from model_server.snapshot import replay_frame, take_frames
from test_socket import Client

SHOWN = ("mask.", "pre.", "act.", "input")


def same_step(live: tuple[dict, dict], replayed: tuple[dict, dict]) -> None:
    (ha, aa), (hb, ab) = live, replayed
    assert hb["replay"] is True and hb["steps"] == 1
    for k in ("step", "mode", "p", "lr", "example"):
        assert ha.get(k) == hb.get(k), k
    assert hb["train_loss"] == pytest.approx(ha["train_loss"], rel=1e-5)
    assert {n for n in aa if n.startswith(SHOWN)} == {n for n in ab if n.startswith(SHOWN)}
    for n in aa:
        if n.startswith("mask."):
            assert np.array_equal(aa[n], ab[n]), n      # the very mask
        elif n.startswith(SHOWN):                          # values: 8 bits either way (half kept)
            scale = float(np.abs(aa[n]).max()) + 1e-6
            assert np.allclose(aa[n], ab[n], atol=0.02 * scale), n
    # the counts it carries are the shown example's: dropped = not kept, where a mask was drawn
    for l, m in enumerate(hb["masked"]):
        if m:
            assert np.array_equal(ab[f"dropped.{l}"], 1 - ab[f"mask.{l}"].astype(np.int64))


@pytest.mark.parametrize("config", [
    {},
    {"model": {"dropout_kind": "alpha", "activation": "selu"}},
    {"model": {"kind": "cnn", "hidden": [4, 4], "p": [0.3, 0.5], "dropout_kind": "dropout2d"},
     "data": {"dataset": "digits"}, "train": {"batch_size": 16}},
    {"model": {"kind": "cnn", "hidden": [4], "p": [0.4]}, "data": {"dataset": "digits"}, "train": {"batch_size": 8}},
])
def test_replay_shows_each_step_as_its_own_frame_did(one_thread, config):
    run = Run(parse_config(config))
    live = {}
    for s in range(1, 61):
        if s == 20:
            run.set_p(0, 0.9)
        if s == 30:
            run.set_mode("eval")  # steps without masks replay without masks
        if s == 40:
            run.set_mode("train")
            run.set_lr(0.05)
        run.step(1)
        live[s] = decode(encode(run.frame()))
    assert run.timeline() == (1, 60)
    for s in range(1, 61):
        same_step(live[s], decode(encode(run.replay(s))))
    assert "mask.0" not in decode(encode(run.replay(35)))[1]


def test_the_window_is_the_last_timeline_steps_and_restarts_with_reset(one_thread):
    run = Run(parse_config({"train": {"batch_size": 4}}))
    run.step(TIMELINE + 29)
    run.frame()
    run.step(1)
    live = decode(encode(run.frame()))
    n = TIMELINE + 30
    assert run.timeline() == (31, n)
    same_step(live, decode(encode(run.replay(n))))
    run.replay(31)
    with pytest.raises(ValueError):
        run.replay(30)
    run.reset()
    assert run.timeline() is None
    run.step(3)
    assert run.timeline() == (1, 3)


def test_replay_survives_rows_moving_in_a_shared_bucket(one_thread):
    """Runs join and leave the bucket (rows move, the bucket grows); each run's timeline
    follows it, and a run sitting out steps (slow speed) keeps its own."""
    states = [RunState(parse_config({"data": {"seed": i}})) for i in range(5)]
    bucket = Bucket(key_of(states[0]), states[0].initial_net())
    for st in states:
        bucket.join(st)
    live: dict[int, dict] = {i: {} for i in range(5)}
    for t in range(40):
        active = np.ones(len(bucket.runs), bool)
        if t % 3:
            active[[st.row for st in states if st is states[4]]] = False  # a slow run
        bucket.step(active)
        if t == 25:
            bucket.leave(states[1])  # the last row moves into its place
        frames = take_frames(bucket, [st for st in states if st.bucket], [False] * len(bucket.runs), 8)
        for st, fr in zip([st for st in states if st.bucket], frames):
            h, a = decode(encode(fr))
            if h["steps"]:
                live[states.index(st)][h["step"]] = (h, a)
    for i, st in enumerate(states):
        if st.bucket is None:
            continue
        first, last = bucket.timeline(st)
        assert last == max(live[i]) and first == 1
        for s in (1, last // 2, last):
            same_step(live[i][s], decode(encode(replay_frame(bucket, st, s))))


# ---- the protocol, with a real client against a real server ----------------------------------

@pytest.fixture
def client(live_server):
    c = Client(live_server.url, token="replay-client-1")
    yield c
    c.close()


def test_replay_event_on_a_paused_run_sends_the_streamed_step_again(client):
    assert client.call("configure", {"config": {}})["ok"]
    assert client.call("set", {"change": {"param": "speed", "value": 10}})["ok"]
    assert client.call("play")["ok"]
    time.sleep(1.5)
    assert client.call("pause")["ok"]
    time.sleep(0.3)
    streamed = {h["step"]: (h, a) for h, a in list(client.frames) if h["steps"] == 1 and not h.get("replay")}
    assert len(streamed) >= 8
    last = max(streamed)
    for step in sorted(streamed)[:-1][-6:]:
        client.frames.clear()
        ack = client.call("replay", {"step": step})
        assert ack == {"ok": True, "run": "main", "step": step}
        frames = client.wait_frames(1)
        assert frames and frames[0][0]["step"] == step
        same_step(streamed[step], frames[0])
    # outside the kept window: refused, naming the field and the steps that can be replayed
    ack = client.call("replay", {"step": last + 1})
    assert ack["ok"] is False and ack["error"]["field"] == "step"
    assert ack["error"]["allowed"] == f"1..{last}" and ack["error"]["received"] == last + 1
    assert f"1..{last}" in ack["error"]["message"]
    ack = client.call("replay", {"step": "ten"})
    assert ack["ok"] is False and ack["error"]["field"] == "step"
    ack = client.call("replay", {})
    assert ack["ok"] is False and ack["error"]["field"] == "step"


def test_replay_is_refused_while_playing_and_before_any_step(client):
    assert client.call("configure", {"config": {}})["ok"]
    ack = client.call("replay", {"step": 1})
    assert ack["ok"] is False and ack["error"]["field"] == "step" and "take a step" in ack["error"]["allowed"]
    assert client.call("play")["ok"]
    ack = client.call("replay", {"step": 1})
    assert ack["ok"] is False and "pause" in ack["error"]["message"]
    assert client.call("pause")["ok"]
    assert client.call("replay", {"step": 1})["ok"]


def test_a_replayed_thinned_boundary_is_that_steps_mask_on_todays_weights(one_thread):
    """With the thinned view, a replayed step's boundary is the thinned network of that
    step's mask (the one the frame shows) with the weights of now, as torch.nn computes it;
    the other slow panels are today's (only today's weights are kept)."""
    from model_server.datasets import plane_grid
    run = Run(parse_config({"model": {"hidden": [8, 8], "p": [0.5, 0.5]}}))
    run.set_view("thinned")
    run.step(40)
    now_h, now_a = decode(encode(run.frame(extras=True)))
    net = run.bucket.materialize(run.state)
    grid = plane_grid(run.state.limits.grid_size)
    for step in (40, 25, 3):
        h, a = decode(encode(run.replay(step)))
        assert h["replay"] is True and h["view"] == "thinned" and h["eval"] is None
        assert "boundary.eval" not in a
        keeps = [torch.from_numpy(a[f"mask.{l}"]) for l in range(2)]
        with torch.no_grad():
            want = torch.sigmoid(net(grid, keeps=keeps)).numpy()
        assert np.all(np.abs(a["boundary.thinned"] - want) <= 1 / 510 + 1e-5), step
        for j in range(3):
            assert np.array_equal(a[f"weight.{j}"], now_a[f"weight.{j}"])
    assert np.array_equal(decode(encode(run.replay(40)))[1]["boundary.thinned"], now_a["boundary.thinned"])
    # a step that drew no mask has no thinned network: the eval boundary stands in, as live
    run.set_mode("eval")
    run.step(1)
    h, a = decode(encode(run.replay(41)))
    assert "mask.0" not in a and "boundary.thinned" not in a and "boundary.eval" in a
    # the eval view: the eval boundary of now
    run.set_view("eval")
    live = decode(encode(run.frame(extras=True)))[1]["boundary.eval"]
    assert np.array_equal(decode(encode(run.replay(12)))[1]["boundary.eval"], live)
