"""The HTTP server as a side-car: its failures never touch the child, bad clients get 4xx or a close."""

from __future__ import annotations

import asyncio
import email.utils
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.config import Config
from app.core.loop import Core
from app.core.state import ChildStatus, CoreState
from app.http.web import build_app
from observe import wait_until
from conftest import PIDONE, ROOT, free_loopback_port, round_trip_then_exit, wait_until_live, workload

HTTP_STACK = ("starlette", "uvicorn", "prometheus_client", "anyio", "h11")


def http_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "HTTP" in line]


def start_until_the_http_side_gives_up(start_init, log: Path, http: str, *words: str):
    """pidone with `--http http` over a workload that awaits USR1 then does `words`, started
    once pidone has said why its HTTP side does not serve: the HTTP thread binds while the core
    already runs, and a child gone first would leave before it (pidone does not delay a
    leaving for its side-car). Its stderr goes to `log`."""
    with log.open("w") as stderr:
        running = start_init([*PIDONE, "--http", http, *workload("await=USR1", *words)], stderr=stderr)
    running.expect_report("awaiting")
    wait_until(lambda: "HTTP server not started" in log.read_text(), 10,
               "pidone says why its HTTP side does not serve")
    running.send(signal.SIGUSR1)
    return running


def test_port_taken_one_line_and_the_child_runs_on(start_init, tmp_path):
    log = tmp_path / "stderr"
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        running = start_until_the_http_side_gives_up(start_init, log, f"127.0.0.1:{port}",
                                                     "trap=USR1", "exit-on=USR2")
        running.expect_report("ready")
        round_trip_then_exit(running)
    assert http_lines(log.read_text()) == [
        f"pidone[1]: error: HTTP server not started: cannot listen on 127.0.0.1:{port}: "
        "Address already in use; the child runs on without it"]


@pytest.mark.parametrize("address, reason", [
    ("no-such-host.invalid:8080", "cannot listen on no-such-host.invalid:8080"),
    ("10.255.255.254:8080", "Cannot assign requested address"),
    ("unix:/nonexistent-dir/pidone.sock", "No such file or directory"),
    ("unix:/proc/pidone.sock", "cannot listen on unix:/proc/pidone.sock"),
])
def test_unusable_address_one_line_and_the_child_runs_on(start_init, tmp_path, address, reason):
    log = tmp_path / "stderr"
    running = start_until_the_http_side_gives_up(start_init, log, address, "exit=7")
    assert running.wait() == 7
    stderr = log.read_text()
    lines = http_lines(stderr)
    assert len(lines) == 1 and reason in lines[0], stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("address", ["12345", "host:0", "host:65536", "[::1:80", "::1:80", "unix:"])
def test_malformed_address_is_a_usage_error(start_init, address):
    running = start_init([*PIDONE, "--http", address, "true"], namespace=False)
    assert running.wait() == 2
    assert running.stderr.count("\n") == 1 and "--http" in running.stderr


def test_unix_socket_serves_every_route_and_its_clients_are_local(start_init, tmp_path):
    path = tmp_path / "pidone.sock"
    running = start_init([*PIDONE, "--http", f"unix:{path}", *workload("trap=USR1")])
    running.expect_report("ready")
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), base_url="http://pidone") as client:
        deadline = time.monotonic() + 20
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get("/health").status_code == 200
        assert client.get("/status").status_code == 200
        assert client.post("/signal/USR1").status_code == 200
    assert running.read_report() == "SIGUSR1"


def test_ipv6_loopback_is_local(start_init):
    if not socket.has_ipv6 or "::1" not in subprocess.run(["ip", "-6", "addr", "show", "lo"],
                                                         capture_output=True, text=True).stdout:
        pytest.skip("no IPv6 loopback here")
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    running = start_init([*PIDONE, "--http", f"[::1]:{port}", *workload("trap=USR1")])
    running.expect_report("ready")
    running.url = f"http://[::1]:{port}"
    running.http = httpx.Client(base_url=running.url, timeout=20)
    wait_until_live(running)
    assert running.http.post("/signal/USR1").status_code == 200
    assert running.read_report() == "SIGUSR1"


def test_short_lived_child_with_http_on_exits_with_its_status(start_init):
    running = start_init([*PIDONE, "--http", f"127.0.0.1:{free_loopback_port()}", "sh", "-c", "exit 5"])
    assert running.wait() == 5


