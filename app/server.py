"""uvicorn in a second thread: bind, serve the app, stop on a flag; never take the core down."""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
import time
from typing import TYPE_CHECKING

from app.address import ListenAddress
from app.config import DEFAULT_HTTP_MODE
from app.core import HEARTBEAT_INTERVAL, Core

if TYPE_CHECKING:
    from app.quiet_server import QuietServer

log = logging.getLogger("pidone")

STALL_AFTER = 10.0
"""Seconds the server's event loop may go without a turn, beyond any time the core itself
stood still, before the core's watch calls it stuck; uvicorn reports a turn every second or
two (its callback_notify). Long enough that a busy node does not explain it."""
STOP_TIMEOUT = 1.0
"""Seconds pidone waits for in-flight requests when it leaves; it exits with os._exit anyway."""

# uvicorn's knobs, set on purpose rather than inherited (see README "HTTP API"). Connections,
# request heads and unsent answers are bounded by app/guard.py, not by uvicorn's
# limit_concurrency, which answers 503 to every request, probes included, once slow clients
# hold that many connections.
KEEP_ALIVE_SECONDS = 5
BACKLOG = 1024
FILE_DESCRIPTORS = 4096
"""Enough for app/guard.py's 2 * 256 connections, plus the BACKLOG that asyncio may accept in
one turn of its loop before the guard sees them, plus the loop's and the log's own."""


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
        # The watch's own bookkeeping, kept by the core thread alone (see `trouble`).
        self._last_asked = self._last_turn
        self._turn_seen = self._last_turn
        self._excused = 0.0
        self._unix_socket: UnixSocketFile | None = None

    def start(self) -> bool:
        """Bind here, so that a bind failure is reported whatever happens next; import uvicorn
        and serve in the thread, so that the core loop starts without waiting for them.
        True when the thread runs; False (and one line on stderr) when not."""
        _raise_file_limit()
        try:
            sock = listen(self.address, self.core.config.http_mode)
        except BindError as failure:
            log.error("HTTP server not started: cannot listen on %s: %s; the child runs on without it",
                      self.core.config.http, failure)
            return False
        if self.address.unix_path is not None:
            self._unix_socket = UnixSocketFile.of(self.address.unix_path)
        thread = threading.Thread(target=self._serve, args=(sock,), name="pidone-http", daemon=True)
        try:
            thread.start()
        except RuntimeError as failure:  # no task left to make: the cgroup's pids.max, ulimit -u
            sock.close()
            self._remove_unix_socket()
            log.error("HTTP server not started: %s; the child runs on without it", failure)
            return False
        self._thread = thread
        log.info("HTTP API listening on %s", self.core.config.http)
        return True

    def trouble(self) -> str | None:
        """For the core's watch, about once a second: None while the server can answer, else
        what keeps it from answering (a stuck loop answers nobody, /health included).

        A loop is stuck when it has not turned for STALL_AFTER seconds that the core's own
        lateness does not explain: when the machine (or the process) stands still, the core
        wakes late too, and that time is nobody's fault."""
        now = time.monotonic()
        previous, self._last_asked = self._last_asked, now
        if self._thread is None or not self._thread.is_alive():
            return "its thread has ended"
        if self._server is None or not self._server.started:
            return None  # still importing and starting up
        last_turn = self._last_turn
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

    async def _note_turn(self) -> None:
        self._last_turn = time.monotonic()

    def stop(self) -> None:
        """Ask uvicorn to finish in-flight requests and close, waiting a bounded time; remove
        the unix socket file."""
        self._stopping = True
        server = self._server
        if server is not None and server.started:
            server.stop()
            self._thread.join(STOP_TIMEOUT + 0.5)
        # Still importing or failed: nothing to close, os._exit ends the thread.
        self._remove_unix_socket()

    def _remove_unix_socket(self) -> None:
        if self._unix_socket is not None:
            self._unix_socket.remove()
            self._unix_socket = None

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

        from app.guard import Guard
        from app.quiet_server import QuietServer
        from app.web import build_app

        verbose = self.core.config.verbosity >= 2
        _route_uvicorn_logs(verbose)
        guard = Guard()
        config = uvicorn.Config(
            build_app(self.core, unix_socket=self.address.unix_path is not None,
                      dropped_connections=guard.dropped),
            http=guard.protocol(),  # type: ignore[arg-type]  # a factory, as uvicorn calls it
            loop="asyncio",
            lifespan="off",
            ws="none",
            interface="asgi3",
            log_config=None,
            access_log=False,  # app/web.py writes it at -vv: the path only, never the query
            proxy_headers=False,  # the peer address decides the loopback rule: never trust a header
            server_header=False,
            date_header=True,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=int(STOP_TIMEOUT),
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


def listen(address: ListenAddress, unix_mode: int = DEFAULT_HTTP_MODE) -> socket.socket:
    """A bound, listening socket for `address`; ":PORT" is dual-stack IPv6 when the host has
    IPv6, else IPv4 0.0.0.0; a unix socket gets the permissions `unix_mode`. Bound here rather
    than by uvicorn, which exits on bind errors."""
    if address.unix_path is not None:
        return _listen_unix(address.unix_path, unix_mode)
    try:
        sock, target = _unbound_socket(address)
    except OSError as failure:
        raise BindError(failure.strerror or str(failure)) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(target)
        sock.listen(BACKLOG)
    except OSError as failure:
        sock.close()
        raise BindError(failure.strerror or str(failure)) from None
    return sock


def _listen_unix(path: str, mode: int) -> socket.socket:
    """A unix socket at `path`, made with `mode` (the umask for the bind: a chmod afterwards
    would leave a moment with the wider mode, or follow a symlink put there meanwhile)."""
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Process-wide, but only the log writer runs besides this thread, and it makes no files.
    umask = os.umask(0o777 & ~mode)
    try:
        sock.bind(path)
        sock.listen(BACKLOG)
    except OSError as failure:
        sock.close()
        raise BindError(failure.strerror or str(failure)) from None
    finally:
        os.umask(umask)
    return sock


def _remove_stale_socket(path: str) -> None:
    """Make way at `path` for a new socket when it holds a stale one: a socket nobody listens
    on, left by a pidone that was killed (docker restart). Never another kind of file, and
    never through a symlink: lstat, not stat."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as failure:
        raise BindError(failure.strerror or str(failure)) from None
    if not stat.S_ISSOCK(found.st_mode):
        kind = "a symlink" if stat.S_ISLNK(found.st_mode) else "not a socket"
        raise BindError(f"{path} exists and is {kind}; pidone replaces only a stale socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)  # a listener with a full backlog must not hold pidone up
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            pass  # nobody listens: stale
        except OSError as failure:
            raise BindError(f"{path} is a socket pidone cannot check: "
                            f"{failure.strerror or failure}") from None
        else:
            raise BindError(f"another process listens on {path}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # gone meanwhile: the bind will tell if something else came
    except OSError as failure:
        raise BindError(f"cannot remove the stale socket {path}: {failure.strerror}") from None


class UnixSocketFile:
    """The socket file pidone made, to remove when it leaves: only if it is still that file."""

    def __init__(self, path: str, identity: tuple[int, int] | None) -> None:
        self.path = path
        self.identity = identity

    @classmethod
    def of(cls, path: str) -> UnixSocketFile:
        return cls(path, _identity(path))

    def remove(self) -> None:
        if self.identity is not None and _identity(self.path) == self.identity:
            try:
                os.unlink(self.path)
            except OSError:
                pass  # leaving anyway; the next pidone replaces a stale socket


def _identity(path: str) -> tuple[int, int] | None:
    try:
        found = os.lstat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino) if stat.S_ISSOCK(found.st_mode) else None


def _unbound_socket(address: ListenAddress) -> tuple[socket.socket, object]:
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
    """uvicorn's and asyncio's own lines go through pidone's log (one line each, no
    tracebacks); a client's garbage is not worth a warning unless -vv asked for detail."""
    ours = logging.getLogger("pidone")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = False
    for name in ("uvicorn", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers[:] = list(ours.handlers)
        logger.propagate = False
        logger.setLevel(logging.DEBUG if verbose else logging.ERROR)
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).propagate = True


def _raise_file_limit() -> None:
    """Raise pidone's own soft RLIMIT_NOFILE to FILE_DESCRIPTORS when the hard limit allows
    (as Go programs do at start). A container's soft limit is often 1024: a flood of clients
    then makes accept() fail with EMFILE, and asyncio stops accepting for a second at a time,
    probes included. The child, spawned before, keeps the limit it was given."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FILE_DESCRIPTORS if hard == resource.RLIM_INFINITY else min(hard, FILE_DESCRIPTORS)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass  # not allowed here: the limit stays, and so does the risk above
