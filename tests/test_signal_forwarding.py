"""Every catchable signal but SIGCHLD reaches the child; stops reach its whole group by default,
the other signals the child alone; -g sends every signal to the group, -c to the child alone."""

from __future__ import annotations

import os
import signal
import time

import pytest

from app.core.signals import FORWARDED, TERMINATING, signal_name
from conftest import init_command, shell_over_blocker, workload
from observe import grandchild_of, pending_in

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
        if signo in TERMINATING:  # a stop is followed by SIGCONT, for a stopped process
            assert running.read_report() == "SIGCONT"
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


TERM, INT, QUIT, HUP, USR1 = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
                              signal.SIGUSR1)
TARGETS = [
    # (flags, environment, signal sent, signal delivered, reaches the whole group)
    ([], {}, TERM, TERM, True),
    ([], {}, INT, INT, True),
    ([], {}, QUIT, QUIT, True),
    ([], {}, HUP, HUP, False),
    ([], {}, USR1, USR1, False),
    ([], {}, signal.SIGUSR2, signal.SIGUSR2, False),
    ([], {}, signal.SIGWINCH, signal.SIGWINCH, False),
    ([], {}, signal.SIGTTIN, signal.SIGTTIN, False),  # gunicorn: one more worker, not stopped ones
    ([], {}, signal.SIGTTOU, signal.SIGTTOU, False),
    (["-r", "HUP:TERM"], {}, HUP, TERM, True),  # the rule looks at the signal delivered
    (["-r", "TERM:USR1"], {}, TERM, USR1, False),
    (["-g"], {}, HUP, HUP, True),
    (["-g"], {}, TERM, TERM, True),
    (["-c"], {}, TERM, TERM, False),
    (["-c"], {}, USR1, USR1, False),
    (["-c", "-g"], {}, USR1, USR1, True),  # the last of -c and -g decides
    (["-g", "-c"], {}, TERM, TERM, False),
    ([], {"TINI_KILL_PROCESS_GROUP": "1"}, USR1, USR1, True),
    ([], {"DUMB_INIT_SETSID": "0"}, TERM, TERM, False),
    ([], {"PIDONE_SINGLE_CHILD": "1"}, INT, INT, False),
    ([], {"TINI_KILL_PROCESS_GROUP": "1", "DUMB_INIT_SETSID": "0"}, TERM, TERM, False),
    (["-g"], {"DUMB_INIT_SETSID": "0"}, USR1, USR1, True),  # a flag wins over the environment
]


@pytest.mark.parametrize("flags, env, sent, delivered, to_group", TARGETS,
                         ids=[" ".join([*flags, *(f"{k}={v}" for k, v in env.items()),
                                        signal_name(sent)]) for flags, env, sent, *_ in TARGETS])
def test_stops_reach_the_group_and_the_rest_the_child_alone(start_init, flags, env, sent,
                                                            delivered, to_group):
    running = start_init([*init_command("pidone"), *flags, *shell_over_blocker(delivered)],
                         env=env)
    running.expect_report("blocked")
    running.expect_report("ready")
    grandchild = grandchild_of(running.init_pid)
    running.send(sent)
    assert running.read_report() == f"shell-got-{signal_name(delivered).removeprefix('SIG')}"
    # killpg queues the signal to every member before it returns: it is pending by now or never.
    assert (delivered in pending_in(grandchild)) == to_group


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
