"""Faults of the HTTP side after start: the core and the child never notice, and pidone says so.

A port taken at start is tests/test_http_server.py's; here: the token file removed, and the
HTTP server gone (its thread crashing or stopping quietly, or its event loop stuck), which
/health cannot report: the core's watch logs it.
"""

from __future__ import annotations

import os
import select
import signal
import time

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


WATCH_LINE = "error: HTTP server (/health, /metrics, /signal) does not answer"


@pytest.mark.parametrize("fault, logged", [
    ("raise", ["error: HTTP server stopped: RuntimeError: injected fault: the event loop crashed",
               WATCH_LINE]),
    ("quit", ["error: HTTP server stopped without being asked to", WATCH_LINE]),
    ("hang", [WATCH_LINE]),  # the thread lives on: only the core's watch can tell
])
def test_http_server_gone_is_logged_and_the_core_works_on(start_pidone, tmp_path, fault, logged):
    trigger = tmp_path / "fault"
    running = start_pidone(workload("storm=500"), env={
        "PYTHONPATH": f"{ROOT / 'tests' / 'faults'}:{ROOT}", "PIDONE_TEST_HTTP_FAULT": str(trigger),
        "PIDONE_TEST_STALL_AFTER": "1"})
    running.expect_report("ready")
    assert scrape(running)[("pidone_zombies_reaped_total", ())] == 0
    trigger.write_text(fault)
    log = read_log_until(running, logged[-1], timeout=30)

    running.send(signal.SIGUSR1)  # OS signals are forwarded and orphans reaped as before
    running.expect_report("storm 500")
    wait_until(lambda: zombies_of(running.init_pid) == 0, 30, "the storm's orphans are reaped")
    running.send(signal.SIGTERM)
    assert running.wait() == 128 + signal.SIGTERM
    log += running.stderr
    for line in logged:
        assert line in log


def read_log_until(running, text: str, timeout: float) -> str:
    """pidone's stderr as it comes, until `text` shows; what was read (fails after timeout)."""
    fd = running.proc.stderr.fileno()
    read = b""
    deadline = time.monotonic() + timeout
    while text.encode() not in read:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise AssertionError(f"pidone never logged {text!r}; it logged: {read.decode()}")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise AssertionError(f"pidone's stderr closed before {text!r}: {read.decode()}")
        read += chunk
    return read.decode()
