"""An idle pidone costs nothing it need not: without HTTP nobody reads its heartbeat, so its
core sleeps until a signal or a deadline, as dumb-init does; with HTTP it wakes once a second
(its alarm's thread rings it), and the HTTP server's thread not at all."""

from __future__ import annotations

import os
import time

import pytest

from app.core.alarm import THREAD_NAME
from conftest import init_command, workload

QUIET_SECONDS = 2.5


def wake_ups(pid: int, tid: int | None = None) -> int:
    """A thread's voluntary context switches (the core's by default): one per wake-up from a
    wait."""
    with open(f"/proc/{pid}/task/{tid or pid}/status") as status:
        for line in status:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError(f"no context switch count for {tid or pid}")


def thread_name(pid: int, tid: int) -> str:
    with open(f"/proc/{pid}/task/{tid}/comm") as comm:
        return comm.read().strip()


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


def test_an_idle_http_server_does_not_wake(start_pidone):
    """No tick, no sweep, no timer once its last client has gone: a wake-up of an asyncio loop
    costs more CPU than the core's whole second (app/http/quiet_server.py)."""
    running = start_pidone(workload())
    running.expect_report("ready")
    assert running.http.get("/metrics").status_code == 200
    running.http.close()  # no connection left: nothing for the guard or keep-alive to time
    pid = running.init_pid
    time.sleep(1.5)  # the server sees the close; the guard sweeps once more (once a second), no more
    others = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")
              if int(tid) != pid and thread_name(pid, int(tid)) != THREAD_NAME]
    assert others, "the HTTP server's thread"
    before = {tid: wake_ups(pid, tid) for tid in others}
    time.sleep(QUIET_SECONDS)
    assert {tid: wake_ups(pid, tid) - before[tid] for tid in others} == dict.fromkeys(others, 0)
