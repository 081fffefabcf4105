"""`pidone health`: exit 0 when /health says ok, 1 with one line on stderr otherwise, 2 for bad usage."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

from app.config import DEFAULT_PORT
from app.probe import default_url
from conftest import LINGERER, PIDONE, ROOT, free_loopback_port, wait_for_status, workload


def run_health(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    inherited = {key: value for key, value in os.environ.items() if key != "PIDONE_HTTP"}
    full_env = {**inherited, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([*PIDONE, "health", *args], env=full_env, capture_output=True, text=True,
                          timeout=60)


def test_healthy_pidone_exits_0(start_pidone):
    running = start_pidone(workload())
    result = run_health("--url", f"{running.url}/health")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pidone health: ok")


def test_url_comes_from_pidone_http_when_not_given(start_pidone):
    running = start_pidone(workload())
    result = run_health(env={"PIDONE_HTTP": running.url.removeprefix("http://")})
    assert result.returncode == 0, result.stderr


def test_stopping_pidone_exits_1_saying_why(start_pidone):
    running = start_pidone(LINGERER, "--grace", "60")
    wait_for_status(running, "/health", 503)
    result = run_health("--url", f"{running.url}/health")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"pidone health: {running.url}/health answered 503: stopping"]


def test_nothing_listening_exits_1():
    result = run_health("--url", f"http://127.0.0.1:{free_loopback_port()}/health")
    assert result.returncode == 1
    assert "cannot reach" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_server_that_never_answers_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel completes the handshake; nobody ever reads
        port = silent.getsockname()[1]
        result = run_health("--url", f"http://127.0.0.1:{port}/health", "--timeout", "0.5")
    assert result.returncode == 1
    assert "timed out" in result.stderr


def test_unix_socket(start_init, tmp_path):
    path = tmp_path / "pidone.sock"
    running = start_init([*PIDONE, "--http", f"unix:{path}", *workload()])
    running.expect_report("ready")
    deadline = time.monotonic() + 20
    while (result := run_health("--url", f"unix:{path}")).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the socket appears once the HTTP thread has started
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("args", [["--timeout", "0"], ["--timeout", "soon"], ["--timeout", "٥"],
                                  ["--timeout", " 5"], ["--timeout", "inf"], ["--bogus"], ["extra"],
                                  ["--url"]])
def test_bad_usage_exits_2(args):
    result = run_health(*args)
    assert result.returncode == 2
    assert result.stderr.startswith("pidone health: ")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("setting, url", [
    ("", f"http://127.0.0.1:{DEFAULT_PORT}/health"),
    ("off", f"http://127.0.0.1:{DEFAULT_PORT}/health"),
    (":8080", "http://127.0.0.1:8080/health"),
    ("0.0.0.0:8080", "http://127.0.0.1:8080/health"),
    ("[::]:8080", "http://[::1]:8080/health"),
    ("[::1]:9", "http://[::1]:9/health"),
    ("10.1.2.3:7", "http://10.1.2.3:7/health"),
    ("unix:/run/p.sock", "unix:/run/p.sock"),
    ("garbage", f"http://127.0.0.1:{DEFAULT_PORT}/health"),
])
def test_default_url_follows_pidone_http(setting, url):
    assert default_url(setting) == url


@pytest.mark.parametrize("url", ["ftp://example/health", "http://./health", "http://a..b:1/health",
                                 f"http://{'a' * 64}.example/health"])
def test_bad_url_exits_1_saying_why(url):
    result = run_health("--url", url)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "bad URL" in result.stderr
