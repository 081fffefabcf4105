"""A namespace's init loses every signal it neither blocks nor handles: the kernel drops it. So
blocking every signal pidone waits for is the first thing its code does, before it imports
anything of its own; what is left of the window is the interpreter's start (bench/cases/
early_term.py measures it). strace shows the order of the system calls."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import INSTALLED, ROOT

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")


def test_signals_are_blocked_before_pidone_imports_any_of_its_modules(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    done = subprocess.run(["strace", "-f", "-qq", "-e", "trace=rt_sigprocmask,openat",
                           "-o", str(trace), "unshare", "--pid", "--fork", "--mount-proc",
                           *INSTALLED, "--http", "off", "--", "true"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = trace.read_text().splitlines()
    package = f'"{ROOT / "app"}/'
    first_import = next(index for index, line in enumerate(lines) if package in line)
    pidone = lines[first_import].split()[0]
    blocked = [index for index, line in enumerate(lines)
               if line.split()[0] == pidone and re.search(r"rt_sigprocmask\(SIG_BLOCK, ~\[", line)]
    assert blocked and blocked[0] < first_import, "\n".join(
        line for line in lines if line.split()[0] == pidone and ("app/" in line or "sigproc" in line))
