"""Idle: CPU the init burns over a window while its child sleeps and nothing scrapes it."""

from __future__ import annotations

import contextlib
import time

from bench.context import Bench
from bench.namespace import cpu_seconds, start_sleeping
from bench.results import CaseResult, Measurement, at_most

LIMIT_PERCENT = 0.1


def run(bench: Bench) -> CaseResult:
    window = bench.sizes.idle_seconds
    cpu = Measurement(f"CPU over {window:g} s", "% of a core", targets=(LIMIT_PERCENT,))
    with contextlib.ExitStack() as stack:
        # All at once: idle inits do not disturb each other, and one window serves every init.
        running = {init.name: stack.enter_context(start_sleeping(init)) for init in bench.inits}
        before = {name: cpu_seconds(ns.init_pid) for name, ns in running.items()}
        time.sleep(window)
        for name, namespace in running.items():
            cpu.add(name, (cpu_seconds(namespace.init_pid) - before[name]) / window * 100)
    verdicts = [at_most(f"{init.name}: ≤ {LIMIT_PERCENT:g} % of a core", cpu, init.name,
                        LIMIT_PERCENT)
                for init in bench.inits if init.is_pidone]
    return CaseResult(
        "Idle",
        f"every init at once, each with `sleep infinity` as its child; PID 1's schedstat CPU "
        f"time over one {window:g} s window, once every init has settled.",
        [cpu], verdicts)
