"""The self-contained bundle for its column: bundle/build.py run into the run's scratch
directory, which is then also its home (the kernel finds its interpreter by absolute path)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
"""Debian's Python, as a Debian-based image's bundle stage bundles it (stripped, its own build:
not the interpreter of the other Python columns)."""


def build_bundle(home: Path) -> Path:
    """Build the bundle into `home`; raises RuntimeError with the build's last words."""
    done = subprocess.run([SYSTEM_PYTHON, str(ROOT / "bundle" / "build.py"), "--home", str(home),
                           str(home)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"cannot build the bundle: {done.stderr.strip()[-500:]}")
    return home
