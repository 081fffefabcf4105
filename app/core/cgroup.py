"""The cgroup pids controller (v2 or v1): how many tasks pidone's cgroup holds, and its limit."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PidsUsage:
    current: int
    limit: int | None
    """None when pids.max says "max" (unlimited)."""


def read_pids_usage(cgroup_root: str = "/sys/fs/cgroup", self_cgroup: str = "/proc/self/cgroup") -> PidsUsage | None:
    """The first readable pids.current/pids.max among the places our cgroup can be; None if none."""
    for directory in _candidate_directories(cgroup_root, self_cgroup):
        try:
            with open(f"{directory}/pids.current") as current_file:
                current = int(current_file.read())
            with open(f"{directory}/pids.max") as max_file:
                limit_text = max_file.read().strip()
        except (OSError, ValueError):
            continue
        return PidsUsage(current, None if limit_text == "max" else int(limit_text))
    return None


def _candidate_directories(cgroup_root: str, self_cgroup: str) -> list[str]:
    """Our cgroup's path under each mount that may hold the pids controller, then the mount
    itself: a container without a cgroup namespace sees a host path in /proc/self/cgroup,
    while its runtime mounted its own cgroup at the root."""
    try:
        with open(self_cgroup) as cgroup_file:
            lines = cgroup_file.read().splitlines()
    except OSError:
        return []
    candidates = []
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        path = path.rstrip("/")
        if controllers == "":  # v2 (the unified hierarchy), mounted alone or as unified/
            mounts = [cgroup_root, f"{cgroup_root}/unified"]
        elif "pids" in controllers.split(","):  # v1
            mounts = [f"{cgroup_root}/pids"]
        else:
            continue
        for mount in mounts:
            candidates += [f"{mount}{path}", mount]
    return candidates
