"""What a case measured (one value per round and init) and how it fared against its targets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from bench.inits import REFERENCE


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def format_number(value: float) -> str:
    """Three significant digits, whole numbers from 100 up (with thousands separators)."""
    magnitude = abs(value)
    if magnitude >= 100 or value == int(value):
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


@dataclass
class Measurement:
    """One metric of a case, for every init: a value per round."""

    metric: str
    unit: str
    higher_is_better: bool = False
    chart: bool = True
    targets: tuple[float, ...] = ()
    """Absolute targets in the metric's unit, drawn as lines on the chart."""
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, init: str, value: float) -> None:
        self.values.setdefault(init, []).append(value)

    def median(self, init: str) -> float | None:
        found = self.values.get(init)
        return statistics.median(found) if found else None


@dataclass(frozen=True)
class Verdict:
    target: str
    met: bool | None
    """None when it could not be judged (a value is missing)."""
    detail: str


@dataclass
class CaseResult:
    title: str
    how: str
    measurements: list[Measurement]
    verdicts: list[Verdict] = field(default_factory=list)
    skipped: str = ""
    """Why the case did not run, when it did not."""
    reference: str = REFERENCE
    """pidone's ratios in the table are taken to this column."""
    load: str = ""
    """The machine's load average (1/5/15 min) when the case started."""


def _judge(target: str, value: float | None, limit: float, higher_is_better: bool,
           shown: str) -> Verdict:
    if value is None:
        return Verdict(target, None, "not measured")
    met = value >= limit if higher_is_better else value <= limit
    if met:
        room = abs(limit - value) / limit * 100 if limit else 0.0
        return Verdict(target, True, f"{shown}: met, {room:.0f} % room")
    miss = abs(value - limit) / limit * 100 if limit else float("inf")
    return Verdict(target, False, f"{shown}: missed by {miss:.0f} %")


def at_most(target: str, measurement: Measurement, init: str, limit: float) -> Verdict:
    """An absolute target on the median of `init`."""
    value = measurement.median(init)
    shown = f"{format_number(value)} {measurement.unit}".rstrip() if value is not None else ""
    return _judge(target, value, limit, measurement.higher_is_better, shown)


def above_at_most(target: str, measurement: Measurement, init: str, reference: str,
                  limit: float) -> Verdict:
    """A target on the difference of medians, `init` minus `reference`."""
    value, base = measurement.median(init), measurement.median(reference)
    if value is None or base is None:
        return Verdict(target, None, "not measured")
    above = value - base
    return _judge(target, above, limit, False,
                  f"{format_number(above)} {measurement.unit} above".lstrip())


def ratio_at_most(target: str, measurement: Measurement, init: str, reference: str,
                  limit: float) -> Verdict:
    """A target on the ratio of medians, `init` over `reference` (for higher-is-better metrics
    the ratio must be at least `limit`)."""
    value, base = measurement.median(init), measurement.median(reference)
    if value is None or base is None or base == 0:
        return Verdict(target, None, "not measured")
    ratio = value / base
    return _judge(target, ratio, limit, measurement.higher_is_better, f"{ratio:.2f}×")
