"""Leaving: from the last process's exit to the init's own, once the init (and its HTTP server)
has settled. The child is SIGKILLed from outside; the init's exit is seen as unshare's."""

from __future__ import annotations

import os
import signal
import time

from bench.context import Bench
from bench.namespace import start_sleeping
from bench.results import CaseResult, Measurement, at_most

LIMIT_MS = {"pidone": 10.0, "pidone+http": 10.0}
"""pidone leaves within this many milliseconds of its last process, HTTP server or not:
stopping the server waits on requests in flight, never on a timer (app/http/quiet_server.py)."""


def run(bench: Bench) -> CaseResult:
    leave = Measurement("last process's exit → the init's exit", "ms", targets=(10.0,))
    for _ in range(bench.sizes.rounds):
        for init in bench.inits:
            samples = [time_leaving(init) for _ in range(bench.sizes.leave_runs)]
            leave.add(init.name, sorted(samples)[len(samples) // 2] * 1e3)
    verdicts = [at_most(f"{name}: ≤ {limit:g} ms", leave, name, limit)
                for name, limit in LIMIT_MS.items() if name in leave.values]
    return CaseResult(
        "Leaving",
        f"median of {bench.sizes.leave_runs} runs per round: each init with `sleep infinity` "
        "as its only process, settled (its HTTP server answering); the clock starts when "
        "the bench sends the child SIGKILL and stops when `unshare --fork`, the init's parent, "
        "has exited (its own exit and the namespace's teardown are in every column alike).",
        [leave], verdicts)


def time_leaving(init) -> float:
    """Seconds from SIGKILL to the child until the init's parent has been reaped."""
    with start_sleeping(init) as namespace:
        child = namespace.child_pid()
        started = time.monotonic()
        os.kill(child, signal.SIGKILL)
        namespace.proc.wait(30)
        return time.monotonic() - started
