"""app.scheduler.Trainer: one thread trains every run, bucket by bucket, at each run's
speed, stops exactly where asked, shares the CPU fairly between buckets and hands each
run at most one frame at a time. Driven here with sinks that stand in for clients."""
from __future__ import annotations

import time

import pytest

from app.scheduler import Trainer
from app.settings import Serving
from model_server import Limits, parse_config
from model_server.bucket import Bucket
from model_server.frames import decode, encode
from model_server.runstate import RunState


pytestmark = pytest.mark.usefixtures("one_thread")  # as the server runs: one intra-op thread


class Sink:
    """A client: takes frames (acknowledging at once unless told not to) and news."""

    def __init__(self, acks: bool = True):
        self.frames, self.statuses, self.acks, self.in_flight = [], [], acks, False

    def ready(self) -> bool:
        return not self.in_flight

    def send(self, frame) -> None:
        self.frames.append(decode(encode(frame)))
        self.in_flight = not self.acks

    def status(self, state, reason=None) -> None:
        self.statuses.append((state, reason))

    def crashed(self) -> None:
        self.statuses.append(("ended", "crashed"))

    def headers(self):
        return [h for h, _ in self.frames]


def state_of(limits=None, **sections) -> RunState:
    raw = {"data": {}, "model": {}, "train": {"device": "cpu"}}
    for part, values in sections.items():
        raw[part] = {**raw[part], **values}
    return RunState(parse_config(raw, limits), limits)


@pytest.fixture
def trainer():
    made = []

    def make(limits=None, **serving) -> Trainer:
        t = Trainer(limits or Limits(), Serving(**serving))
        made.append(t)
        return t
    yield make
    for t in made:
        t.stop()


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_joining_sends_the_untrained_networks_frame(trainer):
    t, sink, state = trainer(), Sink(), state_of()
    t.add(state, sink)
    (header, _), = sink.frames
    assert header["step"] == 0 and "boundary.eval" in [s["name"] for s in header["sections"]]


def test_slow_speed_gives_every_step_its_own_frame(trainer):
    t, sink, state = trainer(), Sink(), state_of(model={"hidden": [8, 8], "p": [0.5, 0.5]})
    t.add(state, sink)
    t.set_speed(state, 10)
    t.play(state)
    time.sleep(1.0)
    t.pause(state)
    playing = [(h, a) for h, a in sink.frames[1:] if h["steps"]]
    assert 6 <= state.step_count <= 12  # 10 steps/s
    assert [h["step"] for h, _ in playing] == list(range(1, state.step_count + 1))
    assert all(h["steps"] == 1 and "mask.0" in a and "boundary.eval" in a for h, a in playing)


def test_full_speed_frames_carry_every_steps_drop_counts(trainer):
    t, sink = trainer(), Sink()
    state = state_of(model={"hidden": [16, 16], "p": [0.3, 0.6]}, train={"batch_size": 50})
    t.add(state, sink)
    t.play(state)
    time.sleep(1.0)
    t.pause(state)
    headers = sink.headers()
    assert state.step_count >= 30
    assert 3 <= len(headers) <= 40 and len(headers) < state.step_count / 2  # ~frame_rate a second, not one a step
    assert sum(h["steps"] for h in headers) == state.step_count
    for h in headers:
        assert h["masked"] == [h["steps"] * 50] * 2
    dropped = sum(a["dropped.1"].sum() for h, a in sink.frames if "dropped.1" in a)
    assert abs(dropped / (state.step_count * 50 * 16) - 0.6) < 0.02


def test_play_until_stops_exactly_there_with_a_complete_frame(trainer):
    t = trainer()
    for speed, until in ((1e6, 237), (20, 4)):
        sink, state = Sink(), state_of()
        t.add(state, sink)
        t.set_speed(state, speed)
        t.play(state, until=until)
        wait_for(lambda: ("paused", None) in sink.statuses)
        time.sleep(0.1)
        assert state.step_count == until
        header, arrays = sink.frames[-1]
        assert header["step"] == until and "boundary.eval" in arrays and header["eval"]["step"] == until


