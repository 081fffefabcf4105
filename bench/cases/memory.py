"""Memory: the init's resident set with its child sleeping (after a scrape, when it serves HTTP)."""

from __future__ import annotations

from bench.context import Bench
from bench.namespace import rss_bytes, start_sleeping
from bench.inits import FLOOR
from bench.results import CaseResult, Measurement, above_at_most, at_most

ABOVE_FLOOR_MIB = 1.5
"""pidone with --http off: at most this much above the floor."""
HTTP_LIMIT_MIB = 26.0


def run(bench: Bench) -> CaseResult:
    rss = Measurement("RSS", "MiB", targets=(HTTP_LIMIT_MIB,))
    for _ in range(bench.sizes.rounds):
        for init in bench.inits:
            with start_sleeping(init) as namespace:
                rss.add(init.name, rss_bytes(namespace.init_pid) / 2**20)
    verdicts = []
    if "pidone" in rss.values:
        verdicts.append(above_at_most(f"pidone: RSS ≤ the floor's + {ABOVE_FLOOR_MIB:g} MiB", rss,
                                      "pidone", FLOOR, ABOVE_FLOOR_MIB))
    if "pidone+http" in rss.values:
        verdicts.append(at_most(f"pidone+http: RSS ≤ {HTTP_LIMIT_MIB:g} MiB after a scrape", rss,
                                "pidone+http", HTTP_LIMIT_MIB))
    return CaseResult(
        "Memory",
        "VmRSS of PID 1 from /proc once its child (`sleep infinity`) runs, its /metrics has "
        "answered once (for inits with HTTP) and its CPU time has stopped moving.",
        [rss], verdicts)
