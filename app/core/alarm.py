"""Wakes the core thread at a moment it names: the core waits with sigwaitinfo, which has no
timeout, so its deadlines and its heartbeat come from here."""

from __future__ import annotations

import _thread
import time

from app.log import log

TYPE_CHECKING = False  # typing itself is not imported: it costs the start-up path (app.config)
if TYPE_CHECKING:
    from collections.abc import Callable

_NEVER = float("inf")


class Alarm:
    """A thread of its own sleeps until the moment the core named (time.monotonic), then calls
    `ring` (the core's named wake-up: a SIGCHLD aimed at the core thread, which ends its
    sigwaitinfo). Started at the first moment named: a pidone that never needs one (--http off,
    no deadline) stays single-threaded.

    Only the core names moments and releases `_nudge`; only the alarm's thread takes it: so
    the core always knows whether a release is due, and the thread hears of an earlier moment
    at once. A later moment needs no nudge: the thread reads the moment again before it rings.
    The lock's timeout counts on CLOCK_MONOTONIC from an absolute end (sem_clockwait), so a
    freeze or SIGSTOP neither shortens nor stretches it."""

    __slots__ = ("_ring", "_moment", "_aiming_at", "_nudge", "_started", "_told")

    def __init__(self, ring: Callable[[], None]) -> None:
        self._ring = ring
        self._moment: float | None = None
        self._aiming_at = _NEVER
        """The moment the thread sleeps towards (never, while it reads the next one)."""
        self._nudge = _thread.allocate_lock()
        self._nudge.acquire()
        self._started = False
        self._told = False

    def ring_at(self, moment: float | None) -> bool:
        """Ring once time.monotonic() has reached `moment`; None: never. False when the
        thread cannot start (the cgroup's pids.max reached): no ring will come; asked again,
        it tries again."""
        self._moment = moment
        if moment is None or moment >= self._aiming_at:
            return True
        if not self._started:
            try:
                _thread.start_new_thread(self._run, ())
            except RuntimeError as error:
                if not self._told:
                    self._told = True
                    log.warning("cannot start the alarm's thread (%s): the core waits with "
                                "sigtimedwait until it can", error)
                return False
            self._started = True
        elif self._nudge.locked():
            self._nudge.release()
        return True

    def _run(self) -> None:
        _name_this_thread()
        rung: float | None = None
        while True:
            self._aiming_at = _NEVER
            moment = self._moment
            if moment is None or moment == rung:
                self._nudge.acquire()  # until the core names another moment
                continue
            self._aiming_at = moment
            remaining = moment - time.monotonic()
            if remaining > 0:
                # Woken early (nudged, or the lock's clock a hair ahead): read the moment again.
                self._nudge.acquire(timeout=min(remaining, _thread.TIMEOUT_MAX))
                continue
            self._ring()
            rung = moment


THREAD_NAME = "pidone-alarm"


def _name_this_thread() -> None:
    """So that `top -H` and the tests tell it from the HTTP server's thread. Without /proc the
    thread goes unnamed."""
    try:
        with open("/proc/thread-self/comm", "w") as comm:
            comm.write(THREAD_NAME)
    except OSError:
        pass
