"""uvicorn's Server turning once a second instead of ten times, woken at once to stop.

uvicorn's main loop sleeps 0.1 s between ticks that only refresh the Date header (once a
second), call `callback_notify` and check `should_exit`: ten wake-ups a second, about 0.3 %
of a core for an idle pidone. Here a tick stands for ten of uvicorn's, so its counter
arithmetic (the Date header, `timeout_notify`) holds; `stop()` wakes the loop at once, so
leaving is not a second slower. Imported by the HTTP thread only (it imports uvicorn).
"""

from __future__ import annotations

import asyncio

import uvicorn

TICK_SECONDS = 1.0


class QuietServer(uvicorn.Server):
    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000
            try:
                await asyncio.wait_for(self._wake.wait(), TICK_SECONDS)
            except asyncio.TimeoutError:
                pass
            should_exit = await self.on_tick(counter)

    def stop(self) -> None:
        """From any thread: finish in-flight requests and close, starting now."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:
                pass  # the loop has already closed
