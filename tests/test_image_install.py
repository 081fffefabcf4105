"""The image's install steps, run here as the Dockerfile's build stage runs them, without Docker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app import __version__
from conftest import ROOT
from dockerfile_stages import copy_into, copy_sources, read_stages


def test_the_build_stage_installs_a_working_pidone_into_a_fresh_venv(tmp_path: Path) -> None:
    build = read_stages()[0]
    src = tmp_path / "src"
    src.mkdir()
    for args in build.all("COPY"):
        sources, destination = copy_sources(args)
        for source in sources:
            copy_into(ROOT / source, src / destination, source)

    venv, wheels = tmp_path / "opt-pidone", tmp_path / "wheels"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python"  # the image's `python`, played by this interpreter
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    for run in build.all("RUN"):
        command = run.replace("/opt/pidone", str(venv)).replace("/wheels", str(wheels))
        done = subprocess.run(["sh", "-c", command], cwd=src, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"RUN {run}\n{done.stdout}\n{done.stderr}"

    assert len(list(wheels.glob("pidone-*.whl"))) == 1
    # Pure Python throughout, so the wheelhouse serves any image's Python, musl or glibc.
    assert all(wheel.name.endswith("-none-any.whl") for wheel in wheels.iterdir())
    pidone = venv / "bin" / "pidone"
    # Run from elsewhere, so that nothing but the venv can provide the `app` package.
    version = subprocess.run([str(pidone), "--version"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and version.stdout.strip() == f"pidone {__version__}"
    run_true = subprocess.run([str(pidone), "--", "true"], cwd=tmp_path,
                              env={**env, "PIDONE_HTTP": "off"}, capture_output=True, text=True,
                              timeout=30)
    assert run_true.returncode == 0, run_true.stderr
    imports = subprocess.run([str(venv / "bin" / "python"), "-c",
                              "import starlette, uvicorn, prometheus_client"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert imports.returncode == 0, imports.stderr
