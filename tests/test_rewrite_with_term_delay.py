"""-r and --term-delay together, on a real pidone as PID 1: the rewrite decides first. A TERM
rewritten to 0 changes nothing; rewritten to X, readiness ends at once and X, not SIGTERM, is
delivered once after the delay; a second TERM delivers X at once. (The whole table of options
is tests/test_signal_policy.py's, in-process.)"""

from __future__ import annotations

import signal
import time

from conftest import forwarded, scrape, wait_for_core_turn_after, wait_for_status, workload

DELAY = 0.3
TRAPS = "trap=TERM,USR1,USR2"


def forwarded_from_os(running, name: str) -> float:
    return forwarded(scrape(running), name, "os")


def test_a_term_rewritten_to_0_changes_nothing(start_pidone):
    running = start_pidone(workload(TRAPS), "-r", "TERM:0", "--term-delay", str(DELAY))
    running.expect_report("ready")
    sent_at = time.time()
    running.send(signal.SIGTERM)
    wait_for_core_turn_after(running, sent_at + DELAY)
    assert running.http.get("/readyz").status_code == 200  # readiness stays
    running.send(signal.SIGUSR2)
    assert running.read_report() == "SIGUSR2"  # the child never heard of the TERM
    samples = scrape(running)
    assert samples[("pidone_signals_received_total", (("signal", "SIGTERM"),))] == 1
    assert forwarded_from_os(running, "SIGTERM") == 0


def test_a_rewritten_term_is_delivered_once_as_its_rewrite_after_the_delay(start_pidone):
    running = start_pidone(workload(TRAPS), "-r", "TERM:USR1", "--term-delay", str(DELAY))
    running.expect_report("ready")
    sent_at = time.time()
    running.send(signal.SIGTERM)
    assert wait_for_status(running, "/readyz", 503)["status"] == "terminating"
    assert running.read_report() == "SIGUSR1"
    assert time.time() - sent_at >= DELAY
    wait_for_core_turn_after(running, sent_at + DELAY)
    running.send(signal.SIGUSR2)
    assert running.read_report() == "SIGUSR2"  # no second USR1, no SIGTERM
    assert forwarded_from_os(running, "SIGUSR1") == 1
    assert forwarded_from_os(running, "SIGTERM") == 0


def test_a_second_term_delivers_the_rewrite_at_once(start_pidone):
    running = start_pidone(workload(TRAPS), "-r", "TERM:USR1", "--term-delay", "60")
    running.expect_report("ready")
    running.send(signal.SIGTERM)
    wait_for_status(running, "/readyz", 503)
    running.send(signal.SIGTERM)
    assert running.read_report() == "SIGUSR1"
    assert forwarded_from_os(running, "SIGUSR1") == 1
