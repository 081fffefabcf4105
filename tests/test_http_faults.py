"""Faults of the HTTP side after start: the core and the child never notice, and pidone says so.

A port taken at start is tests/test_http_server.py's; here: the token file removed, and the
HTTP server's thread ending (crashing, or stopping quietly), which /health cannot report.
"""

from __future__ import annotations

import signal

import httpx
import pytest

from conftest import ROOT, scrape, workload
from observe import wait_until, zombies_of

TOKEN = "kept-in-memory"


def test_token_file_removed_after_start(start_pidone, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    running = start_pidone(workload("trap=USR1"), "--token-file", str(token_file))
    running.expect_report("ready")
    token_file.unlink()
    # Read once at start: the token stays what it was; rotating it needs a restart.
    assert running.http.post("/signal/USR1").status_code == 401
    answer = running.http.post("/signal/USR1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert running.read_report() == "SIGUSR1"
    assert running.http.get("/health").status_code == 200


@pytest.mark.parametrize("fault, logged", [
    ("raise", "HTTP server stopped: RuntimeError: injected fault: the event loop crashed"),
    ("quit", "HTTP server stopped"),
])
def test_http_thread_ending_is_logged_and_the_core_works_on(start_pidone, tmp_path, fault, logged):
    trigger = tmp_path / "fault"
    running = start_pidone(
        workload("storm=500"),
        env={"PYTHONPATH": f"{ROOT / 'tests' / 'faults'}:{ROOT}", "PIDONE_TEST_HTTP_FAULT": str(trigger)})
    running.expect_report("ready")
    reaped_before = scrape(running)[("pidone_zombies_reaped_total", ())]
    assert reaped_before == 0
    trigger.write_text(fault)
    wait_until(lambda: not serving(running), 10, "the HTTP server is gone")

    running.send(signal.SIGUSR1)  # OS signals are forwarded and orphans reaped as before
    running.expect_report("storm 500")
    wait_until(lambda: zombies_of(running.init_pid) == 0, 30, "the storm's orphans are reaped")
    running.send(signal.SIGTERM)
    assert running.wait() == 128 + signal.SIGTERM
    assert f"error: {logged}" in running.stderr


def serving(running) -> bool:
    try:
        running.http.get("/livez", timeout=1)
    except httpx.TransportError:
        return False
    return True