def test_http_stack_is_imported_only_by_the_http_thread():
    """The child must not wait for starlette and friends: nothing the start-up path imports
    before spawning pulls them in (app.http.server imports them inside its thread)."""
    code = ("import sys, app.cli, app.lifecycle, app.core.loop, app.http.server, app.probe; "
            f"print([m for m in {HTTP_STACK!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "[]"


# -- bad clients ----------------------------------------------------------------------------


def raw_exchange(url: str, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, return whatever comes back before the server closes or goes quiet."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as conn:
        try:
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)  # no more requests: the server may close after answering
        except OSError:
            pass  # it closed on us mid-send (EPIPE, ECONNRESET, ENOTCONN): an answer too
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received


@pytest.mark.parametrize("payload", [
    b"\x00\xff\xfe garbage \r\n\r\n",
    b"GET /health HTTP/9.9\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /" + b"x" * 200_000 + b" HTTP/1.1\r\n\r\n",
    bytes(range(256)) * 64,
])
def test_garbage_gets_no_5xx_and_the_server_lives_on(start_pidone, payload):
    running = start_pidone(workload())
    answer = raw_exchange(running.url, payload)
    assert answer == b"" or not answer.startswith(b"HTTP/1.1 5"), answer[:200]
    assert running.http.get("/health").status_code == 200
    assert running.http.get("/livez").json()["status"] == "ok"


def test_pipelined_requests_are_all_answered(start_pidone):
    running = start_pidone(workload())
    head = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    assert raw_exchange(running.url, head * 3).count(b"HTTP/1.1 200 OK") == 3


def test_an_oversized_request_head_is_refused(start_pidone):
    running = start_pidone(workload())
    answer = raw_exchange(running.url, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 1_000_000)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]


HEAD_LIMIT = 16 * 1024


def head_of(size: int, path: bytes = b"/livez") -> bytes:
    """A GET request head of exactly `size` bytes."""
    start = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Pad: "
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


@pytest.mark.parametrize("size, status", [
    (HEAD_LIMIT - 100, b"200"), (HEAD_LIMIT + 100, b"400"), (20_000, b"400"), (100_000, b"400"),
])
def test_the_head_limit_holds_when_the_head_comes_in_one_write(start_pidone, size, status):
    """Finding 2 of issue 11: h11's limit counts only what it holds incomplete, so a head sent
    whole, up to ~100 KB, was served."""
    running = start_pidone(workload())
    answer = raw_exchange(running.url, head_of(size))
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]


SMUGGLED = b"POST /signal/USR1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
PADDED = b"GET /livez HTTP/1.1\r\nHost: x\r\nX1: a" + b" " * 16_000 + b"\r\nX2: a" + b" " * 16_000 + b"\r\n\r\n"
MANY_HEADERS = b"GET /livez HTTP/1.1\r\nHost: x\r\n" + b"X:\r\n" * 3200 + b"\r\n"


@pytest.mark.parametrize("first", [True, False], ids=["first-head", "after-a-good-one"])
@pytest.mark.parametrize("head", [SMUGGLED, PADDED, MANY_HEADERS],
                         ids=["content-length-with-transfer-encoding", "padded-past-16-KiB", "3200-headers"])
def test_heads_past_the_limits_get_400_and_a_close(start_pidone, head, first):
    """Issue 22: a head padded with whitespace to 32 KB was served, 3,200 headers were parsed at
    3 µs each, and Content-Length with Transfer-Encoding was answered on a kept connection."""
    running = start_pidone(workload("trap=USR1"))
    good = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = raw_exchange(running.url, (b"" if first else good) + head + good)
    answers = answer.count(b"HTTP/1.1 ")
    assert answers == (1 if first else 2), answer[:400]  # nothing after the refusal
    assert answer.rpartition(b"HTTP/1.1 ")[2].startswith(b"400"), answer[:400]


