"""compose.yaml for real: pidone and Prometheus up in a real engine (tests/engine.py), Prometheus
scraping pidone in its network namespace with the project's rules, and `down` ending the demo.

Grafana's image cannot be pulled here: its part of the stack stays checked statically
(tests/test_compose.py, tests/test_dashboard.py)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import yaml

from conftest import ROOT
from engine import DOCKER, Container, Engine

IMAGES = ROOT / "tests" / "images"
FILES = [ROOT / "compose.yaml", IMAGES / "compose.test.yaml"]
PROJECT = "pidone"
DEMO_TOKEN = "demo"
"""compose.yaml's PIDONE_TOKEN when the shell sets none."""

FETCH = """
import sys, urllib.error, urllib.request
method, url, token = sys.argv[1:]
headers = {"Authorization": "Bearer " + token} if token else {}
try:
    with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers),
                                timeout=10) as answer:
        print(answer.status, answer.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
"""
"""An HTTP request from inside the pidone container: its network namespace has loopback only."""


@dataclass
class Stack:
    engine: Engine
    env: dict[str, str]
    pidone: Container
    prometheus: Container

    def request(self, method: str, url: str, token: str = "") -> tuple[int, str]:
        done = self.pidone.exec("python", "-c", FETCH, method, url, token)
        status, _, body = done.stdout.partition(" ")
        return int(status), body

    def query(self, promql: str) -> list[dict]:
        status, body = self.request("GET", "http://localhost:9090/api/v1/query?"
                                    + urlencode({"query": promql}))
        assert status == 200, body
        return json.loads(body)["data"]["result"]

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def stack(engine: Engine, base_image: str, pidone_image: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_image = engine.build("local/prometheus:debian", context=IMAGES,
                                    dockerfile=IMAGES / "prometheus.Dockerfile",
                                    build_args={"BASE_IMAGE": base_image})
    engine.docker("tag", pidone_image, "pidone:demo")  # compose.yaml's image: built already
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config_file = tmp_path_factory.mktemp("compose") / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    config_file.chmod(0o644)
    env = {"PIDONE_TEST_PROMETHEUS_IMAGE": prometheus_image,
           "PIDONE_TEST_PROMETHEUS_CONFIG": str(config_file),
           "PIDONE_TOKEN": ""}  # so compose.yaml's default, the demo token, applies
    engine.compose("up", "--detach", "--no-build", "pidone", "prometheus", files=FILES,
                   project=PROJECT, env=env)

    def container(service: str) -> Container:
        found = engine.compose("ps", "--quiet", service, files=FILES, project=PROJECT, env=env)
        return Container(engine, found.stdout.strip())

    yield Stack(engine, env, container("pidone"), container("prometheus"))
    engine.compose("down", files=FILES, project=PROJECT, env=env)


def wait_for_value(stack: Stack, promql: str, accept, timeout: float = 30) -> float | None:
    """Query until accept(value) holds (Prometheus scrapes every second here)."""
    deadline = time.monotonic() + timeout
    while not accept(seen := stack.value(promql)):
        if time.monotonic() > deadline:
            raise AssertionError(f"{promql} is {seen} after {timeout}s\n{stack.prometheus.logs()}")
        time.sleep(0.5)
    return seen


def test_prometheus_scrapes_pidone_and_sees_it_reap(stack: Stack) -> None:
    wait_for_value(stack, 'up{job="pidone"}', lambda value: value == 1)
    first = wait_for_value(stack, "pidone_zombies_reaped_total", lambda value: value is not None)
    # The zombie factory leaves an orphan every second: the counter rises from scrape to scrape.
    wait_for_value(stack, "pidone_zombies_reaped_total", lambda value: value > first)


def test_the_alert_rules_load(stack: Stack) -> None:
    wanted = {rule["alert"] for group in yaml.safe_load((ROOT / "prometheus" / "alerts.yml")
                                                        .read_text())["groups"]
              for rule in group["rules"]}
    status, body = stack.request("GET", "http://localhost:9090/api/v1/rules")
    assert status == 200, body
    rules = [rule for group in json.loads(body)["data"]["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == wanted
    assert all(rule["health"] in ("ok", "unknown") for rule in rules), rules


def test_signal_needs_the_demo_token_and_reaches_the_workload(stack: Stack) -> None:
    url = "http://localhost:10101/signal/HUP"
    # A token is configured, so even a loopback client must present it.
    assert stack.request("POST", url)[0] == 401
    status, body = stack.request("POST", url, DEMO_TOKEN)
    assert status == 200, body
    assert json.loads(body)["signal"] == "SIGHUP"
    stack.pidone.wait_for_log("got SIGHUP")


def test_down_stops_everything_with_the_childs_status(stack: Stack) -> None:
    # Last in this module. docker wait reports each exit status before down removes the container.
    waits = {name: subprocess.Popen([DOCKER, "wait", container.id], env=stack.engine.env,
                                    stdout=subprocess.PIPE, text=True)
             for name, container in (("pidone", stack.pidone), ("prometheus", stack.prometheus))}
    stack.engine.compose("down", files=FILES, project=PROJECT, env=stack.env)
    # The zombie factory exits 0 on SIGTERM: pidone forwarded docker's SIGTERM, did not die of it.
    statuses = {name: wait.communicate(timeout=60)[0].strip() for name, wait in waits.items()}
    assert statuses == {"pidone": "0", "prometheus": "0"}
    left = stack.engine.docker("ps", "--all", "--quiet",
                               f"--filter=label=com.docker.compose.project={PROJECT}")
    assert left.stdout.strip() == ""
