"""Builds grafana/dashboards/pidone.json, pidone's Grafana dashboard, as code.

Run `python grafana/build_dashboard.py` after changing a panel and commit the JSON with it:
tests/test_dashboard.py fails while the committed JSON differs from what this script builds.
Metric names: SPEC.md, "Metrics".
"""

from __future__ import annotations

import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    GridPos,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "pidone.json"

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
SELECTOR = '{job=~"$job", instance=~"$instance"}'
"""Every query selects the containers chosen with the dashboard's variables."""


def query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    """A Prometheus range query; `{sel}` in expr stands for the variables' label selector."""
    return (prometheus.Dataquery().expr(expr.replace("{sel}", SELECTOR))
            .legend_format(legend).ref_id(ref).datasource(DATASOURCE))


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=value, color=color) for value, color in steps])


def place(panel: stat.Panel | timeseries.Panel, panel_id: int, x: int, y: int, w: int,
          h: int) -> stat.Panel | timeseries.Panel:
    return panel.id(panel_id).grid_pos(GridPos(x=x, y=y, w=w, h=h)).datasource(DATASOURCE)


def last_value(title: str) -> stat.Panel:
    """A stat panel showing each series' last value, as Grafana's own default does."""
    return stat.Panel().title(title).reduce_options(
        common_builders.ReduceDataOptions().calcs(["lastNotNull"]))


def child_panels() -> list[stat.Panel]:
    running = (last_value("Child running")
               .description("1 while the command pidone started runs (pidone_child_running).")
               .with_target(query("pidone_child_running{sel}", "{{instance}}"))
               .mappings([ValueMap(options={
                   "0": ValueMappingResult(text="down", color="red", index=0),
                   "1": ValueMappingResult(text="running", color="green", index=1)})])
               .thresholds(thresholds((None, "red"), (1, "green")))
               .color_mode(common.BigValueColorMode.BACKGROUND))
    uptime = (last_value("Child uptime")
              .description("Time since the child started (pidone_child_start_time_seconds).")
              .with_target(query("time() - pidone_child_start_time_seconds{sel}",
                                 "{{instance}}"))
              .unit("s"))
    exit_code = (last_value("Child exit code")
                 .description("How the child ended: its exit code, 128+N when signal N killed "
                              "it. Empty while it runs (pidone_child_exit_code).")
                 .with_target(query("pidone_child_exit_code{sel}", "{{instance}}"))
                 .no_value("running")
                 .thresholds(thresholds((None, "green"), (1, "red"))))
    heartbeat = (last_value("Core heartbeat age")
                 .description("Seconds since pidone's core loop last turned; it turns at least "
                              "once a second. An old heartbeat means a stalled core: no reaping, "
                              "no signal forwarding.")
                 .with_target(query("time() - pidone_core_heartbeat_timestamp_seconds{sel}",
                                    "{{instance}}"))
                 .unit("s")
                 .thresholds(thresholds((None, "green"), (5, "orange"), (30, "red"))))
    return [place(running, 1, 0, 0, 6, 4), place(uptime, 2, 6, 0, 6, 4),
            place(exit_code, 3, 12, 0, 6, 4), place(heartbeat, 4, 18, 0, 6, 4)]


def graph(title: str, description: str, unit: str, *targets: prometheus.Dataquery
          ) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).unit(unit)
             .fill_opacity(10).show_points(common.VisibilityMode.NEVER))
    for target in targets:
        panel = panel.with_target(target)
    return panel


def events(title: str, description: str, *targets: prometheus.Dataquery) -> timeseries.Panel:
    """Counters of rare events, drawn as steps: the counters themselves say what happened and
    when; a rate would smear each event into fractions over $__rate_interval."""
    return graph(title, description, "short", *targets).line_interpolation(
        common.LineInterpolation.STEP_AFTER)


def process_panels() -> list[timeseries.Panel]:
    reaped = graph("Zombies reaped", "Orphans pidone reaped, per second "
                   "(rate of pidone_zombies_reaped_total; the child itself is not counted).",
                   "ops",
                   query("rate(pidone_zombies_reaped_total{sel}[$__rate_interval])",
                         "{{instance}}"))
    by_state = graph("Processes by state", "Processes pidone can see (its PID namespace when it "
                     "is PID 1). Zombies that stay are children of a living parent in the app "
                     "that does not wait for them: see GET /processes.", "short",
                     query("pidone_processes{sel}", "{{instance}} {{state}}"))
    total = graph("Processes in the namespace", "All processes, whatever their state. Steady "
                  "growth is an app that forks and never reaps or leaks workers: it ends when "
                  "the PIDs run out (alert PidoneProcessesGrowing).", "short",
                  query("sum by (job, instance) (pidone_processes{sel})", "{{instance}}"))
    pids = graph("PIDs used and the cgroup limit", "The container's pids controller: PIDs in "
                 "use against the limit (absent when unlimited). At the limit fork() fails "
                 "(alert PidonePidsNearLimit at 80%).", "short",
                 query("pidone_pids_current{sel}", "{{instance}} used"),
                 query("pidone_pids_limit{sel}", "{{instance}} limit", "B"))
    return [place(reaped, 5, 0, 4, 12, 8), place(by_state, 6, 12, 4, 12, 8),
            place(total, 7, 0, 12, 12, 8), place(pids, 8, 12, 12, 12, 8)]


