"""When the child exits: SIGTERM the rest, reap through --grace, SIGKILL, exit — never beyond our own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import init_command, workload

LEFTOVER_IGNORING_TERM = [sys.executable, "-c",
                          "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                          "print('leftover', flush=True); time.sleep(600)"]


def child_leaving_behind(*leftover_words: str) -> list[str]:
    """A shell child that starts a leftover workload and exits 7 on SIGUSR1 (see `leave_behind`).
    The leftover ignores SIGUSR1, which dumb-init sends to the whole group."""
    return ["sh", "-c", "trap 'echo child-exits > /dev/fd/{ack}; exit 7' USR1; "
            + " ".join(workload("ignore=USR1", *leftover_words)) + " & wait"]


def leave_behind(running) -> int:
    """Wait for the leftover, then make the child exit without it; returns the leftover's pid."""
    pid = int(running.expect_report("ready").split()[1])
    running.send(signal.SIGUSR1)
    assert running.read_report() == "child-exits"
    return pid


def test_leftover_that_obeys_term_ends_at_once(start_init):
    running = start_init([*init_command("pidone"), "--grace", "30",
                          *child_leaving_behind("exit-on=TERM")])
    leave_behind(running)
    started = time.monotonic()
    assert running.wait() == 7
    assert time.monotonic() - started < 20  # far below the grace: it did not wait it out
    assert running.read_report() == "SIGTERM"


def test_leftover_ignoring_term_is_killed_after_grace(start_init):
    running = start_init([*init_command("pidone"), "--grace", "0.5",
                          *child_leaving_behind("ignore=TERM")])
    leave_behind(running)
    assert running.wait() == 7
    assert "sending SIGKILL" in running.stderr


def test_grace_from_environment(start_init):
    running = start_init([*init_command("pidone"), *child_leaving_behind("ignore=TERM")],
                         env={"PIDONE_GRACE": "0.2"})
    leave_behind(running)
    assert running.wait() == 7


@pytest.mark.parametrize("init", ["pidone", "dumb-init"])
def test_neither_pid1_nor_subreaper_the_childs_group_still_gets_term(start_init, init):
    """pidone cannot reap what the child leaves behind there, but, as dumb-init, it asks the
    child's process group (its background jobs) to stop."""
    running = start_init([*init_command(init), *child_leaving_behind("exit-on=TERM")],
                         namespace=False)
    leave_behind(running)
    assert running.wait() == 7
    assert running.read_report() == "SIGTERM"


def test_bystander_outside_the_tree_survives_subreaper_leaving(start_init):
    bystander = subprocess.Popen(LEFTOVER_IGNORING_TERM, stdout=subprocess.PIPE)
    try:
        assert bystander.stdout.readline() == b"leftover\n"
        running = start_init([*init_command("pidone"), "-s", "--grace", "0.5",
                              *child_leaving_behind("ignore=TERM")], namespace=False)
        leftover_pid = leave_behind(running)
        assert running.wait() == 7
        assert bystander.poll() is None
        # The leftover was pidone's descendant: it got SIGKILL and pidone reaped it.
        assert not os.path.exists(f"/proc/{leftover_pid}")
    finally:
        bystander.kill()
        bystander.wait()


def test_bystander_outside_the_namespace_survives_pid1_leaving(start_init):
    bystander = subprocess.Popen(LEFTOVER_IGNORING_TERM, stdout=subprocess.PIPE)
    try:
        assert bystander.stdout.readline() == b"leftover\n"
        running = start_init([*init_command("pidone"), "--grace", "0.2",
                              *child_leaving_behind("ignore=TERM")])
        leave_behind(running)
        assert running.wait() == 7
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_stop_timeout_kills_a_child_that_ignores_term(start_init):
    running = start_init([*init_command("pidone"), "--stop-timeout", "0.3",
                          *workload("ignore=TERM")])
    running.expect_report("ready")
    running.send(signal.SIGTERM)
    assert running.wait() == 128 + signal.SIGKILL


def test_without_stop_timeout_a_child_ignoring_term_keeps_running(start_init):
    running = start_init([*init_command("pidone"), *workload("ignore=TERM", "trap=USR1")])
    running.expect_report("ready")
    running.send(signal.SIGTERM)
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"  # alive after TERM was forwarded
    assert running.proc.poll() is None
