"""/health, /livez and /readyz: 200 while all is well, 503 with the reason from the first sign of leaving."""

from __future__ import annotations

import signal

import pytest

from conftest import LINGERER, scrape, wait_for_status, workload

PROBES = ["/health", "/livez", "/readyz"]


@pytest.mark.parametrize("path", PROBES)
def test_probe_is_ok_while_the_child_runs(start_pidone, path):
    running = start_pidone(workload())
    child_pid = int(running.expect_report("ready").split()[1])
    answer = running.http.get(path)
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["phase"] == "running"
    assert body["child"]["pid"] == child_pid
    assert body["child"]["running"] is True
    assert body["child"]["uptime_seconds"] >= 0
    assert 0 <= body["heartbeat_age_seconds"] < 5


@pytest.mark.parametrize("path", PROBES)
def test_head_answers_without_a_body(start_pidone, path):
    running = start_pidone(workload())
    answer = running.http.head(path)
    assert answer.status_code == 200
    assert answer.content == b""


def test_term_delay_turns_readyz_503_before_the_child_hears_of_it(start_pidone):
    running = start_pidone(workload("trap=TERM,USR1"), "--term-delay", "60")
    running.expect_report("ready")
    running.send(signal.SIGTERM)
    body = wait_for_status(running, "/readyz", 503)
    assert body["status"] == "terminating"
    # Still alive and healthy: only readiness ends, and the child has not been told yet.
    assert running.http.get("/health").json()["status"] == "ok"
    assert running.http.get("/livez").status_code == 200
    assert scrape(running)[("pidone_ready", ())] == 0
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"  # the TERM is still held back
    running.send(signal.SIGTERM)  # a second TERM goes through at once
    assert running.read_report() == "SIGTERM"


def test_readyz_turns_503_when_a_stop_signal_is_forwarded(start_pidone):
    running = start_pidone(workload("trap=INT"))
    running.expect_report("ready")
    running.send(signal.SIGINT)
    assert running.read_report() == "SIGINT"
    assert running.http.get("/readyz").json()["status"] == "terminating"
    assert running.http.get("/health").status_code == 200


def test_a_stopped_child_turns_health_and_readyz_503_until_it_continues(start_pidone):
    """A workload stopped with SIGSTOP hangs for good in a container: /health fails, so that
    a liveness probe restarts it; pidone itself still turns (/livez)."""
    running = start_pidone(workload())
    running.expect_report("ready")
    assert running.http.post("/signal/STOP").status_code == 200
    assert wait_for_status(running, "/health", 503)["status"] == "stopped"
    assert running.http.get("/readyz").json()["status"] == "stopped"
    assert running.http.get("/livez").status_code == 200
    assert running.http.post("/signal/CONT").status_code == 200
    assert wait_for_status(running, "/health", 200)["status"] == "ok"


def test_during_the_grace_period_health_says_stopping_and_metrics_still_answer(start_pidone):
    running = start_pidone(LINGERER, "--grace", "60")
    body = wait_for_status(running, "/health", 503)
    assert body["status"] == "stopping"
    assert body["child"]["running"] is False
    assert body["child"]["exit_code"] == 3
    assert running.http.get("/readyz").status_code == 503
    assert running.http.get("/livez").status_code == 200
    samples = scrape(running)
    assert samples[("pidone_child_running", ())] == 0
    assert samples[("pidone_child_exit_code", ())] == 3
    assert samples[("pidone_ready", ())] == 0
