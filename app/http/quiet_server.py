"""uvicorn's Server that nothing wakes while it is idle, on a loop that says whether it waits,
serving the connections app/http/front.py hands over instead of listening itself.

uvicorn's main loop wakes ten times a second to refresh the Date header, call
`callback_notify` and check `should_exit`. A turn of an idle asyncio loop costs 250-400 µs of
CPU (its caches have gone cold since the last one): ten of them, or even one a second, cost
an idle pidone more than the whole least Python init spends (bench/floor_init.py). Here an
idle server does not wake at all: the app adds the Date header itself (app/http/web.py), `stop()`
wakes the loop at once, and the core's watch learns whether the loop still turns from its
selector (`WatchedSelector`) instead of from a tick. Stopping waits for the requests in
flight, woken by the last one's end, not for uvicorn's 0.1 s sleep and polls: pidone leaves
within milliseconds of its last process. The server is started with no socket of its own
(`sockets=[]`): the front door (app/http/front.py) owns the listener and gives it connections
with `adopt`. Imported by the HTTP thread only (it imports uvicorn).
"""

from __future__ import annotations

import asyncio
import functools
import selectors
import socket
import time
from collections.abc import Callable

import uvicorn


class WatchedSelector(selectors.DefaultSelector):
    """The loop's selector, noting whether the loop waits in it now and when it last came
    back. A loop that waits answers as soon as a client comes; one that has been away from
    its selector for long is stuck in a callback. Read from the core thread: each attribute
    is one store, and `returned_at` is written before `waiting` is cleared."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = False
        self.returned_at = time.monotonic()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        self.waiting = True
        try:
            return super().select(timeout)
        finally:
            self.returned_at = time.monotonic()
            self.waiting = False


def watched_loop(selector: WatchedSelector) -> Callable[[], asyncio.AbstractEventLoop]:
    """What uvicorn's Config takes as `loop`: a factory of asyncio loops on `selector`."""
    return functools.partial(asyncio.SelectorEventLoop, selector)


class DrainingSet(set):  # type: ignore[type-arg]  # of uvicorn's connections or tasks
    """A set that wakes `drained()` when its last member leaves."""

    _emptied: asyncio.Future[None] | None = None

    def discard(self, member: object) -> None:
        super().discard(member)
        self._wake_if_empty()

    def remove(self, member: object) -> None:
        super().remove(member)
        self._wake_if_empty()

    async def drained(self) -> None:
        while self:
            self._emptied = asyncio.get_running_loop().create_future()
            await self._emptied

    def _wake_if_empty(self) -> None:
        if not self and self._emptied is not None and not self._emptied.done():
            self._emptied.set_result(None)


class QuietServer(uvicorn.Server):
    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    def __init__(self, config: uvicorn.Config, serving: Callable[[], None],
                 released: Callable[[str], None]) -> None:
        super().__init__(config)
        self.server_state.connections = DrainingSet()
        self.server_state.tasks = DrainingSet()
        self._serving = serving
        """Called once the loop runs and can adopt connections: the front door opens."""
        self._released = released
        """Gives back a connection's share when it never reached its protocol."""

    async def main_loop(self) -> None:
        """Until `stop()`: uvicorn's tick once (its default headers, `should_exit`), then no
        more. Either this sees `should_exit` or `stop()` sees the event: each sets its own
        attribute before it reads the other's."""
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._serving()
        if not await self.on_tick(0):
            await self._wake.wait()

    def adopt(self, sock: socket.socket, received: bytes, peer: str) -> None:
        """From the front door's thread: serve `sock`, whose first bytes `received` were read
        already, in this server's loop. Closed when the loop is gone."""
        loop = self._loop
        try:
            if loop is None:
                raise RuntimeError("not serving")
            loop.call_soon_threadsafe(self._adopt, sock, received, peer)
        except RuntimeError:  # the loop has closed: pidone is leaving
            sock.close()
            self._released(peer)

    def _adopt(self, sock: socket.socket, received: bytes, peer: str) -> None:
        config = self.config
        protocol = functools.partial(config.http_protocol_class, config=config,
                                     server_state=self.server_state, app_state=self.lifespan.state,
                                     _loop=self._loop, received=received, peer=peer)
        adopting = asyncio.ensure_future(self._loop.connect_accepted_socket(protocol, sock))

        def failed(task: asyncio.Future) -> None:
            if task.cancelled() or task.exception() is not None:
                sock.close()
                self._released(peer)

        adopting.add_done_callback(failed)

    def busy(self) -> bool:
        """From any thread: a request is being served or an answer is still being sent. (Each
        set is copied whole while this thread holds the GIL.) When unsure, busy."""
        try:
            if self.server_state.tasks:
                return True
            return any(connection.transport.get_write_buffer_size()
                       for connection in tuple(self.server_state.connections))
        except Exception:
            return True

    def stop(self) -> None:
        """From any thread: finish in-flight requests and close, starting now."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:
                pass  # the loop has already closed

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown with lifespan off, waiting on the requests in flight themselves:
        stop accepting, close idle connections, let the others finish their answer within
        the graceful timeout, then cancel what is left."""
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        state = self.server_state
        try:
            async with asyncio.timeout(self.config.timeout_graceful_shutdown):
                await state.connections.drained()
                await state.tasks.drained()
        except TimeoutError:
            for task in state.tasks:
                task.cancel(msg="pidone is leaving")
        for server in self.servers:
            await server.wait_closed()
