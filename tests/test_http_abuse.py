"""The HTTP side under abuse while the core works: slow, idle, half-closed, garbage, oversized and
unauthorised clients. Through each, the child keeps running and hears nothing it was not sent,
orphans are reaped as fast as they come, and a fresh client's /health is answered the way a
Kubernetes liveness probe needs: within its default 1 s timeout, never 3 times in a row failing.
"""

from __future__ import annotations

import json
import os
import random
import resource
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from app.http import guard
from conftest import ROOT, RunningInit, scrape, sized, workload
from observe import rss_kb, wait_until, zombies_of

ABUSE_SECONDS = sized(2, 60)
PROBE_TIMEOUT = 1.0
"""Kubernetes' default timeoutSeconds for a probe."""
PROBE_FAILURE_THRESHOLD = 3
"""Kubernetes' default failureThreshold: this many failures in a row restart the container."""
PROBE_PERIOD = 0.1
CHURN = sized(1_000, 20_000)
TOKEN = "s3cret-token"


@dataclass
class Probes:
    """The prober's lines: latencies of the probes answered 200 in time, and every outcome."""

    latencies: list[float] = field(default_factory=list)
    outcomes: list[bool] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def worst_failure_run(self) -> int:
        worst = run = 0
        for ok in self.outcomes:
            run = 0 if ok else run + 1
            worst = max(worst, run)
        return worst


@contextmanager
def probing(host: str, port: int, period: float = PROBE_PERIOD, timeout: float = PROBE_TIMEOUT,
            path: str = "/health", source: str = "") -> Iterator[Probes]:
    """Probe `path` from tests/prober.py (from the address `source`) until the block ends."""
    prober = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "prober.py"), host, str(port), path,
         str(period), str(timeout), source],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    probes = Probes()
    try:
        yield probes
    finally:
        prober.stdin.close()  # the prober's cue to stop
        output = prober.stdout.read()
        prober.wait(30)
    for line in output.splitlines():
        outcome, _, detail = line.partition(" ")
        probes.outcomes.append(outcome == "ok")
        if outcome == "ok":
            probes.latencies.append(float(detail))
        else:
            probes.failures.append(detail)


class Holder:
    """Keeps `count` connections open, each sending `opening` once and then `drip` every second;
    a connection the server closes is opened again, as a determined client would."""

    def __init__(self, address: tuple[str, int], count: int, opening: bytes, drip: bytes = b"",
                 half_close: bool = False) -> None:
        self.address, self.count, self.opening, self.drip = address, count, opening, drip
        self.half_close = half_close

    def open_all(self) -> list[socket.socket]:
        """Every connection started at once (non-blocking connects), then each sends its opening."""
        started = []
        for _ in range(self.count):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(self.address)
            started.append(sock)
        return [sock for sock in started if self.send_opening(sock)]

    def open_one(self) -> socket.socket | None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(self.address)
        return sock if self.send_opening(sock) else None

    def send_opening(self, sock: socket.socket) -> bool:
        sock.settimeout(5)  # waits for the connect to complete, then for the send
        try:
            sock.sendall(self.opening)
            if self.half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return False
        sock.setblocking(False)
        return True

    def run(self, done: threading.Event) -> None:
        held = self.open_all()
        while not done.wait(1.0):
            for index, sock in enumerate(held):
                if self._closed_by_server(sock):
                    sock.close()
                    fresh = self.open_one()
                    if fresh is not None:
                        held[index] = fresh
        for sock in held:
            sock.close()

    def _closed_by_server(self, sock: socket.socket) -> bool:
        try:
            if sock.recv(65536) == b"":
                return True
        except BlockingIOError:
            pass
        except OSError:
            return True
        if self.drip and not self.half_close:
            try:
                sock.send(self.drip)
            except OSError:
                return True
        return False


def one_shot(address: tuple[str, int], payload: Callable[[], bytes]) -> Callable[[threading.Event], None]:
    """Connect, send payload(), read whatever comes back, close; again and again."""

    def run(done: threading.Event) -> None:
        while not done.is_set():
            with socket.socket() as sock:
                sock.settimeout(2)
                try:
                    sock.connect(address)
                    sock.sendall(payload())
                    while sock.recv(65536):
                        pass
                except OSError:
                    pass

    return run


def wrong_tokens(url: str) -> Callable[[threading.Event], None]:
    def run(done: threading.Event) -> None:
        with httpx.Client(base_url=url, timeout=5) as client:
            while not done.is_set():
                answer = client.post("/signal/TERM", headers={"Authorization": f"Bearer x{random.random()}"})
                assert answer.status_code == 401

    return run


def garbage() -> bytes:
    return random.randbytes(4096)


def oversized() -> bytes:
    return b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"


SLOW_HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "


