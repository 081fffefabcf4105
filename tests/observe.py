"""What a test reads about a running init from outside: its children, zombies and memory."""

from __future__ import annotations

import time
from collections.abc import Callable

from app.core.procfs import ProcessInfo, read_processes


def children_of(pid: int) -> list[ProcessInfo]:
    """The processes whose parent is `pid` (a PID of this, the host's, namespace)."""
    return [info for info in read_processes() if info.ppid == pid]


def grandchild_of(init_pid: int) -> int:
    """The PID of the one child of the init's one child."""
    (child,) = children_of(init_pid)
    (grandchild,) = children_of(child.pid)
    return grandchild.pid


def pending_in(pid: int) -> set[int]:
    """The signals pending for the whole process `pid` (sent with kill or killpg)."""
    with open(f"/proc/{pid}/status") as status:
        mask = next(int(line.split()[1], 16) for line in status if line.startswith("ShdPnd:"))
    return {bit + 1 for bit in range(64) if mask >> bit & 1}


def zombies_of(pid: int) -> int:
    """How many of pid's children are zombies: orphans it has not reaped (yet)."""
    return sum(1 for info in children_of(pid) if info.state == "Z")


def rss_kb(pid: int) -> int:
    """VmRSS of a process, in kB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"process {pid} has no VmRSS (gone?)")


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` until it holds; the seconds it took. Fails the test after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.01)
    return time.monotonic() - started
