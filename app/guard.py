"""uvicorn's HTTP/1.1 protocol, guarded so that slow or idle clients cannot lock probes out.

uvicorn keeps a connection that never finishes its request head open for ever (its keep-alive
timer starts only after a response, and any byte cancels it), and past `limit_concurrency`
connections it answers every new request 503. Three hundred slow clients then fail /health,
and the orchestrator restarts a healthy container. Two guards instead:
- a request head must be complete HEAD_TIMEOUT seconds after the connection opened or its
  last response ended, else the connection is closed;
- past MAX_CONNECTIONS, a new connection makes room by closing the one that has waited
  longest without a request: neither one in flight nor bytes of one waiting to be read (a
  burst of connections can keep the loop from reading a probe's request for a while). So a
  fresh probe gets in and is answered. Only past 2 * MAX_CONNECTIONS, with no such connection,
  is the newcomer itself closed.
"""

from __future__ import annotations

import asyncio
import fcntl
import sys
import termios

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT = 10.0
"""Seconds to send a complete request head. Probes and scrapes send theirs at once."""
MAX_CONNECTIONS = 256
"""Open connections kept when some are idle; twice that at most (file descriptors stay well
under the usual limit of 1024). Also bounds in-flight requests: one per connection."""


class GuardedH11Protocol(H11Protocol):
    """H11Protocol plus a deadline for each request head and eviction of idle connections."""

    _idle_since: float = 0.0
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_next_head()
        if len(self.connections) > MAX_CONNECTIONS:
            self._make_room()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._await_next_head()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        super().connection_lost(exc)

    @property
    def serving(self) -> bool:
        """A request head has arrived and its response is not finished."""
        return self.cycle is not None and not self.cycle.response_complete

    def _await_next_head(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
        self._idle_since = self.loop.time()
        self._head_deadline = self.loop.call_later(HEAD_TIMEOUT, self._close_unless_serving)

    def _close_unless_serving(self) -> None:
        if not self.serving and not self.transport.is_closing():
            self.transport.close()

    def _make_room(self) -> None:
        waiting = [c for c in self.connections
                   if c is not self and isinstance(c, GuardedH11Protocol) and not c.serving
                   and not c.transport.is_closing()]
        while waiting:  # min() rather than a sort: the first pick nearly always qualifies
            longest = min(waiting, key=lambda c: c._idle_since)
            if not longest.has_unread_bytes():
                longest.transport.close()
                return
            waiting.remove(longest)
        if len(self.connections) > 2 * MAX_CONNECTIONS:
            self.transport.close()

    def has_unread_bytes(self) -> bool:
        """Bytes wait in the socket that the loop has not read yet (a request on its way)."""
        sock = self.transport.get_extra_info("socket")
        try:
            unread = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, AttributeError):
            return False
        return int.from_bytes(unread, sys.byteorder) > 0
