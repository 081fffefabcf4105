"""The HTTP side's threads: bind, answer probes at the front door (app/http/front.py), serve the app
with uvicorn; stop on a flag; never take the core down."""

from __future__ import annotations

import threading
import time

from app.http.address import ListenAddress
from app.core.loop import HEARTBEAT_INTERVAL, Core
from app.log import log

TYPE_CHECKING = False  # the main thread only starts the thread: the socket module, typing,
if TYPE_CHECKING:      # logging and uvicorn are imported there, while the core already runs.
    import socket

    from app.http.front import FrontDoor
    from app.http.listen import UnixSocketFile
    from app.http.quiet_server import QuietServer, WatchedSelector


STALL_AFTER = 10.0
"""Seconds the server's event loop may stay away from its selector (running callbacks), beyond
any time the core itself stood still, before the core's watch calls it stuck. Long enough that
a busy node does not explain it."""
STOP_TIMEOUT = 1.0
"""Seconds pidone waits for in-flight requests when it leaves; it exits with os._exit anyway."""

# uvicorn's knobs, set on purpose rather than inherited (see docs/http.md). Connections
# are accepted, counted per peer and held until their first head by app/http/front.py, which
# answers the probes itself; request heads and unsent answers in uvicorn's loop are bounded by
# app/http/guard.py, not by uvicorn's limit_concurrency, which answers 503 to every request,
# probes included, once slow clients hold that many connections.
KEEP_ALIVE_SECONDS = 5


