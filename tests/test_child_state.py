"""The child starts clean: empty signal mask, default dispositions, its own process group."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from conftest import init_command, workload


# Python ignores SIGPIPE and SIGXFSZ at start-up, so the workload cannot report its own
# inherited dispositions: grep, exec'd by the shell with nothing changed, reads them.
SIGNAL_STATE = ["sh", "-c", "echo state $(grep -E '^Sig(Blk|Ign)' /proc/self/status"
                " | tr 'A-Z:\t' 'a-z= ') > /dev/fd/{ack}"]


def parse_state(line: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in line.replace("= ", "=").split()[1:])


def signal_state(running) -> tuple[int, int]:
    state = parse_state(running.expect_report("state"))
    return int(state["sigblk"], 16), int(state["sigign"], 16)


def ignore_pipe_hup_usr2() -> None:
    for signo in (signal.SIGPIPE, signal.SIGHUP, signal.SIGUSR2):
        signal.signal(signo, signal.SIG_IGN)


def test_signal_state_is_empty_whatever_the_parent_ignored(start_init):
    running = start_init([*init_command("pidone"), *SIGNAL_STATE], preexec_fn=ignore_pipe_hup_usr2)
    assert signal_state(running) == (0, 0)


def test_signal_state_is_no_worse_than_a_plain_shell_child(start_init):
    plain_blocked, plain_ignored = signal_state(start_init(SIGNAL_STATE, namespace=False))
    blocked, ignored = signal_state(start_init([*init_command("pidone"), *SIGNAL_STATE]))
    assert blocked == plain_blocked == 0
    # pidone also clears glibc's reserved signals 32 and 33, which a shell passes on.
    assert ignored & ~plain_ignored == 0


def ignore_glibcs_reserved_signals() -> None:
    """Signals 32 and 33, which only the raw system call can set (app/core/child.py)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    ignore = (ctypes.c_ulong * 4)(1)  # handler SIG_IGN, no flags, no restorer, empty mask
    for signo in (32, 33):
        assert libc.syscall(13, signo, ignore, None, 8) == 0  # rt_sigaction, x86_64


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the raw rt_sigaction is x86_64's")
def test_glibcs_reserved_signals_are_not_passed_on_ignored(start_init):
    """Only the raw rt_sigaction resets them (glibc's sigaction refuses them): a parent that
    ignored them (some supervisors do) would otherwise pass that on through pidone."""
    plain_state = start_init(SIGNAL_STATE, namespace=False, preexec_fn=ignore_glibcs_reserved_signals)
    _, plain_ignored = signal_state(plain_state)
    assert plain_ignored & (0b11 << 31), "the shell should have passed them on"
    running = start_init([*init_command("pidone"), *SIGNAL_STATE],
                         preexec_fn=ignore_glibcs_reserved_signals)
    assert signal_state(running) == (0, 0)


def test_dumb_init_child_matches_a_plain_shell_child(start_init):
    plain = signal_state(start_init(SIGNAL_STATE, namespace=False))
    running = start_init([*init_command("dumb-init"), *SIGNAL_STATE], preexec_fn=ignore_pipe_hup_usr2)
    assert signal_state(running) == plain


def test_tini_child_inherits_what_tinis_parent_ignored(start_init):
    """The peer difference SPEC.md names: tini passes on ignored dispositions."""
    running = start_init([*init_command("tini"), *SIGNAL_STATE], preexec_fn=ignore_pipe_hup_usr2)
    _, ignored = signal_state(running)
    assert ignored & (1 << (signal.SIGPIPE - 1))


@pytest.mark.parametrize("flags", [[], ["-c"]], ids=["default", "single-child"])
def test_child_leads_its_own_process_group(start_init, flags):
    running = start_init([*init_command("pidone"), *flags, *workload("state", "exit=0")])
    state = parse_state(running.expect_report("state"))
    assert state["pgid"] == state["pid"]


def test_no_terminal_means_no_foreground_group(start_init):
    running = start_init([*init_command("pidone"), *workload("state", "exit=0")],
                         stdin=subprocess.DEVNULL)
    state = parse_state(running.expect_report("state"))
    assert state["fg"] == "-1"


LOCALE_OF_CHILD = ["sh", "-c", "echo locale ${{LC_CTYPE-unset}} > /dev/fd/{ack}"]
C_LOCALE = ["env", "-u", "LANG", "-u", "LC_ALL", "-u", "LC_CTYPE"]


@pytest.mark.parametrize("given, seen", [([], "unset"), (["LC_CTYPE=C.UTF-8"], "C.UTF-8")])
def test_the_child_gets_the_locale_pidone_was_given(start_init, given, seen):
    """In the C locale (an image without LANG) CPython sets LC_CTYPE=C.UTF-8 for itself
    (PEP 538): the child gets it only if pidone was given it, as under tini."""
    running = start_init([*C_LOCALE, *given, *init_command("pidone"), *LOCALE_OF_CHILD])
    assert running.read_report() == f"locale {seen}"
