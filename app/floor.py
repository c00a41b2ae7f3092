"""The frame floor (see "Floor" in app/turns.py): which buckets have runs waiting too long
for a frame, and whether the floor is in force (its turns took at most FLOOR_SHARE of
the time lately)."""
from __future__ import annotations

import math
from typing import Iterable

from .buckets import Record
from .pace import Pace
from .settings import Serving

FLOOR_SHARE = 0.5       # turns given to buckets below the frame floor take at most this share of the time
FLOOR_SHARE_S = 1.0     # ... averaged over about this long
STEP_RATE_S = 0.5       # a bucket's steps a second are averaged over about this long
LEAD_GAIN = 0.2         # how fast the lead follows the floor's frames' lateness
LEAD_MAX = 0.5          # ... at most this share of the floor's period


class Floor:
    def __init__(self, serving: Serving, paces: dict[int, Pace]):
        self.serving, self.paces = serving, paces
        self.open = True         # the frame floor is in force (FLOOR_SHARE)
        self.share = 0.0         # the share of the time its turns took lately
        self.cpu = 0.0           # CPU time of turns given by the floor since the last look
        # how long before 1 / frame_floor a waiting run's bucket takes its turns: a frame
        # the floor asks for lands a turn or two later (the turn in progress, a step, the
        # pass), so asking at 1 / frame_floor itself kept a run well below the floor
        # (docs/benchmarks.md, round 13)
        self.lead = 0.0

    def look(self, records: Iterable[Record], played: float) -> None:
        """Whether the frame floor is in force until the next look (its turns took at
        most FLOOR_SHARE of the time, averaged over about FLOOR_SHARE_S), each bucket's
        longest wait for a frame and its steps a second."""
        if played > 0:  # (averaged over about a second: one pass of a crowded bucket fills a look)
            self.share += (self.cpu / played - self.share) * min(1.0, played / FLOOR_SHARE_S)
        self.cpu = 0.0
        self.open = bool(self.serving.frame_floor) and self.share <= FLOOR_SHARE
        for record in records:
            self.oldest(record)
            # steps a second, averaged over about STEP_RATE_S (a heavy bucket steps a few
            # times between two looks)
            taken = record.bucket.steps_taken
            seen = taken if record.steps_seen is None else record.steps_seen
            if played > 0:
                now_rate = (taken - seen) / played
                rate = record.step_rate
                record.step_rate = now_rate if rate == math.inf else rate + (now_rate - rate) * min(1.0, played / STEP_RATE_S)
            record.steps_seen = taken

    def landed(self, record: Record, now: float) -> None:
        """A pass the floor gave record went out at now: the lead follows how late it was
        against 1 / frame_floor after the longest-waiting run's last frame (so that the
        floor's frames come at frame_floor a second, on a fast machine or a slow one)."""
        late = now - record.oldest_frame - 1.0 / self.serving.frame_floor
        self.lead = min(LEAD_MAX / self.serving.frame_floor, max(0.0, self.lead + LEAD_GAIN * late))

    def due_at(self, record: Record) -> float:
        """When the bucket falls below the floor (its longest-waiting run's last frame,
        1 / frame_floor, less the lead); inf: never."""
        return record.oldest_frame + 1.0 / self.serving.frame_floor - self.lead

    def oldest(self, record: Record) -> None:
        """When the bucket's run that has waited longest for a frame got its last one (of
        its runs at full speed whose client has taken their last; never, for a shape
        above serving.frame_floor_macs)."""
        oldest = math.inf
        if record.floor_macs <= self.serving.frame_floor_macs:
            for state in record.bucket.runs:
                pace = self.paces[id(state)]
                if pace.playing and not pace.slow and pace.last_frame_at < oldest and pace.sink.ready():
                    oldest = pace.last_frame_at
        record.oldest_frame = oldest

    def below(self, record: Record, now: float) -> float:
        """How far the bucket is below the frame floor: how long its longest-waiting run
        has waited for a frame beyond 1 / frame_floor, or, when it steps fewer than
        frame_floor times a second (a run cannot have more frames than steps), a
        millisecond. 0: not below the floor, or the floor is not in force."""
        oldest = record.oldest_frame
        if not self.open or oldest == math.inf:
            return 0.0
        waited = now - self.due_at(record)
        if waited <= 0 and record.step_rate < self.serving.frame_floor:
            return 0.001
        return max(0.0, waited)
