"""docs/benchmarks.md from the cases' results: the machine, a table per case, the targets."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.inits import PEERS
from bench.results import CaseResult, format_number

ANALYSIS = Path(__file__).with_name("analysis.md")
"""Hand-written notes on the numbers (profiles, what was tried), appended to the report."""
ORDER = (*PEERS, "pidone", "pidone+http", "pidone bundle", "python3 floor")
MARKS = {True: "✅", False: "❌", None: "➖"}


def column_order(names: set[str]) -> list[str]:
    """Peers, then pidone's variants, then baselines, in a stable order."""
    known = [name for name in ORDER if name in names]
    return known + sorted(names - set(ORDER))


def format_cell(values: list[float] | None) -> str:
    if not values:
        return ""
    median = format_number(statistics.median(values))
    if len(values) == 1:
        return median
    return f"{median} ({format_number(min(values))}–{format_number(max(values))})"


def case_table(result: CaseResult) -> list[str]:
    names = column_order({name for m in result.measurements for name in m.values})
    pidones = [name for name in names if name.startswith("pidone")]
    reference = result.reference
    header = ["metric", *names, *(f"{name} ÷ {reference}" for name in pidones)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for m in result.measurements:
        unit = f" ({m.unit})" if m.unit else ""
        cells = [m.metric + unit, *(format_cell(m.values.get(name)) for name in names)]
        for name in pidones:
            value, base = m.median(name), m.median(reference)
            cells.append(f"{value / base:.2f}×" if value is not None and base else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render(results: list[CaseResult], machine: list[str], chart_name: str) -> str:
    lines = ["# Benchmarks", "",
             "pidone side by side with tini, dumb-init and catatonit, each as PID 1 of a fresh "
             "PID namespace, measured in the same run by `make bench` (the harness is in "
             "`bench/`). `python3 floor` is a baseline, not an init to use: `bench/floor_init.py`, "
             "the least a Python PID 1 can do (sigtimedwait → killpg, waitpid; nothing else) on "
             "pidone's interpreter; what pidone costs beyond it is its design's cost, what the "
             "floor costs beyond tini is CPython's. Cells are the median over rounds with the "
             "range (min–max) in parentheses; lower is better unless the metric says otherwise.",
             "",
             f"![pidone and its peers at a glance]({chart_name})", "", "## Machine", ""]
    lines += [f"- {fact}" for fact in machine]
    verdicts = [v for result in results for v in result.verdicts]
    if verdicts:
        lines += ["", "## Targets", "", "| | target | result |", "|---|---|---|"]
        lines += [f"| {MARKS[v.met]} | {v.target} | {v.detail} |" for v in verdicts]
    for result in results:
        lines += ["", f"## {result.title}", ""]
        if result.skipped:
            lines += [f"Not measured: {result.skipped}."]
            continue
        lines += [result.how, "", *case_table(result)]
        if result.load:
            lines += ["", f"Load average (1/5/15 min) when this case started: {result.load}."]
    if ANALYSIS.exists():
        lines += ["", ANALYSIS.read_text().strip()]
    return "\n".join(lines) + "\n"
