"""Long work yields between chunks: lesson experiments and sweeps call checkpoint().

    with yielding(job.checkpoint):    # the server, on the thread that runs the work
        sweep.step(200)               # ... which calls checkpoint() after every step

checkpoint() does nothing unless the calling thread runs under yielding(fn); then it
calls fn, which may block until the server's scheduler gives the thread another slice
of CPU (app/scheduler.py). The engine stays free of the server: it only says where a
pause is safe.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

_local = threading.local()


def checkpoint() -> None:
    """A safe point to pause long work (between two steps or passes)."""
    fn = getattr(_local, "fn", None)
    if fn is not None:
        fn()


@contextmanager
def yielding(fn: Callable[[], None]) -> Iterator[None]:
    """Run the block with fn called at each checkpoint() on this thread."""
    before = getattr(_local, "fn", None)
    _local.fn = fn
    try:
        yield
    finally:
        _local.fn = before