def test_step_answers_after_the_frame_of_the_step_reached(trainer):
    t, sink, state = trainer(), Sink(), state_of()
    t.add(state, sink)
    assert t.step(state, 25) == 25
    header, arrays = sink.frames[-1]
    assert header["step"] == 25 and "boundary.eval" in arrays


def test_a_client_that_does_not_read_gets_no_frames_and_loses_no_counts(trainer):
    t, sink = trainer(), Sink(acks=False)
    state = state_of(model={"hidden": [8, 8], "p": [0.5, 0.5]})
    t.add(state, sink)  # the first frame goes out and is never acknowledged
    t.play(state)
    time.sleep(0.5)
    assert len(sink.frames) == 1 and state.step_count > 50
    sink.in_flight = False  # it reads again: one frame with every step since
    t.wake()
    wait_for(lambda: len(sink.frames) == 2)
    header, _ = sink.frames[1]
    assert header["masked"][0] >= header["steps"] * 10 and header["steps"] >= 50
    t.pause(state)


def test_the_step_and_time_limits_finish_a_run(trainer):
    t = trainer(Limits(max_steps=50))
    sink, state = Sink(), state_of(Limits(max_steps=50))
    t.add(state, sink)
    t.play(state)
    wait_for(lambda: any(s == "finished" for s, _ in sink.statuses))
    assert state.step_count == 50 and "step limit" in sink.statuses[-1][1]
    t = trainer(max_run_seconds=0.3)
    sink, state = Sink(), state_of()
    t.add(state, sink)
    t.play(state)
    wait_for(lambda: any(s == "finished" for s, _ in sink.statuses))
    assert "time limit" in sink.statuses[-1][1]
    with pytest.raises(RuntimeError, match="time limit"):
        t.play(state)


def test_buckets_share_the_cpu_per_run(trainer):
    """A bucket of 4 heavy CNN runs and a bucket of 4 tiny MLP runs, all at full speed:
    every run gets about the same CPU time (steps and frames), so neither bucket starves
    the other."""
    t = trainer()
    cnn = {"data": {"dataset": "digits"}, "model": {"kind": "cnn", "hidden": [16, 16], "p": [0.2, 0.2]},
           "train": {"batch_size": 128}}
    states = [state_of(**cnn, **{}) for _ in range(4)] + [state_of(data={"seed": i}) for i in range(4)]
    paces = [t.add(s, Sink()) for s in states]
    assert len({key for key, _ in t.buckets}) == 2  # two shapes (a heavy one may fill several buckets)
    for s in states:
        t.play(s)
    time.sleep(0.5)  # every run plays (each play waits for a turn of the trainer)
    start = [p.busy_s + p.frames_s for p in paces]
    time.sleep(3.0)
    for s in states:
        t.pause(s)
    busy = [p.busy_s + p.frames_s - b for p, b in zip(paces, start)]
    assert min(busy) > 0.25 * max(busy), busy
    heavy, light = states[0].step_count, states[-1].step_count
    # neither starves (CPU time above); the cheap runs take many more steps in the same time
    assert heavy >= 1 and light > 3 * heavy


def test_a_full_speed_run_takes_several_steps_a_turn_and_a_paced_one_one(trainer, monkeypatch):
    """A turn of a bucket whose runs play at full speed, with nobody else to wait, takes
    several steps in one call (Bucket.step's n: cheaper per step); a run paced below
    full speed, or one playing up to a stop step, takes one step a turn, so that its
    pacing and its stop hold."""
    asked: dict[tuple, list[tuple[int, int]]] = {}   # shape -> (n asked, steps taken) per call
    real = Bucket.step

    def step(self, active, n=1):
        taken = real(self, active, n)
        asked.setdefault(self.key.hidden, []).append((n, taken))
        return taken

    monkeypatch.setattr(Bucket, "step", step)
    t = trainer()
    fast, paced = state_of(), state_of(model={"hidden": [5], "p": [0.5]})
    t.add(fast, Sink())
    t.add(paced, Sink())
    t.set_speed(paced, 200)
    t.play(fast)
    time.sleep(1.0)
    t.pause(fast)
    chunks = asked[tuple(fast.cfg.model.hidden)]
    assert max(n for n, _ in chunks) > 1 and sum(taken for _, taken in chunks) > 1.5 * len(chunks)
    t.play(paced)
    time.sleep(1.0)
    t.pause(paced)
    assert {n for n, _ in asked[(5,)]} == {1} and paced.step_count > 100
    asked.clear()
    n = fast.step_count
    t.play(fast, until=n + 25)
    wait_for(lambda: fast.step_count >= n + 25)
    time.sleep(0.2)
    assert fast.step_count == n + 25 and {k for k, _ in asked[tuple(fast.cfg.model.hidden)]} == {1}


