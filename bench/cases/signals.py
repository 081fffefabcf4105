"""Signal forwarding: SIGUSR1 to PID 1 from outside, the probe acknowledges it through a pipe;
latency from before kill() to the child's CLOCK_MONOTONIC stamp, idle and under HTTP load."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from bench import wrk
from bench.context import Bench
from bench.inits import REFERENCE, Init, prometheus_baseline
from bench.namespace import Namespace, Reports, start_sleeping
from bench.results import CaseResult, Measurement, at_most, percentile, ratio_at_most

SIGNAL = signal.SIGUSR1
IDLE_RATIO = 1.5
LOADED_P99_MS = 1.0
LOADED_P50_RATIO = 1.5


def latencies(init: Init, bench: Bench, load_url: str | None = None) -> list[float]:
    """Seconds from kill() to the child's acknowledgement, one per signal."""
    reports = Reports()
    fd = str(reports.write_fd)
    argv = [*init.argv, str(bench.probe), "sigack", fd, str(int(SIGNAL))]
    try:
        with Namespace(argv, pass_fds=(reports.write_fd,)) as namespace:
            reports.value("ready")
            if init.http_port is not None:
                namespace.wait_http(init.metrics_url())
            namespace.settle()
            load = (wrk.Load(load_url, bench.sizes.load_connections) if load_url
                    else contextlib.nullcontext())
            with load:
                if load_url:
                    time.sleep(bench.sizes.load_warm_up)
                found = []
                for _ in range(bench.sizes.signals):
                    sent = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
                    os.kill(namespace.init_pid, SIGNAL)
                    found.append((reports.value("ack") - sent) / 1e9)
            return found
    finally:
        reports.close()


def run_idle(bench: Bench) -> CaseResult:
    p50 = Measurement("p50", "µs")
    p99 = Measurement("p99", "µs")
    for _ in range(bench.sizes.rounds):
        for init in bench.inits:
            found = latencies(init, bench)
            p50.add(init.name, percentile(found, 50) * 1e6)
            p99.add(init.name, percentile(found, 99) * 1e6)
    verdicts = [ratio_at_most(f"{init.name}: {m.metric} ≤ {IDLE_RATIO:g}× {REFERENCE}'s", m,
                              init.name, REFERENCE, IDLE_RATIO)
                for init in bench.inits if init.is_pidone for m in (p50, p99)]
    return CaseResult(
        "Signal forwarding, idle",
        f"{bench.sizes.signals} × {SIGNAL.name} sent to PID 1 from outside its namespace, one "
        "at a time; the probe (C) blocks it, takes it with sigwaitinfo and writes its "
        "CLOCK_MONOTONIC stamp to a pipe; latency = stamp − clock before kill(). Percentiles "
        "per round, median of rounds.",
        [p50, p99], verdicts)


def run_loaded(bench: Bench) -> CaseResult:
    p50 = Measurement("p50", "µs")
    p99 = Measurement("p99", "µs", targets=(LOADED_P99_MS * 1e3,))
    # Inits without HTTP get the same load on a server beside them, so every column pays the
    # same CPU contention and only pidone+http's column adds the GIL shared with its server.
    side = prometheus_baseline(bench.python)
    with start_sleeping(side):
        for _ in range(bench.sizes.rounds):
            for init in bench.inits:
                url = init.metrics_url() if init.http_port is not None else side.metrics_url()
                found = latencies(init, bench, load_url=url)
                p50.add(init.name, percentile(found, 50) * 1e6)
                p99.add(init.name, percentile(found, 99) * 1e6)
    verdicts = [verdict
                for init in bench.inits if init.http_port is not None and init.is_pidone
                for verdict in (
                    ratio_at_most(f"{init.name}: p50 ≤ {LOADED_P50_RATIO:g}× {REFERENCE}'s", p50,
                                  init.name, REFERENCE, LOADED_P50_RATIO),
                    at_most(f"{init.name}: p99 ≤ {LOADED_P99_MS:g} ms", p99, init.name,
                            LOADED_P99_MS * 1e3))]
    return CaseResult(
        "Signal forwarding under HTTP load",
        f"as idle, while `wrk -t1 -c{bench.sizes.load_connections}` hammers GET /metrics: "
        "pidone+http's own server; for the inits without HTTP, prometheus_client's server "
        "(serving pidone's registry) in a namespace beside them, so that every column pays the "
        "same CPU contention and pidone+http's alone shares its GIL with the server.",
        [p50, p99], verdicts)
