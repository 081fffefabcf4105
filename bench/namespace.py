"""An init as PID 1 of a fresh PID namespace, watched from outside through /proc and a pipe."""

from __future__ import annotations

import os
import select
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from app.core.procfs import read_process
from bench.inits import Init

UNSHARE = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
"""--kill-child: when unshare dies the kernel ends the namespace, whatever the init does."""
START_TIMEOUT = 20.0
SETTLE_WINDOW = 0.05
SETTLED_SHARE = 0.02
"""An init using less than this share of a core over SETTLE_WINDOW has finished starting."""


class BenchError(Exception):
    """A case could not be measured (an init never started, a report never came)."""


def children(pid: int) -> list[int]:
    """The children of `pid`'s main thread (where the kernel re-parents orphans)."""
    try:
        return [int(word) for word in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []


def count_zombies(pid: int) -> int:
    found = 0
    for child in children(pid):
        info = read_process(child)
        if info is not None and info.state == "Z":
            found += 1
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of `pid`, from the scheduler's nanosecond counter."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total / 1e9


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for pid {pid}")


class Reports:
    """Lines the child side writes on a pipe, read with a timeout so a lost signal fails fast."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self._buffer = b""

    def line(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.read_fd], [], [], remaining)[0]:
                raise BenchError(f"no report from the child in {timeout:g}s")
            chunk = os.read(self.read_fd, 65536)
            if not chunk:
                raise BenchError("the child closed its report pipe")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def ready(self) -> bool:
        """Whether a whole line can be read without waiting."""
        if b"\n" in self._buffer:
            return True
        if select.select([self.read_fd], [], [], 0)[0]:
            chunk = os.read(self.read_fd, 65536)
            self._buffer += chunk
            return b"\n" in self._buffer or not chunk
        return False

    def value(self, word: str, timeout: float = 10.0) -> int:
        """The number of the next line, which must start with `word`."""
        line = self.line(timeout)
        head, _, number = line.partition(" ")
        if head != word:
            raise BenchError(f"expected {word!r} from the child, got {line!r}")
        return int(number)

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


class Namespace:
    """`argv` as PID 1 of a new PID namespace; a context manager that ends the namespace."""

    def __init__(self, argv: Sequence[str], *, pass_fds: Sequence[int] = ()) -> None:
        self.proc = subprocess.Popen([*UNSHARE, *argv], pass_fds=tuple(pass_fds),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.init_pid = self._first_child(self.proc.pid)

    def _first_child(self, pid: int) -> int:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = children(pid)
            if found:
                return found[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.001)
        self.stop()
        raise BenchError(f"{self.proc.args[len(UNSHARE)]} never started")

    def child_pid(self) -> int:
        """The init's command (the first child it started), once it runs."""
        return self._first_child(self.init_pid)

    def wait_http(self, url: str) -> None:
        """Until `url` answers: an HTTP init is measured once its server is up."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    response.read()
                return
            except OSError as error:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise BenchError(f"{url} never answered: {error}") from None
                time.sleep(0.02)

    def settle(self) -> None:
        """Until the init's CPU time stops moving: it has finished starting. pidone spawns its
        child first and imports the rest after, so the child running says little."""
        deadline = time.monotonic() + START_TIMEOUT
        last = cpu_seconds(self.init_pid)
        while time.monotonic() < deadline:
            time.sleep(SETTLE_WINDOW)
            now = cpu_seconds(self.init_pid)
            if now - last < SETTLE_WINDOW * SETTLED_SHARE:
                return
            last = now
        raise BenchError(f"{self.proc.args[len(UNSHARE)]} never settled")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def __enter__(self) -> Namespace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sleeping(init: Init) -> Namespace:
    """`init` with a sleeping child, once it has settled and its HTTP server answers."""
    namespace = Namespace([*init.argv, "sleep", "infinity"])
    try:
        namespace.child_pid()
        if init.http_port is not None:
            namespace.wait_http(init.metrics_url())
        namespace.settle()
    except BaseException:
        namespace.stop()
        raise
    return namespace
