"""The alarm that ends the core's waits (app/core/alarm.py), in-process: it rings once the moment
named has come, never before; an earlier moment named while it sleeps is heard at once; a later
one or None keeps it from ringing at the moment it was sleeping towards."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from app.core.alarm import Alarm
from conftest import init_command, workload

SOON = 0.2
LATER = 1.0


class Rings:
    """What the alarm's `ring` was called at, by time.monotonic()."""

    def __init__(self) -> None:
        self.at: list[float] = []
        self.heard = threading.Event()

    def __call__(self) -> None:
        self.at.append(time.monotonic())
        self.heard.set()

    def wait(self) -> float:
        assert self.heard.wait(10), "the alarm never rang"
        self.heard.clear()
        return self.at[-1]


@pytest.fixture
def rings() -> Rings:
    return Rings()


def test_it_rings_once_the_moment_has_come(rings):
    alarm = Alarm(rings)
    moment = time.monotonic() + SOON
    alarm.ring_at(moment)
    assert rings.wait() >= moment
    assert not rings.heard.wait(SOON)  # once only: the same moment named again rings no more
    alarm.ring_at(moment)
    assert not rings.heard.wait(SOON)


@pytest.mark.parametrize("first, then", [(LATER, SOON), (SOON, LATER)], ids=["earlier", "later"])
def test_it_rings_at_the_last_moment_named(rings, first, then):
    alarm = Alarm(rings)
    named = time.monotonic()
    alarm.ring_at(named + first)
    alarm.ring_at(named + then)
    assert rings.wait() >= named + then
    assert rings.at == [rings.at[0]]


def test_none_keeps_it_from_ringing(rings):
    alarm = Alarm(rings)
    alarm.ring_at(time.monotonic() + SOON)
    alarm.ring_at(None)
    assert not rings.heard.wait(2 * SOON)
    alarm.ring_at(time.monotonic())  # and it still hears the next moment
    rings.wait()


def test_a_moment_past_rings_at_once(rings):
    alarm = Alarm(rings)
    named = time.monotonic()
    alarm.ring_at(named + LATER)
    alarm.ring_at(named - 1)
    assert rings.wait() < named + LATER


def test_a_pidone_without_http_nor_deadlines_stays_single_threaded(start_init):
    """The alarm's thread starts with the first moment named: --http off names none."""
    running = start_init([*init_command("pidone"), *workload("trap=USR1", "exit-on=USR2")])
    running.expect_report("ready")
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"
    assert os.listdir(f"/proc/{running.init_pid}/task") == [str(running.init_pid)]
    running.send(signal.SIGUSR2)
    assert running.read_report() == "SIGUSR2"
    assert running.wait() == 0
