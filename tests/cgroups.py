"""Fresh pids cgroups for the tests: made under v1's pids hierarchy or v2's root, removed by path."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup/pids")
V2_ROOT = Path("/sys/fs/cgroup")


def pids_controller_root() -> Path | None:
    """Where a child cgroup with a pids controller can be made; None where this machine has none
    we may use (not root, or v2 without the controller)."""
    if (V1_ROOT / "cgroup.procs").exists():
        return V1_ROOT
    controllers = V2_ROOT / "cgroup.controllers"
    if controllers.exists() and "pids" in controllers.read_text().split():
        subtree = V2_ROOT / "cgroup.subtree_control"
        try:
            if "pids" not in subtree.read_text().split():
                subtree.write_text("+pids")
        except OSError:
            return None
        return V2_ROOT
    return None


def make_pids_cgroup(name: str, limit: int) -> Path | None:
    """A new cgroup `name` whose pids.max is `limit`, or None where none can be made."""
    root = pids_controller_root()
    if root is None:
        return None
    path = root / name
    try:
        path.mkdir()
    except OSError:
        return None
    (path / "pids.max").write_text(str(limit))
    return path


def remove_cgroup(path: Path) -> None:
    """SIGKILL what is left in it, by PID (only the test's processes are there), then remove it."""
    deadline = time.monotonic() + 10
    while (pids := (path / "cgroup.procs").read_text().split()) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    path.rmdir()


def in_cgroup(path: Path) -> list[str]:
    """A prefix that runs the argv after it inside the cgroup: it moves itself there before
    exec, so that everything pidone forks counts against pids.max."""
    return ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(path)]