def signal_panels() -> list[timeseries.Panel]:
    received = events("Signals received", "Signals pidone got from the OS (docker stop, kill, "
                      "a terminal) since it started, by signal.",
                      query("sum by (instance, signal) (pidone_signals_received_total{sel})",
                            "{{instance}} {{signal}}"))
    forwarded = events("Signals forwarded", "Signals delivered to the child (or its process "
                       "group, or every process with POST /signal?target=all) since pidone "
                       "started, by signal and by where they came from: os or http (POST "
                       "/signal).",
                       query("sum by (instance, signal, source) ("
                             "pidone_signals_forwarded_total{sel})",
                             "{{instance}} {{signal}} from {{source}}"))
    latency = graph("Signal forwarding latency", "From pidone learning of a signal to its "
                    "delivery (pidone_signal_forward_seconds); empty while no signals arrive.",
                    "s", *[query(f"histogram_quantile({q}, sum by (job, instance, le) (rate("
                                 f"pidone_signal_forward_seconds_bucket{{sel}}"
                                 f"[$__rate_interval])))", f"{{{{instance}}}} p{label}", ref)
                           for q, label, ref in (("0.5", "50", "A"), ("0.9", "90", "B"),
                                                 ("0.99", "99", "C"))])
    return [place(received, 9, 0, 20, 8, 8), place(forwarded, 10, 8, 20, 8, 8),
            place(latency, 11, 16, 20, 8, 8)]


def restart_panels() -> list[timeseries.Panel]:
    restarts = events("Child restarts", "Times pidone started the command again since it "
                      "started, by reason: exit (--restart after the child exited on its own; "
                      "steady growth is a restart loop, alert PidoneRestartLoop) or api "
                      "(POST /restart). See GET /status for the last 10 exits.",
                      query("sum by (instance, reason) (pidone_child_restarts_total{sel})",
                            "{{instance}} {{reason}}"))
    dropped = events("Signals dropped while no child ran", "Signals from the OS that came "
                     "during a restart, when no child ran: counted, never delivered to the next "
                     "child (pidone_signals_dropped_total).",
                     query("sum by (instance, reason) (pidone_signals_dropped_total{sel})",
                           "{{instance}} {{reason}}"))
    return [place(restarts, 15, 0, 35, 12, 7), place(dropped, 16, 12, 35, 12, 7)]


def own_panels() -> list[timeseries.Panel]:
    cpu = graph("pidone CPU", "CPU time pidone itself uses (process_cpu_seconds_total), "
                "1 = one core.", "percentunit",
                query("rate(process_cpu_seconds_total{sel}[$__rate_interval])",
                      "{{instance}}"))
    memory = graph("pidone memory", "pidone's own resident memory (process_resident_memory_"
                   "bytes), not the app's.", "bytes",
                   query("process_resident_memory_bytes{sel}", "{{instance}}"))
    dropped = graph("HTTP connections cut off", "Connections pidone's HTTP server ended to keep "
                    "the probes in, per second, by reason: stuck_sending (a client that does not "
                    "read its answers), head_too_slow (a request head that never ends), "
                    "room_needed (too many connections). Steady values mean a slow or hostile "
                    "client on the pod network.", "ops",
                    query("sum by (job, instance, reason) (rate(pidone_http_connections_dropped"
                          "_total{sel}[$__rate_interval]))", "{{instance}} {{reason}}"))
    return [place(cpu, 12, 0, 28, 8, 7), place(memory, 13, 8, 28, 8, 7),
            place(dropped, 14, 16, 28, 8, 7)]


def variables() -> list[db.DatasourceVariable | db.QueryVariable]:
    source = db.DatasourceVariable("datasource").label("Data source").type("prometheus")
    job = (db.QueryVariable("job").label("Job").datasource(DATASOURCE)
           .query({"query": "label_values(pidone_build_info, job)", "refId": "job"})
           .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC)
           .multi(True).include_all(True).all_value(".*")
           .current(VariableOption(text="All", value="$__all")))
    instance = (db.QueryVariable("instance").label("Instance").datasource(DATASOURCE)
                .query({"query": 'label_values(pidone_build_info{job=~"$job"}, instance)',
                        "refId": "instance"})
                .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
                .sort(VariableSort.ALPHABETICAL_ASC)
                .multi(True).include_all(True).all_value(".*")
                .current(VariableOption(text="All", value="$__all")))
    return [source, job, instance]


def build() -> db.Dashboard:
    board = (db.Dashboard("pidone").uid("pidone")
             .description("pidone, the PID 1 of containers: the child, zombies, PIDs, signals, "
                          "restarts.")
             .tags(["pidone", "containers"]).time("now-1h", "now").refresh("30s")
             .timezone("browser").editable().variables(variables()))
    for panel in [*child_panels(), *process_panels(), *signal_panels(), *own_panels(),
                  *restart_panels()]:
        board = board.with_panel(panel)
    return board


def render() -> str:
    return JSONEncoder(sort_keys=True, indent=2).encode(build().build()) + "\n"


if __name__ == "__main__":
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}", file=sys.stderr)
