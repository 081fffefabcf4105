"""The front door: the one listening socket, in a thread of its own, where every connection
waits for its first request head and probes are answered from the core's snapshot.

Issue 22: served by one event loop in arrival order, the probe's answer depended on everyone
else's traffic, and whatever is cheap to send and costly to serve starved it (idle connections,
heads of thousands of headers, gzip scrapes). Here no other route can block the probes:
- Accepting, holding idle connections and reading first heads costs a few system calls each;
  a head is measured (bytes received, header lines) before anything parses it (app/http/head.py).
- GET/HEAD /health, /livez and /readyz are answered here, in this thread, from
  Core.snapshot(): the app's event loop, whatever it is busy with, is not on their path, and
  this thread gets the GIL within the switch interval. Kubelet's httpGet on the documented
  port reaches them as before.
- Every other request is handed with its connection to uvicorn's loop (`hand_over`), which
  serves it and whatever follows on that connection.
- Connections are counted per peer (app/http/shares.py). Past the budget of file descriptors the
  peer holding the most loses its longest waiting connection (max-min fairness): one peer
  cannot take another's share, and no connection goes while an elder of its peer waits.
  Connections past the budget are refused that way, not held off in the kernel's accept
  queue, where the probe's would wait behind them.
- accept() failing for want of file descriptors makes room, or stops accepting for
  ACCEPT_PAUSE, counted, instead of failing again at once.
"""

from __future__ import annotations

import errno
import json
import re
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from email.utils import formatdate

from app.http import guard, health, reports
from app.excerpt import excerpt
from app.http.head import AMBIGUOUS_LENGTH, HeadRefused, head_end
from app.log import ERROR, log
from app.http.shares import ConnectionShares, peer_of
from app.core.state import Snapshot

READ_BYTES = 16 * 1024
ACCEPTS_PER_TURN = 256
"""Connections accepted before the loop looks at the others again."""
ACCEPT_PAUSE = 0.25
"""Seconds without accepting after accept() failed for want of file descriptors."""
RESERVED_DESCRIPTORS = 64
"""File descriptors kept out of the connections' budget: the loops', the log's, the core's."""
PEER_SHARE = 0.5
"""The part of the connections' budget past which a peer's dropped connections are counted
as `peer_share` rather than `room_needed`."""
OUT_OF_DESCRIPTORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

PROBES: dict[bytes, Callable[[Snapshot, float], health.Verdict]] = {
    b"/health": health.health, b"/livez": health.liveness, b"/readyz": health.readiness,
}
HEADER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[ \t]*[^\x00-\x08\x0a-\x1f\x7f]*\r?")
"""A header line h11 would take: a token, a colon, a value without control characters."""
STATUS_LINES = {200: b"HTTP/1.1 200 OK\r\n", 503: b"HTTP/1.1 503 Service Unavailable\r\n",
                500: b"HTTP/1.1 500 Internal Server Error\r\n", 400: b"HTTP/1.1 400 Bad Request\r\n"}


class Visitor:
    """A connection the front door holds: accepted, its next request head not yet complete."""

    __slots__ = ("sock", "peer", "client", "buffer", "since", "ended")

    def __init__(self, sock: socket.socket, peer: str, client: tuple[str, int] | None, now: float) -> None:
        self.sock = sock
        self.peer = peer
        self.client = client
        self.buffer = bytearray()
        self.since = now
        """When it was accepted or its last answer was sent: its head's deadline counts from then."""
        self.ended = False
        """The client has shut down its side: what it sent is answered, then it is closed."""


class ProbeRequest:
    __slots__ = ("decide", "path", "method", "version", "close")

    def __init__(self, decide: Callable[[Snapshot, float], health.Verdict], path: str, method: str,
                 version: str, close: bool) -> None:
        self.decide, self.path, self.method, self.version, self.close = decide, path, method, version, close


