"""PID exhaustion: in a cgroup with a small pids.max, a workload forks until the kernel refuses;
pidone keeps forwarding, reaping and answering /health and /metrics (which show the cgroup's
count and limit), the next round gets every PID back, and pidone leaves cleanly."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from cgroups import in_cgroup
from conftest import round_trip_then_exit, scrape, sized, workload
from observe import wait_until, zombies_of

PIDS_MAX = 48
ROUNDS = sized(20, 500)


def pids_current(path: Path) -> int:
    return int((path / "pids.current").read_text())


def tasks_of(pid: int) -> int:
    """pidone's threads count in pids.current too: the HTTP side starts its scrape and /proc
    workers when first asked, which may be during a round that left no task for them."""
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def test_pid_exhaustion_keeps_pidone_reaping_and_answering(start_pidone, pids_cgroup, survived):
    cgroup = pids_cgroup(PIDS_MAX) or pytest.skip("no cgroup pids controller to make a cgroup under")
    words = ["exhaust", "await=USR1", "release", "await=USR2"] * ROUNDS + ["exhaust", "exit=0"]
    # The first exhaust waits for pidone's HTTP thread: once the cgroup is full none can start.
    running = start_pidone(workload("await=HUP", *words), within=in_cgroup(cgroup))
    running.expect_report("awaiting")
    running.send(signal.SIGHUP)
    pidone = running.init_pid
    made_per_round = []
    threads_per_round = []
    slowest_health = 0.0
    started = time.monotonic()
    for _ in range(ROUNDS):
        made_per_round.append(int(running.expect_report("exhausted", timeout=60).split()[1]))
        running.expect_report("awaiting")
        threads_per_round.append(tasks_of(pidone))
        assert pids_current(cgroup) == PIDS_MAX - 1  # all but the exhausting fork's parent, gone
        asked = time.monotonic()
        assert running.http.get("/health").status_code == 200
        slowest_health = max(slowest_health, time.monotonic() - asked)
        metrics = scrape(running)
        assert metrics[("pidone_pids_current", ())] >= PIDS_MAX - 1
        assert metrics[("pidone_pids_limit", ())] == PIDS_MAX
        running.send(signal.SIGUSR1)  # forwarded though no task can be made
        running.expect_report("released")
        running.expect_report("awaiting")
        baseline = PIDS_MAX - 1 - made_per_round[-1] - threads_per_round[-1]
        wait_until(lambda: pids_current(cgroup) == baseline + tasks_of(pidone), 30,
                   "the released sleepers are reaped")
        assert zombies_of(pidone) == 0
        running.send(signal.SIGUSR2)
    # The last round leaves its sleepers to pidone's leaving: SIGTERM, reap, exit.
    running.expect_report("exhausted", timeout=60)
    assert running.wait(timeout=30) == 0
    seconds = time.monotonic() - started
    assert pids_current(cgroup) == 0

    # Every round made as many as the first, but for threads pidone started meanwhile: the
    # sleepers before it were all reaped.
    tasks_per_round = [made + threads for made, threads in zip(made_per_round, threads_per_round)]
    assert min(tasks_per_round) == max(tasks_per_round)
    assert min(made_per_round) > PIDS_MAX // 2
    survived(pids_max=PIDS_MAX, rounds=ROUNDS, sleepers_per_round=made_per_round[0],
             reaped=sum(made_per_round), lost=0, slowest_health_ms=int(slowest_health * 1000),
             seconds=f"{seconds:.1f}")


@pytest.mark.parametrize("pids_max, options", [(3, ["-v"]), (2, [])])
def test_no_task_left_for_pidones_threads(start_pidone, pids_cgroup, pids_max, options):
    # pidone and its child take the first two tasks. With -v, the log writer starts with the
    # first line and takes the third: then the HTTP thread finds none. With 2, neither thread
    # can start. A thread pidone cannot start must cost it that thread only, never the child.
    cgroup = pids_cgroup(pids_max) or pytest.skip("no cgroup pids controller to make a cgroup under")
    running = start_pidone(workload("trap=USR1", "exit-on=USR2"), *options, within=in_cgroup(cgroup),
                           wait=False)
    running.expect_report("ready")
    round_trip_then_exit(running)
    assert "Traceback" not in running.stderr
    assert "error: HTTP server not started: can't start new thread" in running.stderr
    if pids_max == 2:
        assert "log writer thread not started" in running.stderr


def test_deadlines_without_a_task_for_the_alarms_thread(start_pidone, pids_cgroup):
    """pids.max 2: pidone and its child. --term-delay's deadline needs the core's alarm, whose
    thread cannot start: the core waits with a timeout instead, and the TERM still goes."""
    cgroup = pids_cgroup(2) or pytest.skip("no cgroup pids controller to make a cgroup under")
    running = start_pidone(workload("trap=TERM", "exit-on=TERM"), "--term-delay", "0.2",
                           within=in_cgroup(cgroup), wait=False)
    running.expect_report("ready")
    running.send(signal.SIGTERM)
    assert running.read_report() == "SIGTERM"
    assert running.wait() == 0
    assert "Traceback" not in running.stderr
    assert "cannot start the alarm's thread" in running.stderr
