"""/metrics: a Prometheus collector that reads one core snapshot per collection, and the
exposition: one collection shared by every scrape that waits for it, each encoding made once
(app/http/costly.py chooses how often a collection may start)."""

from __future__ import annotations

import gzip
import platform
import signal
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest, gzip_accepted
from prometheus_client.registry import Collector

from app import __version__, log
from app.core import cgroup, procfs
from app.core.signals import signal_name
from app.core.state import FORWARD_BUCKETS, RESTART_REASONS, Snapshot


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
        if counts is not None:  # None until a first scan of /proc has ended, or without /proc
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


class HttpCounters(Collector):
    """What the HTTP side and the log dropped: connections cut off (read from the HTTP
    server's `Drops`, which owns the count: the core knows nothing of connections), times
    accepting paused, log lines lost."""

    def __init__(self, drops: Drops | None) -> None:
        self._drops = drops

    def collect(self) -> Iterator[Metric]:
        if self._drops is not None:
            family = CounterMetricFamily("pidone_http_connections_dropped",
                                         "Connections the HTTP server cut off to protect the probes",
                                         labels=["reason"])
            for reason, count in sorted(self._drops.dropped().items()):
                family.add_metric([reason], count)
            yield family
            yield CounterMetricFamily("pidone_http_accept_pauses",
                                      "Times the HTTP server stopped accepting for want of file descriptors",
                                      value=self._drops.accept_pauses())
        lines = CounterMetricFamily("pidone_log_lines_dropped",
                                    "pidone's log lines not written", labels=["reason"])
        for reason, count in sorted(log.log.dropped_lines().items()):
            lines.add_metric([reason], count)
        yield lines


class Drops(Protocol):
    def dropped(self) -> Mapping[str, int]: ...
    def accept_pauses(self) -> int: ...


def build_registry(snapshot: Callable[[], Snapshot], drops: Drops | None = None) -> CollectorRegistry:
    """A registry of our own: pidone's collector plus process_* and python_info, nothing global."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CoreCollector(snapshot, procfs.Census()))
    registry.register(HttpCounters(drops))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


class Scrape:
    """Every metric collected once, and the bodies encoded from it as scrapes ask, each
    variant (format, gzip) made once. Encoded in its app/http/costly.py thread only."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.metrics = list(registry.collect())
        self.bodies: dict[tuple[str, bool], bytes] = {}

    def collect(self) -> Iterator[Metric]:
        """The registry's interface, for prometheus_client's encoders."""
        return iter(self.metrics)

    def body(self, content_type: str, gzipped: bool) -> bytes:
        key = (content_type, gzipped)
        body = self.bodies.get(key)
        if body is None:
            encoder = ENCODERS.get(content_type, generate_latest)
            body = encoder(self)  # type: ignore[arg-type]  # has collect(), all they use
            if gzipped:
                body = gzip.compress(body, compresslevel=5)
            self.bodies[key] = body
        return body


ENCODERS: dict[str, Callable[..., bytes]] = {CONTENT_TYPE_PLAIN_0_0_4: generate_latest}


def variant(accept: str, accept_encoding: str) -> tuple[str, bool]:
    """The content type and gzip a scrape asks for: OpenMetrics when Accept asks for it."""
    try:
        encoder, content_type = choose_encoder(accept)
    except (ValueError, TypeError):
        # prometheus_client cannot compare a version such as "banana": answer in the classic format.
        encoder, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
    ENCODERS.setdefault(content_type, encoder)
    return content_type, gzip_accepted(accept_encoding)


def headers(content_type: str, gzipped: bool) -> dict[str, str]:
    found = {"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
    if gzipped:
        found["Content-Encoding"] = "gzip"
    return found
