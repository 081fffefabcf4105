"""deploy/kubernetes/: valid for Kubernetes (strict, offline), and in agreement with pidone's defaults."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
import yaml

from app.cli import parse_config
from app.config import DEFAULT_PORT, Config
from checkers import run_checker
from conftest import ROOT

MANIFESTS = sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
DOCUMENTS = [doc for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc]
DEPLOYMENTS = [doc for doc in DOCUMENTS if doc["kind"] == "Deployment"]
POD_MONITORS = [doc for doc in DOCUMENTS if doc["kind"] == "PodMonitor"]
TOKEN_FLAG = "--token-file="


@pytest.mark.parametrize("version", [[], ["--kubernetes-version", "1.30.0"]],
                         ids=["newest", "1.30"])
def test_valid_by_the_kubernetes_schemas_in_strict_mode(version: list[str]) -> None:
    result = run_checker("kubernetes-validate", "--strict", *version,
                         *[str(path.relative_to(ROOT)) for path in MANIFESTS])
    assert result.returncode == 0, result.stdout + result.stderr
    # kubernetes-validate ships the built-in kinds only: the PodMonitor (a prometheus-operator
    # CRD) is passed over with a warning, and its fields are checked below instead.
    for line in result.stdout.splitlines():
        assert " passed " in line or "kind PodMonitor" in line, line


@pytest.fixture(params=DEPLOYMENTS, ids=lambda doc: doc["metadata"]["name"])
def deployment(request: pytest.FixtureRequest) -> dict:
    return request.param


def pidone_container(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    (found,) = [c for c in containers if c.get("command", [None])[0] == "pidone"]
    return found


def pidone_config(container: dict) -> Config:
    """pidone's own parser reads the container's flags: they must be ones pidone accepts."""
    flags = [arg for arg in container["command"][1:] if not arg.startswith(TOKEN_FLAG)]
    return parse_config([*flags, *container["args"]], {})


def test_probes_ask_pidone_on_its_default_port(deployment: dict) -> None:
    container = pidone_container(deployment)
    assert {"name": "pidone", "containerPort": DEFAULT_PORT, "protocol": "TCP"} in container["ports"]
    for probe, path in (("startupProbe", "/livez"), ("livenessProbe", "/health"),
                        ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": DEFAULT_PORT}


def test_scrape_annotations_name_the_default_port(deployment: dict) -> None:
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(DEFAULT_PORT)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_signal_token_is_a_file_from_a_secret(deployment: dict) -> None:
    pod = deployment["spec"]["template"]["spec"]
    container = pidone_container(deployment)
    (token_path,) = [arg.removeprefix(TOKEN_FLAG) for arg in container["command"]
                     if arg.startswith(TOKEN_FLAG)]
    secrets = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
    mounts = [m for m in container["volumeMounts"] if m["name"] in secrets]
    assert any(PurePosixPath(token_path).parent == PurePosixPath(m["mountPath"]) for m in mounts)
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"], \
        "pidone runs as non-root: it reads the 0440 token file through the volume's group"


def test_the_grace_period_outlasts_pidones_way_out(deployment: dict) -> None:
    config = pidone_config(pidone_container(deployment))
    way_out = config.term_delay + (config.stop_timeout or 0) + config.grace
    assert config.stop_timeout is not None, "without --stop-timeout the way out has no bound"
    assert way_out < deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]


def test_subreaper_exactly_when_the_pod_shares_its_pid_namespace(deployment: dict) -> None:
    shared = deployment["spec"]["template"]["spec"].get("shareProcessNamespace", False)
    assert pidone_config(pidone_container(deployment)).subreaper == shared


def test_every_container_has_requests_and_limits(deployment: dict) -> None:
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, container["name"]


def test_the_pod_monitor_scrapes_the_demo_pods_on_the_named_port() -> None:
    (monitor,) = POD_MONITORS
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (target,) = [d for d in DEPLOYMENTS
                 if d["spec"]["template"]["metadata"]["labels"].items()
                 >= monitor["spec"]["selector"]["matchLabels"].items()]
    ports = {p["name"]: p["containerPort"] for p in pidone_container(target)["ports"]}
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        assert ports[endpoint["port"]] == DEFAULT_PORT
        assert endpoint["path"] == "/metrics"
