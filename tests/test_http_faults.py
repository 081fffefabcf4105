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
from types import SimpleNamespace

import httpx
import pytest

from app.http import server
from app.http.address import ListenAddress
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


# -- the watch does not cry wolf (finding 6 of issue 11) --------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watched_server(monkeypatch) -> tuple[server.HttpServer, Clock]:
    """An HttpServer whose thread lives and whose uvicorn has started, on a clock of ours; its
    loop last came back from its selector now, and is not waiting in it."""
    clock = Clock()
    monkeypatch.setattr(server.time, "monotonic", clock)
    http = server.HttpServer(core=None, address=ListenAddress(port=1))  # type: ignore[arg-type]
    http._server = SimpleNamespace(started=True)
    http._selector = SimpleNamespace(waiting=False, returned_at=clock.now)
    return http, clock


def ask_every_second(http: server.HttpServer, clock: Clock, seconds: int) -> list[str | None]:
    answers = []
    for _ in range(seconds):
        clock.now += 1.0
        answers.append(http.trouble())
    return answers


def test_a_loop_that_stops_turning_is_reported_with_how_long(monkeypatch):
    http, clock = watched_server(monkeypatch)
    answers = ask_every_second(http, clock, int(server.STALL_AFTER) + 2)
    assert answers[:int(server.STALL_AFTER) - 1] == [None] * (int(server.STALL_AFTER) - 1)
    assert answers[-1] == (f"its event loop has not turned for {server.STALL_AFTER + 2:.0f}s, "
                           f"{server.STALL_AFTER + 2:.0f}s of them while the core's did")


def test_a_stall_the_core_shared_is_nobodys_fault(monkeypatch):
    """The machine stood still for longer than STALL_AFTER: the core woke that late too."""
    http, clock = watched_server(monkeypatch)
    ask_every_second(http, clock, 2)
    clock.now += 3 * server.STALL_AFTER  # nobody ran: not the core, not the server's loop
    assert http.trouble() is None
    http._selector.returned_at = clock.now  # the loop turns again soon after
    assert ask_every_second(http, clock, 3) == [None] * 3
    # A loop that stays silent afterwards is still found out, STALL_AFTER seconds later.
    answers = ask_every_second(http, clock, int(server.STALL_AFTER) + 1)
    assert answers[-1] is not None and answers[0] is None


def test_a_loop_waiting_for_clients_is_not_stuck_however_long_it_waits(monkeypatch):
    """An idle server's loop sleeps in its selector and nothing wakes it: that is no stall."""
    http, clock = watched_server(monkeypatch)
    http._selector.waiting = True
    long_wait = 3 * int(server.STALL_AFTER)
    assert ask_every_second(http, clock, long_wait) == [None] * long_wait
    http._selector.waiting = False  # a callback runs, and never ends
    http._selector.returned_at = clock.now
    answers = ask_every_second(http, clock, int(server.STALL_AFTER) + 1)
    assert answers[0] is None and answers[-1] is not None


def test_a_pidone_that_stood_still_does_not_call_its_server_stuck(start_pidone):
    """SIGSTOP for twice the watch's threshold, as a frozen node does: no false alarm."""
    stall_after = 3.0
    running = start_pidone(workload(), env={"PYTHONPATH": f"{ROOT / 'tests' / 'faults'}:{ROOT}",
                                            "PIDONE_TEST_STALL_AFTER": str(stall_after)})
    os.kill(running.init_pid, signal.SIGSTOP)
    time.sleep(2 * stall_after)  # the stall itself, not a wait for an effect
    os.kill(running.init_pid, signal.SIGCONT)
    resumed = time.time()
    running.http.close()  # its kept-alive connection timed out during the stall: a new one
    running.http = httpx.Client(base_url=running.url, timeout=20)
    # Two turns of the core's loop after the stall: the watch has looked at least once.
    wait_until(lambda: scrape(running)[("pidone_core_heartbeat_timestamp_seconds", ())] > resumed + 2,
               30, "the core loop turns after SIGCONT")
    assert running.http.get("/health").status_code == 200
    running.proc.kill()
    assert "does not answer" not in running.stderr
