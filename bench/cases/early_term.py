"""The first instants: a SIGTERM sent to PID 1 a few milliseconds after its exec, and whether the
child gets it. A namespace's init loses every signal it neither blocks nor handles (the kernel
drops it), so each init has a window after its exec; the case reports where it ends, the latest
moment after the exec at which a TERM was still lost.

Each trial: the probe stamps CLOCK_MONOTONIC and execs the init; at the chosen offset after the
stamp the harness sends SIGTERM. The child (`probe sigack`) acknowledges a TERM; once it runs it
is sent a real-time MARK, which every init forwards after any TERM it still holds (standard
signals are taken first): "mark" before "ack" means the TERM was lost. A child killed by the
TERM before it could take it (the init exits) got it too."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from bench.context import Bench
from bench.inits import Init
from bench.namespace import BenchError, Namespace, Reports
from bench.results import CaseResult, Measurement

MARK = signal.SIGRTMIN + 1
OUTCOME_TIMEOUT = 10.0


def run(bench: Bench) -> CaseResult:
    latest = Measurement("latest moment after exec a SIGTERM was lost", "ms")
    lost_share = Measurement("SIGTERMs lost, of those sent", "%", chart=False)
    offsets = bench.sizes.term_offsets_ms
    for _ in range(bench.sizes.rounds):
        for init in bench.inits:
            trials = [trial(init, bench.probe, offset) for offset in offsets]
            lost = [sent for sent, was_lost in trials if was_lost]
            latest.add(init.name, max(lost, default=0.0))
            lost_share.add(init.name, 100 * len(lost) / len(trials))
    return CaseResult(
        "First instants",
        f"a SIGTERM to PID 1 at {len(offsets)} offsets from {offsets[0]:g} to {offsets[-1]:g} ms "
        "after its exec (CLOCK_MONOTONIC, stamped by the probe that execs the init), one trial "
        "each under `unshare`; the child acknowledges it, and a real-time signal sent once the "
        "child runs tells a lost TERM from a late one. 0 when none was lost.",
        [latest, lost_share])


def trial(init: Init, probe: Path, offset_ms: float) -> tuple[float, bool]:
    """(milliseconds from the init's exec to the kill, whether the TERM was lost)."""
    reports = Reports()
    fd = str(reports.write_fd)
    argv = [str(probe), "stamp", fd, *init.argv, str(probe), "sigack", fd,
            str(int(signal.SIGTERM)), str(int(MARK))]
    try:
        with Namespace(argv, pass_fds=(reports.write_fd,)) as namespace:
            execed = reports.value("stamp")
            due = execed + offset_ms * 1e6
            # Asleep until the last millisecond (the init being timed needs the CPU), awake
            # through it: a sleep overshoots by more than the steps measured.
            time.sleep(max(0.0, (due - time.clock_gettime_ns(time.CLOCK_MONOTONIC)) / 1e9 - 1e-3))
            while time.clock_gettime_ns(time.CLOCK_MONOTONIC) < due:
                pass
            sent = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            os.kill(namespace.init_pid, signal.SIGTERM)
            return (sent - execed) / 1e6, not reached_child(namespace, reports, init.name)
    finally:
        reports.close()


def reached_child(namespace: Namespace, reports: Reports, name: str) -> bool:
    deadline = time.monotonic() + OUTCOME_TIMEOUT
    while time.monotonic() < deadline:
        if reports.ready():
            word = reports.line().partition(" ")[0]
            if word == "ready":
                os.kill(namespace.init_pid, MARK)
            elif word in ("ack", "mark"):
                return word == "ack"
        elif namespace.proc.poll() is not None:
            return True  # the child died of the TERM before it took it, and the init left
        else:
            time.sleep(0.001)
    raise BenchError(f"{name}: neither the TERM nor the mark reached the child in "
                     f"{OUTCOME_TIMEOUT:g}s")
