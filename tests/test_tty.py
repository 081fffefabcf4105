"""Under a terminal the child's group is the foreground group: Ctrl-C reaches it, as with tini."""

from __future__ import annotations

import fcntl
import os
import pty
import termios

import pytest

from conftest import init_command, workload


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
