"""One socket per tab (issue 25, item 5): the playground, a lesson with live runs and the
compare page each open exactly one websocket, their runs are multiplexed over it by run
id (each frame names its run and goes to that run only), and after a reconnect every
live run is configured again, once."""
from __future__ import annotations

import json
import re
import time

import pytest

pytestmark = pytest.mark.browser

LIVE = 60_000
CONFIGURE = re.compile(r'^42\d*\["configure"')


class Sockets:
    """The page's websockets and the 'configure' events sent on each."""

    def __init__(self, page):
        self.opened: list[str] = []
        self.configures: list[dict] = []   # {socket, run}
        page.on("websocket", self.on_socket)

    def on_socket(self, ws):
        index = len(self.opened)
        self.opened.append(ws.url)

        def sent(payload):
            if isinstance(payload, str) and CONFIGURE.match(payload):
                body = json.loads(payload[payload.index("["):])
                self.configures.append({"socket": index, "run": body[1].get("run")})
        ws.on("framesent", sent)

    def runs_configured_on(self, socket: int) -> list[str]:
        return sorted(c["run"] for c in self.configures if c["socket"] == socket)


def wait_until(page, check, what: str, timeout_s: float = 60) -> None:
    """Poll check() while the page's events are delivered (Playwright delivers them during its calls)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(100)


def drop_socket(page, conn_js: str) -> None:
    """Close the tab's websocket under socket.io (as a network drop would): it reconnects."""
    page.evaluate(f"() => {{ const s = {conn_js}.socket; s.io.engine.transport.ws.close(); }}")


def test_the_playground_opens_one_socket_and_reconfigures_its_run_once_after_a_reconnect(page, live_server):
    sockets = Sockets(page)
    page.goto(live_server.url + "/#p=0.5,0.5")
    page.wait_for_function("() => window.__dp && window.__dp.info && window.__dp.drawn", timeout=LIVE)
    page.click("[data-role=play]")
    page.wait_for_function("() => window.__dp.playing && window.__dp.drawn.header.step > 20", timeout=LIVE)
    assert len(sockets.opened) == 1
    assert sockets.runs_configured_on(0) == ["main"]
    drop_socket(page, "window.__dp.conn")
    # a fresh session: the run is configured again, and draws again
    wait_until(page, lambda: sockets.runs_configured_on(1) == ["main"], "the run configured on the new socket")
    page.wait_for_function("() => window.__dp.info && window.__dp.drawn", timeout=LIVE)
    page.wait_for_timeout(1500)  # time for a second configure, if one were coming
    assert len(sockets.opened) == 2  # the tab's one socket, reopened
    assert sockets.runs_configured_on(1) == ["main"]
    assert page.errors == [] or all("WebSocket" in e for e in page.errors), page.errors


def test_a_lesson_runs_its_live_runs_on_the_tabs_one_socket(page, live_server):
    sockets = Sockets(page)
    page.goto(live_server.url + "/lessons#thinned")
    page.wait_for_function("() => window.__lesson && window.__lesson.id === 'thinned'", timeout=LIVE)
    page.click(".predict button.link")
    page.wait_for_function("() => window.__lesson.updates >= 2", timeout=LIVE)
    # another lesson, two runs side by side: still the same socket
    page.goto(live_server.url + "/lessons#placement")
    page.wait_for_function("() => window.__lesson && window.__lesson.id === 'placement'", timeout=LIVE)
    page.click(".predict button.link")
    page.wait_for_function("() => window.__lesson.updates >= 2", timeout=LIVE)
    assert len(sockets.opened) == 1
    runs = sockets.runs_configured_on(0)
    assert len(runs) >= 3 and len(set(runs)) == len(runs), runs  # a fresh id for each run
    assert page.evaluate("() => window.__lesson.problems") == []


def test_compare_runs_share_one_socket_and_each_gets_its_own_frames(page, live_server):
    sockets = Sockets(page)
    page.goto(live_server.url + "/compare#data=moons&points=200&hidden=16,16&steps=3000&runs=3&a.p=0&b.p=0.5&c.p=0.2")
    page.wait_for_function("() => window.__compare && window.__compare.runs.length === 3 && "
                           "window.__compare.runs.every(r => r.frames > 3)", timeout=LIVE)
    page.evaluate("""() => {
      window.__seen = [];
      for (const r of window.__compare.runs) {
        r.addEventListener('frame', e => window.__seen.push([r.id, e.detail.header.run, e.detail.header.p.join()]));
      }
    }""")
    page.wait_for_function("() => window.__seen.length > 30", timeout=LIVE)
    seen = page.evaluate("() => window.__seen")
    ids = page.evaluate("() => window.__compare.runs.map(r => r.id)")
    assert len(set(ids)) == 3
    assert all(run == named for run, named, _ in seen)  # a frame goes to the run it names
    p_of = {run: p for run, _, p in seen}
    assert [p_of.get(i) for i in ids] == ["0,0", "0.5,0.5", "0.2,0.2"]
    assert len(sockets.opened) == 1
    assert sockets.runs_configured_on(0) == sorted(ids)
    # after a reconnect every run is configured again, once, and trains on
    drop_socket(page, "window.__compare.runs[0].conn")
    wait_until(page, lambda: sockets.runs_configured_on(1) == sorted(ids), "every run configured on the new socket")
    page.wait_for_function("() => window.__compare.runs.every(r => r.last && r.info)", timeout=LIVE)
    page.wait_for_timeout(1500)
    assert len(sockets.opened) == 2
    assert sockets.runs_configured_on(1) == sorted(ids)
