"""A real Prometheus server on loopback for the tests: started, queried over its HTTP API, stopped."""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import yaml

from conftest import ROOT, free_loopback_port, wait_until_answers

ALERT_RULES = ROOT / "prometheus" / "alerts.yml"
JOB = "pidone"
"""The job name of prometheus/prometheus.yml, which the alert rules select."""


class QueryError(AssertionError):
    """Prometheus refused a query (a PromQL syntax or evaluation error)."""


class PrometheusServer:
    """`prometheus` with its own data dir, scraping `targets` every `interval` seconds and
    evaluating pidone's alert rules as often."""

    def __init__(self, workdir: Path, targets: list[str], interval: float = 1.0,
                 metrics_path: str = "/metrics") -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise FileNotFoundError("prometheus is not installed (Debian package prometheus)")
        self.interval = interval
        config = {
            "global": {"scrape_interval": f"{interval:g}s", "evaluation_interval": f"{interval:g}s"},
            "rule_files": [str(ALERT_RULES)],
            "scrape_configs": [{"job_name": JOB, "metrics_path": metrics_path,
                                "static_configs": [{"targets": targets}]}],
        }
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        address = f"127.0.0.1:{free_loopback_port()}"
        self.log = (workdir / "prometheus.log").open("w+")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config_file}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address={address}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=f"http://{address}", timeout=30)
        wait_until_answers("prometheus", self.proc, self.http, "/-/ready", self.output, timeout=30)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def api(self, path: str, **params: object) -> dict:
        """GET /api/v1/<path>; the `data` of a success, QueryError with Prometheus' reason else."""
        answer = self.http.get(f"/api/v1/{path}", params=params).json()
        if answer["status"] != "success":
            raise QueryError(f"{answer['errorType']}: {answer['error']} (in {params.get('query')})")
        return answer["data"]

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        """An instant query's vector: [{"metric": {...}, "value": [time, "text"]}, ...]."""
        params = {"query": promql} if at is None else {"query": promql, "time": at}
        data = self.api("query", **params)
        return data["result"] if data["resultType"] == "vector" else [{"metric": {}, "value": data["result"]}]

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[dict]:
        """A range query's matrix: [{"metric": {...}, "values": [[time, "text"], ...]}, ...]."""
        return self.api("query_range", query=promql, start=start, end=end, step=step)["result"]

    def value(self, promql: str) -> float | None:
        """The one value an instant query returns now, None when it returns nothing."""
        result = self.query(promql)
        assert len(result) <= 1, f"{promql} returned {len(result)} series"
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, expected: float, timeout: float = 30.0) -> None:
        """Wait until the stored value of promql is `expected` (scrapes come every interval)."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.value(promql)
            if seen is not None and math.isclose(seen, expected):
                return
            time.sleep(self.interval / 4)
        raise AssertionError(f"{promql} is {seen} after {timeout}s, expected {expected}")

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
