"""--restart on-failure|always with pidone as PID 1: a crash loop backs off 1 s, then 2 s, then
pidone leaves with the last status; a stop from the OS during a back-off leaves at once; signals
while no child runs are dropped and counted, never delivered to the next child."""

from __future__ import annotations

import signal
import time

import pytest

from conftest import scrape, wait_for_status, workload


def starts(running, count: int) -> list[float]:
    """When each of the next `count` children reported "ready" (time.monotonic, on arrival)."""
    moments = []
    for _ in range(count):
        running.expect_report("ready")
        moments.append(time.monotonic())
    return moments


def test_a_crash_loop_backs_off_then_leaves_with_the_last_status(start_pidone):
    running = start_pidone(workload("exit=3"), "--restart", "on-failure", "--restart-max", "3",
                           wait=False)
    first, second, third = starts(running, 3)
    assert running.wait() == 3
    # The back-offs pidone announced were honoured (floors: a child's interpreter takes its
    # time to report, more so on a loaded machine, so the ceilings are loose).
    assert 1.0 <= second - first < 1.0 + 5.0
    assert 2.0 <= third - second < 2.0 + 5.0
    assert "exited with status 3: restarting it in 1s" in running.stderr
    assert "restarting it in 2s (--restart on-failure, failure 2 of 3 in a row)" in running.stderr


@pytest.mark.parametrize("policy, words, options, status", [
    ("never", ("exit=3",), (), 3),
    ("on-failure", ("exit=0",), (), 0),
    ("on-failure", ("exit=3",), ("-e", "3"), 0),
    ("on-failure", ("exit=3",), ("--restart-max", "1"), 3),
])
def test_exits_that_are_not_restarted_end_pidone_at_once(start_pidone, policy, words, options,
                                                          status):
    running = start_pidone(workload(*words), "--restart", policy, *options, wait=False)
    running.expect_report("ready")
    assert running.wait() == status
    assert "restarting" not in running.stderr


def test_always_restarts_a_success_too(start_pidone):
    running = start_pidone(workload("exit=0"), "--restart", "always", "--restart-max", "1")
    starts(running, 2)
    deadline = time.monotonic() + 20
    while len(running.http.get("/status").json()["exits"]) < 2:  # the second is in its back-off
        assert time.monotonic() < deadline
        time.sleep(0.02)
    running.send(signal.SIGTERM)
    assert running.wait() == 0


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_a_stop_during_the_back_off_leaves_at_once_with_the_last_status(start_pidone, stop):
    """docker stop, the kubelet: TERM (or INT, QUIT) while no child runs ends pidone then and
    there, restart policy or not. Other signals meanwhile are dropped and counted."""
    running = start_pidone(workload("exit=4"), "--restart", "always")
    starts(running, 2)
    deadline = time.monotonic() + 20
    while len(running.http.get("/status").json()["exits"]) < 2:  # in the 2 s back-off
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert running.http.get("/health").json()["phase"] == "restarting"
    assert wait_for_status(running, "/readyz", 503)["status"] == "restarting"
    running.send(signal.SIGHUP)
    running.send(signal.SIGUSR1)
    assert running.http.post("/signal/USR2").status_code == 409
    samples = scrape(running)
    while samples[("pidone_signals_dropped_total", (("reason", "no_child"),))] < 2:
        samples = scrape(running)
    sent_at = time.monotonic()
    running.send(stop)
    assert running.wait() == 4
    assert time.monotonic() - sent_at < 1.0  # not after the rest of the back-off
    with pytest.raises(AssertionError, match="closed"):
        running.read_report(timeout=5)  # no third child ever reported "ready"


def test_a_restarted_child_does_not_get_the_signals_sent_while_none_ran(start_pidone):
    running = start_pidone(workload("trap=USR1,HUP", "note=first"), "--restart", "always")
    running.expect_report("ready")
    # Killed by a signal that is no stop (TERM, INT, QUIT): a failure, restarted after 1 s.
    assert running.http.post("/signal/KILL", params={"target": "child"}).status_code == 200
    wait_for_status(running, "/readyz", 503)
    running.send(signal.SIGUSR1)
    running.expect_report("ready")
    running.send(signal.SIGHUP)
    assert running.read_report() == "SIGHUP"  # the first thing the new child heard
    samples = scrape(running)
    assert samples[("pidone_signals_dropped_total", (("reason", "no_child"),))] == 1
    assert samples[("pidone_child_restarts_total", (("reason", "exit"),))] == 1
    assert samples[("pidone_child_exit_code", ())] == 137
    exits = running.http.get("/status").json()["exits"]
    assert [(e["exit_signal"], e["followed_by"], e["reason"], e["backoff_seconds"])
            for e in exits] == [("SIGKILL", "restart", "exit", 1.0)]
