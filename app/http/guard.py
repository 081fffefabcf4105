"""uvicorn's HTTP/1.1 protocol, guarded so that no client can lock the probes out.

Connections reach uvicorn's loop from app/http/front.py, which holds them until their first head
and answers the probes itself; this guards what follows, in uvicorn 0.55 and h11 0.16:
- A request head that never ends: uvicorn's keep-alive timer starts only after a response,
  and any byte cancels it. Here a head must be complete HEAD_TIMEOUT seconds after the
  connection's last answer ended.
- A head that is large or holds thousands of headers: h11's max_incomplete_event_size counts
  only what it holds incomplete, and parsing a head costs about 3 µs a header. Here the bytes
  received and the header lines are counted before h11 parses (`HeadLimitedConnection`,
  app/http/head.py): over a limit, 400 and a close. So is a head with both Content-Length and
  Transfer-Encoding (RFC 9112 6.3).
- Answers a client never reads: once the socket's send buffer is full, uvicorn awaits its
  drain for ever, and a connection closed with data unsent is released only once it drains.
  Here a sweep once a second aborts a connection whose unsent answer has not moved for
  SEND_TIMEOUT seconds, closed or not.
- Holding many connections: past `limit_concurrency` uvicorn answers 503 to every request,
  probes included. Here, past MAX_CONNECTIONS a newcomer makes room (`Guard._make_room`):
  connections stuck sending go first, never the newcomer.
Memory per connection is bounded: reads of READ_BYTES at most (h11 holds one read beyond the
request it serves), and WRITE_HIGH_WATER bytes of unsent answers before uvicorn waits.
What is cut off, here or at the front door, is counted by reason (`Drops`,
`pidone_http_connections_dropped_total`) and logged at most once a minute.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import math
import socket
import struct
import sys
import termios
import threading
import time
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.http.head import AMBIGUOUS_LENGTH, MAX_HEAD_BYTES, HeadRefused, head_end
from app.log import log
from app.http.shares import ConnectionShares


HEAD_TIMEOUT = 10.0
"""Seconds to send a complete request head. Probes and scrapes send theirs at once."""
SEND_TIMEOUT = 5.0
"""Seconds an answer may wait in pidone without the client taking any of it."""
SWEEP_SECONDS = 1.0
"""How often the connections are looked over for answers that do not move."""
MAX_CONNECTIONS = 256
"""Open connections in uvicorn's loop kept when some can be dropped; twice that at most. Also
bounds in-flight requests: one per connection."""
READ_BYTES = 16 * 1024
"""The most one read takes from a socket (asyncio's default is 256 KiB a connection)."""
WRITE_HIGH_WATER = 16 * 1024
"""Unsent bytes past which uvicorn waits before writing the next answer (its default: 64 KiB)."""
FIRST_REQUEST_GRACE = 1.0
"""Seconds a connection is not taken for idle after its last answer."""
UNREAD_CHECKS = 8
"""Idle connections asked whether a request waits unread, longest idle first, when room is needed."""
LOG_EVERY = 60.0
"""Seconds between two log lines about dropped connections."""

RESET_ON_CLOSE = struct.pack("ii", 1, 0)
"""SO_LINGER on, zero seconds: close() resets the connection and drops what the kernel holds."""

STUCK_SENDING = "stuck_sending"
HEAD_TOO_SLOW = "head_too_slow"
ROOM_NEEDED = "room_needed"
PEER_SHARE = "peer_share"
DROP_REASONS = (STUCK_SENDING, HEAD_TOO_SLOW, ROOM_NEEDED, PEER_SHARE)
ACCEPT_PAUSED = "accept_paused"
_SAID = {STUCK_SENDING: "stuck sending", HEAD_TOO_SLOW: "head too slow", ROOM_NEEDED: "room needed",
         PEER_SHARE: "peer over its share", ACCEPT_PAUSED: "accepting paused, out of file descriptors"}


class HeadLimitedConnection(h11.Connection):
    """h11's server connection, measuring a request head before it parses it."""

    def next_event(self) -> Any:
        if self.their_state is h11.IDLE:  # a head is due: what h11 holds of it, unparsed
            try:
                head_end(self._receive_buffer._data)
            except HeadRefused as refused:
                # uvicorn answers any RemoteProtocolError with 400 and closes the connection.
                raise h11.RemoteProtocolError(refused.reason, error_status_hint=refused.status) from None
        event = super().next_event()
        if isinstance(event, h11.Request) and {b"content-length", b"transfer-encoding"} <= {
                name for name, _ in event.headers}:
            raise h11.RemoteProtocolError(AMBIGUOUS_LENGTH, error_status_hint=400)
        return event


class Drops:
    """Connections cut off, by reason, and how often accepting paused: counted from both the
    front door's thread and uvicorn's loop, logged at most once every LOG_EVERY seconds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys((*DROP_REASONS, ACCEPT_PAUSED), 0)
        self._unlogged = dict.fromkeys(self._counts, 0)
        self._logged_at = -math.inf

    def count(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] += 1
            self._unlogged[reason] += 1
        self.log_if_due(time.monotonic())

    def dropped(self) -> dict[str, int]:
        """Connections cut off since start, by reason (for /metrics)."""
        return {reason: self._counts[reason] for reason in DROP_REASONS}

    def accept_pauses(self) -> int:
        return self._counts[ACCEPT_PAUSED]

    def unlogged(self) -> bool:
        return any(self._unlogged.values())

    def log_if_due(self, now: float) -> None:
        """Say what was cut off since the last line, unless that line is under LOG_EVERY old."""
        with self._lock:
            if now - self._logged_at < LOG_EVERY or not any(self._unlogged.values()):
                return
            counts = ", ".join(f"{_SAID[reason]}: {count}" for reason, count in self._unlogged.items() if count)
            self._unlogged = dict.fromkeys(self._counts, 0)
            self._logged_at = now
        log.warning("HTTP server cut off connections to keep the probes in (%s); next count in "
                    "a minute at most, all in pidone_http_connections_dropped_total", counts)


class Guard:
    """One server's connections: the sweep for answers that do not move, room for newcomers,
    and the count of what was dropped. Runs in the server's event loop only."""

    def __init__(self, drops: Drops, shares: ConnectionShares) -> None:
        self.connections: set[GuardedH11Protocol] = set()
        self.drops = drops
        self.shares = shares
        self._sweep: asyncio.TimerHandle | None = None

    def protocol(self) -> Callable[..., GuardedH11Protocol]:
        """What uvicorn's Config takes as `http`: app/http/quiet_server.py calls it for each
        connection the front door hands over."""
        return functools.partial(GuardedH11Protocol, guard=self)

    def admit(self, newcomer: GuardedH11Protocol) -> None:
        self.connections.add(newcomer)
        if self._sweep is None:
            self._sweep = newcomer.loop.call_later(SWEEP_SECONDS, self._sweep_stuck, newcomer.loop)
        if len(self.connections) > MAX_CONNECTIONS:
            self._make_room(newcomer)

    def release(self, connection: GuardedH11Protocol) -> None:
        self.connections.discard(connection)
        self.shares.give_back(connection.peer)

    def drop(self, connection: GuardedH11Protocol, reason: str) -> None:
        """Cut `connection` off now. With answers unsent, a close would wait for them to drain
        (and the kernel would keep trying to deliver its share for minutes): reset it."""
        self.connections.discard(connection)
        transport = connection.transport
        if transport.get_write_buffer_size():
            sock = transport.get_extra_info("socket")
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
            except (OSError, AttributeError):
                pass  # already reset by the peer, or no socket: the abort alone will do
            transport.abort()
        else:
            transport.close()
        self.drops.count(reason)

    def _sweep_stuck(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for connection in [c for c in self.connections if c.stuck_sending(now)]:
            self.drop(connection, STUCK_SENDING)
        self._sweep = loop.call_later(SWEEP_SECONDS, self._sweep_stuck, loop) if self.connections else None

    def _make_room(self, newcomer: GuardedH11Protocol) -> None:
        """Drop one connection for `newcomer`, in this order: closed with answers unsent; answers
        unsent (longest first); idle with no request waiting (longest first); a keep-alive
        client's request (the most answered first). Past 2 * MAX_CONNECTIONS, any but the
        newcomer: the most answered, then the oldest, so that a probe, which asks once, goes last."""
        now = newcomer.loop.time()
        closing: list[GuardedH11Protocol] = []
        unsent: list[GuardedH11Protocol] = []
        idle: list[GuardedH11Protocol] = []
        asking_again: list[GuardedH11Protocol] = []
        rest: list[GuardedH11Protocol] = []
        for connection in self.connections:
            if connection is newcomer:
                continue
            transport = connection.transport
            if transport.get_write_buffer_size():
                (closing if transport.is_closing() else unsent).append(connection)
            elif transport.is_closing():
                continue  # on its way out already
            elif connection.serving:
                (asking_again if connection.answers else rest).append(connection)
            elif connection.just_opened(now):
                rest.append(connection)
            else:
                idle.append(connection)
        victim = (min(closing, key=lambda c: c.unsent_since(now), default=None)
                  or min(unsent, key=lambda c: c.unsent_since(now), default=None)
                  or _longest_idle_without_request(idle, rest)
                  or min(asking_again, key=lambda c: (-c.answers, c.opened_at), default=None))
        if victim is None and len(self.connections) > 2 * MAX_CONNECTIONS:
            victim = min(rest, key=lambda c: (-c.answers, c.opened_at), default=None)
        if victim is not None:
            self.drop(victim, ROOM_NEEDED)


def _longest_idle_without_request(idle: list[GuardedH11Protocol],
                                  busy: list[GuardedH11Protocol]) -> GuardedH11Protocol | None:
    """The connection idle longest with no request waiting to be read; those with one go to
    `busy`. Only the UNREAD_CHECKS longest idle are asked (a system call each): when a burst of
    clients has just sent its requests, none qualifies, and asking all would cost the loop
    hundreds of calls for each newcomer."""
    idle.sort(key=lambda c: c.idle_since)
    for connection in idle[:UNREAD_CHECKS]:
        if not connection.has_unread_bytes():
            return connection
    busy.extend(idle)
    return None


class GuardedH11Protocol(H11Protocol):
    """H11Protocol under a Guard: a deadline for each request head, a bound on unsent
    answers, bounded reads and writes."""

    opened_at: float = 0.0
    idle_since: float = 0.0
    """Loop time the connection opened or its last answer ended."""
    answers = 0
    _head_deadline: asyncio.TimerHandle | None = None
    _unsent_seen = 0
    _unsent_since: float | None = None

    def __init__(self, *args: Any, guard: Guard, received: bytes = b"", peer: str = "",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = guard
        self.received = received
        """What the front door read of this connection before handing it over."""
        self.peer = peer
        # The same limit for a head held incomplete (h11's own check) as for a complete one.
        self.conn = HeadLimitedConnection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        # asyncio's selector transport reads max_size bytes per recv(); an attribute, not an API.
        transport.max_size = READ_BYTES  # type: ignore[attr-defined]
        self.opened_at = self.loop.time()
        self._await_next_head()
        self.guard.admit(self)
        # Before the transport's first read (asyncio calls connection_made first): in order.
        received, self.received = self.received, b""
        if received:
            self.data_received(received)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.answers += 1
        self._await_next_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        self.guard.release(self)
        super().connection_lost(exc)

    @property
    def serving(self) -> bool:
        """A request head has arrived and its response is not finished."""
        return self.cycle is not None and not self.cycle.response_complete

    def stuck_sending(self, now: float) -> bool:
        """Some of an answer waits unsent and none of it has left for SEND_TIMEOUT seconds.
        Looked at once a sweep: the unsent bytes shrinking between two looks is progress."""
        unsent = self.transport.get_write_buffer_size()
        if not unsent:
            self._unsent_since = None
            return False
        if self._unsent_since is None or unsent < self._unsent_seen:
            self._unsent_since = now
        self._unsent_seen = unsent
        return now - self._unsent_since >= SEND_TIMEOUT

    def just_opened(self, now: float) -> bool:
        """Opened less than FIRST_REQUEST_GRACE ago with nothing asked yet: its client may not
        have sent the request it connected for (a probe accepted at once looks idle)."""
        return not self.answers and now - self.idle_since < FIRST_REQUEST_GRACE

    def unsent_since(self, now: float) -> float:
        return now if self._unsent_since is None else self._unsent_since

    def has_unread_bytes(self) -> bool:
        """Bytes wait in the socket that the loop has not read yet (a request on its way)."""
        sock = self.transport.get_extra_info("socket")
        try:
            unread = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, AttributeError):
            return False
        return int.from_bytes(unread, sys.byteorder) > 0

    def _await_next_head(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        self.idle_since = self.loop.time()
        self._head_deadline = self.loop.call_later(HEAD_TIMEOUT, self._drop_unless_serving)

    def _drop_unless_serving(self) -> None:
        if not self.serving and not self.transport.is_closing():
            self.guard.drop(self, HEAD_TOO_SLOW)
