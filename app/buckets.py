"""The trainer's buckets, one record each: which bucket a run joins, and what the trainer
keeps about each bucket (its clock, its frame tick, its place under the frame floor)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from model_server.bucket import Bucket, BucketKey, key_of
from model_server.config import Limits
from model_server.costs import run_cost
from model_server.runstate import RunState

from .settings import Serving


@dataclass(eq=False)
class Record:
    """What the trainer keeps about one bucket (app/turns.py reads and writes it)."""
    bucket: Bucket
    shard: int                       # which of its shape's buckets it is
    floor_macs: float                # its step cost per run (multiply-adds): under the frame floor or not
    vclock: float                    # its fair-share clock
    next_tick: float = 0.0           # its next frame tick
    oldest_frame: float = math.inf   # when its longest-waiting run got its last frame
    step_rate: float = math.inf      # its steps a second lately
    steps_seen: int | None = None    # ... and its step count then
    step_cost: float | None = None   # CPU time of its last step
    last_turn: float = -math.inf     # when it last had a turn


class Buckets:
    """(shape, shard) -> the record of that bucket."""

    def __init__(self, limits: Limits, serving: Serving):
        self.limits, self.serving = limits, serving
        self.records: dict[tuple[BucketKey, int], Record] = {}

    def __iter__(self):
        return iter(self.records)

    def values(self):
        return self.records.values()

    def of(self, bucket: Bucket) -> Record:
        return next(r for r in self.records.values() if r.bucket is bucket)

    def join(self, state: RunState, vnow: float) -> Record:
        """The run joins the first bucket of its shape with room, else a new one (whose
        clock starts at vnow). A bucket's step is not interruptible, so a shape's runs
        fill buckets of at most serving.max_bucket_step_macs per step (a heavy shape's
        runs: a few per bucket), and of at most serving.max_bucket_bytes (growing a bucket
        copies its rows between two steps, while everyone waits: a CNN's long timeline
        rows made one join stall every other run; docs/limits.md, max_bucket_bytes)."""
        key, macs = key_of(state), run_cost(state.cfg, self.limits).macs
        n_tr, n_te = len(state.data.x_train), len(state.data.x_test)
        shard = 0
        while True:
            record = self.records.get((key, shard))
            if record is None:
                bucket = Bucket(key, state.initial_net())
                bucket.max_rows = max(1, int(self.serving.max_bucket_bytes // bucket.row_bytes(n_tr, n_te)))
                record = self.records[(key, shard)] = Record(bucket, shard, macs, vnow)
                break
            bucket = record.bucket
            if ((len(bucket.runs) + 1) * macs <= self.serving.max_bucket_step_macs
                    and (len(bucket.runs) + 1) * bucket.row_bytes(n_tr, n_te) <= self.serving.max_bucket_bytes):
                break
            shard += 1
        record.bucket.join(state)
        return record

    def drop(self, record: Record) -> None:
        del self.records[(record.bucket.key, record.shard)]