def test_a_failing_bucket_ends_its_runs_only(trainer, monkeypatch):
    t = trainer()
    bad, good = state_of(model={"hidden": [3], "p": [0.5]}, train={"batch_size": 5}), state_of()
    bad_sink, good_sink = Sink(), Sink()
    t.add(bad, bad_sink)
    t.add(good, good_sink)
    real = Bucket.step

    def step(self, active, n=1):
        if self.key.hidden == (3,):
            raise RuntimeError("boom")
        return real(self, active, n)

    monkeypatch.setattr(Bucket, "step", step)
    t.play(bad)
    t.play(good)
    wait_for(lambda: ("ended", "crashed") in bad_sink.statuses)
    n = good.step_count
    wait_for(lambda: good.step_count > n + 50)
    with pytest.raises(KeyError, match="configure it again"):
        t.play(bad)


def test_a_slow_moment_does_not_hold_the_test_curve_still(trainer, monkeypatch):
    """'auto' evaluation spends at most a small share of a run's CPU time on the test set.
    An evaluation that took long on the wall clock because this thread did not run (here
    a sleep) used to count as expensive and held the test curve still for seconds."""
    t, sink, state = trainer(), Sink(), state_of()
    real, calls = Bucket.evaluate, []

    def evaluate(self, rows):
        calls.append(time.monotonic())
        if len(calls) == 2:
            time.sleep(0.3)  # wall time, no CPU time
        return real(self, rows)

    monkeypatch.setattr(Bucket, "evaluate", evaluate)
    t.add(state, sink)
    t.play(state)
    time.sleep(1.5)
    t.pause(state)
    after = [c for c in calls if c > calls[1] + 0.3]
    assert len(after) >= 3, calls  # evaluations went on at the boundary's pace


class Counter:
    """A client that takes every frame at once and only counts them."""

    def __init__(self):
        self.frames = 0

    def ready(self) -> bool:
        return True

    def send(self, frame) -> None:
        self.frames += 1

    def status(self, state, reason=None) -> None:
        pass

    def crashed(self) -> None:
        pass


def test_the_frame_floor_lifts_a_few_heavy_runs_beside_a_crowd(trainer):
    """Three 64-wide MLP runs at batch 512 beside a crowd of 90 small runs of six shapes,
    all at full speed. By shares alone the crowd's buckets take most of the time and
    their runs train faster than anyone watches; with the frame floor, a bucket whose
    runs wait longer than 1 / frame_floor for a frame (or that steps fewer times a
    second) takes the next turns, and the heavy runs get more frames."""
    wide = {"data": {"n_points": 1000, "train_fraction": 0.6}, "model": {"hidden": [64, 64, 64], "p": [0.3] * 3},
            "train": {"batch_size": 512}}
    rates = {}
    for floor in (24, 0):
        t = trainer(frame_floor=floor)
        heavy = [state_of(**{**wide, "data": {**wide["data"], "seed": i}}) for i in range(3)]
        crowd = [state_of(data={"seed": i}, model={"hidden": [8 + i % 6] * 2}) for i in range(90)]
        sinks = {id(s): Counter() for s in heavy + crowd}
        for s in heavy + crowd:
            t.add(s, sinks[id(s)])
            t.play(s)
        time.sleep(1.0)
        start = {k: c.frames for k, c in sinks.items()}
        time.sleep(3.0)
        rates[floor] = [(sinks[id(s)].frames - start[id(s)]) / 3.0 for s in heavy]
        for s in heavy + crowd:
            t.remove(s)
        t.stop()
    # Both settings ran on this machine under the same load, one after the other: the floor
    # is held relative to no floor, not as a frame rate (how many frames a second the heavy
    # runs get on a given machine is bench/load.py --mix's to say, not a test's). The floor
    # is the default's, 24: at 15 the heavy runs' 14-15 frames/s against 10 without it sat
    # at the 1.5x line on a quiet machine; at 24 they got 23-24 against 10-11, quiet or with
    # a CPU hog beside them.
    assert min(rates[24]) > 1.5 * max(rates[0]), rates


