"""--restart's rule in-process: a row of exits (status, signal, stops pidone delivered, seconds
run) gives the back-offs before each restart, or the point where pidone leaves. The rules
(docs/SPEC.md, "Restarts"): a failure is a non-zero status -e does not remap, or a death by a
signal pidone did not deliver as a stop; the back-off is 1 s doubling to 30 s, and starts over,
with the failure count, once a child has run 60 s; the --restart-max-th failure in a row ends
it."""

from __future__ import annotations

import signal

import pytest

from app.core.policy import SignalPolicy
from app.core.restart import MAX_BACKOFF, RestartPolicy

TERM, KILL, SEGV, HUP = signal.SIGTERM, signal.SIGKILL, signal.SIGSEGV, signal.SIGHUP
QUICK, LONG = 0.1, 61.0
"""Seconds a child ran: well under, and just over, the 60 s that end a row."""
FAIL = (3, None, (), QUICK)
"""A child that exited 3 at once."""
LEAVE = None


def exits(*exit_codes: int) -> list[tuple]:
    return [(code, None, (), QUICK) for code in exit_codes]


CASES = [
    # policy, max, -e, exits (code, killing signal, stops delivered, seconds run) -> back-offs
    ("never", 5, (), [FAIL], [LEAVE]),
    ("never", 5, (), exits(0), [LEAVE]),
    ("on-failure", 5, (), exits(0), [LEAVE]),
    ("on-failure", 3, (), [FAIL] * 3, [1.0, 2.0, LEAVE]),
    ("on-failure", 1, (), [FAIL], [LEAVE]),
    ("on-failure", 9, (), [FAIL] * 8, [1.0, 2.0, 4.0, 8.0, 16.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]),
    # -e 3 makes 3 a success; a success ends on-failure.
    ("on-failure", 5, (3,), [FAIL], [LEAVE]),
    # A child that ran 60 s starts the row over: back-off and failure count.
    ("on-failure", 2, (), [FAIL, (3, None, (), LONG), FAIL], [1.0, 1.0, LEAVE]),
    # Killed by a signal nobody asked pidone to deliver: a failure. Killed by the stop pidone
    # delivered (or the KILL of a stop timeout): how it was asked to end.
    ("on-failure", 5, (), [(128 + SEGV, SEGV, (), QUICK)], [1.0]),
    ("on-failure", 5, (), [(128 + TERM, TERM, (TERM,), QUICK)], [LEAVE]),
    ("on-failure", 5, (), [(128 + KILL, KILL, (TERM, KILL), QUICK)], [LEAVE]),
    ("on-failure", 5, (), [(128 + HUP, HUP, (TERM,), QUICK)], [1.0]),
    # always: a success is restarted too, and breaks the row of failures, not the back-off.
    ("always", 2, (), [*exits(0, 0, 0), FAIL, *exits(0), FAIL, FAIL], [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, LEAVE]),
]


@pytest.mark.parametrize("policy, max_failures, remap, ended, expected", CASES)
def test_back_offs_and_leaving(policy, max_failures, remap, ended, expected):
    rule = RestartPolicy(policy, max_failures, frozenset(remap))
    got = []
    for code, killed_by, stops, ran in ended:
        got.append(rule.after_exit(code, killed_by, frozenset(stops), ran))
        if got[-1] is LEAVE:
            break
    assert got == expected


def test_the_back_off_never_overflows():
    rule = RestartPolicy("always", 1, frozenset())
    assert {rule.after_exit(0, None, (), QUICK) for _ in range(5000)} >= {MAX_BACKOFF}


@pytest.mark.parametrize("signo, rewrites, stop", [
    (signal.SIGTERM, {}, True),
    (signal.SIGINT, {}, True),
    (signal.SIGQUIT, {}, True),
    (signal.SIGHUP, {}, False),
    (signal.SIGTERM, {signal.SIGTERM: 0}, False),  # rewritten to nothing: changes nothing
    (signal.SIGHUP, {signal.SIGHUP: signal.SIGTERM}, True),  # rewritten to a stop
    (signal.SIGTERM, {signal.SIGTERM: signal.SIGUSR1}, True),  # a stop, whatever reaches the child
])
def test_which_signals_from_the_os_end_pidone_whatever_the_restart_policy(signo, rewrites, stop):
    for term_delay in (0.0, 5.0):
        policy = SignalPolicy(rewrites, term_delay, None)
        policy.received(signo, 0.0)
        assert policy.stop_from_os is stop
        policy.requested(signal.SIGTERM, 1.0)  # over the API: not from the OS
        assert policy.stop_from_os is stop