def test_an_oversized_head_pipelined_after_a_good_one_is_refused(start_pidone):
    running = start_pidone(workload())
    answer = raw_exchange(running.url, head_of(200) + head_of(20_000))
    assert answer.startswith(b"HTTP/1.1 200") and answer.count(b"HTTP/1.1 400") == 1, answer[:400]


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/" + "a" * 15_000, 404),
    ("POST", "/health" + "/x" * 5_000, 404),
    ("POST", "/signal/" + "T" * 15_000, 400),
    ("GET", "/a%0Apidone[1]: error: forged", 404),
])
def test_error_answers_echo_a_short_excerpt_at_most(start_pidone, method, path, status):
    """A 404 that echoed a 15 KB path made every answer an amplifier for clients that never read."""
    running = start_pidone(workload())
    answer = running.http.request(method, path)
    assert answer.status_code == status
    assert len(answer.content) < 300, answer.text[:400]
    assert "\n" not in answer.json()["error"]


def test_a_slow_client_does_not_block_the_others(start_pidone):
    running = start_pidone(workload())
    host, port = running.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as slow:
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        assert running.http.get("/metrics").status_code == 200
        assert running.http.get("/health").status_code == 200


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/nope", 404), ("GET", "/signal", 404), ("POST", "/health", 405), ("DELETE", "/metrics", 405),
    ("PUT", "/status", 405), ("POST", "/processes", 405),
])
def test_routing_errors_are_json(start_pidone, method, path, status):
    running = start_pidone(workload())
    answer = running.http.request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert set(answer.json()) == {"error"}


def test_minus_vv_turns_the_access_log_on(start_pidone):
    running = start_pidone(workload("exit-on=USR1"), "-vv")
    running.expect_report("ready")
    assert running.http.get("/livez").status_code == 200
    running.http.post("/signal/USR1")
    assert running.wait() == 0
    assert '"GET /livez HTTP/1.1" 200' in running.stderr


def test_the_access_log_never_shows_a_query_string_or_a_forged_line(start_pidone):
    """Finding 5 of issue 11: at -vv a careless client's ?token=... landed in the log."""
    running = start_pidone(workload("exit-on=USR1"), "-vv")
    running.expect_report("ready")
    assert running.http.get("/health", params={"token": "s3cret-in-query"}).status_code == 200
    assert running.http.get("/nope%0Apidone[1]: error: forged").status_code == 404
    running.http.post("/signal/USR1")
    assert running.wait() == 0
    assert '"GET /health HTTP/1.1" 200' in running.stderr
    assert "s3cret-in-query" not in running.stderr and "?" not in running.stderr
    assert not [line for line in running.stderr.splitlines() if line.startswith("pidone[1]: error: forged")]


def test_no_server_header_and_no_access_log(start_pidone):
    running = start_pidone(workload("exit-on=USR1"))
    running.expect_report("ready")
    answer = running.http.get("/health")
    assert "server" not in answer.headers
    running.http.post("/signal/USR1")
    assert running.wait() == 0
    assert "/health" not in running.stderr


def test_every_answer_is_dated_now_even_after_the_server_idled(start_pidone):
    """The app dates its answers itself: uvicorn's Date would be as old as the idle server's
    last wake-up, and an idle pidone's server does not wake (app/http/quiet_server.py)."""
    running = start_pidone(workload())
    time.sleep(2.5)  # the idle while itself, not a wait for an effect
    for path in ("/health", "/metrics", "/nope"):
        asked = time.time()
        answer = running.http.get(path)
        dated = email.utils.parsedate_to_datetime(answer.headers["date"]).timestamp()
        assert int(asked) <= dated <= time.time()
        assert answer.headers["date"].endswith(" GMT")


# -- a handler that raises ------------------------------------------------------------------


class BrokenCore(Core):
    def snapshot(self):
        raise RuntimeError("the snapshot broke")


async def get_from_app(app, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://pidone") as client:
        return await client.get(path)


def test_a_handler_that_raises_answers_500_json_and_the_core_is_untouched():
    state = CoreState(child=ChildStatus(("x",), 12345, time.time(), True), is_pid1=False,
                      is_subreaper=False)
    core = BrokenCore(Config(command=("x",)), state)
    answer = asyncio.run(get_from_app(build_app(core), "/health"))
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error: RuntimeError"}
    assert "date" in answer.headers
    assert state.child.running and state.phase == "running" and state.signals_forwarded == {}


def test_pidone_leaves_after_its_grace_with_the_server_running(start_pidone):
    running = start_pidone(["sh", "-c", "trap '' TERM; sleep 120 & exit 4"], "--grace", "1")
    assert running.wait() == 4  # on its own: the HTTP thread does not hold it back
