"""Fresh cgroups for the tests: pids cgroups under v1's pids hierarchy or v2's root, freezer
cgroups under v1's freezer hierarchy or any v2 hierarchy (a hybrid host mounts one at
/sys/fs/cgroup/unified); removed by path."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup/pids")
V2_ROOT = Path("/sys/fs/cgroup")
V1_FREEZER_ROOT = Path("/sys/fs/cgroup/freezer")
V2_HYBRID_ROOT = Path("/sys/fs/cgroup/unified")


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


class Freezer:
    """A fresh cgroup whose processes can be frozen and thawed, as `docker pause` does: v1's
    freezer.state or v2's cgroup.freeze."""

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version

    def freeze(self) -> None:
        self._set(True)

    def thaw(self) -> None:
        self._set(False)

    def _set(self, frozen: bool) -> None:
        """Ask, then wait until the kernel says every process is there (v1 says FREEZING while
        a task has not stopped yet; v2 writes "frozen 1" in cgroup.events once all have)."""
        if self.version == 1:
            control, value = self.path / "freezer.state", "FROZEN" if frozen else "THAWED"
            report, wanted = control, value
        else:
            control, value = self.path / "cgroup.freeze", str(int(frozen))
            report, wanted = self.path / "cgroup.events", f"frozen {int(frozen)}"
        control.write_text(value)
        deadline = time.monotonic() + 10
        while wanted not in report.read_text().splitlines():
            assert time.monotonic() < deadline, f"{self.path} never became {wanted}"
            time.sleep(0.002)


def make_freezer_cgroup(name: str, version: int) -> Freezer | None:
    """A new cgroup `name` with the v1 or the v2 freezer, or None where this machine has none."""
    roots = [V1_FREEZER_ROOT] if version == 1 else [V2_ROOT, V2_HYBRID_ROOT]
    control = "freezer.state" if version == 1 else "cgroup.freeze"
    for root in roots:
        if version == 2 and not (root / "cgroup.controllers").exists():
            continue  # not a v2 hierarchy
        try:
            (root / name).mkdir()
        except OSError:
            continue
        if (root / name / control).exists():
            return Freezer(root / name, version)
        (root / name).rmdir()  # a v2 kernel older than 5.2 has no freezer
    return None
