"""compose.yaml: valid by the compose specification, its mounts exist, its ports and names agree."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

from app.config import DEFAULT_PORT
from checkers import run_checker
from conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
PIDONE = "pidone"
PROMETHEUS_PORT = 9090


def test_valid_by_the_compose_specification() -> None:
    result = run_checker("check-jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_mounted_file_exists() -> None:
    for name, service in SERVICES.items():
        for source, _ in bind_mounts(service):
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_pidone_is_the_init_and_publishes_its_default_port() -> None:
    service = SERVICES[PIDONE]
    assert service.get("init") is False, "Docker's init would stand in front of pidone as PID 1"
    published = {container_port(spec) for spec in service["ports"]}
    # The other published port belongs to Prometheus, which lives in this network namespace.
    assert published == {DEFAULT_PORT, PROMETHEUS_PORT}
    assert f"--web.listen-address=:{PROMETHEUS_PORT}" in SERVICES["prometheus"]["command"]


@pytest.mark.parametrize("address", [None, "0.0.0.0"], ids=["default", "opened-up"])
def test_ports_are_published_on_loopback_unless_opened_up(address: str | None) -> None:
    # Docker Compose's own reading of the file, with and without PUBLISH_ADDRESS.
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed (Debian's; make test installs it as root)")
    env = {k: v for k, v in os.environ.items() if k != "PUBLISH_ADDRESS"}
    if address:
        env["PUBLISH_ADDRESS"] = address
    done = subprocess.run(["docker-compose", "--file=compose.yaml", "config"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    published = [spec for service in yaml.safe_load(done.stdout)["services"].values()
                 for spec in service.get("ports", [])]
    assert len(published) == 3
    for spec in published:
        assert spec.split(":")[0] == (address or "127.0.0.1"), spec


def test_prometheus_scrapes_pidone_on_its_default_port() -> None:
    config = yaml.safe_load(mounted_file("prometheus", "/etc/prometheus/prometheus.yml").read_text())
    targets = [target for job in config["scrape_configs"]
               for static in job.get("static_configs", []) for target in static["targets"]]
    assert targets
    for target in targets:
        host, _, port = target.rpartition(":")
        assert int(port) == DEFAULT_PORT, target
        assert reaches_pidone(host), f"{target}: not pidone's address from the prometheus service"
    for rule_file in config.get("rule_files", []):
        mounted_file("prometheus", str(PurePosixPath("/etc/prometheus") / rule_file))


def test_grafana_finds_prometheus_and_the_dashboard() -> None:
    provisioning = mounted_file("grafana", "/etc/grafana/provisioning")
    for source in yaml_files(provisioning / "datasources"):
        for datasource in yaml.safe_load(source.read_text()).get("datasources", []):
            if datasource.get("type") == "prometheus":
                url = urlsplit(datasource["url"])
                assert url.port == PROMETHEUS_PORT, datasource["url"]
                assert url.hostname in names_of_prometheus(), datasource["url"]
    providers = [provider for source in yaml_files(provisioning / "dashboards")
                 for provider in yaml.safe_load(source.read_text()).get("providers", [])]
    assert providers, "no dashboard provider in grafana/provisioning/dashboards"
    for provider in providers:
        assert list(mounted_file("grafana", provider["options"]["path"]).glob("*.json"))
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert mounted_file("grafana", home).is_file()


def bind_mounts(service: dict) -> list[tuple[str, str]]:
    """(host path, container path) of each bind mount given in short syntax."""
    mounts = []
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def mounted_file(service: str, container_path: str) -> Path:
    """The repository file a service sees at `container_path`, through its bind mounts."""
    wanted = PurePosixPath(container_path)
    for source, target in bind_mounts(SERVICES[service]):
        if wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents:
            found = ROOT / source / wanted.relative_to(target)
            assert found.exists(), f"{service} sees no {container_path}: {found} is missing"
            return found
    raise AssertionError(f"{service} mounts nothing at {container_path}")


def container_port(spec: str | int) -> int:
    return int(str(spec).split(":")[-1].split("/")[0])


def reaches_pidone(host: str) -> bool:
    if host in ("localhost", "127.0.0.1", "[::1]"):
        return SERVICES["prometheus"].get("network_mode") == f"service:{PIDONE}"
    return host == PIDONE


def names_of_prometheus() -> set[str]:
    """Prometheus shares pidone's network namespace, so it answers to that service's name."""
    assert SERVICES["prometheus"].get("network_mode") == f"service:{PIDONE}"
    return {PIDONE}


def yaml_files(folder: Path) -> list[Path]:
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
