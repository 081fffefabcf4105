"""The Dockerfile, checked without a container engine: hadolint, and what it promises about pidone."""

from __future__ import annotations

from app.config import DEFAULT_PORT
from checkers import run_checker
from conftest import ROOT
from dockerfile_stages import copy_sources, exec_form, ignored_by_dockerignore, read_stages

VENV = "/opt/pidone"


def test_hadolint_finds_nothing() -> None:
    # hadolint reads .hadolint.yaml from the working directory, where any ignore has its reason.
    result = run_checker("hadolint", "Dockerfile")
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_is_multi_stage_and_the_final_stage_only_copies_the_venv() -> None:
    build, final = read_stages()
    assert build.name == "build" and final.base == build.base
    assert f"--from=build {VENV} {VENV}" in final.all("COPY")
    assert not any("pip" in run for run in final.all("RUN")), "no installing in the final stage"


def test_pidone_runs_from_its_own_venv_and_only_its_script_is_on_path() -> None:
    build, final = read_stages()
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
