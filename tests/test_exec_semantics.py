"""The command is run as glibc's execvp runs it, as tini, dumb-init and catatonit do: a file
without #! that the kernel refuses (ENOEXEC) runs with /bin/sh; the PATH search goes on past a
file it may not execute; an empty name is no file (127). dumb-init exits 2 whenever exec fails,
its own convention; pidone's statuses are the shell's, as tini's."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import ROOT, init_command

NO_SHEBANG = 'echo "ran $0 $1"\nexit 7\n'


@dataclass(frozen=True)
class Case:
    command: str
    """The command word; {dir} is the test's directory."""
    status: int
    """pidone's and tini's status."""
    output: str = ""
    """The child's stdout; {dir} likewise."""
    dumb_init_status: int | None = None
    """Where dumb-init differs: 2 for any exec failure."""


CASES = {
    "a-script-without-shebang-by-path": Case("{dir}/first/script", 7, "ran {dir}/first/script arg\n"),
    "a-script-without-shebang-on-PATH": Case("script", 7, "ran {dir}/first/script arg\n"),
    "past-one-it-may-not-execute": Case("denied", 7, "ran {dir}/second/denied arg\n"),
    "an-empty-name": Case("", 127, dumb_init_status=2),
    "a-name-found-nowhere": Case("nowhere", 127, dumb_init_status=2),
    "a-file-it-may-not-execute": Case("{dir}/second/plain", 126, dumb_init_status=2),
    "a-directory": Case("{dir}/first", 126, dumb_init_status=2),
}


def make_files(directory: Path) -> None:
    """first/ and second/ on PATH: a script without #! in each, and `denied` not executable in
    first/ but executable in second/."""
    for folder in ("first", "second"):
        (directory / folder).mkdir()
    for path, mode in (("first/script", 0o755), ("first/denied", 0o644),
                       ("second/denied", 0o755), ("second/plain", 0o644)):
        (directory / path).write_text(NO_SHEBANG)
        (directory / path).chmod(mode)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("init", ["pidone", "tini", "dumb-init"])
def test_the_command_runs_as_execvp_runs_it(init: str, case: Case, tmp_path: Path) -> None:
    make_files(tmp_path)
    path = os.pathsep.join([str(tmp_path / "first"), str(tmp_path / "second"), os.defpath])
    done = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", *init_command(init),
         case.command.format(dir=tmp_path), "arg"],
        env={**os.environ, "PATH": path, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=30,
        cwd=tmp_path)
    expected = case.dumb_init_status if init == "dumb-init" and case.dumb_init_status else case.status
    assert (done.returncode, done.stdout) == (expected, case.output.format(dir=tmp_path)), done.stderr
    if init == "pidone":
        assert done.stderr.count("\n") == (0 if case.output else 1), done.stderr