def abusers(kind: str, running: RunningInit) -> list[Callable[[threading.Event], None]]:
    host, port = running.url.removeprefix("http://").split(":")
    address = (host, int(port))
    if kind == "slowloris":
        return [Holder(address, 300, SLOW_HEAD, drip=b"x").run]
    if kind == "connection-flood":
        return [Holder(address, 1000, b"").run]
    if kind == "half-closed":
        return [Holder(address, 300, SLOW_HEAD, half_close=True).run]
    if kind == "garbage":
        return [one_shot(address, garbage) for _ in range(4)]
    if kind == "oversized-headers":
        return [one_shot(address, oversized) for _ in range(4)]
    if kind == "wrong-tokens":
        return [wrong_tokens(running.url) for _ in range(4)]
    raise AssertionError(kind)


@pytest.fixture(autouse=True)
def enough_file_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))


@pytest.mark.parametrize("kind", ["slowloris", "connection-flood", "half-closed", "garbage",
                                  "oversized-headers", "wrong-tokens"])
def test_abuse_while_the_core_works(start_pidone, tmp_path, survived, kind):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    running = start_pidone(workload("trap=TERM", f"churn={CHURN}"), "--token-file", str(token_file))
    running.expect_report("ready")
    host, port = running.url.removeprefix("http://").split(":")
    done = threading.Event()
    threads = [threading.Thread(target=abuse, args=(done,)) for abuse in abusers(kind, running)]
    started = time.monotonic()
    with probing(host, int(port)) as probes:
        for thread in threads:
            thread.start()
        running.expect_report("churned", timeout=120)
        churned = time.monotonic() - started
        wait_until(lambda: zombies_of(running.init_pid) == 0, 30, "the churned orphans are reaped")
        reaped_by = time.monotonic() - started
        done.wait(max(0.0, ABUSE_SECONDS - (time.monotonic() - started)))
        done.set()
        for thread in threads:
            thread.join(30)

    assert running.proc.poll() is None, "pidone died"
    metrics = scrape(running)
    assert metrics[("pidone_child_running", ())] == 1
    assert metrics[("pidone_zombies_reaped_total", ())] == CHURN + 1
    authorised = httpx.post(f"{running.url}/signal/TERM", headers={"Authorization": f"Bearer {TOKEN}"})
    assert authorised.status_code == 200
    # The first TERM the child hears is the one with the token: none of the abuse got through.
    running.expect_report("SIGTERM")
    worst = max(probes.latencies, default=float("nan"))
    survived(abuse=kind, probes=len(probes.outcomes), probe_failures=probes.outcomes.count(False),
             worst_failure_run=probes.worst_failure_run(), failures=",".join(probes.failures) or "-",
             slowest_probe_ms=int(worst * 1000),
             orphans=CHURN, churn_seconds=f"{churned:.2f}", reaped_seconds=f"{reaped_by:.2f}")
    assert probes.outcomes, "no probe finished"
    assert probes.worst_failure_run() < PROBE_FAILURE_THRESHOLD, probes.failures
    running.proc.kill()  # the child traps TERM; end the namespace and read pidone's log
    assert "does not answer" not in running.stderr  # busy is not stuck: no false alarm


def test_a_request_head_that_never_ends_is_cut_off(start_pidone):
    head_timeout = 0.5
    running = start_pidone(workload(), env={"PYTHONPATH": f"{ROOT / 'tests' / 'faults'}:{ROOT}",
                                            "PIDONE_TEST_HEAD_TIMEOUT": str(head_timeout)})
    host, port = running.url.removeprefix("http://").split(":")
    opened = time.monotonic()  # before the connection: pidone's deadline starts once it is open
    with socket.create_connection((host, int(port))) as slow:
        slow.settimeout(30)
        slow.sendall(SLOW_HEAD)
        assert slow.recv(65536) == b""  # closed by pidone, without an answer
        assert time.monotonic() - opened >= head_timeout
    assert running.http.get("/health").status_code == 200
    # This one, and the test client's kept-alive connection if the short deadline beat uvicorn's.
    assert dropped_connections(running)["head_too_slow"] >= 1


# -- clients that never read ------------------------------------------------------------------

SLOW_READERS = 600
SLOW_READ_SECONDS = sized(6, 180)
SLOW_PROBE_PERIOD = 0.5
SLOW_PROBE_TIMEOUT = 2.0
CUT_OFF_WITHIN = max(guard.HEAD_TIMEOUT, guard.SEND_TIMEOUT + 2 * guard.SWEEP_SECONDS) + 5
"""Seconds by which pidone must have ended every connection of clients that stopped opening
new ones: the longest of its deadlines, and some slack for a loaded machine."""
RSS_GROWTH_LIMIT_KB = 64 * 1024


def open_sockets(pid: int) -> int:
    """The sockets a process holds: its listener, its event loop's own, and its clients'."""
    fd_dir = f"/proc/{pid}/fd"
    count = 0
    for name in os.listdir(fd_dir):
        try:
            count += os.readlink(f"{fd_dir}/{name}").startswith("socket:")
        except FileNotFoundError:
            pass  # closed while listed
    return count


