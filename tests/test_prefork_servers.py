"""Pre-fork servers reload and stop as their authors meant under pidone's default: gunicorn,
uvicorn --workers and nginx as pidone's child, pidone PID 1 of a fresh PID namespace.

Their masters handle HUP, TTIN, TTOU and USR1 and tell the workers what to do; sent to the
whole group (dumb-init's default, pidone's before), those signals reached the workers too,
which died (HUP), stopped (TTIN) or reopened logs before the master had chowned them (USR1).
Each step waits for the server's own acknowledgement: a line in its log, a request reported by
the application (tests/prefork_app.py), a worker seen in /proc."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.core.procfs import ProcessInfo
from conftest import PIDONE, ROOT, RunningInit, free_loopback_port
from observe import children_of, wait_until

BIN = Path(sys.executable).parent
TESTS = ROOT / "tests"
ACK_TIMEOUT = 30.0
"""Seconds to wait for a server's acknowledgement: workers are Python processes starting on a
busy machine."""


REQUEST = r"(?m)^request (\d+)$"
"""What tests/prefork_app.py writes on stderr when a /slow request reaches it."""


class Log:
    """Files servers and pidone write to (a rotated one first); read again on every look."""

    def __init__(self, *paths: Path) -> None:
        self.paths = paths

    def text(self) -> str:
        return "".join(path.read_text(errors="replace") for path in self.paths if path.exists())

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.text()))

    def wait_for(self, pattern: str, count: int = 1) -> None:
        wait_until(lambda: self.count(pattern) >= count, ACK_TIMEOUT,
                   f"{count}× {pattern!r} in {self.paths[-1].name}:\n{self.text()[-3000:]}")


@dataclass
class Served:
    running: RunningInit
    url: str
    log: Log
    """The child's stdout and stderr, and pidone's."""
    release: Path
    pool: ThreadPoolExecutor

    def slow_request(self) -> tuple[Future[httpx.Response], int]:
        """A request held in flight until `release_requests`; returns it and the worker's PID
        (in pidone's namespace) once the application has it."""
        asked = self.log.count(REQUEST)
        answer = self.pool.submit(httpx.get, f"{self.url}/slow", timeout=ACK_TIMEOUT + 10)
        self.log.wait_for(REQUEST, asked + 1)
        return answer, int(re.findall(REQUEST, self.log.text())[asked])

    def release_requests(self) -> None:
        self.release.touch()

    def master(self) -> ProcessInfo:
        wait_until(lambda: len(children_of(self.running.init_pid)) == 1, ACK_TIMEOUT,
                   "the server's master runs")
        return children_of(self.running.init_pid)[0]

    def workers(self) -> list[ProcessInfo]:
        """The master's children that have not exited (a resource tracker included)."""
        return [info for info in children_of(self.master().pid) if info.state != "Z"]


@pytest.fixture
def serve(start_init, tmp_path: Path) -> Iterator:
    """serve(argv, *pidone_flags) -> Served: argv, with {port} a free loopback port, as the
    child of pidone; the application holds /slow until RELEASE exists."""
    pool = ThreadPoolExecutor(4)

    def start(argv: Sequence[str], *flags: str, port: int | None = None) -> Served:
        port = port or free_loopback_port()
        release = tmp_path / "release"
        log = Log(tmp_path / "server.log")
        with open(log.paths[0], "ab") as log_file:
            running = start_init([*PIDONE, "--http", "off", *flags, "--",
                                  "env", f"RELEASE={release}",
                                  *(word.replace("{port}", str(port)) for word in argv)],
                                 stdout=log_file, stderr=log_file)
        return Served(running, f"http://127.0.0.1:{port}", log, release, pool)

    yield start
    pool.shutdown(wait=False, cancel_futures=True)


def exits_zero_on(served: Served, signo: int) -> float:
    """Send `signo` to pidone; the seconds until pidone exited, with status 0."""
    started = time.monotonic()
    served.running.send(signo)
    assert served.running.wait(timeout=ACK_TIMEOUT) == 0, served.log.text()[-3000:]
    return time.monotonic() - started


# -- gunicorn and uvicorn --workers ------------------------------------------------------------

GUNICORN = [str(BIN / "gunicorn"), "--pythonpath", str(TESTS), "--workers", "2",
            "--bind", "127.0.0.1:{port}", "--graceful-timeout", "30", "prefork_app:wsgi"]
BOOTED = r"Booting worker with pid"
UVICORN = [str(BIN / "uvicorn"), "--app-dir", str(TESTS), "--workers", "2", "--host", "127.0.0.1",
           "--port", "{port}", "--lifespan", "off", "--no-access-log", "prefork_app:asgi"]
STARTED = r"Started server process"


@dataclass(frozen=True)
class PreForkServer:
    argv: list[str]
    started: str
    """Logged once per worker started."""
    reloading: tuple[str, int]
    """Logged (so many times) once a HUP's reload is under way, the request still held."""
    broken: str
    """Logged when a worker heard a signal meant for the master."""


HUP_CASES = {
    # gunicorn boots two new workers, then retires the old ones gracefully.
    "gunicorn": PreForkServer(GUNICORN, BOOTED, (BOOTED, 4), "was sent SIGHUP"),
    # uvicorn replaces one worker at a time: the one holding the request waits for it.
    "uvicorn --workers": PreForkServer(UVICORN, STARTED, (r"Waiting for connections to close", 1),
                                       "died"),
}


@pytest.mark.parametrize("server", HUP_CASES.values(), ids=HUP_CASES.keys())
def test_hup_replaces_the_workers_without_dropping_a_request_in_flight(serve, server):
    served = serve(server.argv)
    served.log.wait_for(server.started, 2)
    answer, worker = served.slow_request()
    served.running.send(signal.SIGHUP)
    served.log.wait_for(*server.reloading)
    served.release_requests()
    assert answer.result().status_code == 200
    assert answer.result().text == str(worker)
    served.log.wait_for(server.started, 4)  # two new workers
    assert server.broken not in served.log.text()
    exits_zero_on(served, signal.SIGTERM)


def test_gunicorn_ttin_and_ttou_change_the_number_of_workers(serve):
    served = serve(GUNICORN)
    served.log.wait_for(BOOTED, 2)
    served.running.send(signal.SIGTTIN)
    served.log.wait_for(BOOTED, 3)
    wait_until(lambda: len(served.workers()) == 3, ACK_TIMEOUT, "three workers")
    served.running.send(signal.SIGTTOU)
    wait_until(lambda: len(served.workers()) == 2, ACK_TIMEOUT, "two workers again")
    assert all(info.state != "T" for info in served.workers())  # none stopped by a TTIN
    assert httpx.get(served.url, timeout=ACK_TIMEOUT).status_code == 200
    exits_zero_on(served, signal.SIGTERM)


def test_gunicorn_term_answers_the_request_in_flight_then_exits_zero(serve):
    served = serve(GUNICORN)
    served.log.wait_for(BOOTED, 2)
    answer, _ = served.slow_request()
    served.running.send(signal.SIGTERM)
    served.log.wait_for(r"Handling signal: term")
    served.release_requests()
    assert answer.result().status_code == 200
    assert served.running.wait(timeout=ACK_TIMEOUT) == 0


def test_uvicorn_ttin_then_term_exits_at_once(serve):
    served = serve(UVICORN)
    served.log.wait_for(STARTED, 2)
    served.running.send(signal.SIGTTIN)
    served.log.wait_for(STARTED, 3)
    assert all(info.state != "T" for info in served.workers())
    seconds = exits_zero_on(served, signal.SIGTERM)
    assert seconds < 2.0, f"TERM took {seconds:.1f}s"
    assert "sending SIGKILL" not in served.log.text()


# -- nginx -----------------------------------------------------------------------------------

NGINX_CONF = """\
user nobody nogroup;
daemon off;
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log notice;
events {{ worker_connections 64; }}
http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/temp/body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""
WORKER_STARTED = r"start worker process \d+"


@pytest.fixture
def nginx(serve) -> Iterator:
    """serve() for nginx as root, its workers as nobody: a prefix of its own, in a directory
    the workers can reach (pytest's tmp_path is root's alone)."""
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (Debian's nginx-light)")
    if os.geteuid() != 0:
        pytest.skip("nginx drops its workers to another user only when started as root")
    prefix = Path(tempfile.mkdtemp(prefix="pidone-nginx-"))
    try:
        prefix.chmod(0o755)
        for name in ("logs", "temp"):
            (prefix / name).mkdir(mode=0o755)
        port = free_loopback_port()
        (prefix / "nginx.conf").write_text(NGINX_CONF.format(prefix=prefix, port=port))
        served = serve(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                        "-e", str(prefix / "logs" / "error.log")], port=port)
        yield served, Log(prefix / "logs" / "error.log"), prefix
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def test_nginx_usr1_reopens_the_logs_without_permission_errors(nginx):
    served, error_log, prefix = nginx
    error_log.wait_for(WORKER_STARTED, 2)
    assert httpx.get(served.url, timeout=ACK_TIMEOUT).status_code == 200
    for name in ("access.log", "error.log"):  # logrotate's move, then USR1
        (prefix / "logs" / name).rename(prefix / "logs" / f"{name}.1")
    served.running.send(signal.SIGUSR1)
    both = Log(prefix / "logs" / "error.log.1", prefix / "logs" / "error.log")
    both.wait_for(r"\d+#\d+: reopening logs", 3)  # the master and both workers
    assert httpx.get(served.url, timeout=ACK_TIMEOUT).status_code == 200
    access_log = prefix / "logs" / "access.log"
    wait_until(lambda: access_log.exists() and access_log.stat().st_size > 0, ACK_TIMEOUT,
               "a worker writes to the new access.log")
    exits_zero_on(served, signal.SIGQUIT)
    assert "[emerg]" not in both.text()


def test_nginx_hup_starts_new_workers_and_the_old_ones_do_not_hear_it(nginx):
    served, error_log, _ = nginx
    error_log.wait_for(WORKER_STARTED, 2)
    served.running.send(signal.SIGHUP)
    error_log.wait_for(r"reconfiguring")
    error_log.wait_for(WORKER_STARTED, 4)
    assert httpx.get(served.url, timeout=ACK_TIMEOUT).status_code == 200
    exits_zero_on(served, signal.SIGQUIT)
    assert "ignoring" not in error_log.text()


def test_nginx_quit_exits_zero(nginx):
    served, error_log, _ = nginx
    error_log.wait_for(WORKER_STARTED, 2)
    assert httpx.get(served.url, timeout=ACK_TIMEOUT).status_code == 200
    exits_zero_on(served, signal.SIGQUIT)
    assert "gracefully shutting down" in error_log.text()
