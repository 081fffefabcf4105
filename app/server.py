"""uvicorn in a second thread: bind, serve the app, stop on a flag; never take the core down."""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING

from app.address import ListenAddress
from app.core import Core

if TYPE_CHECKING:
    from app.quiet_server import QuietServer

log = logging.getLogger("pidone")

STALL_AFTER = 5.0
"""Seconds without a turn of the server's event loop before the core's watch calls it stuck;
uvicorn reports a turn every second or two (its callback_notify)."""
STOP_TIMEOUT = 1.0
"""Seconds pidone waits for in-flight requests when it leaves; it exits with os._exit anyway."""

# uvicorn's knobs, set on purpose rather than inherited (see README "HTTP API"). The number
# of connections is capped by app/guard.py, not by uvicorn's limit_concurrency, which answers
# 503 to every request, probes included, once slow clients hold that many connections.
KEEP_ALIVE_SECONDS = 5
MAX_INCOMPLETE_EVENT_BYTES = 16 * 1024
"""Request line plus headers; a larger head gets 400 and a closed connection."""
BACKLOG = 1024


class BindError(Exception):
    """The listening socket could not be made: one line on stderr, the child runs on."""


class HttpServer:
    """The HTTP side-car's life: `start` (bind, import, serve in a thread), `stop`."""

    def __init__(self, core: Core, address: ListenAddress) -> None:
        self.core = core
        self.address = address
        self._server: QuietServer | None = None  # once the thread has built it
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._last_turn = time.monotonic()

    def start(self) -> bool:
        """Bind here, so that a bind failure is reported whatever happens next; import uvicorn
        and serve in the thread, so that the core loop starts without waiting for them.
        True when the thread runs; False (and one line on stderr) when not."""
        try:
            sock = listen(self.address)
        except BindError as failure:
            log.error("HTTP server not started: cannot listen on %s: %s; the child runs on without it",
                      self.core.config.http, failure)
            return False
        thread = threading.Thread(target=self._serve, args=(sock,), name="pidone-http", daemon=True)
        try:
            thread.start()
        except RuntimeError as failure:  # no task left to make: the cgroup's pids.max, ulimit -u
            sock.close()
            log.error("HTTP server not started: %s; the child runs on without it", failure)
            return False
        self._thread = thread
        log.info("HTTP API listening on %s", self.core.config.http)
        return True

    def answering(self) -> bool:
        """For the core's watch: the thread lives and, once uvicorn serves, its event loop
        turns (a stuck loop answers nobody, /health included)."""
        if self._thread is None or not self._thread.is_alive():
            return False
        if self._server is None or not self._server.started:
            return True  # still importing and starting up
        return time.monotonic() - self._last_turn < STALL_AFTER

    async def _note_turn(self) -> None:
        self._last_turn = time.monotonic()

    def stop(self) -> None:
        """Ask uvicorn to finish in-flight requests and close, waiting a bounded time."""
        self._stopping = True
        server = self._server
        if server is None or not server.started:
            return  # still importing or failed: nothing to close, os._exit ends the thread
        server.stop()
        self._thread.join(STOP_TIMEOUT + 0.5)

    def _serve(self, sock: socket.socket) -> None:
        try:
            self._run_uvicorn(sock)
        except BaseException as failure:  # SystemExit included: uvicorn exits on startup errors
            log.error("HTTP server stopped: %s: %s; the child runs on without it",
                      type(failure).__name__, failure)
            return
        if not self._stopping:
            # /health cannot report its own server gone: this line is the only trace of it.
            log.error("HTTP server stopped without being asked to; the child runs on without it")

    def _run_uvicorn(self, sock: socket.socket) -> None:
        import uvicorn

        from app.guard import GuardedH11Protocol
        from app.quiet_server import QuietServer
        from app.web import build_app

        verbose = self.core.config.verbosity >= 2
        _route_uvicorn_logs(verbose)
        config = uvicorn.Config(
            build_app(self.core, unix_socket=self.address.unix_path is not None),
            http=GuardedH11Protocol,
            loop="asyncio",
            lifespan="off",
            ws="none",
            interface="asgi3",
            log_config=None,
            access_log=verbose,
            proxy_headers=False,  # the peer address decides the loopback rule: never trust a header
            server_header=False,
            date_header=True,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=int(STOP_TIMEOUT),
            h11_max_incomplete_event_size=MAX_INCOMPLETE_EVENT_BYTES,
            backlog=BACKLOG,
            callback_notify=self._note_turn,
            timeout_notify=1,
        )
        server = QuietServer(config)
        self._server = server
        if self._stopping:
            return
        self._last_turn = time.monotonic()  # the imports may have taken longer than STALL_AFTER
        server.run(sockets=[sock])


def listen(address: ListenAddress) -> socket.socket:
    """A bound, listening socket for `address`; ":PORT" is dual-stack IPv6 when the host has
    IPv6, else IPv4 0.0.0.0. Bound here rather than by uvicorn, which exits on bind errors."""
    try:
        sock, target = _unbound_socket(address)
    except OSError as failure:
        raise BindError(failure.strerror or str(failure)) from None
    try:
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(target)
        sock.listen(BACKLOG)
    except OSError as failure:
        sock.close()
        raise BindError(failure.strerror or str(failure)) from None
    return sock


def _unbound_socket(address: ListenAddress) -> tuple[socket.socket, object]:
    if address.unix_path is not None:
        return socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), address.unix_path
    if address.host is not None:
        family, kind, proto, _, target = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM)[0]
        return socket.socket(family, kind, proto), target
    if socket.has_ipv6:
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            return sock, ("::", address.port)
        except OSError:
            pass  # IPv6 disabled in this container: IPv4 alone
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM), ("0.0.0.0", address.port)


def _route_uvicorn_logs(verbose: bool) -> None:
    """uvicorn's own lines go through pidone's log (one line each, no tracebacks); a client's
    garbage is not worth a warning unless -vv asked for detail."""
    ours = logging.getLogger("pidone")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = False
    uvicorn_log = logging.getLogger("uvicorn")
    uvicorn_log.handlers[:] = list(ours.handlers)
    uvicorn_log.setLevel(logging.DEBUG if verbose else logging.ERROR)
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).propagate = True
