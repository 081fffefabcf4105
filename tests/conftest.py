"""Fixtures that run an init (pidone, or a peer) as PID 1 of a fresh PID namespace."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from cgroups import Freezer, make_freezer_cgroup, make_pids_cgroup, remove_cgroup

def _start_from_default_signal_state() -> None:
    """Every init under test starts as a container runtime starts it: no signal ignored or
    blocked. A shell's background job (make test &) ignores SIGINT and SIGQUIT, and tini and
    dumb-init pass ignored signals on to their child, so verdicts would depend on how the suite
    was started. Python's own ignored SIGPIPE/SIGXFSZ are restored by subprocess itself."""
    for signo in signal.valid_signals():
        if signo in (signal.SIGKILL, signal.SIGSTOP) or signal.getsignal(signo) != signal.SIG_IGN:
            continue
        if signo not in (signal.SIGPIPE, signal.SIGXFSZ):
            signal.signal(signo, signal.default_int_handler if signo == signal.SIGINT
                          else signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


_start_from_default_signal_state()

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["engine"]  # the private Docker engine's fixtures (tests/engine.py)
WORKLOAD = [sys.executable, str(ROOT / "tests" / "workload.py")]
PIDONE = [sys.executable, "-m", "app"]
INSTALLED = [str(Path(sys.executable).with_name("pidone"))]
"""The command `make venv` installs (bin/pidone, isolated with -I), as an image runs it."""
PEERS = {"tini": ["tini", "--"], "dumb-init": ["dumb-init", "--"]}


def init_command(init: str) -> list[str]:
    """The command line prefix that starts `init` with its children after it."""
    if init == "pidone":
        return [*PIDONE, "--http", "off"]
    if shutil.which(PEERS[init][0]) is None:
        pytest.skip(f"{init} is not installed")
    return list(PEERS[init])


class RunningInit:
    """An init started under `unshare --pid --fork`, and the pipe its workload reports on."""

    def __init__(self, argv: Sequence[str], *, namespace: bool, env: dict[str, str] | None,
                 **popen: object) -> None:
        self.reports_fd, write_fd = os.pipe()
        self.ack = write_fd
        prefix = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] if namespace else []
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        argv = [a.format(ack=write_fd) for a in argv]
        popen.setdefault("stderr", subprocess.PIPE)
        popen.setdefault("cwd", ROOT)
        self.proc = subprocess.Popen([*prefix, *argv], env=full_env, pass_fds=(write_fd,), **popen)
        os.close(write_fd)
        self.namespace = namespace
        self._buffer = b""
        self._stderr: str | None = None
        self.workload_pids: list[int] = []
        self.url: str | None = None
        """The HTTP API's base URL, for an init started by start_pidone."""
        self.http: httpx.Client | None = None

    @property
    def init_pid(self) -> int:
        """pidone's PID as this (the host's) namespace sees it."""
        if not self.namespace:
            return self.proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            except FileNotFoundError:
                break
            if children.split():
                return int(children.split()[0])
            time.sleep(0.005)
        raise AssertionError("the init never started")

    def send(self, signo: int) -> None:
        os.kill(self.init_pid, signo)

    def read_report(self, timeout: float = 10.0) -> str:
        """The workload's next line; fails the test when none comes in time."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no report from the workload in {timeout}s")
            readable, _, _ = select.select([self.reports_fd], [], [], remaining)
            if readable:
                chunk = os.read(self.reports_fd, 65536)
                if not chunk:
                    raise AssertionError("the workload closed its report pipe")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        text = line.decode()
        if text.startswith("ready "):
            self.workload_pids.append(int(text.split()[1]))
        return text

    def expect_report(self, prefix: str, timeout: float = 10.0) -> str:
        line = self.read_report(timeout)
        assert line.startswith(prefix), f"expected {prefix!r}, got {line!r}"
        return line

    def wait(self, timeout: float = 20.0) -> int:
        self.proc.wait(timeout)
        return self.proc.returncode

    @property
    def stderr(self) -> str:
        if self._stderr is None:
            self.wait()
            text = self.proc.stderr.read().decode() if self.proc.stderr else ""
            # unshare sometimes reports its own sigprocmask trouble; not the init's output.
            self._stderr = "".join(line for line in text.splitlines(keepends=True)
                                   if not line.startswith("unshare: "))
        return self._stderr

    def stop(self) -> None:
        if self.http is not None:
            self.http.close()
        if self.proc.poll() is None:
            # --kill-child makes the kernel end the whole namespace with unshare's child.
            self.proc.kill()
            self.proc.wait(10)
        if not self.namespace:
            # Without a namespace nothing ends the workload with the init: end it by PID.
            for pid in self.workload_pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc.stderr:
            self.proc.stderr.close()
        os.close(self.reports_fd)


@pytest.fixture
def start_init() -> Iterator:
    """start_init(argv, namespace=True, env=None) -> RunningInit; "{ack}" in argv is the report fd."""
    started: list[RunningInit] = []

    def start(argv: Sequence[str], *, namespace: bool = True, env: dict[str, str] | None = None,
              **popen: object) -> RunningInit:
        running = RunningInit(argv, namespace=namespace, env=env, **popen)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def free_loopback_port() -> int:
    """A port nobody listens on right now (the kernel's pick for an ephemeral bind)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answers(name: str, proc: subprocess.Popen, http: httpx.Client, path: str,
                       output: Callable[[], str], timeout: float = 20.0) -> None:
    """Poll GET path until it answers 200; fail with output() (the server's log) if proc dies
    first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited ({proc.returncode}): {output()}")
        try:
            if http.get(path).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{name}: {path} did not answer within {timeout}s")


def wait_until_live(running: RunningInit, timeout: float = 20.0) -> None:
    """Poll /livez until it answers 200; fail with pidone's stderr if pidone dies first."""
    assert running.http is not None
    wait_until_answers("pidone", running.proc, running.http, "/livez", lambda: running.stderr,
                       timeout)


