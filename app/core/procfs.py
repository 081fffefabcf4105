"""Processes as /proc shows them: who is whose parent, in what state, since when."""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    pgid: int
    state: str
    """The one-letter state of /proc/PID/stat: R, S, D, T, t, Z, I, X..."""
    name: str
    start_ticks: int
    """Start time after boot, in clock ticks (field 22 of /proc/PID/stat)."""


def read_process(pid: int, proc: str = "/proc") -> ProcessInfo | None:
    """One process, or None when it is gone (it may exit while we read)."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as stat_file:
            raw = stat_file.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The name sits in parentheses and may itself hold spaces and parentheses.
    head, _, tail = raw.rpartition(")")
    name = head.partition("(")[2]
    fields = tail.split()
    return ProcessInfo(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        state=fields[0],
        name=name,
        start_ticks=int(fields[19]),
    )


class ProcUnavailable(Exception):
    """`/proc` is not the proc file system of this process's PID namespace: not mounted, an
    empty file system over it, or another namespace's, whose PIDs are not ours to count or to
    signal. Processes cannot be listed; an init still works without them."""


def check_proc(proc: str = "/proc") -> None:
    """Raise ProcUnavailable unless `proc` shows this process as itself."""
    try:
        own = os.readlink(f"{proc}/self") == str(os.getpid())
    except OSError:
        own = False
    if not own:
        raise ProcUnavailable(f"{proc} is not the proc file system of pidone's PID namespace: "
                              "processes cannot be listed nor counted")


def proc_trouble(proc: str = "/proc") -> str | None:
    """Why processes cannot be listed, or None when they can."""
    try:
        check_proc(proc)
    except ProcUnavailable as trouble:
        return str(trouble)
    return None


def read_processes(proc: str = "/proc") -> list[ProcessInfo]:
    """Every process visible in this /proc (the PID namespace it was mounted for); raises
    ProcUnavailable when that is not this process's."""
    check_proc(proc)
    found = []
    for entry in os.listdir(proc):
        if entry.isdigit():
            info = read_process(int(entry), proc)
            if info is not None:
                found.append(info)
    return found


def descendants(root: int, processes: list[ProcessInfo]) -> list[ProcessInfo]:
    """The processes below `root` by parent links, nearest first; `root` itself excluded."""
    children: dict[int, list[ProcessInfo]] = {}
    for info in processes:
        children.setdefault(info.ppid, []).append(info)
    found, frontier = [], [root]
    while frontier:
        next_frontier = []
        for pid in frontier:
            for child in children.get(pid, ()):
                if child.pid != root:
                    found.append(child)
                    next_frontier.append(child.pid)
        frontier = next_frontier
    return found


STATE_NAMES = {"R": "running", "S": "sleeping", "D": "disk_sleep", "T": "stopped", "t": "stopped",
               "Z": "zombie", "I": "idle"}
STATES = ("running", "sleeping", "disk_sleep", "stopped", "zombie", "idle", "other")
"""The values of pidone_processes' state label, in this order; every other letter is "other"."""

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def state_name(letter: str) -> str:
    return STATE_NAMES.get(letter, "other")


def visible_processes(is_pid1: bool, proc: str = "/proc") -> list[ProcessInfo]:
    """What pidone can answer for: its whole PID namespace as PID 1, its descendants otherwise."""
    processes = read_processes(proc)
    if is_pid1:
        return processes
    return descendants(os.getpid(), processes)


def uptime_seconds(proc: str = "/proc") -> float:
    with open(f"{proc}/uptime") as uptime_file:
        return float(uptime_file.read().split()[0])


def age_seconds(info: ProcessInfo, uptime: float) -> float:
    return max(0.0, uptime - info.start_ticks / _CLOCK_TICKS)


class Census:
    """Process counts by state, from a /proc scan at most every `max_age` seconds, and no more
    often than COST_RATIO times what the last scan cost: the scan takes a file per process.

    Scans run in a thread of their own while callers get the last counts: 30,000 processes and
    a scrape a second once made each scrape a second-long scan in the event loop (issue 22).
    The first caller waits for the first scan FIRST_WAIT seconds at most.
    """

    COST_RATIO = 10.0
    FIRST_WAIT = 0.5

    def __init__(self, max_age: float = 1.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._counts: dict[str, int] | None = None
        self._taken_at = -math.inf
        self._cost = 0.0
        self._scanning: threading.Thread | None = None

    def state_counts(self, is_pid1: bool) -> dict[str, int] | None:
        """The latest counts; None while no scan has ended yet, or without a /proc of our own
        (a zero would be a lie)."""
        with self._lock:
            due = time.monotonic() - self._taken_at >= max(self.max_age, self._cost * self.COST_RATIO)
            if due and self._scanning is None:
                self._scanning = threading.Thread(target=self._scan, args=(is_pid1,),
                                                  name="pidone-census", daemon=True)
                try:
                    self._scanning.start()
                except RuntimeError:  # no task left to make (pids.max): no fresh counts
                    self._scanning = None
            first = self._scanning if self._counts is None else None
        if first is not None:
            first.join(self.FIRST_WAIT)
        with self._lock:
            return None if self._counts is None else dict(self._counts)

    def _scan(self, is_pid1: bool) -> None:
        started, cpu = time.monotonic(), time.thread_time()
        counts: dict[str, int] | None = dict.fromkeys(STATES, 0)
        try:
            for info in visible_processes(is_pid1):
                counts[state_name(info.state)] += 1
        except ProcUnavailable:
            counts = None
        finally:
            with self._lock:
                self._counts, self._taken_at = counts, started
                self._cost = time.thread_time() - cpu
                self._scanning = None
