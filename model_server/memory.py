"""Handing freed memory back to the operating system.

    memory.give_back()          # after runs left: at most once every MIN_INTERVAL_S
    memory.give_back(force=True)

glibc's malloc keeps what a program frees in its heaps (the main one and one arena per
thread that allocated) and returns pages only from a heap's top. A run's tensors are
freed in the middle of heaps full of other runs' tensors, so without help the process
kept nearly all of it after the runs ended (docs/limits.md, "Memory"). malloc_trim(0)
walks every arena and returns each free page (madvise), which brings RSS back to
where it was. Its cost grows with the heap, so it runs after runs leave, rate-limited
(docs/benchmarks.md). Elsewhere than glibc (musl, macOS) it does nothing.

    memory.limit_arenas()       # at start-up, before the server's threads allocate

glibc also gives each thread that allocates while the others hold the heaps an arena of
its own, up to eight per core. A crowd of connections (a thread each) left memory spread
over a dozen arenas that trimming could not fully return; two arenas are plenty for a
server whose tensors are the trainer thread's (mallopt's M_ARENA_MAX, as the
MALLOC_ARENA_MAX variable would set it).

    memory.freeze_startup()     # once the server is built, before it serves

Python's cycle collector, on a full pass, walks every object alive: with torch, sklearn
and the app loaded, several hundred thousand of them, made at start-up and never freed.
Such a pass came every so often under a busy crowd's events and held the interpreter
(every visitor's frames) for as long as it took (docs/benchmarks.md, round 13).
gc.freeze() moves what exists after start-up out of the collector's view; later passes
walk only what the visitors' work made.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time

MIN_INTERVAL_S = 1.0   # at most one trim a second however many runs leave
ARENAS = 2             # glibc arenas at most (M_ARENA_MAX)
M_ARENA_MAX = -8       # mallopt's parameter number (glibc's malloc.h)


def _load_libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim, mallopt = libc.malloc_trim, libc.mallopt
    except (OSError, AttributeError):   # not glibc
        return None, None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return trim, mallopt


_trim, _mallopt = _load_libc()
_lock = threading.Lock()
_last = -float("inf")
_pending: threading.Timer | None = None


def available() -> bool:
    """Whether this C library can hand memory back (glibc)."""
    return _trim is not None


def limit_arenas(n: int = ARENAS) -> bool:
    """At most n malloc arenas from now on (threads beyond share them). True if set."""
    return _mallopt is not None and _mallopt(M_ARENA_MAX, n) == 1


def freeze_startup() -> None:
    """Collect start-up's garbage once, then keep every object alive now out of the cycle
    collector's passes (gc.freeze: they live as long as the process anyway)."""
    gc.collect()
    gc.freeze()


def give_back(force: bool = False) -> bool:
    """Return the allocator's free pages to the system (glibc's malloc_trim(0)). At most
    once every MIN_INTERVAL_S: a call inside it trims once the interval is over instead
    (on a timer thread, one at a time), so the last of many runs leaving is given back
    too. force: now, whatever the interval. True if it trimmed now."""
    global _last, _pending
    if _trim is None:
        return False
    with _lock:
        now = time.monotonic()
        wait = _last + MIN_INTERVAL_S - now
        if not force and wait > 0:
            if _pending is None:
                _pending = threading.Timer(wait, _deferred)
                _pending.daemon = True
                _pending.start()
            return False
        _last = now
    _trim(0)   # (ctypes lets go of the interpreter meanwhile)
    return True


def _deferred() -> None:
    global _pending
    with _lock:
        _pending = None
    give_back(force=True)
