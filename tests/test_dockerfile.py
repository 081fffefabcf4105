"""The Dockerfile, checked without a container engine: hadolint, and what it promises about pidone."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from app.config import DEFAULT_PORT
from checkers import run_checker
from conftest import PIDONE, ROOT, free_loopback_port
from dockerfile_stages import copy_sources, exec_form, ignored_by_dockerignore, read_stages

VENV = "/opt/pidone"


def test_hadolint_finds_nothing() -> None:
    # hadolint reads .hadolint.yaml from the working directory, where any ignore has its reason.
    result = run_checker("hadolint", "Dockerfile")
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_is_multi_stage_and_the_final_stage_only_copies_the_venv() -> None:
    stages = read_stages()
    build, final = stages[0], stages[-1]
    assert build.name == "build" and final.base == build.base
    assert f"--from=build {VENV} {VENV}" in final.all("COPY")
    assert not any("pip" in run for run in final.all("RUN")), "no installing in the final stage"


def test_pidone_runs_from_its_own_venv_and_only_its_script_is_on_path() -> None:
    stages = read_stages()
    build, final = stages[0], stages[-1]
    assert any(f"venv --without-pip {VENV}" in run for run in build.all("RUN"))
    assert any(f"ln -s {VENV}/bin/pidone /usr/local/bin/pidone" in run for run in final.all("RUN"))
    # The venv's bin holds a `python` that sees pidone's packages: the workload must not get it.
    assert not any(f"{VENV}/bin" in env for env in final.all("ENV"))


def test_entrypoint_healthcheck_port_and_user_follow_pidone_defaults() -> None:
    final = read_stages()[-1]
    assert exec_form(final.last("ENTRYPOINT")) == ["pidone", "--"]
    assert exec_form(final.last("CMD"))
    assert final.last("EXPOSE").split() == [str(DEFAULT_PORT)]
    healthcheck = final.last("HEALTHCHECK")
    assert exec_form(healthcheck.split(" CMD ", 1)[1])[:2] == ["pidone", "health"]
    assert final.last("USER").split(":")[0] not in ("root", "0")


def test_every_copied_file_is_in_the_build_context() -> None:
    for stage in read_stages():
        for args in stage.all("COPY"):
            if "--from=" in args:
                continue
            sources, _ = copy_sources(args)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert not ignored_by_dockerignore(source.rstrip("/")), f"{source} is .dockerignored"


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK's argv, with `pidone` played by this checkout's pidone."""
    argv = exec_form(read_stages()[-1].last("HEALTHCHECK").split(" CMD ", 1)[1])
    assert argv[0] == "pidone"
    return [*PIDONE, *argv[1:]]


def test_healthcheck_passes_for_a_running_pidone_and_fails_without_one(start_init) -> None:
    # Docker runs the HEALTHCHECK with the container's environment: PIDONE_HTTP reaches both.
    env = {"PIDONE_HTTP": f"127.0.0.1:{free_loopback_port()}"}

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(healthcheck_command(), env={**os.environ, **env}, cwd=ROOT,
                              capture_output=True, text=True, timeout=30)

    assert check().returncode == 1, "healthy with no pidone running"
    running = start_init([*PIDONE, "--", "sleep", "60"], env=env)
    deadline = time.monotonic() + 20  # Docker's start period, generously
    while (result := check()).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert result.returncode == 0, result.stdout + result.stderr
    running.send(signal.SIGTERM)
    assert running.wait() == 128 + signal.SIGTERM
