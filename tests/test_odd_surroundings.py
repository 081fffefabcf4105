"""Odd but real surroundings: output nobody can take, no process or file descriptor left, stdio
closed, no environment, a working directory that is gone, a read-only root. Each ends in one
line on stderr and the documented status, or in nothing at all: never a traceback, never
asyncio's "Exception ignored" or "never awaited", never a line on stdout, which is the child's."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cgroups import in_cgroup
from conftest import INSTALLED

FULL = "/dev/full"


def run(argv: list[str], **popen: object) -> subprocess.CompletedProcess:
    """argv's run; stdout and stderr captured unless `popen` says where they go."""
    popen = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    return subprocess.run(argv, text=True, timeout=30, **popen)


def closed(fd: int) -> list[str]:
    """A prefix that runs the argv after it with descriptor `fd` closed."""
    return ["sh", "-c", f'exec "$@" {fd}>&-', "sh"]


def assert_one_line(stderr: str, *words: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pidone"), stderr
    for word in words:
        assert word in lines[0], stderr


@pytest.mark.parametrize("flag", ["--help", "--version"])
@pytest.mark.parametrize("stdout", ["full", "a-pipe-nobody-reads", "closed"])
def test_text_nobody_can_take_is_one_line_and_status_2(flag: str, stdout: str) -> None:
    if stdout == "full":
        with open(FULL, "w") as full:
            done = run([*INSTALLED, flag], stdout=full)
    elif stdout == "a-pipe-nobody-reads":
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            done = run([*INSTALLED, flag], stdout=write_end)
        finally:
            os.close(write_end)
    else:
        done = run([*closed(1), *INSTALLED, flag])
    assert done.returncode == 2
    assert_one_line(done.stderr, "cannot write to standard output")


@pytest.mark.parametrize("stderr", ["full", "closed"])
def test_a_usage_error_that_cannot_be_said_still_exits_2(stderr: str) -> None:
    if stderr == "full":
        with open(FULL, "w") as full:
            done = run([*INSTALLED, "--bogus"], stderr=full)
    else:
        done = run([*closed(2), *INSTALLED, "--bogus"])
    assert done.returncode == 2
    assert done.stdout == "", "the error went to stdout, the child's"


def test_an_unhealthy_probe_with_stderr_closed_puts_nothing_on_stdout() -> None:
    done = run([*closed(2), *INSTALLED, "health", "--url", "http://127.0.0.1:1/"])
    assert (done.returncode, done.stdout) == (1, "")


@pytest.mark.parametrize("http", [["--http", "off"], ["--http", "127.0.0.1:10101"]], ids=["off", "on"])
def test_no_process_left_to_fork_is_one_line_and_status_126(pids_cgroup, http) -> None:
    cgroup = pids_cgroup(2)  # unshare and pidone: nothing more
    if cgroup is None:
        pytest.skip("no pids controller to make a cgroup with")
    done = run([*in_cgroup(cgroup), "unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
                *INSTALLED, *http, "--", "sh", "-c", "exit 5"])
    assert done.returncode == 126, done.stderr
    assert_one_line(done.stderr, "cannot run 'sh'", "fork")


@pytest.mark.parametrize("files", [5, 6])
def test_too_few_file_descriptors_for_http_is_one_line_and_the_child_runs(start_pidone,
                                                                           files: int) -> None:
    running = start_pidone(["sleep", "600"], within=["prlimit", f"--nofile={files}", "--"],
                           pidone=INSTALLED, wait=False)
    line = read_line(running.proc.stderr)
    assert "HTTP server not started: the open files limit is" in line, line
    running.send(signal.SIGTERM)
    assert running.wait() == 128 + signal.SIGTERM
    assert running.stderr == "", "more than the one line"


def read_line(stream, timeout: float = 20.0) -> str:
    """One line from a pipe, or a failed test after `timeout`."""
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        assert remaining > 0 and select.select([stream], [], [], remaining)[0], f"no line: {line!r}"
        byte = os.read(stream.fileno(), 1)
        assert byte, f"stream ended: {line!r}"
        line += byte
    return line.decode()


GONE_DIRECTORY = ["sh", "-c", 'mkdir -p "$0" && cd "$0" && rmdir "$0" && exec "$@"']
READ_ONLY = ["unshare", "--mount", "sh", "-c",
             'mount --make-rprivate / && for m in / /tmp /work; do '
             'mountpoint -q "$m" && mount -o remount,bind,ro "$m"; done; '
             'touch /tmp/writable 2>/dev/null && exit 99; exec "$@"', "sh"]


@pytest.mark.parametrize("within", [
    pytest.param(["sh", "-c", 'exec "$@" <&- >&- 2>&-', "sh"], id="stdio-closed"),
    pytest.param(["env", "-i", "PATH=/usr/bin:/bin"], id="no-environment-no-HOME"),
    pytest.param(GONE_DIRECTORY, id="working-directory-removed"),
    pytest.param(READ_ONLY, id="read-only-root-no-writable-tmp"),
])
def test_odd_surroundings_change_nothing(start_pidone, tmp_path: Path, within: list[str]) -> None:
    if within is GONE_DIRECTORY:
        within = [*within, str(tmp_path / "gone")]
    running = start_pidone(["sleep", "600"], within=within, pidone=INSTALLED)
    assert running.http.get("/health").status_code == 200
    assert running.http.post("/signal/TERM").status_code == 200
    assert running.wait() == 128 + signal.SIGTERM, running.stderr
    assert running.stderr == ""
