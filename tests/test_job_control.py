"""SIGTSTP/TTIN/TTOU stop the child; when pidone is not PID 1 it stops too, and SIGCONT resumes both."""

from __future__ import annotations

import signal
import time

import pytest

from conftest import init_command, workload


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[0]


def wait_for_state(pid: int, wanted: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while process_state(pid) != wanted:
        assert time.monotonic() < deadline, f"pid {pid} never reached state {wanted}"
        time.sleep(0.005)


@pytest.mark.parametrize("signo", [signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU],
                         ids=lambda s: signal.Signals(s).name)
def test_stop_and_continue_when_not_pid1(start_init, signo):
    running = start_init([*init_command("pidone"), "-s", *workload("trap=USR1")], namespace=False)
    child_pid = int(running.expect_report("ready").split()[1])
    running.send(signo)
    wait_for_state(child_pid, "T")
    wait_for_state(running.init_pid, "T")  # pidone stopped itself, as dumb-init does
    running.send(signal.SIGCONT)
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"
    assert process_state(child_pid) != "T"


def test_pid1_forwards_tstp_but_keeps_running(start_init):
    running = start_init([*init_command("pidone"), *workload("trap=TSTP,USR1")])
    running.expect_report("ready")
    running.send(signal.SIGTSTP)
    assert running.read_report() == "SIGTSTP"
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"
