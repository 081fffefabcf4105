"""The signal policy in-process, on a fake clock: -r × --term-delay × --stop-timeout × where the
signal comes from × a second SIGTERM, each row saying what the child gets, when, and whether
readiness ends. The rules (docs/cli.md, "Signals and stopping"): the rewrite decides first; a TERM
rewritten to 0 changes nothing; --term-delay holds back the first SIGTERM from the OS (its
rewrite is what is delivered, once); a second SIGTERM goes at once; API signals are neither
rewritten nor delayed; --stop-timeout starts with the first stop delivered."""

from __future__ import annotations

import signal
from types import MappingProxyType

import pytest

from app.config import BY_SIGNAL, CHILD, GROUP
from app.policy import SignalPolicy
from app.signals import FORWARDED

TERM, INT, USR1 = signal.SIGTERM, signal.SIGINT, signal.SIGUSR1
DELAY = 5.0
STOP_TIMEOUT = 10.0
SECOND_AT = 1.0
"""When the second SIGTERM comes, if any: inside the delay."""
END = 60.0

REWRITES = {"none": {}, "to 0": {TERM: 0}, "to USR1": {TERM: USR1}}

# (rewrite, delayed, source, second TERM) -> (what the child gets as (time, signal), ready after
# the first TERM). Every row without a stop timeout; the timeout is checked on top of the table.
EXPECTED = {
    ("none", False, "os", False): ([(0.0, TERM)], False),
    ("none", False, "os", True): ([(0.0, TERM), (SECOND_AT, TERM)], False),
    ("none", True, "os", False): ([(DELAY, TERM)], False),
    ("none", True, "os", True): ([(SECOND_AT, TERM)], False),
    ("to 0", False, "os", False): ([], True),
    ("to 0", False, "os", True): ([], True),
    ("to 0", True, "os", False): ([], True),
    ("to 0", True, "os", True): ([], True),
    ("to USR1", False, "os", False): ([(0.0, USR1)], False),
    ("to USR1", False, "os", True): ([(0.0, USR1), (SECOND_AT, USR1)], False),
    ("to USR1", True, "os", False): ([(DELAY, USR1)], False),
    ("to USR1", True, "os", True): ([(SECOND_AT, USR1)], False),
    **{(rewrite, delayed, "api", False): ([(0.0, TERM)], False)
       for rewrite in REWRITES for delayed in (False, True)},
    **{(rewrite, delayed, "api", True): ([(0.0, TERM), (SECOND_AT, TERM)], False)
       for rewrite in REWRITES for delayed in (False, True)},
}


def drive(policy: SignalPolicy, events: list[tuple[float, str, int]]) -> tuple[list, list, list]:
    """Feed the policy `events` (time, source, signal) in order, firing its deadlines on a
    fake clock as the core loop would; (deliveries, SIGKILL times, readiness after each event)."""
    delivered: list[tuple[float, int]] = []
    kills: list[float] = []
    ready: list[bool] = []
    for at, source, signo in [*events, (END, "", 0)]:
        while (deadline := policy.next_deadline()) is not None and deadline <= at:
            if (due := policy.delayed_due(deadline)) is not None:
                delivered.append((deadline, due))
            if policy.kill_due(deadline):
                kills.append(deadline)
        if source == "os":
            target = policy.received(signo, at)
            if target is not None:
                delivered.append((at, target))
        elif source == "api":
            delivered.append((at, policy.requested(signo, at)))
        ready.append(not policy.stop_asked)
    return delivered, kills, ready


@pytest.mark.parametrize("stop_timeout", [None, STOP_TIMEOUT])
@pytest.mark.parametrize("rewrite, delayed, source, second", sorted(EXPECTED))
def test_policy_table(rewrite, delayed, source, second, stop_timeout):
    policy = SignalPolicy(MappingProxyType(REWRITES[rewrite]), DELAY if delayed else 0.0,
                          stop_timeout)
    events = [(0.0, source, TERM)] + ([(SECOND_AT, source, TERM)] if second else [])
    delivered, kills, ready = drive(policy, events)
    expected, ready_after_first = EXPECTED[(rewrite, delayed, source, second)]
    assert delivered == expected
    assert ready[0] is ready_after_first
    # --stop-timeout: a SIGKILL once, that long after the first stop delivered; none without.
    assert kills == ([expected[0][0] + STOP_TIMEOUT] if stop_timeout and expected else [])


