"""The command-line checkers of the shipping files, as installed by pidone's test extra."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT


def run_checker(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run hadolint, check-jsonschema or kubernetes-validate in the repository's root."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run make venv (pidone's test extra brings it)")
    return subprocess.run([found, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
