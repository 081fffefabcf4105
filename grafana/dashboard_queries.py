"""The PromQL queries of pidone's dashboard, with Grafana's variables filled in as Grafana would.

The tests evaluate them against a real Prometheus, and plot_preview.py draws them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parent / "dashboards" / "pidone.json"

GRAFANA_BUILTINS = frozenset({"__rate_interval", "__interval", "__interval_ms", "__range",
                              "__range_s", "__range_ms", "__all", "__name", "__from", "__to"})
"""Variables Grafana defines itself (https://grafana.com/docs/grafana/latest/dashboards/variables/)."""

VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class Query:
    panel: str
    unit: str
    ref: str
    expr: str
    legend: str


def load(path: Path = DASHBOARD) -> dict:
    return json.loads(path.read_text())


def panels(dashboard: Mapping) -> Iterator[dict]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: Mapping) -> list[Query]:
    return [Query(panel=panel["title"],
                  unit=panel.get("fieldConfig", {}).get("defaults", {}).get("unit", ""),
                  ref=target["refId"], expr=target["expr"],
                  legend=target.get("legendFormat", ""))
            for panel in panels(dashboard) for target in panel.get("targets", [])]


def variables_used(text: str) -> set[str]:
    return {braced or bare for braced, bare in VARIABLE.findall(text)}


def substitute(text: str, values: Mapping[str, str]) -> str:
    """text with each $var / ${var} replaced by values[var]; KeyError names a missing one."""
    return VARIABLE.sub(lambda found: values[found.group(1) or found.group(2)], text)


def rate_interval(scrape_interval_s: float, step_s: float) -> str:
    """Grafana's $__rate_interval: max($__interval + scrape interval, 4 x scrape interval)."""
    return f"{max(step_s + scrape_interval_s, 4 * scrape_interval_s):g}s"


def legend(query: Query, labels: Mapping[str, str]) -> str:
    """The series name Grafana shows: the legend format with the series' labels filled in."""
    return LEGEND_LABEL.sub(lambda found: labels.get(found.group(1), ""), query.legend).strip()
