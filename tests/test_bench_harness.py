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


@pytest.mark.parametrize("case", CASES)
def test_every_case_has_a_value_for_every_init(report, case: str) -> None:
    rows = report.get(case)
    assert rows, f"no table for {case}"
    for row in rows:
        for init in INITS:
            assert row.get(init), f"{case}: no {init} value in {row}"


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


@pytest.mark.parametrize("case", HTTP_CASES)
def test_scrape_cases_measure_every_init_with_http(report, case: str) -> None:
    rows = report.get(case)
    assert rows, f"no table for {case}"
    for row in rows:
        for init in HTTP_INITS:
            assert float(row[init].split()[0].replace(",", "")) >= 0, f"{case}: no {init} value in {row}"
        assert not row.get("tini"), "tini serves no /metrics: nothing to scrape"


def test_targets_are_judged(report) -> None:
    assert report["Targets"], "no target verdicts"