def test_a_second_step_while_one_trains_is_refused_and_leaving_answers_the_first(trainer):
    """A 'step' replacing a pending one left its caller waiting ten minutes (a thread per
    event). Now the second is refused at once, and the run leaving answers the first."""
    import threading
    t, state = trainer(), state_of(model={"hidden": [64] * 6, "p": [0.5] * 6}, train={"batch_size": 500},
                                   data={"n_points": 1000})
    t.add(state, Sink())
    answers = []
    first = threading.Thread(target=lambda: answers.append(t.step(state, 1000)))
    first.start()
    wait_for(lambda: t.paces[id(state)].owed > 0)
    with pytest.raises(RuntimeError, match="still training"):
        t.step(state, 1)
    t.remove(state)
    first.join(timeout=20)
    assert not first.is_alive() and answers and answers[0] < 1000


def test_a_bucket_of_heavy_rows_stays_within_its_bytes(trainer):
    """Growing a bucket copies its rows between two steps; a CNN with a 1,000-step
    timeline has ~18 MB rows. Runs of one shape fill several buckets of at most
    max_bucket_bytes each, so no join copies more than that."""
    limit = 64 * 2**20
    t = trainer(max_bucket_bytes=limit)
    states = [state_of(data={"dataset": "digits"}, model={"kind": "cnn", "hidden": [16] * 3, "p": [0.3] * 3},
                       train={"batch_size": 1, "device": "cpu"}) for _ in range(7)]
    for s in states:
        t.add(s, Sink())
    buckets = {id(s.bucket): s.bucket for s in states}.values()
    assert len(buckets) >= 3
    for b in buckets:
        assert 1 <= len(b.runs) and b.theta.shape[0] * b.row_bytes() <= limit  # (its rows: theta is (cap, P))


def test_the_floor_asks_early_by_as_much_as_its_frames_land_late():
    """A frame the floor asks for lands a turn or two later; asking at 1 / frame_floor
    itself gave a bystander 21 frames/s for a floor of 30. The lead follows how late its
    frames land, within half a period, and goes back when they land on time."""
    import math
    from app.buckets import Record
    from app.floor import LEAD_MAX, Floor
    floor = Floor(Serving(frame_floor=24), {})
    record = Record(bucket=None, shard=0, floor_macs=0.0, vclock=0.0, oldest_frame=10.0)
    assert floor.due_at(record) == pytest.approx(10.0 + 1 / 24)
    for _ in range(40):  # every frame lands 12 ms after its due time
        floor.landed(record, 10.0 + 1 / 24 + 0.012)
    assert floor.lead == pytest.approx(LEAD_MAX / 24)  # bounded: never sooner than half a period
    for _ in range(100):  # frames that land early bring it back
        floor.landed(record, 10.0 + 1 / 24 - 0.01)
    assert floor.lead == 0.0
    steady = Floor(Serving(frame_floor=24), {})
    for _ in range(200):  # a steady 8 ms latency after asking: the lead settles at it
        steady.landed(record, steady.due_at(record) + 0.008)
    assert steady.lead == pytest.approx(0.008, abs=1e-4)
    record.oldest_frame = math.inf
    assert steady.below(record, 1e9) == 0.0  # no run waiting: never below