@pytest.fixture
def start_pidone(start_init) -> Iterator:
    """start_pidone(command, *options, env=None, namespace=True, **popen) -> RunningInit with .url
    and .http (an httpx client), pidone listening on a free loopback port, returned once /livez
    answers; popen goes to subprocess.Popen."""

    def start(command: Sequence[str], *options: str, env: dict[str, str] | None = None,
              namespace: bool = True, wait: bool = True, within: Sequence[str] = (),
              pidone: Sequence[str] = PIDONE, **popen: object) -> RunningInit:
        """`within`: argv that execs pidone after it, e.g. a shell that moves into a cgroup;
        `pidone`: how to start pidone (this checkout's, by default)."""
        url = f"http://127.0.0.1:{free_loopback_port()}"
        running = start_init([*within, *pidone, "--http", url.removeprefix("http://"), *options,
                              "--", *command], env=env, namespace=namespace, **popen)
        running.url = url
        running.http = httpx.Client(base_url=url, timeout=20)
        if wait:
            wait_until_live(running)
        return running

    yield start


T = TypeVar("T")


def fresh_cgroups(kind: str, maker: Callable[[str, int], T | None]
                  ) -> tuple[Callable[[int], T | None], list[T]]:
    """(make, made): make(n) calls maker with a name of its own for this test run, and keeps
    what it made in `made`, for the fixture to remove."""
    made: list[T] = []

    def make(argument: int) -> T | None:
        cgroup = maker(f"pidone-test-{kind}-{os.getpid()}-{len(made)}", argument)
        if cgroup is not None:
            made.append(cgroup)
        return cgroup

    return make, made


@pytest.fixture
def pids_cgroup() -> Iterator[Callable[[int], Path | None]]:
    """pids_cgroup(limit) -> a fresh cgroup whose pids.max is `limit`, None where this machine
    offers no pids controller to make one under; removed at the end."""
    make, made = fresh_cgroups("pids", make_pids_cgroup)
    yield make
    for path in made:
        remove_cgroup(path)


@pytest.fixture
def freezer_cgroup() -> Iterator[Callable[[int], Freezer | None]]:
    """freezer_cgroup(version) -> a fresh cgroup with the v1 or v2 freezer, None where this
    machine has none; thawed and removed at the end."""
    make, made = fresh_cgroups("freezer", make_freezer_cgroup)
    yield make
    for freezer in made:
        freezer.thaw()
        remove_cgroup(freezer.path)


def round_trip_then_exit(running: RunningInit) -> None:
    """For a workload with trap=USR1 and exit-on=USR2: a signal reaches it, another ends it
    with status 0 — pidone forwards and leaves as it should."""
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"
    running.send(signal.SIGUSR2)
    assert running.read_report() == "SIGUSR2"
    assert running.wait() == 0


def workload(*words: str) -> list[str]:
    """The test workload's argv, reporting on the pipe of RunningInit."""
    return [*WORKLOAD, "ack={ack}", *words]


