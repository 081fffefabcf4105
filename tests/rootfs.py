"""Root file systems that stand in for container images (Debian roots made by mmdebstrap, one
with nothing but static files), and commands run inside one as a container engine runs them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""The PATH Docker gives a container whose image sets none."""


class DebianRoot:
    """`mmdebstrap --variant=minbase SUITE` into a directory, started now and finished by
    wait(): several download at once."""

    def __init__(self, suite: str, target: Path, packages: Sequence[str] = ()) -> None:
        self.suite, self.path = suite, target
        include = [f"--include={','.join(packages)}"] if packages else []
        self._proc = subprocess.Popen(
            ["mmdebstrap", "--variant=minbase", "--mode=root", "--quiet", *include, suite,
             str(target)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def wait(self, timeout: float = 300) -> Path:
        _, errors = self._proc.communicate(timeout=timeout)
        if self._proc.returncode != 0:
            raise RuntimeError(f"mmdebstrap {self.suite} failed ({self._proc.returncode}): "
                               f"{errors.strip()[-500:]}")
        return self.path

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def make_static_root(debian: Path, target: Path) -> Path:
    """Like distroless/static or an image built FROM scratch for a Go binary: users, /tmp and
    the device nodes, and no shell, no C library, no loader."""
    for directory in ("etc", "proc", "usr/local/bin", "opt"):
        (target / directory).mkdir(parents=True)
    (target / "tmp").mkdir()
    (target / "tmp").chmod(0o1777)
    subprocess.run(["cp", "-a", str(debian / "dev"), str(target / "dev")], check=True)
    (target / "etc" / "passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\n"
                                           "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    (target / "etc" / "group").write_text("root:x:0:\nnonroot:x:65532:\n")
    return target


def in_root(root: Path, env: Mapping[str, str], *, user: str = "0:0",
            read_only: bool = False) -> list[str]:
    """The argv before a command that runs it in `root` as a container engine would: with the
    caller's PID namespace's /proc, the root read-only if asked, as `user` (UID:GID), with
    exactly `env`. Each step execs the next: whoever is PID 1 hands that on to the command.
    Needs a mount namespace of its own (the init fixtures' unshare makes one)."""
    mounts = ['mount --bind "$0" "$0"', 'mount -o remount,bind,ro "$0"'] if read_only else []
    mounts.append('mount -t proc proc "$0/proc"')
    script = " && ".join([*mounts, 'exec "$@"'])
    return ["sh", "-c", script, str(root), "env", "-i", *(f"{key}={value}" for key, value in env.items()),
            shutil.which("chroot") or "chroot", f"--userspec={user}", str(root)]


def exec_in(init_pid: int, argv: Sequence[str], env: Mapping[str, str], *,
            user: str = "0:0") -> subprocess.CompletedProcess[str]:
    """Run `argv` beside the init `init_pid`, in its namespaces and root, as `docker exec` and a
    HEALTHCHECK do: no shell in between."""
    uid, gid = user.split(":")
    return subprocess.run(["nsenter", f"--target={init_pid}", "--mount", "--pid", "--root",
                           "--wd", f"--setuid={uid}", f"--setgid={gid}", *argv],
                          env=dict(env), capture_output=True, text=True, timeout=60)
