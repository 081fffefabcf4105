"""pidone's image, built from the real Dockerfile and run in a real engine (tests/engine.py): PID 1
of a container as `docker run`, `docker kill`, `docker stop` and Kubernetes' settings treat it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import httpx
import pytest

from app import __version__
from app.config import DEFAULT_PORT
from conftest import forwarded, free_loopback_port, scrape_with, wait_until_answers
from engine import WORKLOAD_APP, Container, Engine, documented_dockerfile
from observe import wait_until

IMAGE_USER = "10101"

TRAPPER = """
import signal, sys
def report(signo, frame):
    print("got", signal.Signals(signo).name, flush=True)
    if signo == signal.SIGTERM:
        sys.exit(7)
for handled in (signal.SIGHUP, signal.SIGABRT, signal.SIGTERM):
    signal.signal(handled, report)
print("ready", flush=True)
while True:
    signal.pause()
"""
"""A child that reports the signals it gets on stdout and exits 7 on SIGTERM."""


@dataclass
class Served:
    """A container of the image on the host's network, pidone's HTTP side on a loopback port."""

    container: Container
    http: httpx.Client

    def sample(self, name: str, **labels: str) -> float | None:
        return scrape_with(self.http).get((name, tuple(sorted(labels.items()))))


def serve(engine: Engine, image: str, *command: str, options: Sequence[str] = ()) -> Served:
    """Start the image with pidone on 127.0.0.1:<free port>; returned once /livez answers."""
    address = f"127.0.0.1:{free_loopback_port()}"
    # PIDONE_HTTP, not --http: the image's HEALTHCHECK follows it.
    container = engine.start(image, *command,
                             options=["--network=host", f"--env=PIDONE_HTTP={address}", *options])
    served = Served(container, httpx.Client(base_url=f"http://{address}", timeout=10))
    wait_until_answers("pidone", container, served.http, "/livez", container.logs, timeout=30)
    return served


@pytest.fixture
def served(engine: Engine, pidone_image: str) -> Iterator:
    """served(*command, options=[...]) -> Served; each removed at the end of the test."""
    started: list[Served] = []

    def start(*command: str, options: Sequence[str] = ()) -> Served:
        started.append(serve(engine, pidone_image, *command, options=options))
        return started[-1]

    yield start
    for each in started:
        each.http.close()
        engine.docker("rm", "--force", each.container.id)


@pytest.fixture(scope="module")
def demo(engine: Engine, pidone_image: str) -> Iterator[Served]:
    """The image as `docker run pidone` runs it: the zombie factory under pidone."""
    running = serve(engine, pidone_image)
    yield running
    running.http.close()
    engine.docker("rm", "--force", running.container.id)


def test_pidone_is_pid_1_as_the_images_user(demo: Served) -> None:
    status = demo.container.exec("cat", "/proc/1/status").stdout
    assert re.search(r"^Name:\s+pidone$", status, re.M), status
    assert re.search(rf"^Uid:\s+{IMAGE_USER}\s+{IMAGE_USER}\s+{IMAGE_USER}\s+{IMAGE_USER}$",
                     status, re.M), status
    report = demo.http.get("/status").json()  # a loopback client needs no token
    assert report["pid1"] is True
    assert report["child"]["argv"][0] == "python"


def test_health_answers_200_over_loopback(demo: Served) -> None:
    answer = demo.http.get("/health")
    assert answer.status_code == 200 and answer.json()["status"] == "ok", answer.text


def test_the_image_runs_pidone_as_its_entrypoint_as_a_user_with_a_healthcheck(
        engine: Engine, pidone_image: str) -> None:
    config = json.loads(engine.docker("inspect", "--format={{json .Config}}", pidone_image).stdout)
    assert config["Entrypoint"] == ["pidone", "--"]
    assert config["User"] == f"{IMAGE_USER}:{IMAGE_USER}"
    assert set(config["ExposedPorts"]) == {f"{DEFAULT_PORT}/tcp"}
    assert config["Healthcheck"]["Test"][:3] == ["CMD", "pidone", "health"]


def test_the_workloads_python_does_not_see_pidones_packages(engine: Engine,
                                                             pidone_image: str) -> None:
    script = ('echo "$PATH"; readlink -f "$(command -v pidone)"; '
              'for package in app starlette uvicorn prometheus_client; do '
              'python -c "import $package" 2>/dev/null && echo "sees $package"; done; true')
    done = engine.run(pidone_image, "sh", "-c", script)
    path, pidone, *seen = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr
    assert "/opt/pidone/bin" not in path.split(":")
    assert pidone == "/opt/pidone/bin/pidone"
    assert seen == []


def test_docker_kill_reaches_the_child_and_docker_stop_gets_its_own_status(served) -> None:
    trapper = served("python", "-c", TRAPPER)
    trapper.container.wait_for_log("ready")
    trapper.container.kill("HUP")
    trapper.container.wait_for_log("got SIGHUP")
    assert forwarded(scrape_with(trapper.http), "SIGHUP", "os") == 1
    # tini drops a SIGABRT sent with kill; pidone forwards it, as dumb-init does.
    trapper.container.kill("ABRT")
    trapper.container.wait_for_log("got SIGABRT")
    assert forwarded(scrape_with(trapper.http), "SIGABRT", "os") == 1
    assert trapper.container.stop() == 7
    assert "got SIGTERM" in trapper.container.logs()


def test_docker_stop_exits_143_when_the_child_keeps_sigterms_default(served) -> None:
    sleeper = served("sleep", "300")
    # Not 137: pidone forwarded the SIGTERM, docker did not have to SIGKILL after 10 s.
    assert sleeper.container.stop(timeout=10) == 143


def test_a_restart_over_http_keeps_the_container_and_its_other_processes(served) -> None:
    app = served("sh", "-c", 'echo "generation $$"; exec sleep 300')
    app.container.wait_for_log("generation")
    started_at = app.container.inspect("{{.State.StartedAt}}")
    # Another process of the container, outside the child's group, as `docker exec` starts one.
    app.container.engine.docker("exec", "--detach", app.container.id, "sh", "-c",
                                "echo $$ > /tmp/other; exec sleep 301")
    wait_until(lambda: app.container.exec("cat", "/tmp/other", check=False).returncode == 0, 30,
               "the other process to start")
    other = app.container.exec("cat", "/tmp/other").stdout.strip()

    first = app.http.post("/restart")
    assert first.status_code == 200, first.text
    wait_until(lambda: app.container.logs().count("generation") == 2, 30, "the second generation")
    # From inside, as `kubectl exec POD -- pidone restart` does: nothing else installed.
    second = app.container.exec("pidone", "restart", check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.startswith(f"pidone restart: restarted: child {first.json()['pid']} ended")
    wait_until(lambda: app.container.logs().count("generation") == 3, 30, "the third generation")

    assert app.container.inspect("{{.Id}} {{.State.Running}} {{.RestartCount}}") == \
        f"{app.container.id} true 0"
    assert app.container.inspect("{{.State.StartedAt}}") == started_at
    assert app.container.exec("cat", f"/proc/{other}/cmdline").stdout == "sleep\x00301\x00"
    assert app.sample("pidone_child_restarts_total", reason="api") == 2
    assert app.http.get("/health").json()["status"] == "ok"
    assert app.container.stop() == 143


def test_docker_run_exits_with_the_commands_status(engine: Engine, pidone_image: str) -> None:
    assert engine.run(pidone_image, "sh", "-c", "exit 3").returncode == 3


def test_the_images_pythonpath_and_app_package_are_the_workloads(engine: Engine,
                                                                  pidone_image: str) -> None:
    image = engine.build("pidone-workload-app", context=None, network="none", dockerfile=(
        f"FROM {pidone_image}\nUSER root\n{WORKLOAD_APP}USER {IMAGE_USER}:{IMAGE_USER}\n"))
    done = engine.run(image, "python", "-c", "import app, os; print(app.WHO, "
                      "os.environ['PYTHONPATH']); raise SystemExit(5)")
    assert (done.returncode, done.stdout, done.stderr) == (5, "the workload /srv\n", "")
    running = serve(engine, image, "sleep", "300")
    try:
        # The HEALTHCHECK's command, run with the image's ENV as Docker runs it.
        assert running.container.exec("pidone", "health").stdout.startswith("pidone health: ok")
        assert running.container.stop() == 143
        assert running.container.logs() == ""
    finally:
        running.http.close()
        engine.docker("rm", "--force", running.container.id)


def test_orphans_made_in_the_container_are_reaped_and_counted_exactly(served) -> None:
    # Each inner sh leaves a sleep behind and exits: five orphans for PID 1, and no more.
    orphans = served("sh", "-c", 'for i in 1 2 3 4 5; do sh -c "sleep 0.2 &"; done; exec sleep 300')
    # Wait until only pidone and the child's sleep are left, then read the counter.
    wait_until(lambda: sum(value for (name, _), value in scrape_with(orphans.http).items()
                           if name == "pidone_processes") == 2, 30, "the orphans to go")
    assert orphans.sample("pidone_zombies_reaped_total") == 5


def test_as_a_kubernetes_pod_runs_it(served) -> None:
    # deploy/kubernetes: read-only root, an arbitrary UID in group 0 (OpenShift), limits.
    pod = served("sleep", "300", options=["--read-only", "--user=123456:0", "--pids-limit=64",
                                          "--memory=64m"])
    assert pod.http.get("/health").status_code == 200
    assert pod.sample("pidone_pids_limit") == 64
    assert 2 <= pod.sample("pidone_pids_current") < 64
    status = pod.container.exec("cat", "/proc/1/status").stdout
    assert re.search(r"^Uid:\s+123456\s", status, re.M), status
    assert pod.container.stop() == 143


def test_with_a_tty_the_child_leads_the_terminals_foreground_group(engine: Engine,
                                                                   pidone_image: str) -> None:
    script = ('read -r pid comm state ppid pgrp session tty tpgid rest < /proc/self/stat; '
              'echo "pid=$pid pgrp=$pgrp tpgid=$tpgid"; exit 4')
    done = engine.run(pidone_image, "sh", "-c", script, options=["--tty"])
    assert done.returncode == 4, done.stdout + done.stderr
    found = re.search(r"pid=(\d+) pgrp=(\d+) tpgid=(\d+)", done.stdout)
    assert found, done.stdout
    pid, pgrp, tpgid = found.groups()
    assert pid == pgrp == tpgid, done.stdout


def test_the_readme_wheelhouse_recipe_installs_offline_into_another_image(
        engine: Engine, base_image: str, pidone_image: str) -> None:
    wheelhouse = engine.build("pidone-build", target="build", build_args={"PYTHON_IMAGE": base_image})
    wheels = engine.run(wheelhouse, "ls", "/wheels").stdout.split()
    assert any(wheel.startswith("pidone-") for wheel in wheels), wheels
    # Pure Python throughout, so the wheelhouse serves any image's Python, musl or glibc.
    assert all(wheel.endswith("-none-any.whl") for wheel in wheels), wheels
    recipe = documented_dockerfile("README.md", "### A Python image")
    assert f"--from={wheelhouse} " in recipe
    # No network: the wheelhouse is all it installs from.
    image = engine.build("recipe-wheelhouse", context=None, network="none",
                         dockerfile=f"FROM {base_image}\n{recipe}")
    assert engine.run(image, "sh", "-c", "exit 5").returncode == 5
    version = engine.run(image, "pidone", "--version", options=["--entrypoint="])
    assert version.stdout.strip() == f"pidone {__version__}", version.stdout + version.stderr


def test_the_venv_copy_recipe_works_on_the_same_base(engine: Engine, base_image: str,
                                                     pidone_image: str) -> None:
    recipe = documented_dockerfile("docs/images.md", "**A Python image of the same base**")
    assert f"--from={pidone_image} " in recipe
    image = engine.build("recipe-venv", context=None, network="none",
                         dockerfile=f"FROM {base_image}\n{recipe}")
    assert engine.run(image, "sh", "-c", "exit 6").returncode == 6


def test_docker_reports_the_healthcheck_healthy(demo: Served) -> None:
    # Last in this module: Docker runs the first check one interval (10 s) after the start.
    wait_until(lambda: demo.container.inspect("{{.State.Health.Status}}") == "healthy", 60,
               "the HEALTHCHECK to pass")

