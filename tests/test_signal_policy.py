"""The signal policy in-process, on a fake clock: -r × --term-delay × --stop-timeout × where the
signal comes from × a second SIGTERM, each row saying every answer of the policy (what the child
gets, when, and why: the core logs and counts by the why) and whether readiness ends. The rules
(docs/cli.md, "Signals and stopping"): the rewrite decides first; a TERM
rewritten to 0 changes nothing; --term-delay holds back the first SIGTERM from the OS (its
rewrite is what is delivered, once); a second SIGTERM goes at once; API signals are neither
rewritten nor delayed; --stop-timeout starts with the first stop delivered."""

from __future__ import annotations

import signal
from types import MappingProxyType

import pytest

from app.config import BY_SIGNAL, CHILD, GROUP
from app.core.policy import DELAYED, DROP, FORWARD, HOLD, SignalPolicy
from app.core.policy import STOP_TIMEOUT as TIMED_OUT
from app.core.signals import FORWARDED

TERM, INT, QUIT, HUP = signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP
USR1, KILL = signal.SIGUSR1, signal.SIGKILL
DELAY = 5.0
STOP_TIMEOUT = 10.0
SECOND_AT = 1.0
"""When the second SIGTERM comes, if any: inside the delay."""
END = 60.0

REWRITES = {"none": {}, "to 0": {TERM: 0}, "to USR1": {TERM: USR1}}

# (rewrite, delayed, source, second TERM) -> (every answer as (time, signal or 0, why), ready
# after the first TERM). Every row without a stop timeout; the timeout is checked on top of the
# table.
EXPECTED = {
    ("none", False, "os", False): ([(0.0, TERM, FORWARD)], False),
    ("none", False, "os", True): ([(0.0, TERM, FORWARD), (SECOND_AT, TERM, FORWARD)], False),
    ("none", True, "os", False): ([(0.0, 0, HOLD), (DELAY, TERM, DELAYED)], False),
    ("none", True, "os", True): ([(0.0, 0, HOLD), (SECOND_AT, TERM, FORWARD)], False),
    ("to 0", False, "os", False): ([(0.0, 0, DROP)], True),
    ("to 0", False, "os", True): ([(0.0, 0, DROP), (SECOND_AT, 0, DROP)], True),
    ("to 0", True, "os", False): ([(0.0, 0, DROP)], True),
    ("to 0", True, "os", True): ([(0.0, 0, DROP), (SECOND_AT, 0, DROP)], True),
    ("to USR1", False, "os", False): ([(0.0, USR1, FORWARD)], False),
    ("to USR1", False, "os", True): ([(0.0, USR1, FORWARD), (SECOND_AT, USR1, FORWARD)], False),
    ("to USR1", True, "os", False): ([(0.0, 0, HOLD), (DELAY, USR1, DELAYED)], False),
    ("to USR1", True, "os", True): ([(0.0, 0, HOLD), (SECOND_AT, USR1, FORWARD)], False),
    **{(rewrite, delayed, "api", False): ([(0.0, TERM, FORWARD)], False)
       for rewrite in REWRITES for delayed in (False, True)},
    **{(rewrite, delayed, "api", True): ([(0.0, TERM, FORWARD), (SECOND_AT, TERM, FORWARD)], False)
       for rewrite in REWRITES for delayed in (False, True)},
}


def drive(policy: SignalPolicy, events: list[tuple[float, str, int]]) -> tuple[list, list]:
    """Feed the policy `events` (time, source, signal) in order, firing its deadlines on a
    fake clock as the core loop would; (every answer as (time, signal, why), readiness after
    each event)."""
    answers: list[tuple[float, int, str]] = []
    ready: list[bool] = []
    for at, source, signo in [*events, (END, "", 0)]:
        while (deadline := policy.next_deadline()) is not None and deadline <= at:
            answers.extend((deadline, *decision) for decision in policy.due(deadline))
        if source == "os":
            answers.append((at, *policy.received(signo, at)))
        elif source == "api":
            answers.append((at, *policy.requested(signo, at)))
        ready.append(not policy.stop_asked)
    return answers, ready


def delivered(answers: list[tuple[float, int, str]]) -> list[tuple[float, int]]:
    """What reached the child, --stop-timeout's SIGKILL aside."""
    return [(at, signo) for at, signo, why in answers if signo and why != TIMED_OUT]


def kills(answers: list[tuple[float, int, str]]) -> list[float]:
    """When --stop-timeout's SIGKILL went."""
    assert all(signo == KILL for _, signo, why in answers if why == TIMED_OUT)
    return [at for at, _, why in answers if why == TIMED_OUT]