class FrontDoor:
    """The listener's thread. `hand_over(sock, received, peer)` gives a connection to the
    app's loop (from this thread); `shares` counts connections wherever they are."""

    def __init__(self, listener: socket.socket, snapshot: Callable[[], Snapshot],
                 hand_over: Callable[[socket.socket, bytes, str], None], shares: ConnectionShares,
                 drops: guard.Drops, access_log: bool) -> None:
        import resource

        self.listener = listener
        self.snapshot = snapshot
        self.hand_over = hand_over
        self.shares = shares
        self.drops = drops
        self.access_log = access_log
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        soft = 1 << 20 if soft == resource.RLIM_INFINITY else soft
        self.budget = max(16, soft - RESERVED_DESCRIPTORS)
        """Connections open at once, here and in the app's loop, before room is made."""
        self.peer_share = int(self.budget * PEER_SHARE)
        self._selector = selectors.DefaultSelector()
        self._waiting: dict[int, Visitor] = {}
        """Held connections by file descriptor, longest waiting first (insertion order)."""
        self._by_peer: dict[str, dict[int, Visitor]] = {}
        self._ready: deque[Visitor] = deque()
        """Connections with a pipelined head left to answer: one request each per turn."""
        self._accepting_again = 0.0
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._second = -1
        self._date = b""

    # -- life -------------------------------------------------------------------------------

    def start(self) -> None:
        self.listener.setblocking(False)
        self._selector.register(self.listener, selectors.EVENT_READ, None)
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._wake_r)
        self._thread = threading.Thread(target=self._serve, name="pidone-front", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """From any thread: stop accepting and close what is held."""
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _serve(self) -> None:
        while not self._stopping:
            try:
                self._turn()
            except Exception as failure:  # a bug here must not end the probes' thread
                log.about_client(ERROR, "HTTP front door: %s: %s (pidone's bug); serving on",
                                 type(failure).__name__, excerpt(str(failure), 200))
                time.sleep(0.1)
        for visitor in list(self._waiting.values()):
            self._close(visitor)
        self._selector.close()
        self.listener.close()

    def _turn(self) -> None:
        now = time.monotonic()
        if self._ready:
            timeout: float | None = 0.0
        elif self._waiting or self.drops.unlogged():
            timeout = guard.SWEEP_SECONDS
        else:
            timeout = None
        if self._accepting_again:
            timeout = max(0.0, min(timeout if timeout is not None else ACCEPT_PAUSE,
                                   self._accepting_again - now))
        for key, _ in self._selector.select(timeout):
            if key.data is None:
                self._accept()
            elif key.data is self._wake_r:
                self._wake_r.recv(64)
            else:
                self._receive(key.data)
        for visitor in [self._ready.popleft() for _ in range(len(self._ready))]:
            if visitor.sock.fileno() >= 0:
                self._serve_head(visitor)
        now = time.monotonic()
        if self._accepting_again and now >= self._accepting_again:
            self._accepting_again = 0.0
            self._selector.register(self.listener, selectors.EVENT_READ, None)
        self._cut_off_slow_heads(now)
        self.drops.log_if_due(now)

    # -- accepting --------------------------------------------------------------------------

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_TURN):
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as failure:
                if failure.errno in OUT_OF_DESCRIPTORS:
                    self._out_of_descriptors()
                return  # ECONNABORTED and the like: the client left before it was accepted
            sock.setblocking(False)
            client = address if isinstance(address, tuple) else None
            visitor = Visitor(sock, peer_of(client[0] if client else None),
                              client[:2] if client else None, time.monotonic())
            self._hold(visitor)
            self.shares.take(visitor.peer)
            if self.shares.total > self.budget:
                self._make_room()

    def _make_room(self) -> bool:
        """Drop the longest waiting connection of the peer holding the most, but not its
        newest (which may be its probe): max-min fair, a peer holding less than another never
        loses a connection to make room. False when there is none to drop here."""
        if not self._by_peer:
            return False
        peer = max(self._by_peer, key=self.shares.held_by)
        mine = self._by_peer[peer]
        if len(mine) < 2:
            return False
        reason = guard.PEER_SHARE if self.shares.held_by(peer) > self.peer_share else guard.ROOM_NEEDED
        self._drop(next(iter(mine.values())), reason)
        return True

    def _out_of_descriptors(self) -> None:
        """accept() failed for want of a file descriptor: make room; with none to make, stop
        accepting for ACCEPT_PAUSE rather than fail again at once."""
        if self._make_room():
            return
        self.drops.count(guard.ACCEPT_PAUSED)
        self._selector.unregister(self.listener)
        self._accepting_again = time.monotonic() + ACCEPT_PAUSE

    def _hold(self, visitor: Visitor) -> None:
        fd = visitor.sock.fileno()
        self._waiting[fd] = visitor
        self._by_peer.setdefault(visitor.peer, {})[fd] = visitor
        self._selector.register(fd, selectors.EVENT_READ, visitor)

    def _let_go(self, visitor: Visitor) -> None:
        """Stop holding `visitor` (it is closed or handed over): the share stays with it."""
        fd = visitor.sock.fileno()
        self._waiting.pop(fd, None)
        mine = self._by_peer.get(visitor.peer)
        if mine is not None:
            mine.pop(fd, None)
            if not mine:
                del self._by_peer[visitor.peer]
        if not visitor.ended:
            self._selector.unregister(fd)

    def _close(self, visitor: Visitor) -> None:
        self._let_go(visitor)
        visitor.sock.close()
        self.shares.give_back(visitor.peer)

    def _drop(self, visitor: Visitor, reason: str) -> None:
        self._close(visitor)
        self.drops.count(reason)

    def _cut_off_slow_heads(self, now: float) -> None:
        """Connections whose head is not complete HEAD_TIMEOUT seconds after they came or were
        last answered; the longest waiting are first in `_waiting`."""
        too_old = now - guard.HEAD_TIMEOUT
        late = []
        for visitor in self._waiting.values():
            if visitor.since > too_old:
                break
            late.append(visitor)
        for visitor in late:
            self._drop(visitor, guard.HEAD_TOO_SLOW)

    # -- heads ------------------------------------------------------------------------------

    def _receive(self, visitor: Visitor) -> None:
        if visitor.sock.fileno() < 0:
            return  # dropped earlier in this turn to make room: its event is stale
        try:
            data = visitor.sock.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(visitor)
            return
        if not data:
            if not visitor.buffer:
                self._close(visitor)
                return
            visitor.ended = True  # half-closed after asking: answer what it asked first
            self._selector.unregister(visitor.sock.fileno())
        visitor.buffer += data
        if visitor not in self._ready:
            self._serve_head(visitor)

    def _serve_head(self, visitor: Visitor) -> None:
        """Answer the head in `visitor`'s buffer if complete and a probe, or hand the
        connection over; a head over a limit gets its status and a close."""
        buffer = visitor.buffer
        try:
            end = head_end(buffer)
            if end < 0:
                if visitor.ended:
                    self._close(visitor)
                return
            head = bytes(buffer[:end])
            lowered = head.lower()
            if b"\ncontent-length:" in lowered and b"\ntransfer-encoding:" in lowered:
                raise HeadRefused(400, AMBIGUOUS_LENGTH)  # RFC 9112 6.3: a request smuggling attempt; close
            probe = probe_request(head)
        except HeadRefused as refused:
            self._refuse(visitor, refused)
            return
        if probe is None:
            self._let_go(visitor)
            self.hand_over(visitor.sock, bytes(buffer), visitor.peer)
            return
        del buffer[:end]
        if not self._answer(visitor, probe) or probe.close or (visitor.ended and not buffer):
            self._close(visitor)
            return
        # Kept alive: its next head's deadline counts from now, behind every other's.
        fd = visitor.sock.fileno()
        visitor.since = time.monotonic()
        del self._waiting[fd]
        self._waiting[fd] = visitor
        mine = self._by_peer[visitor.peer]
        del mine[fd]
        mine[fd] = visitor
        if buffer:
            self._ready.append(visitor)  # pipelined: its next request next turn, after others'

    def _answer(self, visitor: Visitor, probe: ProbeRequest) -> bool:
        """Send the probe's answer; False when it could not all be sent (a client that asks
        and does not read is not worth holding)."""
        try:
            snapshot = self.snapshot()
            now = time.time()
            verdict = probe.decide(snapshot, now)
            document = reports.probe_document(verdict, snapshot, now)
            status = 200 if verdict.ok else 503
        except Exception as failure:
            document = {"error": f"internal error: {type(failure).__name__}"}
            status = 500
            log.about_client(ERROR, "%s %s failed: %s: %s", probe.method, probe.path,
                             type(failure).__name__, excerpt(str(failure), 200))
        body = json.dumps(document, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":")).encode()
        if self.access_log:
            host, port = visitor.client or ("-", 0)
            log.info('%s:%d - "%s %s HTTP/%s" %d', host, port, probe.method, probe.path,
                     probe.version, status)
        return self._send(visitor, status, b"application/json", body, probe.close,
                          head_only=probe.method == "HEAD")

    def _refuse(self, visitor: Visitor, refused: HeadRefused) -> None:
        self._send(visitor, refused.status, b"text/plain; charset=utf-8",
                   refused.reason.encode(), close=True)
        self._close(visitor)

    def _send(self, visitor: Visitor, status: int, content_type: bytes, body: bytes, close: bool,
              head_only: bool = False) -> bool:
        head = b"".join((
            STATUS_LINES[status], b"content-type: ", content_type, b"\r\ncontent-length: ",
            str(len(body)).encode(), b"\r\ndate: ", self._now(), b"\r\n",
            b"connection: close\r\n" if close else b"", b"\r\n"))
        answer = head if head_only else head + body
        try:
            return visitor.sock.send(answer) == len(answer)
        except OSError:
            return False

    def _now(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second, self._date = second, formatdate(second, usegmt=True).encode()
        return self._date


def probe_request(head: bytes) -> ProbeRequest | None:
    """The probe `head` asks for, when it is one the front door answers: GET or HEAD of a
    probe path, HTTP/1.0 or 1.1 (with its Host), no body, every header line well formed.
    None for anything else, which the app answers as it always has (errors included)."""
    lines = head.split(b"\n")
    request_line = lines[0].rstrip(b"\r").split(b" ")
    if len(request_line) != 3:
        return None
    method, target, version = request_line
    decide = PROBES.get(target.partition(b"?")[0])
    if decide is None or method not in (b"GET", b"HEAD") or version not in (b"HTTP/1.1", b"HTTP/1.0"):
        return None
    close = version == b"HTTP/1.0"
    host = False
    for line in lines[1:]:
        if line in (b"", b"\r"):
            continue
        if HEADER_LINE.fullmatch(line) is None:
            return None
        name, _, value = line.partition(b":")
        name = name.lower()
        if name == b"host":
            host = True
        elif name == b"connection":
            close = close or b"close" in value.lower()
        elif name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return None  # a body to read: the app's business
    if version == b"HTTP/1.1" and not host:
        return None
    return ProbeRequest(decide, target.partition(b"?")[0].decode("ascii"), method.decode("ascii"),
                        version[5:].decode("ascii"), close)
