"""/metrics throughput: wrk at several connection counts against pidone and against
prometheus_client's own start_http_server serving the same registry."""

from __future__ import annotations

from bench import wrk
from bench.context import Bench
from bench.inits import prometheus_baseline
from bench.namespace import start_sleeping
from bench.results import CaseResult, Measurement, ratio_at_most

BASELINE = "prometheus_client"


def run(bench: Bench) -> CaseResult:
    servers = [init for init in bench.inits if init.http_port is not None]
    servers.append(prometheus_baseline(bench.python))
    rates = {c: Measurement(f"requests/s, {c} connection{'s' * (c > 1)}", "", higher_is_better=True)
             for c in bench.sizes.connections}
    p99s = {c: Measurement(f"p99 latency, {c} connection{'s' * (c > 1)}", "ms", chart=False)
            for c in bench.sizes.connections}
    errors: dict[str, int] = {}
    for _ in range(bench.sizes.long_rounds):
        for server in servers:
            with start_sleeping(server):
                for connections in bench.sizes.connections:
                    result = wrk.measure(server.metrics_url(), connections, bench.sizes.wrk_seconds)
                    rates[connections].add(server.name, result.requests_per_second)
                    p99s[connections].add(server.name, result.p99_ms)
                    errors[server.name] = errors.get(server.name, 0) + result.errors
    verdicts = [ratio_at_most(f"{server.name}: {m.metric} ≥ {BASELINE}'s", m, server.name,
                              BASELINE, 1.0)
                for server in servers if server.is_pidone for m in rates.values()]
    failed = ", ".join(f"{name} {count:,}" for name, count in errors.items() if count)
    return CaseResult(
        "/metrics throughput",
        f"`wrk -t1 -cN -d{bench.sizes.wrk_seconds:g}s` on GET /metrics (the same registry: "
        f"pidone's collectors; {BASELINE} serves it with its own `start_http_server`, the "
        "standard library's threading HTTP/1.0 server), each server as PID 1 of its namespace "
        "with `sleep infinity` as its child. Errors (non-2xx, socket errors): "
        f"{failed or 'none'}.",
        [*rates.values(), *p99s.values()], verdicts, reference=BASELINE)