class Sampler:
    """The peak RSS and open sockets of a process, sampled by a thread of the test."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_kb = rss_kb(pid)
        self.peak_sockets = open_sockets(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _sample(self) -> None:
        while not self._done.wait(0.2):
            self.peak_rss_kb = max(self.peak_rss_kb, rss_kb(self.pid))
            self.peak_sockets = max(self.peak_sockets, open_sockets(self.pid))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def read_line(stream, timeout: float) -> str:
    if not select.select([stream], [], [], timeout)[0]:
        raise AssertionError(f"no line in {timeout}s")
    return stream.readline()


class SlowReaders:
    """tests/slow_readers.py in its own process: COUNT connections that ask and never read,
    opened again when cut off for SECONDS, then held until `finish`."""

    def __init__(self, url: str, count: int, seconds: float, pattern: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.seconds = seconds
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "slow_readers.py"), host, port, str(count),
             str(seconds), pattern],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def wait_holding(self) -> None:
        """Until the attacker stops opening connections (it keeps those it has)."""
        assert read_line(self.proc.stdout, self.seconds + 60) == "holding\n"

    def finish(self) -> dict:
        """Close every connection left; the attacker's summary."""
        self.proc.stdin.close()
        summary = json.loads(read_line(self.proc.stdout, 30))
        self.proc.wait(30)
        return summary

    def __enter__(self) -> SlowReaders:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def dropped_connections(running: RunningInit) -> dict[str, float]:
    return {dict(labels)["reason"]: value for (name, labels), value in scrape(running).items()
            if name == "pidone_http_connections_dropped_total"}


def test_clients_that_never_read_cannot_lock_the_probes_out(start_pidone, survived):
    """Six hundred clients pipeline requests and never read a byte of the answers (finding 1
    of issue 11: this locked every probe out): pidone ends each within bounded time, its memory
    stays bounded, and the probes keep getting in."""
    running = start_pidone(workload())
    host, port = running.url.removeprefix("http://").split(":")
    pid = running.init_pid
    sockets_before, rss_before = open_sockets(pid), rss_kb(pid)
    with Sampler(pid) as sampled, \
            probing(host, int(port), SLOW_PROBE_PERIOD, SLOW_PROBE_TIMEOUT) as probes, \
            SlowReaders(running.url, SLOW_READERS, SLOW_READ_SECONDS, "mixed") as attacker:
        attacker.wait_holding()
        cut_off = wait_until(lambda: open_sockets(pid) <= sockets_before, CUT_OFF_WITHIN,
                             "pidone ends the connections of clients that never read")
        summary = attacker.finish()
    assert running.proc.poll() is None, "pidone died"
    dropped = dropped_connections(running)
    worst = max(probes.latencies, default=float("nan"))
    growth_kb = sampled.peak_rss_kb - rss_before
    survived(connections=summary["opened"], seconds=SLOW_READ_SECONDS,
             reset_by_server=summary["reset_by_server"], cut_off_after_s=f"{cut_off:.1f}",
             probes=len(probes.outcomes), probe_failures=probes.outcomes.count(False),
             worst_failure_run=probes.worst_failure_run(), slowest_probe_ms=int(worst * 1000),
             failures=",".join(probes.failures) or "-", rss_before_mib=rss_before // 1024,
             rss_growth_mib=growth_kb // 1024, peak_sockets=sampled.peak_sockets,
             dropped=",".join(f"{reason}={int(count)}" for reason, count in sorted(dropped.items())))
    assert probes.outcomes, "no probe finished"
    assert probes.worst_failure_run() < PROBE_FAILURE_THRESHOLD, probes.failures
    assert worst <= SLOW_PROBE_TIMEOUT
    assert growth_kb < RSS_GROWTH_LIMIT_KB
    assert dropped["room_needed"] > 0  # what was cut off is counted
    running.proc.kill()
    assert "does not answer" not in running.stderr  # busy is not stuck: no false alarm


STUCK_READERS = sized(40, 200)


@pytest.mark.parametrize("pattern", ["metrics", "metrics-half-closed"])
def test_answers_never_read_end_their_connection(start_pidone, survived, pattern):
    """Connections whose answers fill the socket's buffers and go no further, open or
    half-closed, are reset SEND_TIMEOUT seconds later; each is counted, one line is logged."""
    running = start_pidone(workload())
    pid = running.init_pid
    sockets_before = open_sockets(pid)
    with SlowReaders(running.url, STUCK_READERS, 0, pattern) as attacker:
        attacker.wait_holding()
        cut_off = wait_until(lambda: open_sockets(pid) <= sockets_before, CUT_OFF_WITHIN,
                             "pidone ends the connections whose answers are never read")
        summary = attacker.finish()
    dropped = dropped_connections(running)
    survived(pattern=pattern, connections=STUCK_READERS, longest_connection_s=summary["longest_seconds"],
             cut_off_after_s=f"{cut_off:.1f}", dropped=dropped)
    assert summary["reset_by_server"] == STUCK_READERS  # each one reset by pidone, not by us
    assert guard.SEND_TIMEOUT <= summary["longest_seconds"] <= CUT_OFF_WITHIN
    assert dropped == {"stuck_sending": STUCK_READERS, "room_needed": 0, "head_too_slow": 0, "peer_share": 0}
    assert running.http.get("/health").status_code == 200
    running.proc.kill()
    assert running.stderr.count("cut off connections") == 1  # once a minute at most
