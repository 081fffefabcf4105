"""pidone's own mistakes never take the child down: faults injected into the core (a kill that
fails, a watch that raises, a loop that cannot turn, an HTTP side that fails to start in a way
nobody expected) are logged, and pidone still exits with the child's status. The faults come
from tests/faults/sitecustomize.py: pidone's code has no hooks for them."""

from __future__ import annotations

import errno
import signal
import subprocess

from conftest import (PIDONE, ROOT, free_loopback_port, init_command, round_trip_then_exit, sized,
                      workload)
from test_http_faults import read_log_until

FAULTS = f"{ROOT / 'tests' / 'faults'}:{ROOT}"
ROUND_TRIP = ("trap=USR1", "exit-on=USR2")


def with_faults(**knobs: str) -> dict[str, str]:
    return {"PYTHONPATH": FAULTS, **knobs}


def test_a_kill_refused_by_the_kernel_is_one_line_and_a_403(start_pidone):
    running = start_pidone(workload("trap=USR1,HUP", "exit-on=USR2"),
                           env=with_faults(PIDONE_TEST_KILL_FAULT=f"{signal.SIGHUP}:{errno.EPERM}"))
    running.expect_report("ready")
    running.send(signal.SIGHUP)
    answer = running.http.post("/signal/HUP")
    assert answer.status_code == 403
    assert "permission denied" in answer.json()["error"]
    round_trip_then_exit(running)
    log = running.stderr
    assert "error: the kernel refused SIGHUP to the child" in log
    assert "Traceback" not in log and "pidone bug" not in log


def test_an_unexpected_kill_error_is_a_bug_logged_once_and_the_loop_goes_on(start_pidone):
    running = start_pidone(workload("trap=USR1,HUP", "exit-on=USR2"),
                           env=with_faults(PIDONE_TEST_KILL_FAULT=f"{signal.SIGHUP}:{errno.EINVAL}"))
    running.expect_report("ready")
    running.send(signal.SIGHUP)
    read_log_until(running, "pidone bug: OSError in the core loop", timeout=10)
    running.send(signal.SIGHUP)
    assert running.http.post("/signal/HUP").status_code == 500
    assert "pidone bug: OSError" in " ".join(running.http.get("/status").json()["warnings"])
    round_trip_then_exit(running)
    assert running.stderr.count("Traceback") == 0  # the first one was read above: once only


def test_a_watch_that_raises_is_a_bug_and_the_core_works_on(start_pidone):
    running = start_pidone(workload(*ROUND_TRIP), env=with_faults(PIDONE_TEST_WATCH_FAULT="1"))
    running.expect_report("ready")
    log = read_log_until(running, "pidone bug: ValueError in the watch of the HTTP server", 10)
    assert "Traceback" in log
    assert running.http.get("/health").status_code == 200
    round_trip_then_exit(running)


def test_an_http_side_failing_to_start_in_an_unexpected_way_is_one_line(start_init):
    running = start_init([*PIDONE, "--http", f"127.0.0.1:{free_loopback_port()}", "--",
                          *workload(*ROUND_TRIP)],
                         env=with_faults(PIDONE_TEST_HTTP_START_FAULT="1"))
    running.expect_report("ready")
    round_trip_then_exit(running)
    lines = running.stderr.splitlines()
    assert lines == ["pidone[1]: error: HTTP server not started: LookupError: injected fault: "
                     "nobody expects this one; the child runs on without it"]


def test_a_core_loop_that_cannot_turn_still_reaps_and_exits_with_the_childs_status(start_init,
                                                                                      tmp_path):
    trigger = tmp_path / "broken"
    trigger.write_text("")
    running = start_init([*init_command("pidone"), "sh", "-c", "read line; sleep 60 & exit 5"],
                         env=with_faults(PIDONE_TEST_LOOP_FAULT=str(trigger)),
                         stdin=subprocess.PIPE)
    read_log_until(running, "core loop cannot go on", timeout=20)
    running.proc.stdin.write(b"go\n")
    running.proc.stdin.close()
    assert running.wait() == 5


def test_signals_over_http_while_deadlines_fire(start_pidone, init_hammer, survived):
    """Thousands of API TERMs while a held-back TERM and --stop-timeout are due: only the core
    thread touches the deadlines, so nothing races, and pidone exits with the child's status."""
    calls = sized(2_000, 10_000)
    running = start_pidone(workload("ignore=TERM", *ROUND_TRIP), "--term-delay", "0.05",
                           "--stop-timeout", "120")
    running.expect_report("ready")
    running.send(signal.SIGTERM)
    with init_hammer(running.url, "/signal/TERM") as hammer:
        hammer.wait_for(calls, timeout=120)
    assert set(hammer.statuses) == {200}
    round_trip_then_exit(running)
    survived(api_terms=len(hammer.statuses))
    assert "Traceback" not in running.stderr and "bug" not in running.stderr
