"""When a child that exited on its own starts again: --restart's rule, back-off and limit.

A plain state machine like app/core/policy.py, owned by the core thread: it is told how each child
ended and how long it ran, and answers whether to start the command again and after how long.
It never signals and never reads a clock (tests/test_restart_policy.py drives it by a table).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection

FIRST_BACKOFF = 1.0
"""Seconds before the first restart in a row; each next one waits twice as long..."""
MAX_BACKOFF = 30.0
"""...up to this."""
SETTLED_AFTER = 60.0
"""A child that ran this long ends the row: the back-off and the failure count start over."""


class RestartPolicy:
    """--restart never|on-failure|always with --restart-max. A failure is a non-zero status
    that -e does not remap, or death by a signal that was not a stop pidone delivered to that
    child: a TERM pidone passed on is how the child was asked to end, not how it failed."""

    def __init__(self, policy: str, max_failures: int, remap_exit: Collection[int]) -> None:
        self._policy = policy
        self._max_failures = max_failures
        self._remap_exit = remap_exit
        self._restarts_in_a_row = 0
        self.failures_in_a_row = 0

    def failed(self, exit_code: int, exit_signal: int | None, stops_delivered: Collection[int]) -> bool:
        if exit_code in self._remap_exit:
            return False
        if exit_signal is not None:
            return exit_signal not in stops_delivered
        return exit_code != 0

    def after_exit(self, exit_code: int, exit_signal: int | None, stops_delivered: Collection[int],
                   ran_seconds: float) -> float | None:
        """Seconds to wait before starting the command again; None: do not, pidone leaves."""
        if self._policy == "never":
            return None
        if ran_seconds >= SETTLED_AFTER:
            self._restarts_in_a_row = 0
            self.failures_in_a_row = 0
        if self.failed(exit_code, exit_signal, stops_delivered):
            self.failures_in_a_row += 1
            if self.failures_in_a_row >= self._max_failures:
                return None
        else:
            self.failures_in_a_row = 0
            if self._policy == "on-failure":
                return None
        backoff = min(FIRST_BACKOFF * 2 ** self._restarts_in_a_row, MAX_BACKOFF)
        self._restarts_in_a_row = min(self._restarts_in_a_row + 1, 16)  # 2**16 s is past the cap
        return backoff
