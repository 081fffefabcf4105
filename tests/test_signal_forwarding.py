"""Every catchable signal but SIGCHLD reaches the child: to its group by default, alone with -c."""

from __future__ import annotations

import os
import signal
import time

import pytest

from app.signals import FORWARDED, signal_name
from conftest import init_command, workload

# SIGTSTP/TTIN/TTOU are trapped by the workload, so they do not stop it; covered here too.
ALL_FORWARDED = sorted(FORWARDED)
SYNCHRONOUS = [signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGABRT,
               signal.SIGTRAP, signal.SIGSYS]


def reported_name(signo: int) -> str:
    """The workload names real-time signals SIGRTMIN+k throughout."""
    if signal.SIGRTMIN <= signo <= signal.SIGRTMAX:
        return f"SIGRTMIN+{signo - signal.SIGRTMIN}"
    return signal_name(signo)


def test_every_forwardable_signal_reaches_the_child(start_init):
    running = start_init([*init_command("pidone"), *workload("trap=all")])
    running.expect_report("ready")
    for signo in ALL_FORWARDED:
        running.send(signo)
        assert running.read_report() == reported_name(signo)
    running.send(signal.SIGKILL)


@pytest.mark.parametrize("peer", ["pidone", "dumb-init"])
@pytest.mark.parametrize("signo", SYNCHRONOUS, ids=signal_name)
def test_synchronous_signals_sent_with_kill_are_forwarded(start_init, peer, signo):
    running = start_init([*init_command(peer), *workload("trap=all")])
    running.expect_report("ready")
    running.send(signo)
    assert running.read_report() == reported_name(signo)


def test_tini_drops_synchronous_signals_sent_with_kill(start_init):
    """The peer difference: tini leaves SEGV & co. unblocked, so as PID 1 the kernel drops them."""
    running = start_init([*init_command("tini"), *workload("trap=all")])
    running.expect_report("ready")
    running.send(signal.SIGABRT)
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"


@pytest.mark.parametrize("peer", ["pidone", "tini", "dumb-init"])
def test_realtime_signals_arrive_each_and_in_order(start_init, peer):
    running = start_init([*init_command(peer), *workload("trap=all")])
    running.expect_report("ready")
    order = [signal.SIGRTMIN + k for k in (0, 5, 1, 7, 3)]
    for signo in order:
        running.send(signo)
        assert running.read_report() == reported_name(signo)


def shell_over_workload(*words: str) -> list[str]:
    """A shell child that reports USR1 itself and waits for a workload grandchild.

    dash cannot redirect to descriptors above 9, hence /dev/fd."""
    return ["sh", "-c", "trap 'echo shell-got-USR1 > /dev/fd/{ack}' USR1; "
            + " ".join(workload(*words)) + " & wait; wait"]


@pytest.mark.parametrize("flags, grandchild_gets_it", [([], True), (["-c"], False)],
                         ids=["group", "single-child"])
def test_group_or_single_child(start_init, flags, grandchild_gets_it):
    running = start_init([*init_command("pidone"), *flags, *shell_over_workload("trap=USR1")])
    running.expect_report("ready")
    running.send(signal.SIGUSR1)
    if grandchild_gets_it:
        reports = {running.read_report(), running.read_report()}
        assert reports == {"SIGUSR1", "shell-got-USR1"}
    else:
        assert running.read_report() == "shell-got-USR1"


def test_single_child_from_dumb_init_environment(start_init):
    running = start_init([*init_command("pidone"), *shell_over_workload("trap=USR1")],
                         env={"DUMB_INIT_SETSID": "0"})
    running.expect_report("ready")
    running.send(signal.SIGUSR1)
    assert running.read_report() == "shell-got-USR1"


@pytest.mark.parametrize("rewrite, sent, received", [
    ("TERM:USR2", signal.SIGTERM, "SIGUSR2"),
    ("15:12", signal.SIGTERM, "SIGUSR2"),
    ("HUP:RTMIN+2", signal.SIGHUP, "SIGRTMIN+2"),
])
def test_rewrite(start_init, rewrite, sent, received):
    running = start_init([*init_command("pidone"), "-r", rewrite, *workload("trap=all")])
    running.expect_report("ready")
    running.send(sent)
    assert running.read_report() == received


def test_rewrite_to_zero_drops_the_signal(start_init):
    running = start_init([*init_command("pidone"), "-r", "HUP:0", *workload("trap=all")])
    running.expect_report("ready")
    running.send(signal.SIGHUP)
    running.send(signal.SIGUSR1)  # the next signal arrives first: HUP was dropped
    assert running.read_report() == "SIGUSR1"


def test_term_ends_a_child_that_does_not_handle_it(start_init):
    running = start_init([*init_command("pidone"), *workload()])
    running.expect_report("ready")
    running.send(signal.SIGTERM)
    assert running.wait() == 128 + signal.SIGTERM


def test_a_pidone_stopped_past_its_wait_forwards_only_what_was_sent(start_init):
    """SIGSTOP (or docker pause's freezer) for longer than the core's one-second wait: CPython's
    sigtimedwait then returned a siginfo it never filled in, and PID 1 died forwarding it
    (EINVAL) or sent the child a signal nobody sent."""
    running = start_init([*init_command("pidone"), *workload("trap=all")])
    running.expect_report("ready")
    os.kill(running.init_pid, signal.SIGSTOP)
    time.sleep(2.5)  # the stop itself, past the core's wait: not a wait for an effect
    os.kill(running.init_pid, signal.SIGCONT)
    assert running.read_report() == "SIGCONT"  # forwarded, as every signal pidone gets
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"
    running.send(signal.SIGKILL)