class HttpServer:
    """The HTTP side-car's life: `start` (bind, import, serve in a thread), `stop`."""

    def __init__(self, core: Core, address: ListenAddress) -> None:
        self.core = core
        self.address = address
        self._server: QuietServer | None = None  # once the thread has built it
        self._selector: WatchedSelector | None = None  # the server's loop's, likewise
        self._front: FrontDoor | None = None  # likewise
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._thread_ended = False
        # The watch's own bookkeeping, kept by the core thread alone (see `trouble`).
        self._last_asked = time.monotonic()
        self._turn_seen = self._last_asked
        self._excused = 0.0
        self._unix_socket: UnixSocketFile | None = None
        self._cannot_listen = False
        """Set by the HTTP thread when it did not start serving (it cannot bind, too few
        file descriptors): said once, nothing to watch."""

    def start(self) -> bool:
        """Start the thread that binds, imports uvicorn and serves: the core loop starts
        without waiting for any of it. True when the thread runs; False (and one line on
        stderr) when not."""
        thread = threading.Thread(target=self._serve, name="pidone-http", daemon=True)
        try:
            thread.start()
        except RuntimeError as failure:  # no task left to make: the cgroup's pids.max, ulimit -u
            log.error("HTTP server not started: %s; the child runs on without it", failure)
            return False
        self._thread = thread
        return True

    def trouble(self) -> str | None:
        """For the core's watch, about once a second: None while the server can answer, else
        what keeps it from answering (a stuck loop answers nobody, /health included).

        A loop is stuck when it has been away from its selector, running callbacks, for
        STALL_AFTER seconds that the core's own lateness does not explain: when the machine
        (or the process) stands still, the core wakes late too, and that time is nobody's
        fault. A loop waiting in its selector is idle, not stuck, however long it waits."""
        now = time.monotonic()
        previous, self._last_asked = self._last_asked, now
        if self._cannot_listen:
            return None  # said once when it failed; nothing runs that could answer
        if self._thread_ended:
            return "its thread has ended"
        server, selector, front = self._server, self._selector, self._front
        if server is None or selector is None or not server.started:
            return None  # still importing and starting up
        if front is not None and not front.alive and not self._stopping:
            return "its front door's thread has ended"
        # A loop waiting in its selector answers as soon as a client comes: it turns now.
        last_turn = now if selector.waiting else selector.returned_at
        if last_turn != self._turn_seen:
            self._turn_seen, self._excused = last_turn, 0.0
        # The core stood still from when it was due to ask again until now: the part of that
        # since the loop's last turn explains as much of the loop's silence.
        self._excused += max(0.0, now - max(previous + HEARTBEAT_INTERVAL, last_turn))
        silent = now - last_turn
        if silent - self._excused < STALL_AFTER:
            return None
        return (f"its event loop has not turned for {silent:.0f}s, "
                f"{silent - self._excused:.0f}s of them while the core's did")

    def stop(self) -> None:
        """Let the requests in flight finish, waiting a bounded time; remove the unix socket
        file. With none in flight there is nothing to wait for: pidone's exit closes the idle
        connections, and the core leaves without handing the GIL to this thread and back
        (each handover a wait for a CPU on a busy node)."""
        self._stopping = True
        server = self._server  # the front door ends with uvicorn's loop, or with pidone
        if server is not None and server.started and server.busy():
            server.stop()
            self._thread.join(STOP_TIMEOUT + 0.5)
        # Still importing, failed or idle: nothing to finish, os._exit ends the thread.
        self._remove_unix_socket()

    def _remove_unix_socket(self) -> None:
        if self._unix_socket is not None:
            self._unix_socket.remove()
            self._unix_socket = None

    def _serve(self) -> None:
        try:
            sock = self._listen()
            if sock is None:
                return
            self._run_uvicorn(sock)
        except BaseException as failure:  # SystemExit included: uvicorn exits on startup errors
            log.error("HTTP server stopped: %s: %s; the child runs on without it",
                      type(failure).__name__, failure)
            return
        finally:
            self._thread_ended = True
        if not self._stopping:
            # /health cannot report its own server gone: this line is the only trace of it.
            log.error("HTTP server stopped without being asked to; the child runs on without it")

    def _listen(self) -> socket.socket | None:
        from app.http.listen import (FEWEST_FILE_DESCRIPTORS, BindError, UnixSocketFile, listen,
                                raise_file_limit)

        if (limit := raise_file_limit()) < FEWEST_FILE_DESCRIPTORS:
            self._cannot_listen = True
            log.error("HTTP server not started: the open files limit is %d, it needs %d at "
                      "least; the child runs on without it", limit, FEWEST_FILE_DESCRIPTORS)
            return None
        try:
            sock = listen(self.address, self.core.config.http_mode)
        except BindError as failure:
            self._cannot_listen = True
            log.error("HTTP server not started: cannot listen on %s: %s; the child runs on without it",
                      self.core.config.http, failure)
            return None
        if self.address.unix_path is not None:
            self._unix_socket = UnixSocketFile.of(self.address.unix_path)
        log.info("HTTP API listening on %s", self.core.config.http)
        return sock

    def _run_uvicorn(self, sock: socket.socket) -> None:
        from app.http.lean_uvicorn import register_uvicorn
        from app.http.no_openssl import keep_out

        keep_out()  # before anything below imports ssl or hashlib
        register_uvicorn()
        import uvicorn

        from app.http.front import FrontDoor
        from app.http.guard import Drops, Guard
        from app.http.quiet_server import QuietServer, WatchedSelector, watched_loop
        from app.http.shares import ConnectionShares
        from app.http.uvicorn_log import route_uvicorn_logs
        from app.http.web import build_app

        verbose = self.core.config.verbosity >= 2
        route_uvicorn_logs(verbose)
        drops, shares = Drops(), ConnectionShares()
        guard = Guard(drops, shares)
        selector = WatchedSelector()
        config = uvicorn.Config(
            build_app(self.core, unix_socket=self.address.unix_path is not None, drops=drops),
            http=guard.protocol(),  # type: ignore[arg-type]  # a factory, as uvicorn calls it
            loop=watched_loop(selector),  # type: ignore[arg-type]  # likewise
            lifespan="off",
            ws="none",
            interface="asgi3",
            log_config=None,
            access_log=False,  # app/http/web.py writes it at -vv: the path only, never the query
            proxy_headers=False,  # the peer address decides the loopback rule: never trust a header
            server_header=False,
            date_header=False,  # app/http/web.py adds it: uvicorn's would need its loop to tick
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=int(STOP_TIMEOUT),
        )
        front: FrontDoor | None = None
        server = QuietServer(config, serving=lambda: front.start(), released=shares.give_back)
        front = FrontDoor(sock, self.core.snapshot, server.adopt, shares, drops, access_log=verbose)
        self._server, self._selector, self._front = server, selector, front
        if self._stopping:
            return
        try:
            server.run(sockets=[])  # the front door listens and hands connections over
        finally:
            front.stop()
