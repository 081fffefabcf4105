"""A signal sent while pidone is paused reaches the child once, however often the same sender
repeats it: the v1 and v2 freezers (what `docker pause` uses) and SIGSTOP/SIGCONT, each paused
for longer than the core's timed wait, so that its timeout passes while it cannot run."""

from __future__ import annotations

import signal
import time

import pytest

from app.core.loop import HEARTBEAT_INTERVAL
from cgroups import Freezer, in_cgroup
from conftest import RunningInit, forwarded, scrape, workload
from test_job_control import wait_for_state

ROUNDS = 3
PAUSED_FOR = HEARTBEAT_INTERVAL + 0.2
"""Longer than the wait the core was in when paused: it ends late."""
STOP_TIMEOUT = 0.5


def by_signal(running: RunningInit, signo: int) -> tuple[float, float]:
    """(received, forwarded from the OS) of `signo`, as /metrics counts them."""
    name = signal.Signals(signo).name
    samples = scrape(running)
    return (samples.get(("pidone_signals_received_total", (("signal", name),)), 0.0),
            forwarded(samples, name, "os"))


PAUSES = {"cgroup-v1-freezer": 1, "cgroup-v2-freezer": 2, "sigstop": None}
"""How pidone is paused: the freezer of that cgroup version (its whole cgroup), or SIGSTOP."""


@pytest.mark.parametrize("pause", PAUSES)
def test_a_repeated_signal_sent_while_paused_is_forwarded_every_time(start_pidone, freezer_cgroup,
                                                                       pause):
    freezer = None
    if PAUSES[pause] is not None:
        freezer = freezer_cgroup(PAUSES[pause]) or pytest.skip(f"this machine has no {pause}")
    running = start_pidone(workload("trap=USR1"), within=in_cgroup(freezer.path) if freezer else ())
    running.expect_report("ready")
    for _ in range(ROUNDS):
        hold(running, freezer)
        running.send(signal.SIGUSR1)  # the same sender each time: siginfos alike, as Ctrl-C twice
        time.sleep(PAUSED_FOR)  # the pause itself, past the core's wait: not a wait for an effect
        release(running, freezer)
        assert running.read_report() == "SIGUSR1"
    assert by_signal(running, signal.SIGUSR1) == (ROUNDS, ROUNDS)


@pytest.mark.parametrize("pause", PAUSES)
def test_a_deadline_passed_while_paused_is_kept_on_resuming(start_pidone, freezer_cgroup, pause):
    """--stop-timeout's SIGKILL is due while pidone cannot run: it goes once it runs again."""
    freezer = None
    if PAUSES[pause] is not None:
        freezer = freezer_cgroup(PAUSES[pause]) or pytest.skip(f"this machine has no {pause}")
    running = start_pidone(workload("trap=TERM"), "--stop-timeout", str(STOP_TIMEOUT),
                           within=in_cgroup(freezer.path) if freezer else ())
    running.expect_report("ready")
    running.send(signal.SIGTERM)
    assert running.read_report() == "SIGTERM"  # handled: the child runs on
    hold(running, freezer)
    time.sleep(2 * STOP_TIMEOUT)  # the pause itself, past the deadline: not a wait for an effect
    release(running, freezer)
    assert running.wait() == 128 + signal.SIGKILL


def hold(running: RunningInit, freezer: Freezer | None) -> None:
    """Freeze pidone's cgroup, or stop pidone alone with SIGSTOP; return once it cannot run."""
    if freezer is not None:
        freezer.freeze()
    else:
        running.send(signal.SIGSTOP)
        wait_for_state(running.init_pid, "T")


def release(running: RunningInit, freezer: Freezer | None) -> None:
    if freezer is not None:
        freezer.thaw()
    else:
        running.send(signal.SIGCONT)