@pytest.mark.parametrize("stop_timeout", [None, STOP_TIMEOUT])
@pytest.mark.parametrize("rewrite, delayed, source, second", sorted(EXPECTED))
def test_policy_table(rewrite, delayed, source, second, stop_timeout):
    policy = SignalPolicy(MappingProxyType(REWRITES[rewrite]), DELAY if delayed else 0.0,
                          stop_timeout)
    events = [(0.0, source, TERM)] + ([(SECOND_AT, source, TERM)] if second else [])
    answers, ready = drive(policy, events)
    expected, ready_after_first = EXPECTED[(rewrite, delayed, source, second)]
    first_delivery = next((at for at, signo, _ in expected if signo), None)
    # --stop-timeout: a SIGKILL once, that long after the first stop delivered; none without.
    if stop_timeout and first_delivery is not None:
        expected = sorted([*expected, (first_delivery + STOP_TIMEOUT, KILL, TIMED_OUT)])
    assert answers == expected
    assert ready[0] is ready_after_first


def test_an_api_term_supersedes_the_held_back_term_and_its_rewrite():
    policy = SignalPolicy(MappingProxyType({TERM: USR1}), DELAY, None)
    answers, ready = drive(policy, [(0.0, "os", TERM), (SECOND_AT, "api", TERM)])
    assert delivered(answers) == [(SECOND_AT, TERM)]  # the API named TERM; the held-back USR1 never goes
    assert ready == [False, False, False]


def test_other_api_signals_leave_the_held_back_term_alone():
    policy = SignalPolicy(MappingProxyType({}), DELAY, None)
    answers, _ = drive(policy, [(0.0, "os", TERM), (SECOND_AT, "api", USR1)])
    assert delivered(answers) == [(SECOND_AT, USR1), (DELAY, TERM)]


@pytest.mark.parametrize("first", [INT, TERM])
def test_after_a_stop_was_delivered_a_term_is_not_delayed(first):
    """--term-delay holds back only the first stop: the child was already told to stop."""
    policy = SignalPolicy(MappingProxyType({}), DELAY, None)
    answers, _ = drive(policy, [(0.0, "api", first), (SECOND_AT, "os", TERM)])
    assert delivered(answers) == [(0.0, first), (SECOND_AT, TERM)]


def test_a_signal_rewritten_into_a_stop_ends_readiness_and_arms_the_stop_timeout():
    policy = SignalPolicy(MappingProxyType({USR1: TERM}), DELAY, STOP_TIMEOUT)
    answers, ready = drive(policy, [(0.0, "os", USR1)])
    assert delivered(answers) == [(0.0, TERM)]  # not delayed: what arrived was USR1, not SIGTERM
    assert kills(answers) == [STOP_TIMEOUT]
    assert ready[0] is False


def test_signals_that_stop_nothing_keep_readiness_and_arm_nothing():
    policy = SignalPolicy(MappingProxyType({}), DELAY, STOP_TIMEOUT)
    answers, ready = drive(policy, [(0.0, "os", USR1), (SECOND_AT, "api", signal.SIGHUP)])
    assert delivered(answers) == [(0.0, USR1), (SECOND_AT, signal.SIGHUP)]
    assert kills(answers) == []
    assert ready == [True, True, True]


def test_the_stop_timeout_counts_from_the_first_stop_only():
    policy = SignalPolicy(MappingProxyType({}), 0.0, STOP_TIMEOUT)
    answers, _ = drive(policy, [(0.0, "os", INT), (3.0, "os", TERM), (4.0, "api", TERM)])
    assert kills(answers) == [STOP_TIMEOUT]



# The first signal from the OS, with --term-delay and --stop-timeout set -> every answer. Only
# SIGTERM itself is held back; every stop (TERM, INT, QUIT, or a rewrite into one) arms the
# SIGKILL; other signals pass and arm nothing.
FIRST_SIGNAL = [
    pytest.param(INT, {}, [(0.0, INT, FORWARD), (STOP_TIMEOUT, KILL, TIMED_OUT)], id="INT"),
    pytest.param(QUIT, {}, [(0.0, QUIT, FORWARD), (STOP_TIMEOUT, KILL, TIMED_OUT)], id="QUIT"),
    pytest.param(USR1, {}, [(0.0, USR1, FORWARD)], id="USR1"),
    pytest.param(HUP, {HUP: TERM}, [(0.0, TERM, FORWARD), (STOP_TIMEOUT, KILL, TIMED_OUT)],
                 id="HUP:TERM"),
    pytest.param(TERM, {TERM: QUIT}, [(0.0, 0, HOLD), (DELAY, QUIT, DELAYED),
                                      (DELAY + STOP_TIMEOUT, KILL, TIMED_OUT)], id="TERM:QUIT"),
    pytest.param(INT, {INT: 0}, [(0.0, 0, DROP)], id="INT:0"),
]


@pytest.mark.parametrize("first, rewrites, expected", FIRST_SIGNAL)
def test_only_sigterm_is_held_back_and_every_stop_arms_the_kill(first, rewrites, expected):
    policy = SignalPolicy(MappingProxyType(rewrites), DELAY, STOP_TIMEOUT)
    answers, _ = drive(policy, [(0.0, "os", first)])
    assert answers == expected


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
