"""A watch on the two threads every visitor of the process waits on: the trainer
(app/scheduler.py) and the websocket Reader (app/reader.py). Each notes the time once a
round of its loop (`beat`). When one has not come round for STALL_S, every thread's
stack goes to stderr (faulthandler) after one WARNING line, once per stall: a server that
freezes says where each thread waits. A freeze that holds the interpreter itself (a C
call that keeps it) stops this thread too; faulthandler's own timer, re-armed on every
check, writes the stacks then."""
from __future__ import annotations

import faulthandler
import logging
import threading
import time
from typing import Callable

log = logging.getLogger("dropout.watchdog")

STALL_S = 5.0   # well past the longest wait of either loop (SWEEP_S, IDLE_WAIT_S) and a long call
CHECK_S = 1.0


class Watchdog:
    """beats: name -> when that thread last came round its loop (time.monotonic())."""

    def __init__(self, beats: dict[str, Callable[[], float]], stall_s: float = STALL_S, check_s: float = CHECK_S):
        self.beats, self.stall_s, self.check_s = beats, stall_s, check_s
        self.stalled: set[str] = set()   # reported, not yet come round again

    def start(self) -> "Watchdog":
        threading.Thread(target=self._loop, name="watchdog", daemon=True).start()
        return self

    def _loop(self) -> None:
        while True:
            faulthandler.dump_traceback_later(2 * self.stall_s, exit=False)
            self.check(time.monotonic())
            time.sleep(self.check_s)

    def check(self, now: float) -> list[str]:
        """Report the threads newly stalled at `now`; returns their names."""
        new = []
        for name, beat in self.beats.items():
            late = now - beat()
            if late < self.stall_s:
                self.stalled.discard(name)
            elif name not in self.stalled:
                self.stalled.add(name)
                new.append(name)
                log.warning("event=stall thread=%s since_s=%.1f outcome=stacks_follow", name, late)
                faulthandler.dump_traceback(all_threads=True)
        return new
