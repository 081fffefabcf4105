"""The C child side of the benchmarks, compiled at run time (no binary is committed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("probe.c")


def compile_probe(directory: Path, static: bool = False) -> Path:
    """Build probe.c into `directory`; raises RuntimeError with the compiler's words.
    `static`: a binary that runs in any root file system, whatever its C library."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc or gcc) to build the benchmark probe")
    binary = directory / "probe"
    flags = ["-static"] if static else []
    built = subprocess.run([compiler, "-O2", "-Wall", *flags, "-o", str(binary), str(SOURCE)],
                           capture_output=True, text=True)
    if built.returncode != 0:
        raise RuntimeError(f"cannot compile {SOURCE.name}: {built.stderr.strip()}")
    return binary
