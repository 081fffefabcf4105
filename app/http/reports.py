"""The JSON documents of /health, /status and /processes, built from a snapshot and /proc."""

from __future__ import annotations

import os
from typing import Any

from app import __version__
from app.core import procfs
from app.config import Config
from app.http.health import Verdict, heartbeat_age
from app.core.signals import signal_name
from app.core.state import ChildStatus, ExitRecord, Snapshot

PROCESSES_LISTED = 1000
"""Processes /processes lists at most, zombies first: 30,000 made a 5.6 MB answer (issue 22)."""

NOT_REAPING_REASON = (
    "pidone is neither PID 1 nor a child subreaper: orphans are re-parented to the real init "
    "(or the nearest subreaper above pidone), not to pidone; run pidone as the container's "
    "entrypoint, or pass -s"
)


def child_document(child: ChildStatus, now: float) -> dict[str, Any]:
    document: dict[str, Any] = {
        "pid": child.pid,
        "running": child.running,
        "uptime_seconds": round(now - child.start_time, 3) if child.running else None,
    }
    if not child.running:
        document["exit_code"] = child.exit_code
        document["exit_signal"] = signal_name(child.exit_signal) if child.exit_signal else None
    return document


def probe_document(verdict: Verdict, snapshot: Snapshot, now: float) -> dict[str, Any]:
    """The body of /health, /livez and /readyz: the verdict and what it was decided from."""
    return {
        "status": verdict.status,
        "phase": snapshot.phase,
        "child": child_document(snapshot.child, now),
        "heartbeat_age_seconds": round(heartbeat_age(snapshot, now), 3),
    }


def status_document(snapshot: Snapshot, config: Config, now: float) -> dict[str, Any]:
    """pidone's PID 1 situation, the child, the shutdown phase and the effective configuration."""
    reaps_orphans = snapshot.is_pid1 or snapshot.is_subreaper
    return {
        "version": __version__,
        "pid": os.getpid(),
        "pid1": snapshot.is_pid1,
        "subreaper": snapshot.is_subreaper,
        "reaps_orphans": reaps_orphans,
        "not_reaping_reason": None if reaps_orphans else NOT_REAPING_REASON,
        "phase": snapshot.phase,
        "ready": snapshot.ready,
        "child": {
            "argv": list(snapshot.child.argv),
            "started_at": snapshot.child.start_time,
            **child_document(snapshot.child, now),
        },
        "zombies_reaped": snapshot.zombies_reaped,
        "warnings": [*snapshot.warnings, *filter(None, [procfs.proc_trouble()])],
        "exits": [exit_document(ended) for ended in snapshot.exits],
        "restarts": snapshot.restarts,
        "config": config.public(),
    }


def exit_document(ended: ExitRecord) -> dict[str, Any]:
    """One of the last exits: the child's status, and what pidone did next."""
    return {
        "pid": ended.pid,
        "time": ended.time,
        "exit_code": ended.exit_code,
        "exit_signal": signal_name(ended.exit_signal) if ended.exit_signal else None,
        "followed_by": ended.followed_by,
        "reason": ended.reason,
        "backoff_seconds": ended.backoff_seconds,
    }


def processes_document(snapshot: Snapshot) -> dict[str, Any]:
    """The processes pidone can see, PROCESSES_LISTED at most (zombies first, then by PID),
    and for each zombie who is to reap it; `count` is all of them.

    Only /proc/PID/stat is read: never cmdline or environ, which may hold secrets. Raises
    procfs.ProcUnavailable without a /proc of pidone's PID namespace.
    """
    me = os.getpid()
    processes = procfs.visible_processes(snapshot.is_pid1)
    by_pid = {info.pid: info for info in processes}
    uptime = procfs.uptime_seconds()
    listed = []
    for info in sorted(processes, key=lambda p: (p.state != "Z", p.pid))[:PROCESSES_LISTED]:
        entry: dict[str, Any] = {
            "pid": info.pid,
            "ppid": info.ppid,
            "pgid": info.pgid,
            "state": procfs.state_name(info.state),
            "name": info.name,
            "age_seconds": round(procfs.age_seconds(info, uptime), 3),
        }
        if info.state == "Z":
            entry["reaping"] = _who_reaps(info, me, by_pid, snapshot)
        listed.append(entry)
    return {
        "scope": "namespace" if snapshot.is_pid1 else "descendants",
        "count": len(processes),
        "truncated": len(listed) < len(processes),
        "processes": listed,
    }


def _who_reaps(zombie: procfs.ProcessInfo, me: int, by_pid: dict[int, procfs.ProcessInfo],
               snapshot: Snapshot) -> dict[str, Any]:
    """A zombie stays until its parent waits for it; only an exited parent hands it to pidone."""
    if zombie.ppid == me:
        return {"by": "pidone", "will_reap": True, "reason": "its parent is pidone, which reaps it"}
    parent = by_pid.get(zombie.ppid)
    parent_text = f"{parent.name!r} (pid {parent.pid})" if parent else f"pid {zombie.ppid}"
    inherits = snapshot.is_pid1 or snapshot.is_subreaper
    return {
        "by": "parent",
        "will_reap": False,
        "parent": {"pid": zombie.ppid, "name": parent.name if parent else None},
        "reason": f"its parent {parent_text} is alive and has not waited for it; "
                  + ("pidone will reap it once that parent exits" if inherits
                     else "when that parent exits it goes to the real init, not to pidone"),
    }