def shell_over_blocker(signo: int) -> list[str]:
    """A shell child that reports `signo` itself ("shell-got-NAME") over a workload grandchild
    blocking it: whether the signal went to the whole group shows, once the shell has it, as
    pending in the grandchild (observe.pending_in). dash cannot redirect to descriptors above
    9, hence /dev/fd."""
    name = signal.Signals(signo).name.removeprefix("SIG")
    return ["sh", "-c", f"trap 'echo shell-got-{name} > /dev/fd/{{ack}}' {name}; "
            + " ".join(workload(f"block={name}")) + " & wait; wait; wait"]


LINGERER = ["sh", "-c", "trap '' TERM; sleep 120 & exit 3"]
"""A child that exits at once and leaves a process ignoring SIGTERM: pidone sits in its grace."""


def wait_for_status(running: RunningInit, path: str, status: int, timeout: float = 20.0) -> dict:
    """Poll `path` until it answers `status` (a state change, not a signal: nothing to ack)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = running.http.get(path)
        if answer.status_code == status:
            return answer.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} still answers {answer.status_code}: {answer.text}")
        time.sleep(0.02)


def wait_for_core_turn_after(running: RunningInit, moment: float) -> None:
    """Until pidone's core loop has turned after `moment` (time.time()): by then it has acted on
    any deadline due before it (a held-back SIGTERM, --stop-timeout)."""
    beat = ("pidone_core_heartbeat_timestamp_seconds", ())
    deadline = time.monotonic() + 20
    while scrape(running)[beat] <= moment:
        assert time.monotonic() < deadline, "the core loop stopped turning"
        time.sleep(0.02)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(running: RunningInit, **headers: str) -> Samples:
    """/metrics as {(sample name, sorted label pairs): value}, parsed by prometheus_client."""
    assert running.http is not None
    return scrape_with(running.http, **headers)


def scrape_with(http: httpx.Client, **headers: str) -> Samples:
    """GET /metrics with this client, parsed as scrape() does."""
    from prometheus_client.parser import text_string_to_metric_families

    answer = http.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def forwarded(samples: Samples, signal_name: str, source: str) -> float:
    """pidone_signals_forwarded_total of one signal from one source, whatever target it reached."""
    return sum(value for (name, labels), value in samples.items()
               if name == "pidone_signals_forwarded_total"
               and ("signal", signal_name) in labels and ("source", source) in labels)


class Hammer:
    """Threads that POST to one path as fast as they can, tallying the answers' statuses."""

    def __init__(self, url: str, path: str, threads: int = 2) -> None:
        import threading

        self.statuses: list[int] = []
        self.asked_at: list[float] = []
        """When the request behind each status was sent (time.monotonic), in the same order."""
        self._stop = threading.Event()
        self._tally = threading.Lock()
        self._clients = [httpx.Client(base_url=url, timeout=20) for _ in range(threads)]
        self._threads = [threading.Thread(target=self._hammer, args=(client, path), daemon=True)
                         for client in self._clients]

    def _hammer(self, client: httpx.Client, path: str) -> None:
        deadline = time.monotonic() + 120  # bounded, whatever the test does
        while not self._stop.is_set() and time.monotonic() < deadline:
            asked_at = time.monotonic()
            try:
                status = client.post(path).status_code
            except httpx.TransportError:
                return  # pidone has gone
            with self._tally:
                self.asked_at.append(asked_at)
                self.statuses.append(status)

    def statuses_asked_after(self, moment: float) -> list[int]:
        with self._tally:
            return [status for asked, status in zip(self.asked_at, self.statuses) if asked > moment]

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        """Until `count` answers have come in, whatever their status."""
        deadline = time.monotonic() + timeout
        while len(self.statuses) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.statuses)} answers in {timeout}s")
            time.sleep(0.01)

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        for client in self._clients:
            client.close()


@pytest.fixture
def init_hammer() -> type[Hammer]:
    return Hammer


SOAK = os.environ.get("PIDONE_SOAK") == "1"
"""`make soak` sets PIDONE_SOAK=1: the reliability tests run at their big sizes."""


def sized(short: int, soak: int) -> int:
    """A load size: `short` in `make test`, `soak` in `make soak`."""
    return soak if SOAK else short


_FIGURES: list[str] = []


@pytest.fixture
def survived(request: pytest.FixtureRequest):
    """survived(orphans=20000, lost=0, ...) records what a reliability test survived; the
    figures are printed at the end of the run."""

    def record(**figures: object) -> None:
        _FIGURES.append(f"{request.node.name}: " + " ".join(f"{k}={v}" for k, v in figures.items()))

    return record


def pytest_terminal_summary(terminalreporter) -> None:
    if _FIGURES:
        terminalreporter.section("survived")
        for line in _FIGURES:
            terminalreporter.write_line(line)

