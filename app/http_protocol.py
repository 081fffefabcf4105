"""uvicorn's h11 protocol with a deadline for each request head, against slow clients.

uvicorn times out idle keep-alive connections, but a connection that trickles a request head
(slowloris) is held forever; a few hundred of them fill --limit-concurrency and /health
answers 503 to the kubelet. Here every head must be complete HEAD_TIMEOUT seconds after the
connection opens or the previous response ends, or the connection is closed. Imported by the
HTTP thread only (it imports uvicorn).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT = 5.0
"""Seconds; a probe or a scrape sends its head in one packet, so this only ever ends the slow."""


class TimedHeadProtocol(H11Protocol):
    _head_deadline: asyncio.TimerHandle | None = None
    _waiting_after: object = None
    """The request cycle that was current when the deadline was armed: a new one means a head came."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_response_complete(self) -> None:
        # Armed first: uvicorn goes on to a pipelined request at once, whose head has come.
        self._arm_head_deadline()
        super().on_response_complete()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._waiting_after:
            self._cancel_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        if not self.transport.is_closing():
            self._waiting_after = self.cycle
            self._head_deadline = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.cycle is self._waiting_after and not self.transport.is_closing():
            self.transport.close()
