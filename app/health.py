"""What /health, /livez and /readyz answer, decided from one snapshot of the core."""

from __future__ import annotations

from dataclasses import dataclass

from app.state import Phase, Snapshot

STALL_AFTER = 5.0
"""Seconds without a core-loop turn before pidone calls itself stalled; the loop turns at
least every second, so this is five missed beats, not one slow one."""


@dataclass(frozen=True)
class Verdict:
    """A probe's answer: "ok", or why not ("terminating", "restarting", "stopping", "exited",
    "stalled")."""

    status: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def heartbeat_age(snapshot: Snapshot, now: float) -> float:
    return max(0.0, now - snapshot.heartbeat)


def liveness(snapshot: Snapshot, now: float) -> Verdict:
    """/livez: pidone's own loop turns, whatever the child does."""
    return Verdict("stalled" if heartbeat_age(snapshot, now) > STALL_AFTER else "ok")


def health(snapshot: Snapshot, now: float) -> Verdict:
    """/health: the child runs and the loop turns. A child asked to stop is still healthy:
    a liveness probe failing then would only make the orchestrator kill it sooner. So is
    pidone restarting it: the init is alive, and the container must stay."""
    if snapshot.phase == Phase.EXITED:
        return Verdict("exited")
    if not snapshot.child.running and snapshot.phase != Phase.RESTARTING:
        return Verdict("stopping")
    return liveness(snapshot, now)


def readiness(snapshot: Snapshot, now: float) -> Verdict:
    """/readyz: healthy and no shutdown under way (503 from the first terminating signal)."""
    verdict = health(snapshot, now)
    if verdict.ok and not snapshot.ready:
        return Verdict(snapshot.phase)
    return verdict
