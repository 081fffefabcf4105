"""The C child side of the benchmarks, compiled at run time (no binary is committed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("probe.c")


def compile_probe(directory: Path) -> Path:
    """Build probe.c into `directory`; raises RuntimeError with the compiler's words."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc or gcc) to build the benchmark probe")
    binary = directory / "probe"
    built = subprocess.run([compiler, "-O2", "-Wall", "-o", str(binary), str(SOURCE)],
                           capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"cannot compile {SOURCE.name}: {built.stderr.strip()}")
    return binary
