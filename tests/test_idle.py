"""An idle pidone costs nothing it need not: without HTTP nobody reads its heartbeat, so its
core sleeps until a signal or a deadline, as dumb-init does; with HTTP it wakes once a second."""

from __future__ import annotations

import time

import pytest

from conftest import init_command, workload

QUIET_SECONDS = 2.5


def wake_ups(pid: int) -> int:
    """The core thread's voluntary context switches: one per wake-up from a wait."""
    with open(f"/proc/{pid}/task/{pid}/status") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError(f"no context switch count for {pid}")


@pytest.mark.parametrize("http, woken", [(False, range(0, 1)), (True, range(2, 1000))],
                         ids=["http-off", "http-on"])
def test_an_idle_core_wakes_only_when_something_reads_its_heartbeat(start_pidone, start_init,
                                                                   http, woken):
    if http:
        running = start_pidone(workload())
    else:
        running = start_init([*init_command("pidone"), *workload()])
    running.expect_report("ready")
    pid = running.init_pid
    time.sleep(0.5)  # past the start-up's own wake-ups (the spawn, the first turn)
    before = wake_ups(pid)
    time.sleep(QUIET_SECONDS)
    assert wake_ups(pid) - before in woken
