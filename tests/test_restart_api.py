"""POST /restart: the child is stopped, reaped with what is left of its group, and the same
command runs again in the same container; pidone answers once it runs."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import LINGERER, free_loopback_port, scrape, wait_for_status, workload

SERVER = """
import http.server, os, signal, sys

class Pid(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(os.getpid()).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Pid)
worker = os.fork()
if worker == 0:
    # A worker on the same socket that ignores TERM, as pre-fork servers have: until it is
    # gone, nobody else can bind the port.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    server.serve_forever()
os.write(int(sys.argv[2]), b"ready %d %d\\n" % (os.getpid(), worker))
server.serve_forever()
"""
"""An HTTP server holding a port with a worker; it reports "ready PID WORKER" once it listens."""


def next_ready(running) -> int:
    """The PID of the next child to report "ready", past the signals the last one reported."""
    while not (line := running.read_report()).startswith("ready "):
        pass
    return int(line.split()[1])


def answering_pid(port: int) -> int:
    return int(httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text)


class InBackground(threading.Thread):
    """A request made in a thread, so that the test can watch pidone meanwhile."""

    def __init__(self, http: httpx.Client, path: str, **params: str) -> None:
        super().__init__(daemon=True)
        self.http, self.path, self.params = http, path, params
        self.answer: httpx.Response | None = None

    def run(self) -> None:
        self.answer = self.http.post(self.path, params=self.params)

    def result(self) -> httpx.Response:
        self.join(60)
        assert self.answer is not None, "no answer in 60 s"
        return self.answer


def watch_during(running, restart: InBackground) -> dict[str, set]:
    """Until `restart` is answered: what the probes say, and what a second restart and a
    signal get while the first is under way."""
    seen: dict[str, set] = {"/health": set(), "/readyz": set(), "meanwhile": set()}
    while restart.is_alive():
        for path in ("/health", "/readyz"):
            answer = running.http.get(path)
            seen[path].add((answer.status_code, answer.json()["phase"]))
            if answer.json()["phase"] == "restarting" and not seen["meanwhile"]:
                seen["meanwhile"] = {("/restart", running.http.post("/restart").status_code),
                                     ("/signal", running.http.post("/signal/HUP").status_code)}
        time.sleep(0.01)
    return seen


def test_a_server_holding_a_port_is_restarted_and_binds_it_again(start_pidone):
    port = free_loopback_port()
    running = start_pidone([sys.executable, "-c", SERVER, str(port), "{ack}"], "--grace", "0.5")
    _, old, old_worker = running.expect_report("ready").split()
    old_generation = {int(old), int(old_worker)}
    assert answering_pid(port) in old_generation

    restart = InBackground(running.http, "/restart")
    restart.start()
    seen = watch_during(running, restart)
    answer = restart.result()
    assert answer.status_code == 200, answer.text
    _, new, new_worker = running.expect_report("ready").split()
    assert answer.json() == {"previous": {"pid": int(old), "exit_code": 143, "signal": "SIGTERM"},
                             "pid": int(new)}
    # While the worker lingered (the --grace rule) pidone was alive and not ready, and only
    # once it was gone did the new generation start: it could bind the port.
    assert (200, "restarting") in seen["/health"]
    assert seen["/health"] <= {(200, "running"), (200, "restarting")}
    assert (503, "restarting") in seen["/readyz"]
    assert seen["meanwhile"] == {("/restart", 409), ("/signal", 409)}
    assert answering_pid(port) in {int(new), int(new_worker)}
    assert running.http.get("/readyz").status_code == 200
    samples = scrape(running)
    assert samples[("pidone_child_restarts_total", (("reason", "api"),))] == 1
    assert samples[("pidone_child_restarts_total", (("reason", "exit"),))] == 0
    assert samples[("pidone_child_pid", ())] == int(new)
    assert samples[("pidone_child_exit_code", ())] == 143
    status = running.http.get("/status").json()
    assert status["restarts"] == {"api": 1, "exit": 0}
    assert [(e["pid"], e["exit_code"], e["exit_signal"], e["followed_by"], e["reason"])
            for e in status["exits"]] == [(int(old), 143, "SIGTERM", "restart", "api")]
    assert status["child"]["pid"] == int(new) and status["phase"] == "running"
    running.send(signal.SIGKILL)
    running.wait()
    assert f"child {old} killed by SIGTERM: restarting it (POST /restart)" in running.stderr


@pytest.mark.parametrize("params, words, previous", [
    # The stop signal asked for; a child that ignores it is killed after ?timeout.
    ({"signal": "INT"}, ("exit-on=INT",), {"exit_code": 0, "signal": None}),
    ({"timeout": "0.2"}, ("trap=TERM",), {"exit_code": 137, "signal": "SIGKILL"}),
    ({"signal": "usr1", "timeout": "0"}, ("trap=USR1",), {"exit_code": 137, "signal": "SIGKILL"}),
])
def test_the_stop_signal_and_timeout_as_asked(start_pidone, params, words, previous):
    running = start_pidone(workload(*words))
    old = next_ready(running)
    answer = running.http.post("/restart", params=params)
    assert answer.status_code == 200, answer.text
    new = next_ready(running)
    assert answer.json() == {"previous": {"pid": old, **previous}, "pid": new}


def test_restarts_follow_one_another_and_keep_the_working_directory(start_pidone, tmp_path):
    running = start_pidone(["sh", "-c", 'echo "ready $$ $(pwd)" >> /dev/fd/{ack}; exec sleep 300'],
                           cwd=tmp_path)
    pids = []
    for _ in range(3):
        _, pid, cwd = running.expect_report("ready").split()
        assert cwd == str(tmp_path)
        pids.append(int(pid))
        if len(pids) < 3:
            assert running.http.post("/restart").status_code == 200
    assert len(set(pids)) == 3
    assert [e["pid"] for e in running.http.get("/status").json()["exits"]] == pids[:2]


@pytest.mark.parametrize("params", [{"signal": "NOPE"}, {"signal": "0"}, {"timeout": "-1"},
                                    {"timeout": "1e3"}, {"timeout": "soon"}])
def test_bad_parameters_are_400_and_nothing_happens(start_pidone, params):
    running = start_pidone(workload("trap=all"))
    running.expect_report("ready")
    answer = running.http.post("/restart", params=params)
    assert answer.status_code == 400, answer.text
    assert running.http.post("/signal/WINCH").status_code == 200
    assert running.read_report() == "SIGWINCH"  # nothing else reached the child before it


def test_409_once_the_child_has_exited_and_pidone_is_leaving(start_pidone):
    running = start_pidone(LINGERER, "--grace", "30")
    wait_for_status(running, "/health", 503)
    answer = running.http.post("/restart")
    assert answer.status_code == 409 and "stopping" in answer.json()["error"]


def test_a_stop_from_the_os_during_a_restart_ends_pidone(start_pidone):
    """docker stop while the old child still stops: the restart is answered 409, no new child
    starts, and pidone leaves with the old child's status."""
    running = start_pidone(workload("trap=TERM"))
    running.expect_report("ready")
    restart = InBackground(running.http, "/restart", timeout="1")
    restart.start()
    assert running.read_report() == "SIGTERM"  # the restart's stop, which the child ignores
    running.send(signal.SIGTERM)
    assert running.read_report() == "SIGTERM"  # the OS's, forwarded as usual
    assert restart.result().status_code == 409
    assert running.wait() == 137  # the restart's SIGKILL after its timeout still came
    # No new child reported "ready": the pipe closed with pidone.
    with pytest.raises(AssertionError, match="closed"):
        running.read_report(timeout=5)


