"""A real Prometheus scrapes pidone as PID 1 of a leaky app: it stores what the app did, and every
dashboard query and alert expression returns data from it (or the test says why it must not)."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from cgroups import in_cgroup
from conftest import ROOT, RunningInit, workload
from prometheus_server import ALERT_RULES, JOB, PrometheusServer

sys.path.insert(0, str(ROOT / "grafana"))
import dashboard_queries  # noqa: E402

ORPHANS = 5
"""Orphans the workload leaves: pidone reaps them (pidone_zombies_reaped_total)."""
LEAKED = 12
"""Children the app starts and never waits for: zombies with a living parent, which pidone sees
(pidone_processes{state="zombie"}) but cannot reap until the app exits."""
USR1_SENT = 3
PIDS_LIMIT = 512
STEP = 1.0
"""Seconds between points of the range queries, as Grafana's step on a short time range."""

QUIET_ALERTS = {
    "PidoneCoreStalled": "the core loop turned every second of the run",
    "PidonePidsNearLimit": f"the run holds a few dozen of the cgroup's {PIDS_LIMIT} PIDs",
    "PidoneProcessesGrowing": "its 15-minute window at 1-minute steps needs a longer run",
    "PidoneSignalForwardingSlow": "pidone forwarded every signal in well under 100 ms",
    "PidoneRestartLoop": "the app was never restarted in this run",
}
"""Alert expressions that must return nothing in this run, and why."""

PIDS_QUERIES = ("pidone_pids_current", "pidone_pids_limit")
METRIC_NAME = re.compile(r"\b(up|pidone_\w+|process_\w+)\b(?!\s*\()")


def leaky_app() -> list[str]:
    """The failure the dashboard must show: an app that forks and never reaps.

    A shell starts LEAKED short-lived children and a straggler that ignores TERM, then execs the
    test workload, which inherits them and never waits for them. The straggler keeps pidone in
    its grace period after the app exits, long enough for Prometheus to see the exit code."""
    script = (f'for i in $(seq {LEAKED}); do sleep 0 & done; '
              '(trap "" TERM USR1 HUP; exec sleep 120) & exec "$@"')
    return ["sh", "-c", script, "leaky-app",
            *workload("trap=USR1,HUP", f"orphans={ORPHANS}", "exit-on=TERM")]


