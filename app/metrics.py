"""/metrics: a Prometheus collector that reads one core snapshot per scrape, and the exposition."""

from __future__ import annotations

import gzip
import platform
import signal
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest, gzip_accepted
from prometheus_client.registry import Collector

from app import __version__, cgroup, procfs
from app.signals import signal_name
from app.state import FORWARD_BUCKETS, RESTART_REASONS, Snapshot


PRESET_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
                  signal.SIGUSR1, signal.SIGUSR2)
"""Signals whose counters are shown from the start at 0, so that rate() and increase() see
their first occurrence (a series that appears at 1 hides it)."""
SOURCES = ("os", "http")
PRESET_TARGETS = ("child", "group")
"""Where a signal from either source may go without asking; "all" appears once asked for."""


class CoreCollector(Collector):
    """Every pidone_* metric of SPEC.md, built at scrape time from one snapshot, so that the
    core stays the one source of truth and nothing is counted twice."""

    def __init__(self, snapshot: Callable[[], Snapshot], census: procfs.Census) -> None:
        self._snapshot = snapshot
        self._census = census

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        child = snap.child
        build = GaugeMetricFamily("pidone_build_info", "pidone's version and the Python running it",
                                  labels=["version", "python"])
        build.add_metric([__version__, platform.python_version()], 1)
        yield build
        yield GaugeMetricFamily("pidone_child_running", "1 while the child runs, else 0",
                                value=int(child.running))
        yield GaugeMetricFamily("pidone_child_pid", "The child's PID", value=child.pid)
        yield GaugeMetricFamily("pidone_child_start_time_seconds", "Unix time the child started",
                                value=child.start_time)
        if snap.exits:
            yield GaugeMetricFamily("pidone_child_exit_code",
                                    "The last exit status of a child (128+N for signal N)",
                                    value=snap.exits[-1].exit_code)
        restarts = CounterMetricFamily("pidone_child_restarts",
                                       "Children started again, over POST /restart (api) or by "
                                       "--restart after an exit (exit)", labels=["reason"])
        for reason in RESTART_REASONS:
            restarts.add_metric([reason], snap.restarts[reason])
        yield restarts
        yield GaugeMetricFamily("pidone_ready", "1 while /readyz would answer 200",
                                value=int(snap.ready))
        yield GaugeMetricFamily("pidone_core_heartbeat_timestamp_seconds",
                                "Unix time of the core loop's last turn", value=snap.heartbeat)
        yield CounterMetricFamily("pidone_zombies_reaped", "Reaped processes other than the child",
                                  value=snap.zombies_reaped)
        received = CounterMetricFamily("pidone_signals_received",
                                       "Signals pidone got from the OS, SIGCHLD excluded",
                                       labels=["signal"])
        for signo, count in sorted({**dict.fromkeys(PRESET_SIGNALS, 0),
                                    **snap.signals_received}.items()):
            received.add_metric([signal_name(signo)], count)
        yield received
        forwarded = CounterMetricFamily("pidone_signals_forwarded",
                                        "Signals delivered, by who they reached",
                                        labels=["signal", "source", "target"])
        preset = {(signo, source, target): 0 for signo in PRESET_SIGNALS for source in SOURCES
                  for target in PRESET_TARGETS}
        for (signo, source, target), count in sorted({**preset, **snap.signals_forwarded}.items()):
            forwarded.add_metric([signal_name(signo), source, target], count)
        yield forwarded
        dropped = CounterMetricFamily("pidone_signals_dropped",
                                      "Signals from the OS not delivered: no child ran",
                                      labels=["reason"])
        dropped.add_metric(["no_child"], snap.signals_dropped)
        yield dropped
        latency = snap.forward_latency
        buckets = [(repr(bound), count) for bound, count in zip(FORWARD_BUCKETS, latency.bucket_counts)]
        buckets.append(("+Inf", latency.total))
        yield HistogramMetricFamily("pidone_signal_forward_seconds",
                                    "From pidone learning of a signal to its delivery",
                                    buckets=buckets, sum_value=latency.sum_seconds)
        counts = self._census.state_counts(snap.is_pid1)
        if counts is not None:
            processes = GaugeMetricFamily("pidone_processes", "Processes pidone can see, by state",
                                          labels=["state"])
            for state, count in counts.items():
                processes.add_metric([state], count)
            yield processes
        pids = cgroup.read_pids_usage()
        if pids is not None:
            yield GaugeMetricFamily("pidone_pids_current", "Tasks in the cgroup's pids controller",
                                    value=pids.current)
            if pids.limit is not None:
                yield GaugeMetricFamily("pidone_pids_limit", "The cgroup's pids.max",
                                        value=pids.limit)


class DroppedConnections(Collector):
    """pidone_http_connections_dropped_total: read from the HTTP server's guard, which owns
    the count (the core knows nothing of connections)."""

    def __init__(self, dropped: Callable[[], Mapping[str, int]]) -> None:
        self._dropped = dropped

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily("pidone_http_connections_dropped",
                                     "Connections the HTTP server cut off to protect the probes",
                                     labels=["reason"])
        for reason, count in sorted(self._dropped().items()):
            family.add_metric([reason], count)
        yield family


def build_registry(snapshot: Callable[[], Snapshot],
                   dropped_connections: Callable[[], Mapping[str, int]] | None = None) -> CollectorRegistry:
    """A registry of our own: pidone's collector plus process_* and python_info, nothing global."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CoreCollector(snapshot, procfs.Census()))
    if dropped_connections is not None:
        registry.register(DroppedConnections(dropped_connections))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry, accept: str, accept_encoding: str) -> tuple[bytes, dict[str, str]]:
    """The scrape body and headers: OpenMetrics when Accept asks for it, gzip when allowed."""
    try:
        encoder, content_type = choose_encoder(accept)
    except (ValueError, TypeError):
        # prometheus_client cannot compare a version such as "banana": answer in the classic format.
        encoder, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
    body = encoder(registry)
    headers = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
    if gzip_accepted(accept_encoding):
        body = gzip.compress(body, compresslevel=5)
        headers["Content-Encoding"] = "gzip"
    return body, headers
