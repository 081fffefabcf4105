"""Processes as /proc shows them: who is whose parent, in what state, since when."""

from __future__ import annotations

import os
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


def read_processes(proc: str = "/proc") -> list[ProcessInfo]:
    """Every process visible in this /proc (the PID namespace it was mounted for)."""
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
