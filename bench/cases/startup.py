"""Start-up: `INIT -- /bin/true` as a whole process (hyperfine), and exec of the init to exec of
its child (stamped by the probe on both sides)."""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile

from bench.context import Bench
from bench.namespace import UNSHARE, BenchError, Reports
from bench.inits import FLOOR
from bench.results import CaseResult, Measurement, ratio_at_most

PYTHON_BASELINE = "python3 -c pass"
NO_INIT = "no init"
TO_FLOOR = 1.3
"""pidone's start-up, whole and exec to exec, at most this many times the floor's."""
WARM_UP_RUNS = 3


def run(bench: Bench) -> CaseResult:
    total = Measurement("whole process, `INIT -- /bin/true`", "ms")
    exec_to_exec = Measurement("exec of the init → exec of the child", "ms")
    commands = {init.name: [*init.argv, "/bin/true"] for init in bench.inits}
    commands[PYTHON_BASELINE] = [bench.python, "-c", "pass"]
    commands[NO_INIT] = ["/bin/true"]
    warm_up = WARM_UP_RUNS if bench.sizes.startup_runs >= 10 else 0  # a smoke run has no time
    for _ in range(bench.sizes.rounds):
        for name, seconds in time_whole(commands, bench.sizes.startup_runs, warm_up).items():
            total.add(name, seconds * 1e3)
        for init in bench.inits:
            samples = [time_exec_to_exec(init.argv, str(bench.probe))
                       for _ in range(bench.sizes.exec_runs)]
            exec_to_exec.add(init.name, sorted(samples)[len(samples) // 2] * 1e3)
    verdicts = [ratio_at_most(f"{name}: {m.metric} ≤ {TO_FLOOR:g}× the floor's", m, name, FLOOR,
                              TO_FLOOR)
                for name in ("pidone", "pidone+http") if name in total.values
                for m in (total, exec_to_exec)]
    return CaseResult(
        "Start-up",
        f"hyperfine, {bench.sizes.startup_runs} runs per round after {warm_up} warm-ups, "
        f"each command under `{' '.join(UNSHARE)}`; `{PYTHON_BASELINE}` on pidone's interpreter "
        f"and `{NO_INIT}` (unshare alone) are baselines too. "
        f"Exec to exec: median of {bench.sizes.exec_runs} runs per round, CLOCK_MONOTONIC "
        "stamped by the probe before it execs the init and when it starts as the child.",
        [total, exec_to_exec], verdicts)


def time_whole(commands: dict[str, list[str]], runs: int, warm_up: int) -> dict[str, float]:
    """Median seconds per command, from one hyperfine call (commands interleaved in one run)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as export:
        argv = ["hyperfine", "--style", "none", "-N", "--warmup", str(warm_up),
                "--runs", str(runs), "--export-json", export.name]
        for name, command in commands.items():
            argv += ["--command-name", name, shlex.join([*UNSHARE, *command])]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchError(f"hyperfine failed: {done.stderr.strip()[-300:]}")
        results = json.load(open(export.name))["results"]
    return {result["command"]: result["median"] for result in results}


def time_exec_to_exec(init_argv: tuple[str, ...], probe: str) -> float:
    reports = Reports()
    fd = str(reports.write_fd)
    try:
        argv = [*UNSHARE, probe, "stamp", fd, *init_argv, probe, "stamp", fd]
        subprocess.run(argv, pass_fds=(reports.write_fd,), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, timeout=30, check=True)
        before = reports.value("stamp")
        after = reports.value("stamp")
    finally:
        reports.close()
    return (after - before) / 1e9
