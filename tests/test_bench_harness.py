"""The benchmark harness runs end to end at tiny sizes and writes a row per init (speed is
never asserted here: that is what `make bench` prints)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT
from markdown_tables import parse_tables

CASES = ("Start-up", "First instants", "Signal forwarding, idle",
         "Signal forwarding under HTTP load", "Orphan storm", "Memory", "Idle", "Leaving")
INITS = ("tini", "dumb-init", "catatonit", "pidone", "pidone+http", "pidone bundle", "python3 floor")
STANDALONE = ("tini", "dumb-init", "catatonit", "pidone bundle")
"""The inits an image can hold without anything else: the Size case measures these."""
HTTP_CASES = ("Memory after scrapes", "A scrape's cost")
HTTP_INITS = ("pidone+http", "pidone bundle")
"""The inits that serve /metrics: the scrape cases measure these alone."""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, str]]]:
    """The quick run's report: per case, its table's rows as {column: cell}."""
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (out / "benchmarks.png").read_bytes().startswith(b"\x89PNG")
    return parse_tables((out / "benchmarks.md").read_text())


@pytest.mark.parametrize("case, measured", [*((case, INITS) for case in CASES),
                                             *((case, HTTP_INITS) for case in HTTP_CASES)])
def test_every_case_has_a_value_for_every_init_it_measures(report, case: str,
                                                          measured: tuple[str, ...]) -> None:
    rows = report.get(case)
    assert rows, f"no table for {case}"
    for row in rows:
        for init in INITS:
            assert bool(row.get(init)) == (init in measured), f"{case}: {init} in {row}"


def test_metrics_throughput_compares_pidone_with_prometheus_client(report) -> None:
    for row in report["/metrics throughput"]:
        assert row.get("pidone+http") and row.get("prometheus_client"), row


def test_size_measures_every_init_that_stands_alone(report) -> None:
    rows = report["Size"]
    assert [row["metric"] for row in rows] == ["on disk (MiB)", "tar.gz (MiB)"]
    for row in rows:
        for init in STANDALONE:
            assert float(row[init].replace(",", "")) > 0, f"Size: no {init} value in {row}"
        assert "pidone" not in row, "a venv's pidone needs the image's Python: no size of its own"


def test_targets_are_judged(report) -> None:
    assert report["Targets"], "no target verdicts"
