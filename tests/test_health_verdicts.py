"""The probes' verdicts from a snapshot: which phase and heartbeat age give which answer."""

from __future__ import annotations

import pytest

from app.health import STALL_AFTER, health, liveness, readiness
from app.state import ChildStatus, Histogram, Phase, Snapshot

NOW = 1_000_000.0


def snapshot(phase: str, running: bool, heartbeat_age: float) -> Snapshot:
    child = ChildStatus(("x",), 2, NOW - 60, running, None if running else 0)
    ready = running and phase == Phase.RUNNING
    return Snapshot(child, phase, ready, NOW - heartbeat_age, 0, {}, {}, 0,
                    Histogram((0,), 0, 0.0), True, False, (), (), {})


STALE = STALL_AFTER + 0.5
CASES = [
    # phase, child running, heartbeat age -> /health, /livez, /readyz
    (Phase.RUNNING, True, 0.1, "ok", "ok", "ok"),
    (Phase.RUNNING, True, STALE, "stalled", "stalled", "stalled"),
    (Phase.TERMINATING, True, 0.1, "ok", "ok", "terminating"),
    (Phase.TERMINATING, True, STALE, "stalled", "stalled", "stalled"),
    (Phase.STOPPING, False, 0.1, "stopping", "ok", "stopping"),
    (Phase.STOPPING, False, STALE, "stopping", "stalled", "stopping"),
    (Phase.EXITED, False, 0.1, "exited", "ok", "exited"),
    # A restart: the old child still stopping, then none running; the init is alive.
    (Phase.RESTARTING, True, 0.1, "ok", "ok", "restarting"),
    (Phase.RESTARTING, False, 0.1, "ok", "ok", "restarting"),
    (Phase.RESTARTING, False, STALE, "stalled", "stalled", "stalled"),
]


@pytest.mark.parametrize("phase, running, age, for_health, for_livez, for_readyz", CASES)
def test_verdicts(phase, running, age, for_health, for_livez, for_readyz):
    snap = snapshot(phase, running, age)
    assert health(snap, NOW).status == for_health
    assert liveness(snap, NOW).status == for_livez
    assert readiness(snap, NOW).status == for_readyz


def test_a_heartbeat_from_the_future_is_fresh():
    assert liveness(snapshot(Phase.RUNNING, True, -30), NOW).ok
