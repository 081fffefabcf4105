"""A signal that wakes the core has it take the GIL back from the HTTP thread at once, not after
a switch interval of scrapes (app/core/signals.py); the latency itself is bench/cases/signals.py's."""

from __future__ import annotations

import os
import sys

import pytest

from app.core import signals
from app.core.alarm import Alarm
from app.core.signals import (TIMER_SLACK_NS, TURN_SWITCH_SECONDS, WAITING_SWITCH_SECONDS, SignalTaker,
                         waiting_switch_interval)
from conftest import init_command, workload


@pytest.mark.parametrize("cpus, interval", [({0}, TURN_SWITCH_SECONDS),
                                            ({0, 1}, WAITING_SWITCH_SECONDS),
                                            ({3, 7, 9}, WAITING_SWITCH_SECONDS)])
def test_the_core_asks_early_only_where_the_holder_has_another_cpu(monkeypatch, cpus, interval):
    monkeypatch.setattr(signals.os, "sched_getaffinity", lambda pid: cpus)
    assert waiting_switch_interval() == interval


def test_the_short_interval_lasts_as_long_as_the_wait(monkeypatch):
    monkeypatch.setattr(signals.os, "sched_getaffinity", lambda pid: {0, 1})
    seen = []
    monkeypatch.setattr(signals.signal, "sigwaitinfo",
                        lambda sigset: seen.append(sys.getswitchinterval()))
    try:
        assert SignalTaker(Alarm(lambda: None)).take(None) is None
        assert seen == [pytest.approx(WAITING_SWITCH_SECONDS)]
        assert sys.getswitchinterval() == pytest.approx(TURN_SWITCH_SECONDS)
    finally:
        sys.setswitchinterval(0.005)  # CPython's default, for the rest of the suite


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one CPU: the slack is left alone")
def test_pidone_shrinks_its_core_threads_timer_slack(start_pidone):
    running = start_pidone(workload())
    running.expect_report("ready")
    with open(f"/proc/{running.init_pid}/timerslack_ns") as slack:
        assert int(slack.read()) == TIMER_SLACK_NS


def test_without_http_the_slack_is_left_alone(start_init):
    """Nothing then competes with the core for the GIL: no write to /proc at start-up."""
    running = start_init([*init_command("pidone"), "--http", "off", *workload()])
    running.expect_report("ready")
    with open(f"/proc/{running.init_pid}/timerslack_ns") as slack:
        assert int(slack.read()) == 50_000  # Linux's default
