"""What /health, /livez and /readyz answer, decided from one snapshot of the core."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from app.core.procfs import read_process
from app.core.state import Phase, Snapshot

STALL_AFTER = 5.0
"""Seconds without a core-loop turn before pidone calls itself stalled; the loop turns at
least every second, so this is five missed beats, not one slow one."""


STOPPED = "T"
"""The state /proc gives a process stopped by SIGSTOP, SIGTSTP, SIGTTIN or SIGTTOU."""


def process_state(pid: int) -> str | None:
    """The one-letter state of `pid` in /proc, None when it is gone. The child is not reaped
    while the snapshot says it runs, so its PID cannot have been taken by another process."""
    info = read_process(pid)
    return info.state if info else None


@dataclass(frozen=True)
class Verdict:
    """A probe's answer: "ok", or why not ("terminating", "restarting", "stopping", "exited",
    "stalled", "stopped")."""

    status: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def heartbeat_age(snapshot: Snapshot, now: float) -> float:
    return max(0.0, now - snapshot.heartbeat)


def liveness(snapshot: Snapshot, now: float) -> Verdict:
    """/livez: pidone's own loop turns, whatever the child does."""
    return Verdict("stalled" if heartbeat_age(snapshot, now) > STALL_AFTER else "ok")


def health(snapshot: Snapshot, now: float,
           state_of: Callable[[int], str | None] = process_state) -> Verdict:
    """/health: the child runs and the loop turns. A child asked to stop is still healthy:
    a liveness probe failing then would only make the orchestrator kill it sooner. A stopped
    child (SIGSTOP) is not: nothing in a container would continue it, it hangs for good, and
    the orchestrator should restart it. pidone restarting it is: the init is alive, and the
    container must stay (the old child's PID is not looked up: it may be another's by now)."""
    if snapshot.phase == Phase.EXITED:
        return Verdict("exited")
    if snapshot.phase == Phase.RESTARTING:
        return liveness(snapshot, now)
    if not snapshot.child.running:
        return Verdict("stopping")
    if state_of(snapshot.child.pid) == STOPPED:
        return Verdict("stopped")
    return liveness(snapshot, now)


def readiness(snapshot: Snapshot, now: float,
              state_of: Callable[[int], str | None] = process_state) -> Verdict:
    """/readyz: healthy and no shutdown under way (503 from the first terminating signal)."""
    verdict = health(snapshot, now, state_of)
    if verdict.ok and not snapshot.ready:
        return Verdict(snapshot.phase)
    return verdict