def test_an_api_term_supersedes_the_held_back_term_and_its_rewrite():
    policy = SignalPolicy(MappingProxyType({TERM: USR1}), DELAY, None)
    delivered, _, ready = drive(policy, [(0.0, "os", TERM), (SECOND_AT, "api", TERM)])
    assert delivered == [(SECOND_AT, TERM)]  # the API named TERM; the held-back USR1 never goes
    assert ready == [False, False, False]


def test_other_api_signals_leave_the_held_back_term_alone():
    policy = SignalPolicy(MappingProxyType({}), DELAY, None)
    delivered, _, _ = drive(policy, [(0.0, "os", TERM), (SECOND_AT, "api", USR1)])
    assert delivered == [(SECOND_AT, USR1), (DELAY, TERM)]


@pytest.mark.parametrize("first", [INT, TERM])
def test_after_a_stop_was_delivered_a_term_is_not_delayed(first):
    """--term-delay holds back only the first stop: the child was already told to stop."""
    policy = SignalPolicy(MappingProxyType({}), DELAY, None)
    delivered, _, _ = drive(policy, [(0.0, "api", first), (SECOND_AT, "os", TERM)])
    assert delivered == [(0.0, first), (SECOND_AT, TERM)]


def test_a_signal_rewritten_into_a_stop_ends_readiness_and_arms_the_stop_timeout():
    policy = SignalPolicy(MappingProxyType({USR1: TERM}), DELAY, STOP_TIMEOUT)
    delivered, kills, ready = drive(policy, [(0.0, "os", USR1)])
    assert delivered == [(0.0, TERM)]  # not delayed: what arrived was USR1, not SIGTERM
    assert kills == [STOP_TIMEOUT]
    assert ready[0] is False


def test_signals_that_stop_nothing_keep_readiness_and_arm_nothing():
    policy = SignalPolicy(MappingProxyType({}), DELAY, STOP_TIMEOUT)
    delivered, kills, ready = drive(policy, [(0.0, "os", USR1), (SECOND_AT, "api", signal.SIGHUP)])
    assert delivered == [(0.0, USR1), (SECOND_AT, signal.SIGHUP)]
    assert kills == []
    assert ready == [True, True, True]


def test_the_stop_timeout_counts_from_the_first_stop_only():
    policy = SignalPolicy(MappingProxyType({}), 0.0, STOP_TIMEOUT)
    _, kills, _ = drive(policy, [(0.0, "os", INT), (3.0, "os", TERM), (4.0, "api", TERM)])
    assert kills == [STOP_TIMEOUT]



def expected_target(signo: int, signal_target: str, terminal: bool) -> str:
    """The rule of docs/SPEC.md, "Where a signal goes", written out once more."""
    if signal_target != BY_SIGNAL:
        return signal_target
    ending = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGKILL}
    job_control = {signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGCONT}
    return GROUP if signo in ending or (terminal and signo in job_control) else CHILD


@pytest.mark.parametrize("terminal", [False, True], ids=["no terminal", "terminal"])
@pytest.mark.parametrize("signal_target", [BY_SIGNAL, GROUP, CHILD])
def test_target_of_every_signal(signal_target, terminal):
    policy = SignalPolicy(MappingProxyType({}), 0.0, None, signal_target, terminal)
    targets = {signo: policy.target(signo) for signo in sorted(FORWARDED | {signal.SIGKILL})}
    assert targets == {signo: expected_target(signo, signal_target, terminal) for signo in targets}


def test_by_default_only_stops_reach_the_group_without_a_terminal():
    policy = SignalPolicy(MappingProxyType({}), 0.0, None)
    assert {signo for signo in FORWARDED if policy.target(signo) == GROUP} == {
        signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
