"""promtool accepts the scrape config and the alert rules, and the rules' unit tests pass."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT

PROMETHEUS = ROOT / "prometheus"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package prometheus; make test installs it)")
    return path


@pytest.mark.parametrize("check", [
    ["check", "config", "prometheus.yml"],
    ["check", "rules", "alerts.yml"],
    ["test", "rules", "tests/alerts_test.yml"],
], ids=" ".join)
def test_promtool_accepts(promtool: str, check: list[str]) -> None:
    done = subprocess.run([promtool, *check], cwd=PROMETHEUS, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    cases = yaml.safe_load((PROMETHEUS / "tests" / "alerts_test.yml").read_text())
    fires, quiet = set(), set()
    for test in cases["tests"]:
        for case in test.get("alert_rule_test", []):
            (fires if case["exp_alerts"] else quiet).add(case["alertname"])
    assert alerts - fires == set(), "alerts never shown to fire"
    assert alerts - quiet == set(), "alerts never shown to stay quiet"
