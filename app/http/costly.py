"""Costly answers (a scrape's collection, the /proc scan of /processes) computed once for all who
ask meanwhile, in a worker thread, at a rate pidone chooses from their measured cost.

Issue 22: each scrape collected, encoded and gzipped on its own, in the event loop, so 200
connections asking for gzip scrapes cost what they asked; 30,000 processes made each scrape
and /processes a second-long /proc scan in the loop. Here clients share the work instead of
multiplying it: however many ask, a computation starts no sooner than COST_SHARE of the CPU
allows after the last one (10 times its CPU time), one at a time, in a thread of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

COST_SHARE = 0.1
"""The part of one CPU a kind of costly answer may take, however many clients ask for it."""


class Computed(Generic[T]):
    __slots__ = ("value", "started", "cost")

    def __init__(self, value: T, started: float, cost: float) -> None:
        self.value = value
        self.started = started
        """time.monotonic() when the computation began: what it shows is at least this fresh."""
        self.cost = cost
        """Its CPU seconds."""


class Shared(Generic[T]):
    """`compute()` results shared between concurrent askers, computed in a thread of their own
    (one per kind: a scrape's collection never waits behind a /proc scan for /processes).
    Used from one event loop."""

    def __init__(self, compute: Callable[[], T], name: str) -> None:
        self._compute = compute
        self._name = name
        self._worker: Executor | None = None
        self._latest: Computed[T] | None = None
        self._running: asyncio.Future[None] | None = None
        self._next_start = 0.0

    async def run(self, work: Callable[..., R], *args: object) -> R:
        """`work(*args)` in this kind's thread (what follows from a result: its encodings)."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"pidone-{self._name}")
        return await asyncio.get_running_loop().run_in_executor(self._worker, work, *args)

    async def get(self, max_age: float = 0.0) -> T:
        """A result begun at most `max_age` seconds before this call (0: after it), waiting
        for the next computation when the latest is older; that one starts once the rate
        allows. The caller is never the one who pays for others: all who wait share it."""
        asked = time.monotonic() - max_age
        while True:
            latest = self._latest
            if latest is not None and latest.started >= asked:
                return latest.value
            if self._running is None:
                self._running = asyncio.ensure_future(self._refresh())
            await asyncio.shield(self._running)

    def refresh_interval(self) -> float:
        """Seconds between two computations' starts, from the last one's cost."""
        return 0.0 if self._latest is None else self._latest.cost / COST_SHARE

    async def _refresh(self) -> None:
        try:
            wait = self._next_start - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            computed = await self.run(self._timed)
            self._latest = computed
            self._next_start = computed.started + computed.cost / COST_SHARE
        finally:
            self._running = None

    def _timed(self) -> Computed[T]:
        started, cpu = time.monotonic(), time.thread_time()
        value = self._compute()
        return Computed(value, started, time.thread_time() - cpu)
