"""The probes' verdicts from a snapshot: which phase, child state and heartbeat age give which
answer."""

from __future__ import annotations

import pytest

from app.http.health import STALL_AFTER, health, liveness, readiness
from app.core.state import ChildStatus, Histogram, Phase, Snapshot

NOW = 1_000_000.0


def snapshot(phase: str, running: bool, heartbeat_age: float) -> Snapshot:
    child = ChildStatus(("x",), 2, NOW - 60, running, None if running else 0)
    ready = running and phase == Phase.RUNNING
    return Snapshot(child, phase, ready, NOW - heartbeat_age, 0, {}, {}, 0,
                    Histogram((0,), 0, 0.0), True, False, (), (), {})


STALE = STALL_AFTER + 0.5
CASES = [
    # phase, child running, its state in /proc, heartbeat age -> /health, /livez, /readyz
    (Phase.RUNNING, True, "S", 0.1, "ok", "ok", "ok"),
    (Phase.RUNNING, True, "R", STALE, "stalled", "stalled", "stalled"),
    (Phase.RUNNING, True, "T", 0.1, "stopped", "ok", "stopped"),
    (Phase.RUNNING, True, "t", 0.1, "ok", "ok", "ok"),  # a debugger's stop is not a hang
    (Phase.TERMINATING, True, "S", 0.1, "ok", "ok", "terminating"),
    (Phase.TERMINATING, True, "S", STALE, "stalled", "stalled", "stalled"),
    (Phase.TERMINATING, True, "T", 0.1, "stopped", "ok", "stopped"),
    (Phase.STOPPING, False, None, 0.1, "stopping", "ok", "stopping"),
    (Phase.STOPPING, False, None, STALE, "stopping", "stalled", "stopping"),
    (Phase.EXITED, False, None, 0.1, "exited", "ok", "exited"),
    # A restart: the old child still stopping (even stopped), then none running (its PID may
    # be another's, stopped or not); the init is alive.
    (Phase.RESTARTING, True, "T", 0.1, "ok", "ok", "restarting"),
    (Phase.RESTARTING, False, "T", 0.1, "ok", "ok", "restarting"),
    (Phase.RESTARTING, False, None, STALE, "stalled", "stalled", "stalled"),
]


@pytest.mark.parametrize("phase, running, state, age, for_health, for_livez, for_readyz", CASES)
def test_verdicts(phase, running, state, age, for_health, for_livez, for_readyz):
    snap = snapshot(phase, running, age)
    state_of = {snap.child.pid: state}.get
    assert health(snap, NOW, state_of).status == for_health
    assert liveness(snap, NOW).status == for_livez
    assert readiness(snap, NOW, state_of).status == for_readyz


def test_a_heartbeat_from_the_future_is_fresh():
    assert liveness(snapshot(Phase.RUNNING, True, -30), NOW).ok
