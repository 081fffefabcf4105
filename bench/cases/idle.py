"""Idle: CPU the init burns over a window while its child sleeps and nothing scrapes it."""

from __future__ import annotations

import contextlib
import time

from bench.context import Bench
from bench.namespace import cpu_seconds, start_sleeping
from bench.inits import FLOOR
from bench.results import CaseResult, Measurement, ratio_at_most

TO_FLOOR = {"pidone": 1.2, "pidone+http": 2.0}
"""CPU at most this many times the floor's, which also wakes once a second."""


def run(bench: Bench) -> CaseResult:
    window = bench.sizes.idle_seconds
    cpu = Measurement(f"CPU over {window:g} s", "% of a core")
    with contextlib.ExitStack() as stack:
        # All at once: idle inits do not disturb each other, and one window serves every init.
        running = {init.name: stack.enter_context(start_sleeping(init)) for init in bench.inits}
        before = {name: cpu_seconds(ns.init_pid) for name, ns in running.items()}
        time.sleep(window)
        for name, namespace in running.items():
            cpu.add(name, (cpu_seconds(namespace.init_pid) - before[name]) / window * 100)
    verdicts = [ratio_at_most(f"{name}: ≤ {limit:g}× the floor's CPU", cpu, name, FLOOR, limit)
                for name, limit in TO_FLOOR.items() if name in cpu.values]
    return CaseResult(
        "Idle",
        f"every init at once, each with `sleep infinity` as its child; PID 1's schedstat CPU "
        f"time over one {window:g} s window, once every init has settled.",
        [cpu], verdicts)
