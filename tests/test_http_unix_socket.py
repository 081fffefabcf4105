"""--http unix:/path: the socket file is made 0600 (or as asked), a stale one left by a killed
pidone is replaced, nothing else at the path is ever touched, and the file goes when pidone
leaves (finding 4 of issue 11: the API stayed off after `docker restart`, and any local user
could signal the child)."""

from __future__ import annotations

import os
import signal
import socket
import stat
import time
from pathlib import Path

import httpx
import pytest

from conftest import PIDONE, RunningInit, workload

UMASK_000 = ["sh", "-c", 'umask 000; exec "$@"', "sh"]
"""Runs pidone with umask 000: the socket's mode must not come from the umask."""


def serving(start_init, path: Path, *options: str, env: dict[str, str] | None = None,
            command: list[str] | None = None) -> RunningInit:
    """pidone on `path`, returned once /livez answers there."""
    running = start_init([*UMASK_000, *PIDONE, "--http", f"unix:{path}", *options, "--",
                          *(command or workload())], env=env)
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), base_url="http://pidone") as client:
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.get("/livez").status_code == 200:
                    return running
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or running.proc.poll() is not None:
                raise AssertionError(f"pidone never answered on {path}: {running.stderr}")
            time.sleep(0.02)


def health(path: Path) -> int:
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), base_url="http://pidone") as client:
        return client.get("/health").status_code


def stale_socket(path: Path) -> None:
    """A socket file nobody listens on, as a pidone killed with SIGKILL leaves it."""
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))


@pytest.mark.parametrize("options, env, mode", [
    ([], None, 0o600),
    (["--http-mode", "660"], None, 0o660),
    ([], {"PIDONE_HTTP_MODE": "0640"}, 0o640),
])
def test_the_socket_gets_its_mode_whatever_the_umask(start_init, tmp_path, options, env, mode):
    path = tmp_path / "pidone.sock"
    serving(start_init, path, *options, env=env)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_socket_left_by_a_killed_pidone_is_replaced(start_init, tmp_path):
    path = tmp_path / "pidone.sock"
    first = serving(start_init, path)
    first.proc.kill()  # SIGKILL: pidone has no chance to remove its socket
    first.wait()
    assert stat.S_ISSOCK(path.lstat().st_mode)  # left behind, stale
    second = serving(start_init, path)
    assert health(path) == 200
    second.proc.kill()
    assert "HTTP server not started" not in second.stderr


def test_the_socket_is_removed_when_pidone_leaves(start_init, tmp_path):
    path = tmp_path / "pidone.sock"
    running = serving(start_init, path, command=workload("exit-on=USR1"))
    running.send(signal.SIGUSR1)
    assert running.wait() == 0
    assert not os.path.lexists(path)


def test_a_socket_another_process_listens_on_is_left_alone(start_init, tmp_path):
    path = tmp_path / "pidone.sock"
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(str(path))
        other.listen(8)
        running = start_init([*PIDONE, "--http", f"unix:{path}", *workload("exit=4")])
        assert running.wait() == 4
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))  # still the other process's
    assert f"another process listens on {path}" in running.stderr


@pytest.mark.parametrize("kind", ["file", "directory", "symlink-to-stale-socket", "symlink-to-nowhere"])
def test_anything_but_a_stale_socket_is_never_replaced(start_init, tmp_path, kind):
    path = tmp_path / "pidone.sock"
    target = tmp_path / "elsewhere.sock"
    if kind == "file":
        path.write_text("precious")
    elif kind == "directory":
        path.mkdir()
    elif kind == "symlink-to-stale-socket":
        stale_socket(target)
        path.symlink_to(target)
    else:
        path.symlink_to(target)
    before = path.lstat()
    running = start_init([*PIDONE, "--http", f"unix:{path}", *workload("exit=5")])
    assert running.wait() == 5  # the child ran; the API did not
    lines = [line for line in running.stderr.splitlines() if "HTTP" in line]
    assert len(lines) == 1 and "HTTP server not started" in lines[0], running.stderr
    after = path.lstat()
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    if kind == "file":
        assert path.read_text() == "precious"
    if kind == "symlink-to-stale-socket":
        assert stat.S_ISSOCK(target.lstat().st_mode)
