"""Draws docs/dashboard.png: the dashboard's panels, in its layout, from an end-to-end run's data.

Grafana is not available to take a screenshot, so this plots what the dashboard's queries returned
from the real Prometheus of tests/test_prometheus_e2e.py (saved there with PIDONE_DASHBOARD_DATA).
Needs matplotlib (in the test extras); `make dashboard-preview` runs the whole thing.

usage: plot_preview.py DATA.json OUTPUT.png
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.gridspec import GridSpec  # noqa: E402

import dashboard_queries  # noqa: E402

SCALES = {"bytes": (2 ** -20, "MiB"), "percentunit": (100, "%"), "s": (1, "s"), "ops": (1, "/s")}
"""Grafana unit -> (factor, label) for the axes."""


def scale(unit: str, values: list[float]) -> tuple[float, str]:
    """Latencies read better in milliseconds, as Grafana would show them."""
    if unit == "s" and values and max(values) < 1:
        return 1000, "ms"
    return SCALES.get(unit, (1, ""))


def points(series: dict, start: float) -> tuple[list[float], list[float]]:
    pairs = [(float(t) - start, float(v)) for t, v in series["values"]
             if math.isfinite(float(v))]
    return [t for t, _ in pairs], [v for _, v in pairs]


def draw_stat(axes: Axes, panel: dict, results: list[dict]) -> None:
    """A stat panel: the last value, through the panel's value mappings and thresholds."""
    axes.set_axis_off()
    last = [points(series, 0)[1][-1:] for series in results]
    values = [value for found in last for value in found]
    defaults = panel["fieldConfig"]["defaults"]
    if not values:
        text, color = defaults.get("noValue", "No data"), "grey"
    else:
        value = values[-1]
        text, color = f"{value:.3g}{' s' if defaults.get('unit') == 's' else ''}", "green"
        for step in defaults.get("thresholds", {}).get("steps", []):
            if step["value"] is None or value >= step["value"]:
                color = step["color"]
        for mapping in defaults.get("mappings", []):
            found = mapping["options"].get(f"{value:g}")
            if found:
                text, color = found["text"], found["color"]
    axes.text(0.5, 0.45, text, ha="center", va="center", fontsize=22, color=color,
              fontweight="bold", transform=axes.transAxes)
    axes.set_title(panel["title"], fontsize=10, loc="left")


def draw_timeseries(axes: Axes, panel: dict, queries: list[dict], start: float,
                    end: float) -> None:
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    steps = panel["fieldConfig"]["defaults"].get("custom", {}).get("lineInterpolation")
    every_value = [v for query in queries for series in query["result"]
                   for v in points(series, start)[1]]
    factor, label = scale(unit, every_value)
    for query in queries:
        spec = dashboard_queries.Query(panel=query["panel"], unit=unit, ref=query["ref"],
                                       expr=query["expr"], legend=query["legend"])
        for series in query["result"]:
            times, values = points(series, start)
            if values:
                axes.plot(times, [v * factor for v in values], marker=".", linewidth=1.5,
                          drawstyle="steps-post" if steps == "stepAfter" else "default",
                          label=dashboard_queries.legend(spec, series["metric"]))
    axes.set_title(panel["title"], fontsize=10, loc="left")
    axes.set_xlim(0, end - start)
    axes.set_ylabel(label, fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=6, loc="upper left")


def plot(data: dict, output: Path) -> None:
    board = dashboard_queries.load()
    panels = list(dashboard_queries.panels(board))
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    figure = plt.figure(figsize=(18, rows * 0.5))
    grid = GridSpec(rows, 24, figure=figure, top=0.95, hspace=0, wspace=1.2)
    for panel in panels:
        pos = panel["gridPos"]
        # The panel's last grid row stays empty: room for its tick labels and the next title.
        axes = figure.add_subplot(grid[pos["y"]:pos["y"] + pos["h"] - 1,
                                       pos["x"]:pos["x"] + pos["w"]])
        queries = [q for q in data["queries"] if q["panel"] == panel["title"]]
        if panel["type"] == "stat":
            draw_stat(axes, panel, [series for q in queries for series in q["result"]])
        else:
            draw_timeseries(axes, panel, queries, data["start"], data["end"])
    figure.suptitle(f"{board['title']} dashboard: its queries over the end-to-end test's "
                    f"Prometheus ({data['end'] - data['start']:.0f} s, x axis in seconds)",
                    fontsize=13)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=80, bbox_inches="tight")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    plot(json.loads(Path(sys.argv[1]).read_text()), Path(sys.argv[2]))