def test_a_command_that_cannot_run_again_is_500_and_pidone_leaves_with_127(start_pidone, tmp_path):
    script = tmp_path / "app.sh"
    script.write_text('#!/bin/sh\necho "ready $$" >> /dev/fd/$1\nexec sleep 300\n')
    script.chmod(0o755)
    running = start_pidone([str(script), "{ack}"])
    running.expect_report("ready")
    os.unlink(script)
    answer = running.http.post("/restart")
    assert answer.status_code == 500 and "cannot run" in answer.json()["error"]
    assert running.wait() == 127
    assert "no such file or directory" in running.stderr


def test_a_restarted_child_owns_the_terminal_as_the_first_did(start_pidone):
    """docker run -it: the new child's group becomes the terminal's foreground group, so
    Ctrl-C reaches it."""
    import pty

    from test_tty import controlling_terminal

    master, slave = pty.openpty()
    try:
        running = start_pidone(workload("state"), stdin=slave, preexec_fn=controlling_terminal(slave))
        pids = []
        for generation in ("first", "restarted"):
            state = dict(w.split("=") for w in running.expect_report("state").split()[1:])
            assert state["fg"] == state["pgid"] == state["pid"], (generation, state)
            pids.append(state["pid"])
            running.expect_report("ready")
            if generation == "first":
                assert running.http.post("/restart").status_code == 200
        assert pids[0] != pids[1]
        os.write(master, b"\x03")  # the terminal sends SIGINT to its foreground group
        assert running.wait() == 130
    finally:
        os.close(master)
        os.close(slave)
