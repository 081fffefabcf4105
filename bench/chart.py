"""docs/benchmarks.png: one small bar chart per metric, pidone in orange, so a reader takes the
comparison in at a glance."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the harness runs headless
import matplotlib.pyplot as plt  # noqa: E402

from bench.report import column_order, format_number  # noqa: E402
from bench.results import CaseResult  # noqa: E402

COLUMNS = 3
PIDONE_COLOUR = "#e8710a"
PEER_COLOUR = "#5f7fa6"
BASELINE_COLOUR = "#b8b8b8"
TARGET_COLOUR = "#c0392b"


def colour(name: str) -> str:
    if name.startswith("pidone"):
        return PIDONE_COLOUR
    if name in ("tini", "dumb-init", "catatonit"):
        return PEER_COLOUR
    return BASELINE_COLOUR


def draw(results: list[CaseResult], path: Path) -> None:
    panels = [(result.title, m) for result in results for m in result.measurements
              if m.chart and m.values]
    rows = max(1, math.ceil(len(panels) / COLUMNS))
    figure, axes = plt.subplots(rows, COLUMNS, figsize=(4.2 * COLUMNS, 2.9 * rows),
                                squeeze=False)
    for ax, (title, m) in zip(axes.flat, panels):
        names = column_order(set(m.values))
        medians = [statistics.median(m.values[name]) for name in names]
        low = [med - min(m.values[name]) for med, name in zip(medians, names)]
        high = [max(m.values[name]) - med for med, name in zip(medians, names)]
        ax.bar(names, medians, yerr=[low, high], capsize=3,
               color=[colour(name) for name in names])
        for limit in m.targets:
            ax.axhline(limit, color=TARGET_COLOUR, linestyle="--", linewidth=0.9)
            ax.annotate(f"target {limit:g}", (len(names) - 0.5, limit), ha="right", va="bottom",
                        fontsize=6, color=TARGET_COLOUR)
        for x, value in enumerate(medians):
            ax.annotate(format_number(value), (x, value), ha="center", va="bottom", fontsize=7,
                        xytext=(0, 2), textcoords="offset points")
        better = "higher is better" if m.higher_is_better else "lower is better"
        unit = f" ({m.unit})" if m.unit else ""
        ax.set_title(f"{title}\n{m.metric}{unit}, {better}", fontsize=8)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.margins(y=0.18)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