def children_of(pid: int) -> list[int]:
    return [int(word) for word in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def finite(result: list[dict]) -> bool:
    return any(math.isfinite(float(value)) for series in result for _, value in series["values"])


def test_prometheus_sees_what_the_app_did(start_pidone, pids_cgroup, tmp_path: Path) -> None:
    cgroup = pids_cgroup(PIDS_LIMIT)
    pidone = start_pidone(leaky_app(), "--grace", "60",
                          within=in_cgroup(cgroup) if cgroup else ())
    child_pid = int(pidone.expect_report("ready").split()[1])
    target = pidone.url.removeprefix("http://")
    prometheus = PrometheusServer(tmp_path, [target], interval=1.0)
    try:
        prometheus.wait_for("up", 1)  # its first scrape comes a few seconds after it starts
        start = time.time()
        for sent in range(1, USR1_SENT + 1):  # one signal a scrape: the graphs show each
            pidone.send(signal.SIGUSR1)
            pidone.expect_report("SIGUSR1")
            prometheus.wait_for('pidone_signals_received_total{signal="SIGUSR1"}', sent)
        assert pidone.http.post("/signal/HUP").status_code == 200
        pidone.expect_report("SIGHUP")

        expected = {
            "up": 1,
            "pidone_child_running": 1,
            "pidone_child_pid": child_pid,
            "pidone_zombies_reaped_total": ORPHANS,
            'pidone_processes{state="zombie"}': LEAKED,
            'pidone_signals_received_total{signal="SIGUSR1"}': USR1_SENT,
            'sum(pidone_signals_forwarded_total{signal="SIGUSR1", source="os"})': USR1_SENT,
            'sum(pidone_signals_forwarded_total{signal="SIGHUP", source="http"})': 1,
            "pidone_signal_forward_seconds_count": USR1_SENT + 1,
            'ALERTS{alertname="PidoneZombiesAccumulating", alertstate="pending"}': 1,
        }
        if cgroup is not None:
            expected["pidone_pids_limit"] = PIDS_LIMIT
        for promql, value in expected.items():
            prometheus.wait_for(promql, value)
        check_metrics_lint(pidone.http.get("/metrics").text)

        assert pidone.http.post("/signal/TERM").status_code == 200
        prometheus.wait_for("pidone_child_running", 0)
        prometheus.wait_for("pidone_child_exit_code", 0)
        prometheus.wait_for("pidone_zombies_reaped_total", ORPHANS + LEAKED)
        leave(pidone)
        prometheus.wait_for(f'up{{job="{JOB}"}}', 0)
        end = time.time()
        # Range queries evaluate at start + k * STEP: make `end`, after the last scrape, one of them.
        start = end - math.ceil((end - start) / STEP) * STEP

        check_dashboard_queries(prometheus, target, start, end,
                                pids_missing=cgroup is None)
        check_alert_expressions(prometheus, start, end, pids_missing=cgroup is None)
    finally:
        prometheus.stop()


def leave(pidone: RunningInit) -> None:
    """End the straggler, the last process but pidone: pidone then leaves with the app's status."""
    for pid in children_of(pidone.init_pid):
        os.kill(pid, signal.SIGKILL)
    assert pidone.wait() == 0, pidone.stderr


def check_metrics_lint(exposition: str) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not installed (Debian package prometheus)"
    done = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def check_dashboard_queries(prometheus: PrometheusServer, target: str, start: float, end: float,
                            *, pids_missing: bool) -> None:
    """Every panel's query, its variables set to this pidone, returns numbers over the run."""
    values = {"job": JOB, "instance": target, "datasource": "prometheus",
              "__rate_interval": dashboard_queries.rate_interval(prometheus.interval, STEP)}
    data, empty = [], []
    for query in dashboard_queries.queries(dashboard_queries.load()):
        expr = dashboard_queries.substitute(query.expr, values)
        result = prometheus.query_range(expr, start, end, STEP)
        data.append({"panel": query.panel, "ref": query.ref, "unit": query.unit,
                     "legend": query.legend, "expr": expr, "result": result})
        if not finite(result) and not (pids_missing and expr.startswith(PIDS_QUERIES)):
            empty.append(f"{query.panel} {query.ref}: {expr}")
    save_for_preview({"start": start, "end": end, "queries": data})
    assert empty == [], "dashboard queries without data"


def save_for_preview(data: dict) -> None:
    """With PIDONE_DASHBOARD_DATA=path, keep the run's query results for grafana/plot_preview.py."""
    path = os.environ.get("PIDONE_DASHBOARD_DATA")
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data))


def alert_rules() -> dict[str, str]:
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def check_alert_expressions(prometheus: PrometheusServer, start: float, end: float, *,
                            pids_missing: bool) -> None:
    """Each alert expression parses and returns data at some point of the run, or is one of
    QUIET_ALERTS and returns nothing; every metric it reads was stored."""
    quiet = dict(QUIET_ALERTS)
    if pids_missing:
        quiet["PidonePidsNearLimit"] = "no pids cgroup could be made on this machine"
    problems = []
    for alert, expr in alert_rules().items():
        fired = bool(prometheus.query_range(expr, start, end, STEP))
        if fired and alert in quiet:
            problems.append(f"{alert} returned data, yet {quiet[alert]}: {expr}")
        if not fired and alert not in quiet:
            problems.append(f"{alert} returned nothing: {expr}")
        for name in set(METRIC_NAME.findall(expr)):
            if pids_missing and name.startswith(PIDS_QUERIES):
                continue
            if not prometheus.query_range(f"count({name})", start, end, STEP):
                problems.append(f"{alert} reads {name}, which Prometheus never stored")
    assert problems == []
