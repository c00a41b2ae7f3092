"""gunicorn's gthread worker, bounded like `python -m app` (app/webserver.py). Every name of
gunicorn's that is not its documented configuration lives here, and this module refuses
to load under any gunicorn but the one pinned in requirements.txt.

    worker_class = "app.gunicorn_worker.Worker"      (deploy/gunicorn.conf.py)

What it changes in gunicorn 27's ThreadWorker:

* Connection slots (app.webserver.Slots): at most settings.max_connections open at once,
  and at most settings.max_connections_per_address from one client address (not counted
  behind a proxy: DP_TRUSTED_PROXIES > 0). One more is answered 503 "server busy: ..."
  naming the limit, from the accepting loop, and closed: it never waits for a thread.
  gunicorn itself would stop accepting at worker_connections and leave newcomers hanging
  in the kernel's queue. The pool has a thread for every slot (an open websocket holds
  one), so an accepted connection never waits for a thread either.
* A header deadline: a request's line and headers must arrive within
  settings.header_timeout_s in all (gunicorn waits 5 s for a connection's first bytes,
  then reads the rest with no timeout: a header line every 2 s held a thread for good).
  A client that sent part of them by then is answered 408 and cut.
* The pool's idle threads end after IDLE_S (concurrent.futures keeps every thread it ever
  started), so a burst of connections leaves no threads behind.
* gunicorn's own error pages (400, 414, 431, ...) carry the security headers of
  app/headers.py.
* A connection closes without lingering on the accepting thread (gunicorn's graceful
  close waits up to 2 s there for the peer to close: each client that does not stalls
  every newcomer).
* The worker's allocator keeps freed heap tops as `python -m app`'s does
  (hold_heap_tops): otherwise the trainer's heap was handed back and faulted in again
  at every large bucket step, and the image trained slower on the same CPU (docs/deploy.md,
  "Capacity of one instance").
"""
from __future__ import annotations

import collections
import ctypes
import ctypes.util
import errno
import socket
import threading
import time
from concurrent import futures

import gunicorn

from model_server.pins import check_pinned

IDLE_S = 5.0  # an idle pool thread ends after this long
# what werkzeug's server reads at once when it drains a request (serving.py, run_wsgi)
WERKZEUG_DRAIN_BYTES = 10_000_000


def check_version(installed: str = gunicorn.__version__, pinned: str | None = None) -> None:
    """SystemExit, naming both versions, unless gunicorn is the pinned one."""
    check_pinned("gunicorn", installed, "app/gunicorn_worker.py", pinned)


check_version()

from gunicorn.workers import gthread  # noqa: E402  (after the version check)

from .headers import add_to_head  # noqa: E402
from .settings import Serving, Settings  # noqa: E402
from .webserver import refuse, slots_for, too_slow  # noqa: E402


def hold_heap_tops(nbytes: int = WERKZEUG_DRAIN_BYTES) -> bool:
    """Allocate and free nbytes with the C library's malloc, as `python -m app` does on
    its first request: werkzeug drains every request with rfile.read(10_000_000), a
    buffer glibc maps on its own and unmaps when it is freed, which raises glibc's dynamic
    thresholds. Without it a gunicorn worker kept glibc's lower start-up thresholds: each
    bucket step's large tensors, freed at the top of the trainer's heap, were given back
    (madvise) and faulted in again by the next step, many times the page faults of the
    trainer under `python -m app` (the figures: docs/deploy.md). The thresholds only grow and stay
    dynamic; model_server.memory.give_back still returns freed memory after runs leave.
    Elsewhere than glibc a malloc and a free are all it costs. True if it allocated."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        malloc, free = libc.malloc, libc.free
    except (OSError, AttributeError):
        return False
    malloc.restype, malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    free.restype, free.argtypes = None, [ctypes.c_void_p]
    block = malloc(nbytes)
    if not block:
        return False
    free(block)
    return True


class _HeaderClock:
    """The socket gunicorn's parser reads a request from: while armed, its reads share
    one deadline; past it, a client that sent part of a request gets a 408, and the
    parser sees the end of input (gunicorn then closes the connection quietly)."""

    def __init__(self, sock: socket.socket, header_timeout: float, frame_ancestors: str):
        self.sock, self.header_timeout, self.frame_ancestors = sock, header_timeout, frame_ancestors
        self.deadline: float | None = None
        self.got = 0

    def arm(self) -> None:
        self.deadline, self.got = time.monotonic() + self.header_timeout, 0

    def disarm(self) -> None:
        self.deadline = None

    def recv(self, n: int) -> bytes:
        if self.deadline is None:
            return self.sock.recv(n)
        left = self.deadline - time.monotonic()
        prior = self.sock.gettimeout()
        try:
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            data = self.sock.recv(n)
            self.got += len(data)
            return data
        except TimeoutError:
            self.deadline = None
            if self.got:
                try:
                    self.sock.setblocking(False)
                    self.sock.send(too_slow(self.header_timeout, self.frame_ancestors))
                except OSError:
                    pass
            return b""
        finally:
            try:
                self.sock.settimeout(prior)
            except OSError:
                pass

    def __getattr__(self, name):
        return getattr(self.sock, name)


class _Conn(gthread.TConn):
    """A connection that gives its slot back when closed, and reads headers by the clock."""

    def __init__(self, cfg, sock, client, server, clock: _HeaderClock, release):
        super().__init__(cfg, sock, client, server)
        self.clock, self._release = clock, release

    def init(self):
        fresh = not self.initialized
        super().init()
        unreader = getattr(self.parser, "unreader", None)
        if fresh and unreader is not None and getattr(unreader, "sock", None) is self.sock:
            unreader.sock = self.clock

    def close(self, graceful=False):
        release, self._release = self._release, None
        try:
            if graceful:
                _close_without_waiting(self.sock)
            else:
                super().close(False)
        finally:
            if release is not None:
                release()


def _close_without_waiting(sock: socket.socket, max_drain: int = 65536) -> None:
    """gunicorn's graceful close (util.close_graceful) lingers up to 2 s for the peer to
    close, on the worker's one accepting thread: a client that keeps its end open (the
    slow-header attack, cut) stalled every newcomer that long. Here: FIN, drain what has
    arrived already (so the kernel sends no reset over unread bytes), close."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.setblocking(False)
        drained = 0
        while drained < max_drain:
            data = sock.recv(4096)
            if not data:
                break
            drained += len(data)
    except OSError:
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass


