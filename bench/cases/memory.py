"""Memory: the init's resident set with its child sleeping (after a scrape, when it serves HTTP)."""

from __future__ import annotations

from bench.context import Bench
from bench.namespace import rss_bytes, start_sleeping
from bench.results import CaseResult, Measurement, at_most

LIMITS_MIB = {"pidone": 12.0, "pidone+http": 35.0}


def run(bench: Bench) -> CaseResult:
    rss = Measurement("RSS", "MiB", targets=tuple(LIMITS_MIB.values()))
    for _ in range(bench.sizes.rounds):
        for init in bench.inits:
            with start_sleeping(init) as namespace:
                rss.add(init.name, rss_bytes(namespace.init_pid) / 2**20)
    verdicts = [at_most(f"{name}: RSS ≤ {limit:g} MiB", rss, name, limit)
                for name, limit in LIMITS_MIB.items() if name in rss.values]
    return CaseResult(
        "Memory",
        "VmRSS of PID 1 from /proc once its child (`sleep infinity`) runs, its /metrics has "
        "answered once (for inits with HTTP) and its CPU time has stopped moving.",
        [rss], verdicts)
