"""app/watchdog.py: a trainer or Reader that stops coming round its loop is reported once
per stall, with every thread's stack; and a running server's two loops keep beating."""
from __future__ import annotations

import time

from app.watchdog import STALL_S, Watchdog
from conftest import live


def test_a_stall_is_reported_once_with_every_threads_stack(capfd, caplog):
    beats = {"trainer": 100.0, "websocket-reader": 100.0}
    dog = Watchdog({name: (lambda n=name: beats[n]) for name in beats}, stall_s=5.0)
    assert dog.check(104.0) == []
    beats["trainer"] = 104.0
    assert dog.check(106.0) == ["websocket-reader"]       # the Reader has not come round for 6 s
    err = capfd.readouterr().err
    # the stacks (faulthandler writes at most 100 threads: a test process may hold more)
    assert "(most recent call first)" in err and 'File "' in err
    assert "event=stall thread=websocket-reader since_s=6.0" in caplog.text
    assert dog.check(107.0) == []                          # the same stall: said once
    beats["websocket-reader"] = 107.5                     # it comes round ...
    assert dog.check(108.0) == []
    assert dog.check(113.0) == ["trainer", "websocket-reader"]  # ... and both stall later: said again


def test_a_running_servers_loops_beat_and_it_reports_no_stall():
    with live() as server:
        time.sleep(2 * STALL_S + 1)  # past the watchdog's stall time, with nothing to do
        log = server.log_path.read_text() if server.log_path else ""
        assert "event=stall" not in log and "Thread 0x" not in log
