"""The Grafana dashboard is well formed and is what grafana/build_dashboard.py builds."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

sys.path.insert(0, str(ROOT / "grafana"))
import build_dashboard  # noqa: E402
import dashboard_queries  # noqa: E402

DASHBOARD = dashboard_queries.load()
PANELS = list(dashboard_queries.panels(DASHBOARD))
DEFINED = {variable["name"] for variable in DASHBOARD["templating"]["list"]}


def test_committed_json_is_what_the_builder_builds() -> None:
    assert dashboard_queries.DASHBOARD.read_text() == build_dashboard.render(), (
        "grafana/dashboards/pidone.json is stale: run python grafana/build_dashboard.py")


def test_panel_ids_are_unique() -> None:
    ids = [panel["id"] for panel in PANELS]
    assert len(ids) == len(set(ids)), ids


def test_panels_do_not_overlap_and_fit_the_grid() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in PANELS:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize("panel", PANELS, ids=lambda panel: panel["title"])
def test_every_target_has_a_prometheus_datasource(panel: dict) -> None:
    assert panel["targets"], "a panel without a query"
    for target in panel["targets"]:
        source = target.get("datasource") or panel.get("datasource")
        assert source and source["type"] == "prometheus", target
        assert dashboard_queries.variables_used(source["uid"]) <= DEFINED, source
    ref_ids = [target["refId"] for target in panel["targets"]]
    assert len(ref_ids) == len(set(ref_ids)), ref_ids


def test_every_variable_used_is_defined() -> None:
    texts = [query.expr + " " + query.legend for query in dashboard_queries.queries(DASHBOARD)]
    texts += [panel["title"] for panel in PANELS]
    for variable in DASHBOARD["templating"]["list"]:
        texts.append(str(variable.get("query", "")))
        texts.append(str(variable.get("datasource", {}).get("uid", "")))
    used = set().union(*map(dashboard_queries.variables_used, texts))
    assert used - DEFINED - dashboard_queries.GRAFANA_BUILTINS == set()


def test_a_variable_selects_the_container() -> None:
    """One dashboard serves many containers: every query filters on job and instance."""
    for query in dashboard_queries.queries(DASHBOARD):
        assert {"job", "instance"} <= dashboard_queries.variables_used(query.expr), query


def test_provisioning_points_at_the_dashboards() -> None:
    provisioning = ROOT / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert [source["type"] for source in sources["datasources"]] == ["prometheus"]
    providers = yaml.safe_load((provisioning / "dashboards" / "pidone.yml").read_text())
    assert providers["providers"][0]["options"]["path"].endswith("/pidone")


def test_every_query_parses(tmp_path) -> None:
    """promtool parses each query (its variables filled in) as a recording rule's expression."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; make test installs it)")
    values = {"job": "pidone", "instance": "localhost:10101", "datasource": "prometheus",
              "__rate_interval": "1m"}
    rules = [{"record": f"panel_{number}", "expr": dashboard_queries.substitute(query.expr, values)}
             for number, query in enumerate(dashboard_queries.queries(DASHBOARD))]
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([promtool, "check", "rules", str(rule_file)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
