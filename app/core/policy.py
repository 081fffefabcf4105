"""What signal reaches the child, when, and where: -r rewrites, --term-delay, --stop-timeout,
and the target (the child's process group or the child alone).

A plain state machine, owned by the core thread: it is told what arrived and what time it is,
and answers what to deliver and why. It never signals and never reads a clock, so that every
combination of options can be driven through a table in-process (tests/test_signal_policy.py).
"""

from __future__ import annotations

import signal
from collections import namedtuple
from collections.abc import Mapping

from app.config import BY_SIGNAL, CHILD, GROUP
from app.core.signals import JOB_CONTROL, TERMINATING

ENDING: frozenset[int] = frozenset(TERMINATING | {signal.SIGKILL})
"""What ends the workload: by default it reaches the child's whole group, so that a shell
entrypoint's pipeline and background jobs stop with it (dumb-init's reason for the group)."""
TERMINAL_JOB_CONTROL: frozenset[int] = frozenset(JOB_CONTROL | {signal.SIGCONT})
"""With a terminal these stop and continue whole jobs, as the terminal itself does."""

FORWARD = "forward"
"""Deliver the signal that arrived, its rewrite, or the one the API named."""
DROP = "rewritten to 0"
"""Nothing to deliver: -r rewrites the signal to 0."""
HOLD = "held back by --term-delay"
"""Nothing to deliver now: the first SIGTERM (or its rewrite) goes once --term-delay has passed."""
DELAYED = "--term-delay passed"
"""Deliver the SIGTERM (or its rewrite) that was held back."""
STOP_TIMEOUT = "--stop-timeout passed"
"""Deliver SIGKILL: the child was told to stop that long ago. pidone's own signal, no forward."""


class Decision(namedtuple("Decision", "signo why")):
    """The policy's answer: the signal to deliver now (0: none) and why (one of the above)."""

    __slots__ = ()
    signo: int
    why: str


_DROPPED = Decision(0, DROP)


class SignalPolicy:
    """The rules, in the order they apply to a signal from the OS: the rewrite decides first
    (a signal rewritten to 0 changes nothing), then --term-delay holds back the first SIGTERM
    (readiness ends at once), then the delivery arms --stop-timeout. Signals asked for over the
    API are not rewritten nor delayed: the caller named the signal it wants. Where a signal
    goes depends on the signal delivered, whatever its source (`target`)."""

    def __init__(self, rewrites: Mapping[int, int], term_delay: float,
                 stop_timeout: float | None, signal_target: str = BY_SIGNAL,
                 terminal: bool = False) -> None:
        self._rewrites = rewrites
        self._signal_target = signal_target
        self._terminal = terminal
        """The child's group is the terminal's foreground group."""
        self._term_delay = term_delay
        self._stop_timeout = stop_timeout
        self.stop_asked = False
        """A stop was asked (TERM, INT or QUIT, before or after its rewrite): not ready."""
        self.stop_from_os = False
        """A stop came from the OS (docker stop, the kubelet): pidone leaves, never restarts."""
        self._delayed: tuple[float, int] | None = None
        """(when, signal): the first SIGTERM's delivery, held back by --term-delay."""
        self._kill_at: float | None = None

    def received(self, signo: int, now: float) -> Decision:
        """A signal from the OS: what to deliver now (dropped, held back, or forwarded)."""
        target = self._rewrites.get(signo, signo)
        if target == 0:
            return _DROPPED
        if signo in TERMINATING or target in TERMINATING:
            self.stop_from_os = True
        if signo == signal.SIGTERM and self._term_delay > 0:
            if not self.stop_asked:
                self.stop_asked = True
                self._delayed = (now + self._term_delay, target)
                return Decision(0, HOLD)
            self._delayed = None  # a second SIGTERM: now, and the held-back one never
        if signo in TERMINATING or target in TERMINATING:
            self._stop(now)
        return Decision(target, FORWARD)

    def requested(self, signo: int, now: float) -> Decision:
        """A signal asked for over the API: delivered as named, now. A SIGTERM supersedes
        the one --term-delay holds back."""
        if signo == signal.SIGTERM:
            self._delayed = None
        if signo in TERMINATING:
            self._stop(now)
        return Decision(signo, FORWARD)

    def new_child(self) -> None:
        """A restarted child starts with nothing asked of it: ready, no delay, no deadline. Never
        after a stop from the OS, which pidone leaves for."""
        self.stop_asked = False
        self._delayed = None
        self._kill_at = None

    def target(self, signo: int) -> str:
        """Where `signo`, as delivered, goes: GROUP or CHILD. By default a signal that ends the
        workload reaches the whole group, and one that steers it (HUP, USR1, TTIN...) the child
        alone: a pre-fork master (gunicorn, uvicorn --workers, nginx) tells its workers what to
        do, while a worker that got HUP or TTIN itself would die or stop (tini's reason)."""
        if self._signal_target != BY_SIGNAL:
            return self._signal_target
        if signo in ENDING or (self._terminal and signo in TERMINAL_JOB_CONTROL):
            return GROUP
        return CHILD

    def due(self, now: float) -> list[Decision]:
        """What the deadlines passed by `now` deliver, in their order: the held-back SIGTERM
        (or its rewrite), then --stop-timeout's SIGKILL, each once."""
        decisions = []
        if self._delayed is not None and now >= self._delayed[0]:
            decisions.append(Decision(self._delayed[1], DELAYED))
            self._delayed = None
            self._stop(now)
        if self._kill_at is not None and now >= self._kill_at:
            decisions.append(Decision(signal.SIGKILL, STOP_TIMEOUT))
            self._kill_at = None
        return decisions

    def next_deadline(self) -> float | None:
        """The earliest time at which `due` will have something to deliver."""
        if self._delayed is None:
            return self._kill_at
        if self._kill_at is None:
            return self._delayed[0]
        return min(self._delayed[0], self._kill_at)

    def _stop(self, now: float) -> None:
        """A stop signal is delivered now: not ready, and the first one arms --stop-timeout."""
        self.stop_asked = True
        if self._stop_timeout is not None and self._kill_at is None:
            self._kill_at = now + self._stop_timeout