class _SecureErrors:
    """The socket gunicorn writes an error page to: the page gets the security headers."""

    def __init__(self, sock, frame_ancestors: str):
        self._sock, self._frame_ancestors = sock, frame_ancestors

    def sendall(self, data, *flags):
        return self._sock.sendall(add_to_head(bytes(data), self._frame_ancestors), *flags)

    def send(self, data, *flags):
        return self._sock.send(add_to_head(bytes(data), self._frame_ancestors), *flags)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class ElasticPool:
    """A thread pool (submit, shutdown) whose idle threads end after idle_s."""

    def __init__(self, max_workers: int, idle_s: float = IDLE_S):
        self.max_workers, self.idle_s = max_workers, idle_s
        self.cv = threading.Condition()
        self.jobs: collections.deque = collections.deque()
        self.threads = self.idle = 0
        self.closed = False

    def submit(self, fn, *args, **kwargs) -> futures.Future:
        future: futures.Future = futures.Future()
        with self.cv:
            if self.closed:
                raise RuntimeError("cannot submit after shutdown")
            self.jobs.append((future, fn, args, kwargs))
            if self.idle >= len(self.jobs):
                self.cv.notify()
            elif self.threads < self.max_workers:
                self.threads += 1
                threading.Thread(target=self._work, name="gthread-pool", daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            with self.cv:
                self.idle += 1
                deadline = time.monotonic() + self.idle_s
                while not self.jobs and not self.closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.cv.wait(left)
                self.idle -= 1
                if not self.jobs or self.closed:
                    self.threads -= 1
                    return
                future, fn, args, kwargs = self.jobs.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as e:  # noqa: BLE001 (handed to the future, as concurrent.futures does)
                future.set_exception(e)

    def shutdown(self, wait: bool = True, **_kwargs) -> None:
        with self.cv:
            self.closed = True
            self.cv.notify_all()


class Worker(gthread.ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        settings, serving = Settings(), Serving()
        self.frame_ancestors = settings.frame_ancestors
        self.header_timeout = settings.header_timeout_s
        cap = min(settings.max_connections, self.cfg.threads)  # every open connection has a thread
        settings.max_connections = cap
        self.slots = slots_for(settings, serving)
        # gunicorn stops accepting at worker_connections: here it always accepts, and
        # refuses (Slots) past the cap instead of leaving a newcomer hanging
        self.worker_connections = cap + 1
        self.max_keepalived = cap

    @classmethod
    def check_config(cls, cfg, log):
        pass  # gunicorn's warning counts keep-alive room as worker_connections - threads; here it is the cap

    def init_process(self):
        if self.cfg.threads < Settings().max_connections:
            self.log.warning("threads (%d) is below DP_MAX_CONNECTIONS (%d): at most %d connections at once",
                             self.cfg.threads, Settings().max_connections, self.cfg.threads)
        hold_heap_tops()  # (in the worker, before the app loads: its trainer allocates here)
        super().init_process()

    def get_thread_pool(self):
        return ElasticPool(self.cfg.threads)

    def accept(self, listener):
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        address = client[0] if isinstance(client, tuple) else ""
        refusal = self.slots.take(address)
        if refusal is not None:
            refuse(sock, refusal)
            return
        try:
            self.nr_conns += 1
            sock.setblocking(True)
            clock = _HeaderClock(sock, self.header_timeout, self.frame_ancestors)
            conn = _Conn(self.cfg, sock, client, listener.getsockname(), clock,
                         lambda: self.slots.give(address))
        except BaseException:
            self.nr_conns -= 1
            self.slots.give(address)
            sock.close()
            raise
        self.enqueue_req(conn)

    def handle(self, conn):
        conn.clock.arm()
        return super().handle(conn)

    def handle_request(self, req, conn):
        conn.clock.disarm()  # the headers are in
        return super().handle_request(req, conn)

    def handle_error(self, req, client, addr, exc):
        return super().handle_error(req, _SecureErrors(client, self.frame_ancestors), addr, exc)
