"""PID exhaustion: in a cgroup with a small pids.max, a workload forks until the kernel refuses;
pidone keeps forwarding and reaping, the next round gets every PID back, and pidone leaves cleanly."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from conftest import PIDONE, sized, workload
from observe import wait_until, zombies_of

PIDS_MAX = 48
ROUNDS = sized(20, 500)


def in_cgroup(path: Path, argv: list[str]) -> list[str]:
    """argv run from inside the cgroup: it moves itself there before exec, so all it forks counts."""
    return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(path), *argv]


def pids_current(path: Path) -> int:
    return int((path / "pids.current").read_text())


def test_pid_exhaustion_keeps_pidone_reaping(start_init, pids_cgroup, survived):
    cgroup = pids_cgroup(PIDS_MAX) or pytest.skip("no cgroup pids controller to make a cgroup under")
    words = ["exhaust", "await=USR1", "release", "await=USR2"] * ROUNDS + ["exhaust", "exit=0"]
    running = start_init(in_cgroup(cgroup, [*PIDONE, "--http", "off", *workload(*words)]))
    pidone = running.init_pid
    made_per_round = []
    started = time.monotonic()
    for _ in range(ROUNDS):
        made_per_round.append(int(running.expect_report("exhausted", timeout=60).split()[1]))
        running.expect_report("awaiting")
        assert pids_current(cgroup) == PIDS_MAX - 1  # all but the exhausting fork's parent, gone
        running.send(signal.SIGUSR1)  # forwarded though no task can be made
        running.expect_report("released")
        running.expect_report("awaiting")
        wait_until(lambda: zombies_of(pidone) == 0, 30, "the released sleepers are reaped")
        running.send(signal.SIGUSR2)
    # The last round leaves its sleepers to pidone's leaving: SIGTERM, reap, exit.
    running.expect_report("exhausted", timeout=60)
    assert running.wait(timeout=30) == 0
    seconds = time.monotonic() - started
    assert pids_current(cgroup) == 0

    # Every round made as many as the first: the sleepers before it were all reaped.
    assert min(made_per_round) == max(made_per_round) > PIDS_MAX // 2
    survived(pids_max=PIDS_MAX, rounds=ROUNDS, sleepers_per_round=made_per_round[0],
             reaped=sum(made_per_round), lost=0, seconds=f"{seconds:.1f}")
