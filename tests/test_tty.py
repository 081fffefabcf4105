"""Under a terminal the child's group is the foreground group: Ctrl-C reaches it, as with tini."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import termios

import pytest

from conftest import init_command, shell_over_blocker, workload
from observe import grandchild_of, pending_in


def controlling_terminal(slave_fd: int):
    """preexec_fn: a new session whose controlling terminal is the pty (as `docker run -t`)."""
    def take() -> None:
        os.setsid()
        fcntl.ioctl(slave_fd, termios.TIOCSCTTY, 0)
    return take


@pytest.mark.parametrize("peer", ["pidone", "tini"])
@pytest.mark.parametrize("namespace", [True, False], ids=["pid1", "not-pid1"])
def test_ctrl_c_ends_the_foreground_child(start_init, peer, namespace):
    master, slave = pty.openpty()
    try:
        running = start_init([*init_command(peer), *workload("state")], namespace=namespace,
                             stdin=slave, preexec_fn=controlling_terminal(slave))
        state = dict(w.split("=") for w in running.expect_report("state").split()[1:])
        assert state["fg"] == state["pgid"]  # the child's group owns the terminal
        running.expect_report("ready")
        os.write(master, b"\x03")  # the terminal sends SIGINT to its foreground group
        assert running.wait() == 130
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("signo", [signal.SIGTTIN, signal.SIGTSTP], ids=["TTIN", "TSTP"])
def test_job_control_signals_reach_the_foreground_group(start_init, signo):
    """Without a terminal TTIN and TSTP go to the child alone (a pre-fork master's business,
    test_signal_forwarding.py); with one, job control stops whole jobs, as the terminal does."""
    master, slave = pty.openpty()
    try:
        running = start_init([*init_command("pidone"), *shell_over_blocker(signo)],
                             stdin=slave, preexec_fn=controlling_terminal(slave))
        running.expect_report("blocked")
        running.expect_report("ready")
        running.send(signo)
        assert running.read_report() == f"shell-got-{signal.Signals(signo).name[3:]}"
        assert signo in pending_in(grandchild_of(running.init_pid))
    finally:
        os.close(master)
        os.close(slave)
